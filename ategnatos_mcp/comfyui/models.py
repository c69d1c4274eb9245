"""Wire models for ComfyUI's HTTP + websocket API, and the job/result models we hand back.

Third-party payloads accept unknown fields (``extra="allow"``/"ignore"); our own records forbid them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ComfyUIProbe",
    "HistoryEntry",
    "JobRecord",
    "JobState",
    "NodeError",
    "NodeErrorDetail",
    "OutputFile",
    "PromptAccepted",
    "PromptRejection",
    "QueueState",
    "SavedOutput",
    "ServerStatus",
    "SystemStats",
    "UploadedImage",
    "ValidationProblem",
    "WsEvent",
    "WsImage",
]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class OutputFile(_Wire):
    """One file a node produced, as ``/history`` and ``executed`` name it; fetched through ``/view``."""

    filename: str
    subfolder: str = ""
    type: str = "output"


class NodeErrorDetail(_Wire):
    type: str
    message: str = ""
    details: str = ""
    extra_info: dict[str, Any] = Field(default_factory=dict)


class NodeError(_Wire):
    errors: list[NodeErrorDetail] = Field(default_factory=list)
    dependent_outputs: list[str] = Field(default_factory=list)
    class_type: str = ""


class PromptAccepted(_Wire):
    """POST /prompt 200: queued (``node_errors`` may name outputs ComfyUI dropped)."""

    prompt_id: str
    number: float = 0
    node_errors: dict[str, NodeError] = Field(default_factory=dict)


class PromptRejection(_Wire):
    """POST /prompt 400 body."""

    error: NodeErrorDetail
    node_errors: dict[str, NodeError] = Field(default_factory=dict)


class QueueState(_Wire):
    """GET /queue reduced to prompt ids (pending sorted by their queue number) and client ids."""

    running: list[str] = Field(default_factory=list)
    pending: list[str] = Field(default_factory=list)
    client_ids: dict[str, str] = Field(default_factory=dict, description="prompt id -> client id")

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> QueueState:
        """Raises TypeError/IndexError when the body is not shaped like ComfyUI's queue."""
        if not isinstance(body.get("queue_running"), list) or not isinstance(body.get("queue_pending"), list):
            raise TypeError("not a ComfyUI queue")
        client_ids: dict[str, str] = {}

        def ids(items: list[list[Any]]) -> list[str]:
            for item in items:
                extra = item[3] if len(item) > 3 and isinstance(item[3], dict) else {}
                if extra.get("client_id"):
                    client_ids[str(item[1])] = str(extra["client_id"])
            return [str(item[1]) for item in sorted(items, key=lambda it: it[0])]

        return cls(
            running=ids(body["queue_running"]),
            pending=ids(body["queue_pending"]),
            client_ids=client_ids,
        )

    @property
    def size(self) -> int:
        return len(self.running) + len(self.pending)


class HistoryEntry(_Wire):
    """One finished job from GET /history/{id}."""

    prompt_id: str
    client_id: str | None = None
    outputs: dict[str, list[OutputFile]] = Field(default_factory=dict)
    texts: dict[str, list[str]] = Field(default_factory=dict)
    status_str: str = ""
    completed: bool = False
    messages: list[tuple[str, dict[str, Any]]] = Field(default_factory=list)

    @classmethod
    def from_wire(cls, prompt_id: str, body: dict[str, Any]) -> HistoryEntry:
        prompt = body.get("prompt") or []
        extra = prompt[3] if len(prompt) > 3 and isinstance(prompt[3], dict) else {}
        outputs: dict[str, list[OutputFile]] = {}
        texts: dict[str, list[str]] = {}
        for node_id, out in (body.get("outputs") or {}).items():
            files = [
                OutputFile.model_validate(f) for key in ("images", "gifs", "videos", "audio") for f in out.get(key, [])
            ]
            if files:
                outputs[node_id] = files
            if out.get("text"):
                texts[node_id] = [str(t) for t in out["text"]]
        status = body.get("status") or {}
        return cls(
            prompt_id=prompt_id,
            client_id=extra.get("client_id"),
            outputs=outputs,
            texts=texts,
            status_str=status.get("status_str", ""),
            completed=bool(status.get("completed")),
            messages=[(m[0], m[1]) for m in status.get("messages", []) if len(m) == 2],
        )

    def message(self, event: str) -> dict[str, Any] | None:
        return next((data for name, data in self.messages if name == event), None)


class UploadedImage(_Wire):
    """POST /upload/image 200. Refer to it in LoadImage as ``reference``."""

    name: str
    subfolder: str = ""
    type: str = "input"

    @property
    def reference(self) -> str:
        return f"{self.subfolder}/{self.name}" if self.subfolder else self.name


class SystemStats(_Wire):
    comfyui_version: str | None = None
    python_version: str | None = None
    devices: list[dict[str, Any]] = Field(default_factory=list)

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> SystemStats:
        """Raises TypeError (or ValidationError) when the body is not ComfyUI's: every version since 2023 answers
        with a ``system`` object and a ``devices`` list, which is how ComfyUI is told from other programs."""
        system, devices = body.get("system"), body.get("devices")
        if not isinstance(system, dict) or not isinstance(devices, list):
            raise TypeError("not ComfyUI's system stats")
        return cls(
            comfyui_version=system.get("comfyui_version"),
            python_version=system.get("python_version"),
            devices=devices,
        )


class WsImage(_Wire):
    """A picture ComfyUI sent as a binary websocket frame: a latent preview during sampling, or a result of a
    node that sends its images over the socket instead of saving them (``SaveImageWebsocket``).

    Type 4 frames name their node and prompt; type 1 frames name neither (the running node is meant).
    """

    data: bytes
    mime_type: str
    node_id: str | None = None
    display_node_id: str | None = None
    prompt_id: str | None = None


class WsEvent(_Wire):
    """One websocket message: a JSON text message, or ``type="image"`` with ``image`` for a binary picture frame."""

    type: str
    data: dict[str, Any] = Field(default_factory=dict)
    image: WsImage | None = None

    @property
    def prompt_id(self) -> str | None:
        if self.image is not None:
            return self.image.prompt_id
        return self.data.get("prompt_id")


class ComfyUIProbe(BaseModel):
    """What one configured ComfyUI looks like from here (used by ``studio_detect`` and ``comfyui_status``)."""

    url: str
    reachable: bool
    version: str | None = None
    queue_running: int = 0
    queue_pending: int = 0
    models: dict[str, list[str]] = Field(default_factory=dict, description="model folder -> file names")
    devices: list[str] = Field(default_factory=list)
    not_comfyui: bool = Field(
        default=False, description="Something answers at this address, but it is not ComfyUI (wrong URL or port)."
    )
    error: str | None = Field(default=None, description="Plain-language reason when not reachable.")


class ServerStatus(ComfyUIProbe):
    """A pool member: its probe plus what the pool knows (marked down, jobs we are running there)."""

    marked_down: bool = False
    jobs_in_flight: int = 0


class ValidationProblem(BaseModel):
    """One thing wrong with a workflow, in words an artist can act on."""

    node_id: str
    class_type: str = ""
    input_name: str | None = None
    kind: str = Field(
        description="unknown_node, missing_input, not_in_list, too_small, too_big, wrong_type, bad_link..."
    )
    message: str
    suggestions: list[str] = Field(default_factory=list, description="Closest existing names, best first.")


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    LOST = "lost"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.INTERRUPTED, JobState.LOST)


class SavedOutput(BaseModel):
    """A file a job produced, saved full-size under ``workspace/outputs/``."""

    node_id: str
    kind: str = Field(description="image, video, gif, audio or file")
    path: str
    sidecar: str
    width: int | None = None
    height: int | None = None
    previewed: bool = Field(default=False, description="Whether a downscaled preview is inlined in this answer.")


class JobRecord(BaseModel):
    """Everything we know about one submitted job."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    server: str
    prompt_id: str
    client_id: str
    state: JobState = JobState.QUEUED
    template: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    current_node: str | None = None
    progress: float | None = Field(default=None, description="0..1 of the current node (sampler steps, tiles).")
    nodes_done: int = 0
    nodes_total: int = 0
    cached_nodes: list[str] = Field(default_factory=list)
    live_progress: bool = Field(default=True, description="False: no websocket, followed by polling its history.")
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)
    outputs: dict[str, list[OutputFile]] = Field(default_factory=dict)
    texts: dict[str, list[str]] = Field(default_factory=dict)
    saved: list[SavedOutput] = Field(default_factory=list)
    submitted_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
