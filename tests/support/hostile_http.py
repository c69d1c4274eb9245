"""A real HTTP/1.1 server on 127.0.0.1 that misbehaves: it answers like anything but ComfyUI (other JSON, HTML,
garbage bytes, a redirect to itself), or like a GPU cloud gone wrong (a body far too large or that never ends, one
byte at a time, or no answer at all).

It speaks just enough HTTP by hand (one request per connection, ``Connection: close``) so a test can send what
no well-behaved framework would: a body that never ends, bytes that are not HTTP, a trickle, silence. Use::

    async with serve_hostile(lambda path: Reply.json({"status": "ok"})) as server:
        server.url, server.requests  # the request lines received ("GET /system_stats HTTP/1.1"), in order

    async with hostile_endpoint("trickle", interval=0.1) as endpoint:  # one misbehaviour for every path
        ...

    async with tiny_http_server() as port:  # well behaved: ComfyUI's /system_stats, naming the path asked for
        ...
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from anyio.abc import SocketStream

__all__ = ["HostileServer", "Mode", "Reply", "hostile_endpoint", "serve_hostile", "tiny_http_server"]

Mode = Literal["trickle", "huge", "silent"]


@dataclass
class Reply:
    """What to send back. ``raw`` replaces the whole answer (not even a status line); ``repeat`` sends ``body``
    that many times (a big body without holding it in memory), between ``prefix`` and ``suffix``; ``trickle``
    sends the body one byte per that many seconds; ``length`` overrides Content-Length (None: the real length,
    -1: no Content-Length at all); ``silent`` sends nothing and holds the connection until the client closes it."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    repeat: int = 1
    prefix: bytes = b""
    suffix: bytes = b""
    trickle: float = 0.0
    length: int | None = None
    silent: bool = False

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Reply:
        return cls(status=status, body=json.dumps(value).encode())

    @classmethod
    def html(cls, text: str, status: int = 200) -> Reply:
        return cls(status=status, body=text.encode(), content_type="text/html; charset=utf-8")

    @classmethod
    def of(cls, mode: Mode, interval: float = 0.2) -> Reply:
        """A GPU cloud gone wrong. ``trickle``: a JSON 200 whose body comes one byte every ``interval`` seconds,
        forever; ``huge``: a 200 of 64 MiB without a length, in 64 KiB chunks, as fast as the client reads;
        ``silent``: no answer at all."""
        if mode == "trickle":
            return cls(prefix=b"{", body=b" ", repeat=sys.maxsize, trickle=interval, length=-1)
        if mode == "huge":
            chunk = (b'{"gpus": [' + b'{"id": "x"},' * 5_000 + b"\n")[: 64 * 1024]
            return cls(body=chunk, repeat=1024, length=-1)
        return cls(silent=True)


@dataclass
class HostileServer:
    url: str
    requests: list[str] = field(default_factory=list)  # the request lines, in order
    bytes_sent: int = 0


async def _read_head(stream: SocketStream) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        head += await stream.receive()
    return head


async def _answer(stream: SocketStream, reply: Reply, server: HostileServer) -> None:
    if reply.silent:
        while True:  # until the client gives up and closes (EndOfStream)
            await stream.receive()
    if reply.raw is not None:
        await stream.send(reply.raw)
        server.bytes_sent += len(reply.raw)
        return
    size = len(reply.prefix) + len(reply.body) * reply.repeat + len(reply.suffix)
    headers = {"Content-Type": reply.content_type, "Connection": "close", **reply.headers}
    if reply.length != -1:
        headers["Content-Length"] = str(size if reply.length is None else reply.length)
    head = f"HTTP/1.1 {reply.status} Whatever\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    await stream.send(head.encode("latin-1") + reply.prefix)
    for _ in range(reply.repeat):
        if reply.trickle:
            for index in range(len(reply.body)):
                await stream.send(reply.body[index : index + 1])
                server.bytes_sent += 1
                await anyio.sleep(reply.trickle)
        else:
            await stream.send(reply.body)
            server.bytes_sent += len(reply.body)
    await stream.send(reply.suffix)


@asynccontextmanager
async def serve_hostile(answer: Callable[[str], Reply]) -> AsyncIterator[HostileServer]:
    """Serve ``answer(path)`` (path with its query) on a free loopback port for the duration of the block."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    server = HostileServer(url=f"http://127.0.0.1:{port}")

    async def handle(stream: SocketStream) -> None:
        async with stream:
            try:
                head = await _read_head(stream)
                if not head:
                    return
                request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
                path = request_line.split(" ")[1] if " " in request_line else "/"
                server.requests.append(request_line)
                await _answer(stream, answer(path), server)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError):
                return  # the client gave up on us, which is the point of most of these answers

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def hostile_endpoint(mode: Mode, interval: float = 0.2) -> AsyncIterator[HostileServer]:
    """A GPU cloud (or a proxy before it) gone wrong the same way on every path: see ``Reply.of``."""
    reply = Reply.of(mode, interval)
    async with serve_hostile(lambda path: reply) as server:
        yield server


@asynccontextmanager
async def tiny_http_server() -> AsyncIterator[int]:
    """A one-route server standing in for ComfyUI's /system_stats on a free loopback port (yields the port); its
    answer names the path asked for, so a test sees which request went through a forward."""

    def answer(path: str) -> Reply:
        return Reply.json({"system": {"comfyui_version": "0.3.0"}, "path": path})

    async with serve_hostile(answer) as server:
        yield int(server.url.rsplit(":", 1)[1])
