"""A counting TCP proxy in front of Redis: how many round trips (and which commands) a request costs.

A round trip is a burst of client bytes sent after the client last heard from Redis (or first spoke):
a pipeline is one burst, EVALSHA is one burst whatever its script calls inside Redis, and a command that
needs a second exchange (SCRIPT EXISTS before a pipeline with scripts, SCRIPT LOAD after NOSCRIPT) is
another. This counts what the network sees, independently of how Redis accounts commands.
"""
from __future__ import annotations

import asyncio
import collections
import re
import threading

COMMAND_RE = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n(?:\$\d+\r\n([A-Za-z]+)\r\n)?")
SUBCOMMANDS = {b"SCRIPT", b"CLIENT", b"CONFIG", b"MEMORY"}


def command_names(data: bytes) -> str:
    """The commands in one burst, e.g. `EVALSHA+SET` (a subcommand is kept: `SCRIPT EXISTS`)."""
    names = []
    for match in COMMAND_RE.finditer(data):
        name = match.group(1).upper()
        if name in SUBCOMMANDS and match.group(2):
            name += b" " + match.group(2).upper()
        names.append(name.decode())
    return "+".join(names) or "?"


class RoundTripProxy:
    """Listen on a free loopback port, forward to Redis, count client bursts; runs in its own thread."""

    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self.port = 0
        self.bursts = 0
        self.commands: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RoundTripProxy:
        self.thread.start()
        self.ready.wait(5)
        return self

    def reset(self) -> None:
        with self.lock:
            self.bursts = 0
            self.commands.clear()

    def snapshot(self) -> tuple[int, collections.Counter]:
        with self.lock:
            return self.bursts, collections.Counter(self.commands)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _client(self, client_reader, client_writer) -> None:
        redis_reader, redis_writer = await asyncio.open_connection("127.0.0.1", self.redis_port)
        state = {"client_turn": False}  # True while the client is sending its current burst

        async def upstream():
            while data := await client_reader.read(65536):
                if not state["client_turn"]:
                    state["client_turn"] = True
                    with self.lock:
                        self.bursts += 1
                        self.commands[command_names(data)] += 1
                redis_writer.write(data)
                await redis_writer.drain()
            redis_writer.close()

        async def downstream():
            while data := await redis_reader.read(65536):
                state["client_turn"] = False
                client_writer.write(data)
                await client_writer.drain()
            client_writer.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)
