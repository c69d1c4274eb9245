"""A protocol-faithful fake ComfyUI 0.3.64: real HTTP + websocket on 127.0.0.1 (starlette + uvicorn).

Built from the recordings in ``tests/fixtures/comfyui`` (copied from ``../shared/comfyui``): the same
routes (also under ``/api``), bodies, status codes, websocket message order and cache behaviour.
Knobs for tests: ``node_seconds`` (execution time per node), ``response_delay`` (answer slowly),
``fail_class`` (raise at execution), ``drop_ws_on`` (close sockets at an event), ``refuse_ws`` (turn every
websocket handshake away with HTTP 403, as a proxy without upgrade support does; counted in ``ws_refused``),
``hang_ws`` (accept the connection, never answer the handshake; counted in ``ws_hung``),
``hold`` (pause before a node class until released or interrupted), ``restart()``, ``add_model()``/``remove_model()``,
``model_metadata`` (what GET /view_metadata/{folder} returns per file, as ComfyUI's server.py does: 404 without it),
``custom_nodes`` (extra node classes in /object_info, as an installed custom node pack adds them; they run as no-ops),
``models_dir`` (a folder read like ComfyUI's ``models/``: files under ``<models_dir>/<folder>/`` are listed too,
subfolders included, as ``sub/name``, with ComfyUI's model file extensions),
``preview_frames`` (latent previews per sampler step, as with ``--preview-method latent2rgb``),
``feature_flags_supported`` (False: an older server that ignores the client's ``feature_flags`` and only ever
sends type 1 picture frames). Picture frames follow the recordings: type 1 right after its ``progress``, type 4
(to sockets that sent ``feature_flags`` first) right before it; ``SaveImageWebsocket`` streams one PNG per
image and is never cached; GetImageSize sends a type 3 TEXT frame; PreviewAny shows its value as text.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.support.fake_comfyui_routes import ERROR_500, build_routes, picture_frames, serve_fake, text_frame
from tests.support.fake_comfyui_validation import (
    batch_size,
    image_size,
    is_link,
    topological,
    validate_prompt,
    value_text,
)

__all__ = ["FIXTURES", "FakeComfyUI", "load_object_info", "serve_fake"]  # serve_fake lives with the routes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfyui"

MODEL_INPUTS: dict[tuple[str, str], str] = {
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("LoraLoader", "lora_name"): "loras",
    ("LoraLoaderModelOnly", "lora_name"): "loras",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
    ("ControlNetLoader", "control_net_name"): "controlnet",
    ("UNETLoader", "unet_name"): "diffusion_models",
    ("VAELoader", "vae_name"): "vae",
    ("DualCLIPLoader", "clip_name1"): "text_encoders",
    ("DualCLIPLoader", "clip_name2"): "text_encoders",
    ("TripleCLIPLoader", "clip_name1"): "text_encoders",
    ("TripleCLIPLoader", "clip_name2"): "text_encoders",
    ("TripleCLIPLoader", "clip_name3"): "text_encoders",
    ("CLIPLoader", "clip_name"): "text_encoders",
    ("LoadImage", "image"): "input",
}
MODEL_EXTENSIONS = (".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft")  # folder_paths.py
PREVIEW_JPEG = bytes.fromhex("ffd8ffe000104a464946000101") + b"\x00" * 32 + bytes.fromhex("ffd9")


def load_object_info() -> dict[str, Any]:
    with gzip.open(FIXTURES / "get_object_info_full.json.gz", "rt", encoding="utf-8") as fh:
        return json.load(fh)["response"]["body"]


_OBJECT_INFO: dict[str, Any] | None = None


def _base_object_info() -> dict[str, Any]:
    global _OBJECT_INFO
    if _OBJECT_INFO is None:
        _OBJECT_INFO = load_object_info()
    return _OBJECT_INFO


class FakeComfyUI:
    """State + behaviour of one fake server. Use ``async with serve_fake() as fake``."""

    def __init__(self, *, node_seconds: float = 0.0, image_bytes: bytes | None = None) -> None:
        self.node_seconds = node_seconds
        self.response_delay = 0.0
        self.reply_delay = 0.0  # after queueing a prompt, before answering: a reply that gets lost
        self.fail_class: str | None = None
        self.drop_ws_on: str | None = None
        self.refuse_ws = False
        self.ws_refused = 0
        self.hang_ws = False
        self.ws_hung = 0
        self.ws_hang_release = anyio.Event()  # set when the server stops, so no handler outlives it
        self.stopping = anyio.Event()  # set when the server stops: slow answers (``pause``) go out at once
        self.hold_class: str | None = None
        self.preview_frames = False  # like --preview-method latent2rgb: a binary JPEG frame per sampler step
        self.feature_flags_supported = True
        self.binary_sent = 0
        self.hold_reached = anyio.Event()
        self.hold_release = anyio.Event()
        self.image_bytes = image_bytes or (FIXTURES / "view_txt2img.png").read_bytes()
        self.models: dict[str, list[str]] = {
            "checkpoints": ["mcp_random_sd15_layout.safetensors"],
            "loras": [],
            "upscale_models": ["mcp_tiny_compact_x2.safetensors"],
            "controlnet": [],
            "diffusion_models": [],
            "vae": ["pixel_space"],
            "text_encoders": [],
            "input": ["example.png"],
        }
        # Installed custom node classes: name -> their /object_info entry (python_module "custom_nodes.<pack>").
        self.custom_nodes: dict[str, dict[str, Any]] = {}
        # (folder, file) -> the safetensors __metadata__ GET /view_metadata/{folder} answers with (none: 404).
        self.model_metadata: dict[tuple[str, str], dict[str, Any]] = {}
        self.models_dir: Path | None = None
        self.port = 0
        self.requests: list[tuple[str, str]] = []
        self.prompts: list[dict[str, Any]] = []
        self._reset()

    def _reset(self) -> None:
        self.number = 0
        self.queue: list[tuple[float, str, dict[str, Any], dict[str, Any], list[str]]] = []
        self.running: tuple[float, str, dict[str, Any], dict[str, Any], list[str]] | None = None
        self.history: dict[str, Any] = {}
        self.sockets: dict[str, list[WebSocket]] = {}
        self.metadata_sockets: set[WebSocket] = set()  # sent feature_flags first: picture frames of type 4
        self.cache: dict[str, dict[str, Any] | None] = {}
        self.interrupted = False
        self.wake = anyio.Event()
        self.files: dict[tuple[str, str, str], bytes] = {("input", "", "example.png"): self.image_bytes}
        self.counters: dict[str, int] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- models ------------------------------------------------------------------------------------
    def add_model(self, folder: str, name: str) -> None:
        self.models.setdefault(folder, []).append(name)

    def remove_model(self, folder: str, name: str) -> None:
        self.models[folder].remove(name)

    def listing(self, folder: str) -> list[str]:
        """What ComfyUI lists for a model folder: the names added, plus the files on disk under ``models_dir``."""
        names = list(self.models.get(folder, []))
        root = self.models_dir / folder if self.models_dir is not None else None
        if root is not None and root.is_dir():
            found = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in MODEL_EXTENSIONS]
            names += sorted(p.relative_to(root).as_posix() for p in found)
        return names

    def object_info(self) -> dict[str, Any]:
        info = copy.copy(_base_object_info())
        for (cls, name), folder in MODEL_INPUTS.items():
            node = copy.deepcopy(info[cls])
            spec = node["input"]["required"][name]
            if spec[0] == "COMBO":
                spec[1]["options"] = self.listing(folder)
            else:
                spec[0] = self.listing(folder)
            info[cls] = node
        return {**info, **self.custom_nodes}

    # --- websocket ---------------------------------------------------------------------------------
    async def send(self, client_id: str | None, kind: str, data: dict[str, Any]) -> None:
        targets = [ws for cid, socks in self.sockets.items() for ws in socks if client_id is None or cid == client_id]
        text = json.dumps({"type": kind, "data": data})
        for ws in targets:
            try:
                await ws.send_text(text)
            except (RuntimeError, WebSocketDisconnect, OSError):
                pass
        if self.drop_ws_on == kind and client_id is not None:
            self.drop_ws_on = None
            for ws in self.sockets.pop(client_id, []):
                await ws.close(code=1011)

    async def send_picture(
        self, emit: Any, node_id: str, prompt_id: str, image: bytes, mime: str, progress: tuple[int, int]
    ) -> None:
        """One picture frame plus its ``progress`` message to the job's sockets, each in its own recorded order."""
        await self._send_frames(emit, lambda meta: picture_frames(meta, node_id, prompt_id, image, mime, progress))

    async def _send_frames(self, emit: Any, frames_for: Any) -> None:
        cid = getattr(emit, "client_id", None)
        for ws in list(self.sockets.get(cid, [])) if cid else []:
            try:
                for frame in frames_for(ws in self.metadata_sockets):
                    if isinstance(frame, bytes):
                        await ws.send_bytes(frame)
                        self.binary_sent += 1
                    else:
                        await ws.send_text(frame)
            except (RuntimeError, WebSocketDisconnect, OSError):
                pass

    async def status(self) -> None:
        remaining = len(self.queue) + (1 if self.running else 0)
        await self.send(None, "status", {"status": {"exec_info": {"queue_remaining": remaining}}})

    # --- the executor -------------------------------------------------------------------------------
    async def worker(self) -> None:
        while True:
            if not self.queue:
                self.wake = anyio.Event()
                await self.wake.wait()
                continue
            self.queue.sort(key=lambda item: item[0])
            self.running = self.queue.pop(0)
            try:
                await self._execute(*self.running)
            finally:
                self.running = None
                self.interrupted = False

    def _signature(self, prompt: dict[str, Any], node_id: str, memo: dict[str, str]) -> str:
        if node_id not in memo:
            node = prompt[node_id]
            parts = {
                k: (["link", self._signature(prompt, v[0], memo), v[1]] if is_link(v) else v)
                for k, v in sorted(node["inputs"].items())
            }
            memo[node_id] = hashlib.sha1(json.dumps([node["class_type"], parts]).encode()).hexdigest()
        return memo[node_id]

    async def _execute(
        self, number: float, prompt_id: str, prompt: dict[str, Any], extra: dict[str, Any], outputs: list[str]
    ) -> None:
        cid = extra.get("client_id")
        messages: list[list[Any]] = []

        async def emit(kind: str, data: dict[str, Any], *, record: bool = False) -> None:
            if record:
                messages.append([kind, data])
            await self.send(cid, kind, data)

        emit.client_id = cid  # type: ignore[attr-defined]

        order = topological(prompt, outputs)
        memo: dict[str, str] = {}
        # SaveImageWebsocket's IS_CHANGED is the time: it runs every time, even in an identical graph.
        cached = [
            n
            for n in order
            if self._signature(prompt, n, memo) in self.cache and prompt[n]["class_type"] != "SaveImageWebsocket"
        ]
        await emit("execution_start", {"prompt_id": prompt_id, "timestamp": _ms()}, record=True)
        await emit("execution_cached", {"nodes": cached, "prompt_id": prompt_id, "timestamp": _ms()}, record=True)
        results: dict[str, Any] = {}
        executed: list[str] = []
        # Cached nodes first: their whole ancestry is cached, so ComfyUI finds them ready at once and picks
        # output nodes first (ws_binary_frames_feature_flags: the cached PreviewAny's executed comes first).
        for node_id in [n for n in order if n in cached] + [n for n in order if n not in cached]:
            node = prompt[node_id]
            sig = self._signature(prompt, node_id, memo)
            if node_id in cached:
                if (hit := self.cache[sig]) is not None:
                    results[node_id] = hit
                    await emit("executed", _executed(node_id, hit, prompt_id))
                continue
            state = {"value": 0.0, "max": 1.0, "state": "running", "node_id": node_id, "prompt_id": prompt_id}
            await self.send(None, "progress_state", {"prompt_id": prompt_id, "nodes": {node_id: state}})
            await emit("executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id})
            error = await self._run_node(node_id, prompt, prompt_id, emit)
            if error == "interrupted":
                data = {"prompt_id": prompt_id, "node_id": node_id, "node_type": node["class_type"]}
                await emit("execution_interrupted", {**data, "executed": executed, "timestamp": _ms()}, record=True)
                return await self._finish(prompt_id, number, prompt, extra, outputs, results, messages, "error")
            if error is not None:
                data = {
                    "prompt_id": prompt_id,
                    "node_id": node_id,
                    "node_type": node["class_type"],
                    "executed": executed,
                    "exception_message": error,
                    "exception_type": "Exception",
                    "traceback": ['  File "<COMFYUI_ROOT>/execution.py", line 496, in execute\n'],
                    "current_inputs": {},
                    "current_outputs": cached + executed,
                    "timestamp": _ms(),
                }
                await emit("execution_error", data, record=True)
                return await self._finish(prompt_id, number, prompt, extra, outputs, results, messages, "error")
            output = self._outputs_of(node, prompt)
            self.cache[sig] = output
            executed.append(node_id)
            if output is not None:
                results[node_id] = output
                await emit("executed", _executed(node_id, output, prompt_id))
        await emit("execution_success", {"prompt_id": prompt_id, "timestamp": _ms()}, record=True)
        await self._finish(prompt_id, number, prompt, extra, outputs, results, messages, "success")

    async def _run_node(self, node_id: str, prompt: dict[str, Any], prompt_id: str, emit: Any) -> str | None:
        node = prompt[node_id]
        if self.interrupted:
            return "interrupted"
        if node["class_type"] == self.hold_class:
            self.hold_reached.set()
            await self.hold_release.wait()
            if self.interrupted:
                return "interrupted"
        steps = int(node["inputs"].get("steps", 1)) if node["class_type"].startswith("KSampler") else 1
        for step in range(steps):
            if self.node_seconds:
                await anyio.sleep(self.node_seconds / steps)
            if self.interrupted:
                return "interrupted"
            if steps > 1 and self.preview_frames:
                await self.send_picture(emit, node_id, prompt_id, PREVIEW_JPEG, "image/jpeg", (step + 1, steps))
            elif steps > 1:
                await emit("progress", {"value": step + 1, "max": steps, "prompt_id": prompt_id, "node": node_id})
        if node["class_type"] == "SaveImageWebsocket":  # one PNG per image, progress 0..n-1 of n
            count = batch_size(prompt)
            for step in range(count):
                await self.send_picture(emit, node_id, prompt_id, self.image_bytes, "image/png", (step, count))
        if node["class_type"] == "GetImageSize":
            width, height, batch = image_size(prompt, node_id)
            text = f"width: {width}, height: {height}\n batch size: {batch}"
            await self._send_frames(emit, lambda _meta: [text_frame(node_id, text)])
        if node["class_type"] == self.fail_class:
            return f"{node['class_type']} failed: simulated out of memory"
        prefix = str(node["inputs"].get("filename_prefix", ""))
        if ".." in prefix:
            return "**** ERROR: Saving image outside the output folder is not allowed."
        return None

    def _outputs_of(self, node: dict[str, Any], prompt: dict[str, Any]) -> dict[str, Any] | None:
        cls = node["class_type"]
        if cls == "PreviewAny":
            return {"text": [value_text(prompt, node["inputs"].get("source"))]}
        if cls not in ("SaveImage", "PreviewImage"):
            return None
        batch = batch_size(prompt)
        if cls == "SaveImage":
            prefix = str(node["inputs"].get("filename_prefix", "ComfyUI"))
            subfolder, _, base = prefix.rpartition("/")
            kind = "output"
        else:
            subfolder, base, kind = "", "ComfyUI_temp_" + uuid.uuid4().hex[:5], "temp"
        images = []
        for _ in range(batch):
            key = f"{kind}/{subfolder}/{base}"
            self.counters[key] = self.counters.get(key, 0) + 1
            name = f"{base}_{self.counters[key]:05d}_.png"
            self.files[(kind, subfolder, name)] = self.image_bytes
            images.append({"filename": name, "subfolder": subfolder, "type": kind})
        return {"images": images}

    async def _finish(self, prompt_id, number, prompt, extra, outputs, results, messages, status_str) -> None:  # noqa: ANN001
        self.history[prompt_id] = {
            "prompt": [number, prompt_id, prompt, extra, outputs],
            "outputs": results,
            "status": {"status_str": status_str, "completed": status_str == "success", "messages": messages},
            "meta": {n: {"node_id": n, "display_node": n, "parent_node": None, "real_node_id": n} for n in results},
        }
        self.running = None
        await self.status()
        await self.send(extra.get("client_id"), "executing", {"node": None, "prompt_id": prompt_id})

    # --- HTTP ----------------------------------------------------------------------------------------
    async def submit(self, body: Any) -> Response:
        if not isinstance(body, dict):
            return PlainTextResponse(ERROR_500, status_code=500)
        if "prompt" not in body:
            err = {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided"}
            return JSONResponse({"error": {**err, "extra_info": {}}, "node_errors": {}}, status_code=400)
        prompt = body["prompt"]
        if not isinstance(prompt, dict):
            return PlainTextResponse(ERROR_500, status_code=500)
        number = body.get("number", self.number)
        if "number" not in body:
            self.number += 1
        if body.get("front"):
            number = -number
        error, node_errors, outputs = validate_prompt(prompt, self.object_info())
        if error is not None:
            return JSONResponse({"error": error, "node_errors": node_errors}, status_code=400)
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        extra = dict(body.get("extra_data") or {})
        if body.get("client_id"):
            extra["client_id"] = body["client_id"]
        self.prompts.append(prompt)
        self.queue.append((number, prompt_id, prompt, extra, outputs))
        self.wake.set()
        await self.status()
        await self.status()  # ComfyUI often sends it twice per POST (ws_basic_three_runs)
        if self.reply_delay:
            await self.pause(self.reply_delay)
        return JSONResponse({"prompt_id": prompt_id, "number": number, "node_errors": node_errors})

    async def pause(self, seconds: float) -> None:
        """Answer ``seconds`` late, or as soon as the server stops (so no slow answer holds its shutdown up)."""
        with anyio.move_on_after(seconds):
            await self.stopping.wait()

    def app(self) -> Starlette:
        return Starlette(routes=build_routes(self))


def _executed(node_id: str, output: dict[str, Any], prompt_id: str) -> dict[str, Any]:
    return {"node": node_id, "display_node": node_id, "output": output, "prompt_id": prompt_id}


def _ms() -> int:
    return int(time.time() * 1000)
