"""Redis failing: every answer is a JSON 503, nothing is sent, nothing approved; recovery needs no restart."""
from __future__ import annotations

import time

from tests.support.app import CLIENT_KEY, code_from, outbox
from tests.support.redis_server import RedisServer

NUMBER = "+13125550170"


def test_redis_down_fails_closed_and_recovers(make_app, sim):
    server = RedisServer().start()
    restarted = None
    try:
        app = make_app(redis_url=server.url, redis_timeout=0.5)
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
        assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 202
        code = code_from(outbox(sim, NUMBER)[0])
        server.stop()
        for response in (client.post("/request-code", json={"phone_number": "+13125550171"}),
                         client.post("/verify", json={"phone_number": NUMBER, "code": code}),
                         client.get("/readyz")):
            assert response.status_code == 503
            assert response.get_json().get("error", {}).get("code", "store_unavailable") == "store_unavailable"
        assert client.post("/verify", json={"phone_number": NUMBER, "code": code}).get_json().get("valid") is None
        assert outbox(sim, "+13125550171") == []
        restarted = RedisServer(port=server.port).start()  # back, empty: same port, no restart of the app
        deadline = time.time() + 10
        while client.get("/readyz").status_code != 200 and time.time() < deadline:
            time.sleep(0.1)
        assert client.get("/readyz").status_code == 200
        assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 202
    finally:
        server.cleanup()
        if restarted:
            restarted.cleanup()
