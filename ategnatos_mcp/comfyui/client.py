"""ComfyUIClient: one ComfyUI server over HTTP (httpx) and its websocket (``websockets``, imported lazily).

Raw JSON never leaves this module: every answer is parsed into ``models``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

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

__all__ = ["ComfyUIClient", "PromptRejected", "start_hint"]

logger = logging.getLogger(__name__)


def start_hint(url: str) -> str:
    return (
        f"Start ComfyUI so it listens at {url} (for example `python main.py --listen 127.0.0.1 --port "
        f"{httpx.URL(url).port or 8188}` in the ComfyUI folder), or fix ATEGNATOS_COMFYUI_URL / [comfyui] urls "
        "in ategnatos.toml, then call comfyui_status."
    )


def _why(exc: BaseException) -> str:
    """Why a connection failed, in words an artist can act on (never the exception's class name)."""
    if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
        return "it did not answer in time"
    if isinstance(exc, (ConnectionRefusedError, httpx.ConnectError)):
        return "nothing answered at that address"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return "the connection was refused or broke off"


class PromptRejected(InvalidRequestError):
    """ComfyUI refused the workflow (POST /prompt 400); ``rejection`` holds its node errors."""

    def __init__(self, message: str, *, rejection: PromptRejection, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.rejection = rejection


class ComfyUIClient:
    """HTTP + websocket access to one ComfyUI. The ``http`` client is injected; this class never closes it."""

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        timeout: float = 30.0,
        upload_timeout: float = 120.0,
        ws_open_timeout: float = 5.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = http
        self._timeout = timeout
        self._upload_timeout = upload_timeout
        # Own, short bound on the websocket handshake: a socket that is accepted and never answered (some
        # proxies) must not delay the first job by a whole request timeout before it is followed by polling.
        self._ws_open_timeout = ws_open_timeout

    @property
    def timeout(self) -> float:
        """Seconds allowed for one ordinary request (not uploads or downloads)."""
        return self._timeout

    # --- plumbing -------------------------------------------------------------------------------
    async def _request(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, self.url + path, timeout=timeout or self._timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise UpstreamError(
                f"ComfyUI at {self.url} did not answer {method} {path} in time.",
                service="comfyui",
                hint="It may be busy loading a model; try again in a minute, or check the ComfyUI console.",
                retryable=True,
            ) from exc
        except httpx.TransportError as exc:
            raise UpstreamError(
                f"ComfyUI at {self.url} is not reachable ({_why(exc)}).",
                service="comfyui",
                hint=start_hint(self.url),
                retryable=True,
            ) from exc

    def _fail(self, response: httpx.Response, what: str) -> UpstreamError:
        return UpstreamError(
            f"ComfyUI at {self.url} failed to {what} (HTTP {response.status_code}).",
            service="comfyui",
            status=response.status_code,
            body=response.text,
            hint="Look at the ComfyUI console for the error; if it keeps happening, restart ComfyUI.",
        )

    async def _json(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        if response.status_code != 200:
            raise self._fail(response, what)
        return self._decode(response, what)

    def _decode(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamError(
                f"Something answers at {self.url}, but not like ComfyUI (asked to {what}, got no JSON).",
                service="comfyui",
                status=response.status_code,
                body=response.text,
                hint="Check the address and port in ATEGNATOS_COMFYUI_URL; ComfyUI's default is port 8188.",
            ) from exc

    # --- reading ---------------------------------------------------------------------------------
    async def system_stats(self) -> SystemStats:
        return SystemStats.from_wire(await self._json("GET", "/system_stats", "report its system"))

    async def queue(self) -> QueueState:
        return QueueState.from_wire(await self._json("GET", "/queue", "list its queue"))

    async def object_info(self) -> dict[str, dict[str, Any]]:
        """Every node class with its inputs and outputs (about 500 KB on a stock install)."""
        return await self._json("GET", "/object_info", "describe its nodes")

    async def model_folders(self) -> list[str]:
        """Model folder names; empty on ComfyUI versions older than the /models route."""
        response = await self._request("GET", "/models")
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise self._fail(response, "list model folders")
        return [str(name) for name in self._decode(response, "list model folders")]

    async def models(self, folder: str) -> list[str]:
        response = await self._request("GET", f"/models/{folder}")
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise self._fail(response, f"list {folder}")
        return [str(name) for name in self._decode(response, f"list {folder}")]

    async def model_metadata(self, folder: str, filename: str) -> dict[str, Any] | None:
        """A model file's safetensors ``__metadata__`` (GET /view_metadata); None when it has none.

        ComfyUI answers 404 for non-safetensors files, unknown files and files without metadata.
        """
        response = await self._request("GET", f"/view_metadata/{folder}", params={"filename": filename})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(response, f"read the metadata of {filename}")
        body = self._decode(response, f"read the metadata of {filename}")
        return {str(k): v for k, v in body.items()} if isinstance(body, dict) else None

    async def history(self, prompt_id: str) -> HistoryEntry | None:
        """The finished job, or None while it is queued, running, unknown or cleared."""
        body = await self._json("GET", f"/history/{prompt_id}", "report a job")
        entry = body.get(prompt_id)
        return HistoryEntry.from_wire(prompt_id, entry) if entry else None

    async def recent_history(self, max_items: int = 64) -> list[HistoryEntry]:
        body = await self._json("GET", "/history", "list finished jobs", params={"max_items": max_items})
        return [HistoryEntry.from_wire(pid, entry) for pid, entry in body.items()]

    async def view(self, file: OutputFile) -> tuple[bytes, str]:
        """The bytes of an output (or input/temp) file and its content type."""
        params = {"filename": file.filename, "subfolder": file.subfolder, "type": file.type}
        response = await self._request("GET", "/view", params=params, timeout=self._upload_timeout)
        if response.status_code == 404:
            raise NotFoundError(
                f"ComfyUI at {self.url} no longer has {file.subfolder + '/' if file.subfolder else ''}{file.filename}.",
                kind="output",
                name=file.filename,
                hint="It may have been deleted from ComfyUI's output folder; run the job again.",
            )
        if response.status_code != 200:
            raise self._fail(response, f"send {file.filename}")
        return response.content, response.headers.get("content-type", "application/octet-stream")

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
        response = await self._request("POST", "/prompt", json=body)
        if response.status_code == 400:
            rejection = PromptRejection.model_validate(self._decode(response, "accept the workflow"))
            raise PromptRejected(
                f"ComfyUI refused the workflow: {rejection.error.message}.",
                rejection=rejection,
                hint="Fix the problems listed and submit again.",
            )
        if response.status_code != 200:
            raise self._fail(response, "accept the workflow")
        return PromptAccepted.model_validate(self._decode(response, "accept the workflow"))

    async def upload_image(
        self, data: bytes, filename: str, *, subfolder: str = "", overwrite: bool = False, kind: str = "input"
    ) -> UploadedImage:
        """POST /upload/image. Same name + same bytes reuses the file; different bytes get ``name (1).png``."""
        fields = {"type": kind, "subfolder": subfolder, "overwrite": "true" if overwrite else "false"}
        response = await self._request(
            "POST",
            "/upload/image",
            data=fields,
            files={"image": (filename, data, "application/octet-stream")},
            timeout=self._upload_timeout,
        )
        if response.status_code == 400:
            raise InvalidRequestError(
                f"ComfyUI at {self.url} refused the upload of {filename}.",
                hint="Use a plain subfolder name (no '..' or leading '/') and a real image file.",
            )
        if response.status_code != 200:
            raise self._fail(response, f"store {filename}")
        return UploadedImage.model_validate(self._decode(response, f"store {filename}"))

    async def interrupt(self, prompt_id: str | None = None) -> None:
        """Stop the running job (only if it is ``prompt_id`` when given)."""
        body = {"prompt_id": prompt_id} if prompt_id else {}
        response = await self._request("POST", "/interrupt", json=body)
        if response.status_code != 200:
            raise self._fail(response, "interrupt")

    async def delete_from_queue(self, prompt_ids: list[str]) -> None:
        response = await self._request("POST", "/queue", json={"delete": prompt_ids})
        if response.status_code != 200:
            raise self._fail(response, "remove queued jobs")

    async def clear_queue(self) -> None:
        response = await self._request("POST", "/queue", json={"clear": True})
        if response.status_code != 200:
            raise self._fail(response, "clear its queue")

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
                max_size=None,
                ping_interval=20,
                ping_timeout=20,
                # Frames are small JSON; deflating each one cost more CPU than it saved on the wire.
                compression=None,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise UpstreamError(
                f"Could not open ComfyUI's live connection at {self.url} ({_why(exc)}).",
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
            except json.JSONDecodeError:
                logger.warning("ComfyUI sent a websocket frame that is not JSON; ignored")
                continue
            if isinstance(message, dict) and isinstance(message.get("type"), str):
                yield WsEvent(type=message["type"], data=message.get("data") or {})
    except ConnectionClosed:
        return
