"""The fake ComfyUI's network side: HTTP + websocket routes (shapes and status codes as in the recordings), its
binary frames, and the uvicorn server on a loopback port (``serve_fake``)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from tests.support.fake_comfyui import FakeComfyUI

ERROR_500 = "500 Internal Server Error\n\nServer got itself in trouble"
FEATURE_FLAGS_REPLY = {"supports_preview_metadata": True, "max_upload_size": 104857600}
_FORMAT_CODES = {"image/jpeg": 1, "image/png": 2}


def picture_frames(
    with_metadata: bool, node_id: str, prompt_id: str, image: bytes, mime: str, progress: tuple[int, int]
) -> list[str | bytes]:
    """A picture and its ``progress`` message as ComfyUI 0.3.64 sends them (numbers 4-byte big-endian).

    Type 4 (the socket sent feature_flags): ``[4][N][N bytes JSON metadata][image]``, before its progress.
    Type 1: ``[1][format 1=JPEG, 2=PNG][image]``, after its progress (ws_binary_frames_*.json).
    """
    value, maximum = progress
    text = json.dumps(
        {"type": "progress", "data": {"value": value, "max": maximum, "prompt_id": prompt_id, "node": node_id}}
    )
    if with_metadata:
        meta = {"node_id": node_id, "prompt_id": prompt_id, "display_node_id": node_id, "parent_node_id": None}
        encoded = json.dumps({**meta, "real_node_id": node_id, "image_type": mime}).encode()
        return [_word(4) + _word(len(encoded)) + encoded + image, text]
    return [text, _word(1) + _word(_FORMAT_CODES[mime]) + image]


def text_frame(node_id: str, text: str) -> bytes:
    """Type 3 TEXT: ``[3][L][L bytes node id][utf-8 text]`` (GetImageSize)."""
    return _word(3) + _word(len(node_id)) + node_id.encode() + text.encode()


def _word(value: int) -> bytes:
    return value.to_bytes(4, "big")


def build_routes(fake: FakeComfyUI) -> list[Any]:  # noqa: C901 - one closure per route
    async def slow(request: Request) -> None:
        fake.requests.append((request.method, request.url.path))
        if fake.response_delay:
            await fake.pause(fake.response_delay)

    async def system_stats(request: Request) -> Response:
        await slow(request)
        system = {"os": "posix", "comfyui_version": "0.3.64", "python_version": "3.11.7", "argv": ["main.py"]}
        return JSONResponse({"system": system, "devices": [{"name": "cpu", "type": "cpu", "index": None}]})

    def queue_items(items: list[Any]) -> list[list[Any]]:
        return [[n, pid, p, extra, outs] for n, pid, p, extra, outs in items]

    async def queue_get(request: Request) -> Response:
        await slow(request)
        running = queue_items([fake.running]) if fake.running else []
        return JSONResponse({"queue_running": running, "queue_pending": queue_items(fake.queue)})

    async def queue_post(request: Request) -> Response:
        await slow(request)
        body = await request.json()
        if body.get("clear"):
            fake.queue.clear()
        for pid in body.get("delete", []):
            fake.queue[:] = [item for item in fake.queue if item[1] != pid]
        await fake.status()
        return Response(status_code=200)

    async def prompt_get(request: Request) -> Response:
        await slow(request)
        remaining = len(fake.queue) + (1 if fake.running else 0)
        return JSONResponse({"exec_info": {"queue_remaining": remaining}})

    async def prompt_post(request: Request) -> Response:
        await slow(request)
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError:
            return PlainTextResponse(ERROR_500, status_code=500)
        return await fake.submit(body)

    async def object_info(request: Request) -> Response:
        await slow(request)
        info = fake.object_info()
        node = request.path_params.get("node")
        if node is not None:
            return JSONResponse({node: info[node]} if node in info else {})
        return JSONResponse(info)

    async def models(request: Request) -> Response:
        await slow(request)
        folder = request.path_params.get("folder")
        if folder is None:
            return JSONResponse([f for f in fake.models if f != "input"] + ["configs", "vae_approx"])
        if folder not in fake.models or folder == "input":
            return Response(status_code=404)
        return JSONResponse(fake.listing(folder))

    async def view_metadata(request: Request) -> Response:
        # As server.py's view_metadata: 404 for a missing filename, a non-.safetensors name, an unknown file or a
        # file whose header has no __metadata__; otherwise the __metadata__ object itself.
        await slow(request)
        folder, name = request.path_params["folder"], request.query_params.get("filename")
        if not name or not name.endswith(".safetensors") or name not in fake.models.get(folder, []):
            return Response(status_code=404)
        meta = fake.model_metadata.get((folder, name))
        return JSONResponse(meta) if meta is not None else Response(status_code=404)

    async def history_get(request: Request) -> Response:
        await slow(request)
        pid = request.path_params.get("prompt_id")
        if pid is not None:
            return JSONResponse({pid: fake.history[pid]} if pid in fake.history else {})
        items = list(fake.history.items())
        if "max_items" in request.query_params:
            items = items[-int(request.query_params["max_items"]) :]
        return JSONResponse(dict(items))

    async def history_post(request: Request) -> Response:
        await slow(request)
        body = await request.json()
        if body.get("clear"):
            fake.history.clear()
        for pid in body.get("delete", []):
            fake.history.pop(pid, None)
        return Response(status_code=200)

    async def interrupt(request: Request) -> Response:
        await slow(request)
        raw = await request.body()
        body = json.loads(raw) if raw else {}
        target = body.get("prompt_id")
        if fake.running and (target is None or target == fake.running[1]):
            fake.interrupted = True
            fake.hold_release.set()
        return Response(status_code=200)

    async def free(request: Request) -> Response:
        await slow(request)
        body = await request.json()
        if body.get("free_memory"):
            fake.cache.clear()
        return Response(status_code=200)

    async def view(request: Request) -> Response:
        await slow(request)
        q = request.query_params
        name, sub, kind = q.get("filename", ""), q.get("subfolder", ""), q.get("type", "output")
        if not name:
            return Response(status_code=404)
        if kind not in ("output", "input", "temp") or ".." in name or ".." in sub or name.startswith("/"):
            return Response(status_code=400)
        data = fake.files.get((kind, sub, name))
        if data is None:
            return Response(status_code=404)
        headers = {"Content-Disposition": f'filename="{name}"'}
        return Response(data, media_type="image/png", headers=headers)

    async def upload(request: Request) -> Response:
        await slow(request)
        form = await request.form()
        image = form.get("image")
        sub = str(form.get("subfolder") or "")
        if image is None or isinstance(image, str) or ".." in sub or sub.startswith("/"):
            return Response(status_code=400)
        kind = str(form.get("type") or "input")
        overwrite = str(form.get("overwrite") or "").lower() in ("true", "1")
        data = await image.read()
        name = image.filename or "upload.png"
        stem, dot, ext = name.rpartition(".")
        counter = 1
        while not overwrite and (kind, sub, name) in fake.files and fake.files[(kind, sub, name)] != data:
            name = f"{stem} ({counter}){dot}{ext}"
            counter += 1
        fake.files[(kind, sub, name)] = data
        if kind == "input" and not sub and name not in fake.models["input"]:
            fake.models["input"].append(name)
        elif kind == "input" and sub:
            fake.models.setdefault("input_sub", []).append(f"{sub}/{name}")
        return JSONResponse({"name": name, "subfolder": sub, "type": kind})

    async def websocket(ws: WebSocket) -> None:
        if fake.hang_ws:  # TCP accepted, upgrade request read, never an answer (a stuck proxy)
            fake.ws_hung += 1
            await fake.ws_hang_release.wait()
            return
        if fake.refuse_ws:  # like a proxy that does not pass websocket upgrades: the handshake gets HTTP 403
            fake.ws_refused += 1
            await ws.close(code=1008)
            return
        await ws.accept()
        cid = ws.query_params.get("clientId") or "generated-sid"
        fake.sockets.setdefault(cid, []).append(ws)
        remaining = len(fake.queue) + (1 if fake.running else 0)
        await ws.send_text(
            json.dumps(
                {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": remaining}}, "sid": cid}}
            )
        )
        if fake.running and fake.running[3].get("client_id") == cid:
            await ws.send_text(json.dumps({"type": "executing", "data": {"node": "2"}}))
        try:
            first = True
            while True:
                message = await ws.receive_text()
                if first and fake.feature_flags_supported and _is_feature_flags(message):
                    fake.metadata_sockets.add(ws)  # only as the first message, as in ComfyUI
                    await ws.send_text(json.dumps({"type": "feature_flags", "data": FEATURE_FLAGS_REPLY}))
                first = False
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            fake.metadata_sockets.discard(ws)
            if ws in fake.sockets.get(cid, []):
                fake.sockets[cid].remove(ws)

    plain = [
        Route("/system_stats", system_stats),
        Route("/queue", queue_get, methods=["GET"]),
        Route("/queue", queue_post, methods=["POST"]),
        Route("/prompt", prompt_get, methods=["GET"]),
        Route("/prompt", prompt_post, methods=["POST"]),
        Route("/object_info", object_info),
        Route("/object_info/{node}", object_info),
        Route("/models", models),
        Route("/models/{folder}", models),
        Route("/view_metadata/{folder}", view_metadata),
        Route("/history", history_get, methods=["GET"]),
        Route("/history", history_post, methods=["POST"]),
        Route("/history/{prompt_id}", history_get),
        Route("/interrupt", interrupt, methods=["POST"]),
        Route("/free", free, methods=["POST"]),
        Route("/view", view),
        Route("/upload/image", upload, methods=["POST"]),
    ]
    prefixed = [Route("/api" + r.path, r.endpoint, methods=list(r.methods or [])) for r in plain]
    return [*plain, *prefixed, WebSocketRoute("/ws", websocket), WebSocketRoute("/api/ws", websocket)]


def _is_feature_flags(message: str) -> bool:
    try:
        body = json.loads(message)
    except json.JSONDecodeError:
        return False
    return isinstance(body, dict) and body.get("type") == "feature_flags"


# --- the server ----------------------------------------------------------------------------------------
def _bind(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it small JSON answers wait ~40 ms for a delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class _QuickServer(uvicorn.Server):
    """uvicorn's server, stopping as soon as it is asked to. uvicorn looks at its exit flag every 0.1 s and pauses
    0.1 s more while shutting down, which cost ~0.2 s for each of the hundred fakes a test run starts and stops;
    this one is woken by ``exit()`` and sees its connections close within milliseconds (the same steps, in order)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    def exit(self) -> None:
        self.should_exit = True
        self._exit.set()

    async def main_loop(self) -> None:
        await self.on_tick(0)  # sets the default headers (date, server) as uvicorn's first tick does
        await self._exit.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        state = self.server_state
        with anyio.move_on_after(self.config.timeout_graceful_shutdown or 0) as waited:
            while state.connections or state.tasks:
                await anyio.sleep(0.005)
        if waited.cancelled_caught:
            for task in state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        else:
            for server in self.servers:
                await server.wait_closed()
        await self.lifespan.shutdown()


class _Running:
    """The uvicorn server of one fake; ``restart`` stops it, forgets queue and history, starts again."""

    def __init__(self, fake: FakeComfyUI, tg: anyio.abc.TaskGroup) -> None:
        self.fake = fake
        self.tg = tg
        self.server: _QuickServer | None = None
        self.stopped = anyio.Event()

    async def start(self) -> None:
        sock = _bind(self.fake.port)
        self.fake.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.fake.app(), log_level="error", ws="websockets-sansio", lifespan="off", timeout_graceful_shutdown=1
        )
        self.server = _QuickServer(config)
        self.stopped = anyio.Event()
        self.fake.stopping = anyio.Event()
        server, stopped = self.server, self.stopped

        async def run() -> None:
            try:
                await server.serve(sockets=[sock])
            finally:
                stopped.set()

        self.tg.start_soon(run)
        with anyio.fail_after(5):
            while not server.started:
                await anyio.sleep(0.005)

    async def stop(self) -> None:
        self.fake.ws_hang_release.set()
        self.fake.stopping.set()
        if self.server is not None:
            for socks in list(self.fake.sockets.values()):
                for ws in socks:
                    await ws.close(code=1012)
            self.fake.sockets.clear()
            self.server.exit()
            with anyio.fail_after(5):
                await self.stopped.wait()


@asynccontextmanager
async def serve_fake(**kwargs: Any) -> AsyncIterator[FakeComfyUI]:
    """Run a fake ComfyUI on a free loopback port for the duration of the block."""
    from tests.support.fake_comfyui import FakeComfyUI

    fake = FakeComfyUI(**kwargs)
    async with anyio.create_task_group() as tg:
        running = _Running(fake, tg)
        await running.start()
        worker_scope = anyio.CancelScope()

        async def work() -> None:
            with worker_scope:
                await fake.worker()

        tg.start_soon(work)

        async def restart() -> None:
            worker_scope.cancel()
            await running.stop()
            fake._reset()
            tg.start_soon(fake.worker)
            await running.start()

        fake.restart = restart  # type: ignore[attr-defined]
        try:
            yield fake
        finally:
            await running.stop()
            tg.cancel_scope.cancel()
