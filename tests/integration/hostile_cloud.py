"""A misbehaving HTTP endpoint on 127.0.0.1 standing in for a GPU cloud (or a proxy before it) that goes wrong.

Modes (real sockets, real HTTP/1.1 framing):
- ``trickle``: a 200 with a JSON content type whose body comes one byte every ``interval`` seconds, forever;
- ``huge``: a 200 of 64 MiB without a length (64 KiB chunks), as fast as the client reads;
- ``silent``: reads the request and never answers, holding the connection open.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["trickle", "huge", "silent"]


@dataclass
class Endpoint:
    mode: Mode
    port: int = 0
    interval: float = 0.2
    requests: list[str] = field(default_factory=list)
    bytes_sent: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode("latin-1").strip()
            while (await reader.readline()).strip():
                pass
            self.requests.append(request_line)
            if self.mode == "silent":
                await reader.read()  # until the client gives up and closes
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
            if self.mode == "trickle":
                writer.write(b"{")
                while True:
                    await writer.drain()
                    await asyncio.sleep(self.interval)
                    writer.write(b" ")
                    self.bytes_sent += 1
            chunk = b'{"gpus": [' + b'{"id": "x"},' * 5_000 + b"\n"
            chunk = chunk[: 64 * 1024]
            sent = 0
            while sent < 64 * 1_048_576:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
                self.bytes_sent += len(chunk)
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()
            with suppress(ConnectionError):
                await writer.wait_closed()


@asynccontextmanager
async def hostile_endpoint(mode: Mode, interval: float = 0.2) -> AsyncIterator[Endpoint]:
    """Serve one misbehaving endpoint on 127.0.0.1 for the duration of the block."""
    endpoint = Endpoint(mode, interval=interval)
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await endpoint.handle(reader, writer)
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    endpoint.port = server.sockets[0].getsockname()[1]
    try:
        yield endpoint
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await server.wait_closed()
