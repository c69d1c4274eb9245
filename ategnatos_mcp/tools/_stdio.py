"""Lines on stdin that are not JSON-RPC messages get the protocol's error instead of silence.

The SDK's stdio transport turns such a line into an exception on its read stream, and its dispatcher drops
it without a word: a client that sent garbage, a JSON array, ``"jsonrpc": "1.0"`` or JSON nested too deep to
parse waits for an answer that never comes. ``sift_malformed`` sits between the transport and the server:
valid messages pass through untouched; every malformed line is answered with JSON-RPC's own error, id null
(-32700 when the line is not JSON, -32600 when it is JSON but not a JSON-RPC 2.0 message), and serving goes
on with the next line. Blank lines are not messages and are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp.shared.message import SessionMessage
from mcp.types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ValidationError

__all__ = ["protocol_error", "sift_malformed"]

logger = logging.getLogger("ategnatos_mcp.tools.stdio")

_NOT_JSON = ErrorData(
    code=PARSE_ERROR,
    message="Parse error: that line is not JSON the server can read (not JSON at all, or nested too deeply). "
    "Send one JSON-RPC 2.0 message per line.",
)
_NOT_JSON_RPC = ErrorData(
    code=INVALID_REQUEST,
    message='Invalid request: that line is JSON, but not a JSON-RPC 2.0 message (an object with "jsonrpc": "2.0", '
    'a "method" and, for a request, an "id"; batches are not accepted).',
)


class _Writer(Protocol):
    async def send(self, item: SessionMessage, /) -> None: ...


def protocol_error(exc: Exception) -> ErrorData | None:
    """The JSON-RPC error for a line the transport could not read, or None for a blank line (no answer due)."""
    if isinstance(exc, ValidationError):
        problems = exc.errors(include_url=False)
        if problems and problems[0]["type"] == "json_invalid":
            line: Any = problems[0].get("input")
            if isinstance(line, str | bytes) and not line.strip():
                return None
            return _NOT_JSON
        return _NOT_JSON_RPC
    return _NOT_JSON


@asynccontextmanager
async def sift_malformed(
    read_stream: AsyncIterable[SessionMessage | Exception], write_stream: _Writer
) -> AsyncGenerator[MemoryObjectReceiveStream[SessionMessage | Exception]]:
    """A read stream carrying only the valid messages of ``read_stream``; the rest are answered on ``write_stream``."""
    send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)

    async def sift() -> None:
        async with send:
            async for item in read_stream:
                if not isinstance(item, Exception):
                    await send.send(item)
                    continue
                error = protocol_error(item)
                if error is None:
                    continue
                logger.warning("answered a line on stdin that is not a JSON-RPC message (%s)", error.code)
                try:
                    await write_stream.send(SessionMessage(JSONRPCError(jsonrpc="2.0", id=None, error=error)))
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return  # the server is shutting down

    async with anyio.create_task_group() as tg:
        tg.start_soon(sift)
        try:
            yield receive
        finally:
            tg.cancel_scope.cancel()
