"""read_bounded: one HTTP exchange whose body is capped in size and whose whole duration is capped in time.

httpx's timeouts bound each network operation, not the exchange: an endpoint that sends one byte every half
second never trips them, and an endpoint that sends 300 MB is read whole into memory. Every ComfyUI answer we
read goes through here instead: the body is streamed, counted (after decompression, which is what takes the
memory) and dropped the moment it passes ``limit``; the request, headers and body together must finish within
``deadline`` seconds. Redirects are never followed (ComfyUI's API does not redirect; a redirect means the URL
points somewhere else, and following it could carry our request to another host).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

__all__ = ["Answer", "AnswerTooLarge", "ReadLimits", "read_bounded"]

# A body this small is parsed in the event loop; a larger one (a big node catalogue) in a worker thread.
_PARSE_IN_THREAD = 1_000_000


@dataclass(frozen=True)
class ReadLimits:
    """Byte caps per kind of answer. Defaults: a stock /object_info is about 0.5 MB (496 nodes); installs with
    thousands of custom nodes and model files reach some 15 MB, so its cap leaves a wide margin. Other JSON
    answers (queue, history, model lists) stay far below 1 MB in practice. Files are pictures and short videos."""

    answer_bytes: int = 16_000_000
    object_info_bytes: int = 64_000_000
    download_bytes: int = 256_000_000


class AnswerTooLarge(Exception):
    """The body (or its announced Content-Length) passed the cap; nothing more was read."""

    def __init__(self, limit: int, announced: int | None = None) -> None:
        super().__init__(f"answer larger than {limit} bytes")
        self.limit = limit
        self.announced = announced


@dataclass(frozen=True)
class Answer:
    """A finished HTTP answer, its body read whole (within the cap)."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str = ""  # the request's URL, for resolving a relative redirect

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    async def json(self) -> Any:
        """The body as JSON. Raises ValueError (not JSON) or RecursionError (nested past Python's limit)."""
        if len(self.content) > _PARSE_IN_THREAD:
            return await anyio.to_thread.run_sync(json.loads, self.content)
        return json.loads(self.content)


async def read_bounded(
    http: httpx.AsyncClient, method: str, url: str, *, limit: int, deadline: float, **kwargs: Any
) -> Answer:
    """Send the request and read the whole answer within ``deadline`` seconds and ``limit`` bytes.

    Raises:
        TimeoutError: the exchange took longer than ``deadline``.
        AnswerTooLarge: the body is (or says it is) larger than ``limit``.
        httpx.HTTPError: the connection failed or the answer is not HTTP.
    """
    with anyio.fail_after(deadline):
        async with http.stream(method, url, timeout=deadline, follow_redirects=False, **kwargs) as response:
            announced = response.headers.get("content-length", "")
            if announced.isdigit() and int(announced) > limit:
                raise AnswerTooLarge(limit, int(announced))
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise AnswerTooLarge(limit, int(announced) if announced.isdigit() else None)
                chunks.append(chunk)
            return Answer(response.status_code, response.headers, b"".join(chunks), str(response.request.url))
