"""OTP_REDIS_URL beyond one server: Sentinel and Cluster URLs parse, and a real Sentinel serves the core loop."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import redis

from otpservice.config import ConfigError
from otpservice.storage.connect import connect, parse_cluster_url, parse_sentinel_url
from tests.support.app import CLIENT_KEY, code_from, outbox
from tests.support.redis_server import REDIS_SERVER, RedisServer, free_port

NUMBER = "+13125550140"


def test_sentinel_url_names_sentinels_master_db_and_secrets():
    parsed = parse_sentinel_url("redis+sentinel://:s3cret@10.0.0.1:26380,sentinel-b/mymaster/2?sentinel_password=x")
    assert parsed.hosts == [("10.0.0.1", 26380), ("sentinel-b", 26379)]
    assert (parsed.master, parsed.db, parsed.password, parsed.sentinel_password) == ("mymaster", 2, "s3cret", "x")
    assert parse_sentinel_url("rediss+sentinel://h:1/m").tls is True
    assert parse_sentinel_url("redis+sentinel://h:1/m").db == 0
    assert "s3cret" not in repr(parsed)


def test_cluster_url_names_its_seed_nodes():
    parsed = parse_cluster_url("redis+cluster://user:pw@[::1]:7000,node-b:7001,node-c")
    assert parsed.hosts == [("::1", 7000), ("node-b", 7001), ("node-c", 6379)]
    assert (parsed.username, parsed.password, parsed.tls) == ("user", "pw", False)
    assert parse_cluster_url("rediss+cluster://h:7000").tls is True


@pytest.mark.parametrize("url", ["redis+sentinel://h:1", "redis+sentinel://h:1/m/0/x", "redis+sentinel://h:x/m",
                                 "redis+cluster://h:1/3", "redis+cluster://:1"])
def test_malformed_urls_are_configuration_errors(url):
    with pytest.raises(ConfigError, match="OTP_REDIS_URL"):
        connect(url)


@pytest.fixture
def sentinel(tmp_path: Path):
    """A real master and one Sentinel watching it, on free ports; both stopped after the test."""
    master = RedisServer().start()
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                    f"sentinel monitor otpmaster 127.0.0.1 {master.port} 1\n")
    proc = subprocess.Popen([REDIS_SERVER, str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        with redis.Redis(port=port, socket_timeout=0.5) as client:
            while True:
                try:
                    client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "otpmaster")
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.05)
        yield f"redis+sentinel://127.0.0.1:{port}/otpmaster/0", master
    finally:
        proc.kill()
        proc.wait(timeout=10)
        master.cleanup()


def test_the_core_loop_runs_through_a_real_sentinel(make_app, sim, sentinel):
    url, master = sentinel
    # This master has no replica: by default (a Sentinel URL waits for one) nothing is reserved or sent.
    lone = make_app(redis_url=url).test_client()
    lone.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    refused = lone.post("/request-code", json={"phone_number": NUMBER})
    assert refused.status_code == 503 and refused.get_json()["error"]["code"] == "store_unavailable"
    assert outbox(sim, NUMBER) == []
    client = make_app(redis_url=url, redis_wait_replicas="0").test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 202
    code = code_from(outbox(sim, NUMBER)[0])
    assert client.post("/verify", json={"phone_number": NUMBER, "code": code}).get_json()["valid"] is True
    with redis.Redis(port=master.port) as direct:
        assert any(key.startswith(b"otp:{") for key in direct.scan_iter())  # the keys are on the master
    assert client.get("/readyz").status_code == 200
