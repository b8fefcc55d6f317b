"""Drive load from a separate process: wrk with bench/lines.lua, or a slower Python fallback.

Every run is bounded twice: by time (`duration`) and by count (`max_requests`, and the number of lines:
each line is one request, never reused). Both return the same dict: requests, seconds, expected (answers
with the route's expected status), p50/p99 in ms, a status histogram and a tally of the answers' JSON
`result` (the webhook's updated/unchanged/unknown_message...).
"""
from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

LUA = Path(__file__).with_name("lines.lua")
RESULT_RE = re.compile(rb'"result":\s*"([A-Za-z0-9_]+)"')  # a JSON answer's result (webhooks), tallied per run


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(*, port: int, path: str, lines: Path, expect: int, auth: str, duration: float, connections: int,
            max_requests: int) -> dict:
    env = {**os.environ, "BENCH_LINES": str(lines), "BENCH_MAX": str(max_requests), "BENCH_EXPECT": str(expect),
           "BENCH_PATH": path, "BENCH_AUTH": auth}
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s", "-s", str(LUA),
            f"http://127.0.0.1:{port}"]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 60, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            raw = json.loads(line[len("BENCH_RESULT "):])
            seconds = raw["duration_us"] / 1e6
            errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
            return {"requests": raw["requests"], "seconds": seconds, "expected": raw["expected"],
                    "rps": raw["expected"] / seconds if seconds else 0.0,
                    "p50_ms": raw["p50_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
                    "statuses": raw["statuses"], "socket_errors": errors, "results": raw.get("results", {})}
    raise RuntimeError(f"wrk gave no result (exit {out.returncode}): {out.stderr[-2000:]}")


def run_python(*, port: int, path: str, lines: Path, expect: int, auth: str, duration: float, connections: int,
               max_requests: int) -> dict:
    """Closed loop with `connections` threads, one connection per request (gunicorn sync closes anyway)."""
    requests_ = []
    for line in lines.read_text().splitlines():
        fields = line.split("\t")
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {auth}"
        for field in fields[:-1]:
            name, _, value = field.partition(":")
            headers[name] = value.strip()
        requests_.append((headers, fields[-1].encode()))
    lock = threading.Lock()
    state = {"next": 0}
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    results: dict[str, int] = {}
    errors = [0]
    deadline = time.perf_counter() + duration

    def worker():
        while time.perf_counter() < deadline:
            with lock:
                i = state["next"]
                if i >= len(requests_) or i >= max_requests:
                    return
                state["next"] = i + 1
            headers, body = requests_[i]
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                status, answer = response.status, response.read()
                conn.close()
            except OSError:
                with lock:
                    errors[0] += 1
                continue
            with lock:
                latencies.append(time.perf_counter() - started)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if m := RESULT_RE.search(answer):
                    results[m.group(1).decode()] = results.get(m.group(1).decode(), 0) + 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0

    expected = statuses.get(str(expect), 0)
    return {"requests": len(latencies), "seconds": seconds, "expected": expected, "rps": expected / seconds,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "statuses": statuses, "socket_errors": errors[0],
            "results": results}
