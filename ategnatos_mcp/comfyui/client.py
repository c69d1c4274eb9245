"""ComfyUIClient: one ComfyUI server over HTTP (httpx) and its websocket (``websockets``, imported lazily).

Raw JSON never leaves this module: every answer is parsed into ``models``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from ategnatos_mcp.comfyui.bounded import Answer, AnswerTooLarge, ReadLimits, read_bounded
from ategnatos_mcp.comfyui.failures import (
    failed_status,
    not_http,
    not_json,
    start_hint,
    too_large,
    too_slow,
    unreachable,
    unusable,
    why,
    wrong_shape,
)
from ategnatos_mcp.comfyui.frames import FEATURE_FLAGS, decode_binary_frame
from ategnatos_mcp.comfyui.models import (
    HistoryEntry,
    OutputFile,
    PromptAccepted,
    PromptRejection,
    QueueState,
    SystemStats,
    UploadedImage,
    WsEvent,
)
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError, UpstreamError

__all__ = ["ComfyUIClient", "PromptRejected"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PromptRejected(InvalidRequestError):
    """ComfyUI refused the workflow (POST /prompt 400); ``rejection`` holds its node errors."""

    def __init__(self, message: str, *, rejection: PromptRejection, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.rejection = rejection


class ComfyUIClient:
    """HTTP + websocket access to one ComfyUI. The ``http`` client is injected; this class never closes it.

    Every answer is read through ``read_bounded``: ``timeout`` is the whole exchange's deadline (uploads and
    downloads get ``upload_timeout``), and ``limits`` caps the bytes read per kind of answer.
    """

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        timeout: float = 30.0,
        upload_timeout: float = 120.0,
        ws_open_timeout: float = 5.0,
        limits: ReadLimits | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = http
        self._timeout = timeout
        self._upload_timeout = upload_timeout
        # Own, short bound on the websocket handshake: a socket that is accepted and never answered (some
        # proxies) must not delay the first job by a whole request timeout before it is followed by polling.
        self._ws_open_timeout = ws_open_timeout
        self._limits = limits or ReadLimits()

    @property
    def timeout(self) -> float:
        """Seconds allowed for one ordinary request (not uploads or downloads)."""
        return self._timeout

    # --- plumbing -------------------------------------------------------------------------------
    async def _request(
        self, method: str, path: str, *, timeout: float | None = None, limit: int | None = None, **kwargs: Any
    ) -> Answer:
        deadline = timeout or self._timeout
        limit = limit or self._limits.answer_bytes
        request = f"{method} {path}"
        try:
            return await read_bounded(self._http, method, self.url + path, limit=limit, deadline=deadline, **kwargs)
        except AnswerTooLarge as exc:
            raise too_large(self.url, request, exc.limit) from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise too_slow(self.url, request, deadline) from exc
        except httpx.RemoteProtocolError as exc:
            if "disconnected" in str(exc).lower():  # ComfyUI stopped mid-answer; the other kind is not HTTP at all
                raise unreachable(self.url, exc) from exc
            raise not_http(self.url, request) from exc
        except httpx.TransportError as exc:
            raise unreachable(self.url, exc) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise unusable(self.url, request) from exc

    async def _json(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        answer = await self._request(method, path, **kwargs)
        if answer.status_code != 200:
            raise failed_status(self.url, answer, what)
        return await self._decode(answer, what)

    async def _decode(self, answer: Answer, what: str) -> Any:
        try:
            return await answer.json()
        except (ValueError, RecursionError) as exc:
            raise not_json(self.url, answer, what) from exc

    def _shaped(self, what: str, build: Callable[[Any], T], body: Any) -> T:
        """``build(body)``; a body of another shape means another program answers (or a broken proxy)."""
        try:
            return build(body)
        except (ValidationError, TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
            raise wrong_shape(self.url, what) from exc

    # --- reading ---------------------------------------------------------------------------------
    async def system_stats(self) -> SystemStats:
        """Version and devices; the answer that tells ComfyUI from anything else at the address."""
        body = await self._json("GET", "/system_stats", "report its system")
        return self._shaped("report its system", SystemStats.from_wire, body)

    async def queue(self) -> QueueState:
        return self._shaped("list its queue", QueueState.from_wire, await self._json("GET", "/queue", "list its queue"))

    async def object_info(self) -> dict[str, dict[str, Any]]:
        """Every node class with its inputs and outputs (about 500 KB on a stock install)."""
        body = await self._json(
            "GET",
            "/object_info",
            "describe its nodes",
            limit=self._limits.object_info_bytes,
            timeout=max(self._timeout, self._upload_timeout),
        )
        return self._shaped("describe its nodes", _node_catalogue, body)

    async def model_folders(self) -> list[str]:
        """Model folder names; empty on ComfyUI versions older than the /models route."""
        return await self._names("/models", "list model folders")

    async def models(self, folder: str) -> list[str]:
        return await self._names(f"/models/{folder}", f"list {folder}")

    async def _names(self, path: str, what: str) -> list[str]:
        answer = await self._request("GET", path)
        if answer.status_code == 404:
            return []
        if answer.status_code != 200:
            raise failed_status(self.url, answer, what)
        return self._shaped(what, _strings, await self._decode(answer, what))

    async def model_metadata(self, folder: str, filename: str) -> dict[str, Any] | None:
        """A model file's safetensors ``__metadata__`` (GET /view_metadata); None when it has none.

        ComfyUI answers 404 for non-safetensors files, unknown files and files without metadata.
        """
        response = await self._request("GET", f"/view_metadata/{folder}", params={"filename": filename})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise failed_status(self.url, response, f"read the metadata of {filename}")
        body = await self._decode(response, f"read the metadata of {filename}")
        return {str(k): v for k, v in body.items()} if isinstance(body, dict) else None

    async def history(self, prompt_id: str) -> HistoryEntry | None:
        """The finished job, or None while it is queued, running, unknown or cleared."""
        body = await self._json("GET", f"/history/{prompt_id}", "report a job")

        def entry_of(body: dict[str, Any]) -> HistoryEntry | None:
            entry = body.get(prompt_id)
            return HistoryEntry.from_wire(prompt_id, entry) if entry else None

        return self._shaped("report a job", entry_of, body)

    async def recent_history(self, max_items: int = 64) -> list[HistoryEntry]:
        body = await self._json("GET", "/history", "list finished jobs", params={"max_items": max_items})

        def entries(body: dict[str, Any]) -> list[HistoryEntry]:
            return [HistoryEntry.from_wire(str(pid), entry) for pid, entry in body.items()]

        return self._shaped("list finished jobs", entries, body)

    async def view(self, file: OutputFile) -> tuple[bytes, str]:
        """The bytes of an output (or input/temp) file and its content type."""
        params = {"filename": file.filename, "subfolder": file.subfolder, "type": file.type}
        answer = await self._request(
            "GET", "/view", params=params, timeout=self._upload_timeout, limit=self._limits.download_bytes
        )
        if answer.status_code == 404:
            raise NotFoundError(
                f"ComfyUI at {self.url} no longer has {file.subfolder + '/' if file.subfolder else ''}{file.filename}.",
                kind="output",
                name=file.filename,
                hint="It may have been deleted from ComfyUI's output folder; run the job again.",
            )
        if answer.status_code != 200:
            raise failed_status(self.url, answer, f"send {file.filename}")
        return answer.content, answer.headers.get("content-type", "application/octet-stream")

    # --- changing --------------------------------------------------------------------------------
    async def submit(
        self,
        workflow: dict[str, Any],
        *,
        client_id: str,
        prompt_id: str | None = None,
        extra_pnginfo: dict[str, Any] | None = None,
    ) -> PromptAccepted:
        """POST /prompt. Raises ``PromptRejected`` on a 400 with ComfyUI's own node errors."""
        body: dict[str, Any] = {"prompt": workflow, "client_id": client_id}
        if prompt_id:
            body["prompt_id"] = prompt_id
        if extra_pnginfo:
            body["extra_data"] = {"extra_pnginfo": extra_pnginfo}
        what = "accept the workflow"
        answer = await self._request("POST", "/prompt", json=body)
        if answer.status_code == 400:
            rejection = self._shaped(what, PromptRejection.model_validate, await self._decode(answer, what))
            raise PromptRejected(
                f"ComfyUI refused the workflow: {rejection.error.message}.",
                rejection=rejection,
                hint="Fix the problems listed and submit again.",
            )
        if answer.status_code != 200:
            raise failed_status(self.url, answer, what)
        return self._shaped(what, PromptAccepted.model_validate, await self._decode(answer, what))

    async def upload_image(
        self, data: bytes, filename: str, *, subfolder: str = "", overwrite: bool = False, kind: str = "input"
    ) -> UploadedImage:
        """POST /upload/image. Same name + same bytes reuses the file; different bytes get ``name (1).png``."""
        fields = {"type": kind, "subfolder": subfolder, "overwrite": "true" if overwrite else "false"}
        answer = await self._request(
            "POST",
            "/upload/image",
            data=fields,
            files={"image": (filename, data, "application/octet-stream")},
            timeout=self._upload_timeout,
        )
        if answer.status_code == 400:
            raise InvalidRequestError(
                f"ComfyUI at {self.url} refused the upload of {filename}.",
                hint="Use a plain subfolder name (no '..' or leading '/') and a real image file.",
            )
        what = f"store {filename}"
        if answer.status_code != 200:
            raise failed_status(self.url, answer, what)
        return self._shaped(what, UploadedImage.model_validate, await self._decode(answer, what))

    async def interrupt(self, prompt_id: str | None = None) -> None:
        """Stop the running job (only if it is ``prompt_id`` when given)."""
        body = {"prompt_id": prompt_id} if prompt_id else {}
        answer = await self._request("POST", "/interrupt", json=body)
        if answer.status_code != 200:
            raise failed_status(self.url, answer, "interrupt")

    async def delete_from_queue(self, prompt_ids: list[str]) -> None:
        answer = await self._request("POST", "/queue", json={"delete": prompt_ids})
        if answer.status_code != 200:
            raise failed_status(self.url, answer, "remove queued jobs")

    async def clear_queue(self) -> None:
        answer = await self._request("POST", "/queue", json={"clear": True})
        if answer.status_code != 200:
            raise failed_status(self.url, answer, "clear its queue")

    # --- websocket -------------------------------------------------------------------------------
    @asynccontextmanager
    async def events(
        self, client_id: str, *, open_timeout: float | None = None
    ) -> AsyncIterator[AsyncIterator[WsEvent]]:
        """Open ``/ws?clientId=...`` and yield an iterator of its events: JSON messages, and ``type="image"``
        events for binary picture frames (previews and ``SaveImageWebsocket`` results; telling them apart is
        the job watch's business, it knows which node is which).

        The iterator ends when the socket closes; callers fall back to ``/history`` then.
        """
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

        ws_url = httpx.URL(self.url).copy_with(scheme="wss" if self.url.startswith("https") else "ws")
        target = f"{str(ws_url).rstrip('/')}/ws?clientId={client_id}"
        try:
            socket = await connect(
                target,
                open_timeout=open_timeout or self._ws_open_timeout,
                max_size=self._limits.download_bytes,  # a picture frame is at most a whole output file
                ping_interval=20,
                ping_timeout=20,
                # Frames are small JSON; deflating each one cost more CPU than it saved on the wire.
                compression=None,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise UpstreamError(
                f"Could not open ComfyUI's live connection at {self.url} ({why(exc)}).",
                service="comfyui",
                hint=start_hint(self.url),
                retryable=True,
            ) from exc
        try:
            try:
                # First message: ask for picture frames that name their node and prompt (type 4). Servers
                # older than feature flags ignore it and keep sending type 1 frames, which we also read.
                await socket.send(FEATURE_FLAGS)
            except ConnectionClosed:
                pass  # the iterator ends at once and the caller falls back to /history
            yield _iterate(socket)
        finally:
            await socket.close()


# Broadcast to every socket on each queue change, and very chatty: a job's own events carry what we need.
# (feature_flags is the server's one-off answer to ours.)
_SKIPPED = (
    '{"type": "status"',
    '{"type": "progress_state"',
    '{"type": "crystools.monitor"',
    '{"type": "feature_flags"',
)


async def _iterate(socket: Any) -> AsyncIterator[WsEvent]:
    from websockets.exceptions import ConnectionClosed

    try:
        async for frame in socket:
            if isinstance(frame, bytes):
                image = decode_binary_frame(frame)
                if image is not None:
                    yield WsEvent(type="image", image=image)
                continue
            if frame.startswith(_SKIPPED):
                continue
            try:
                message = json.loads(frame)
            except (ValueError, RecursionError):
                logger.warning("ComfyUI sent a websocket frame that is not JSON; ignored")
                continue
            if isinstance(message, dict) and isinstance(message.get("type"), str):
                data = message.get("data")
                yield WsEvent(type=message["type"], data=data if isinstance(data, dict) else {})
    except ConnectionClosed:
        return


def _strings(body: Any) -> list[str]:
    if not isinstance(body, list) or not all(isinstance(name, str) for name in body):
        raise TypeError("not a list of names")
    return list(body)


def _node_catalogue(body: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(body, dict) or not all(isinstance(node, dict) for node in body.values()):
        raise TypeError("not a node catalogue")
    return body
