"""ComfyUIService: what the MCP tools call. Turns a template or workflow request into a tracked job.

It reads the studio inventory for LoRA trigger words, confines input image paths, hands the job to the
pool, waits a bounded time, and shapes everything into ``JobView``/``StatusView`` models.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, cast

import anyio
from pydantic import BaseModel, Field

from ategnatos_mcp.comfyui.models import JobRecord, SavedOutput, ServerStatus
from ategnatos_mcp.comfyui.pool import ComfyUIPool, ImageUpload
from ategnatos_mcp.comfyui.results import make_previews
from ategnatos_mcp.comfyui.templates import LoraChoice, LoraFacts, get_template, list_templates, render_template
from ategnatos_mcp.comfyui.workflows import (
    WorkflowLibrary,
    WorkflowSummary,
    is_api_format,
    is_ui_format,
    summarise,
    ui_to_api,
)
from ategnatos_mcp.errors import InvalidRequestError, StateError, UpstreamError
from ategnatos_mcp.paths import confine
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.studio import read_studio

__all__ = [
    "ComfyUIService",
    "JobView",
    "StatusView",
    "WorkflowAnswer",
    "read_workflow",
]

logger = logging.getLogger(__name__)


class JobView(BaseModel):
    """A job as the artist sees it."""

    job_id: str
    state: str
    server: str
    template: str | None = None
    seed: int | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    percent: float = 0.0
    current_node: str | None = None
    live_progress: bool = Field(
        default=True, description="False when ComfyUI's websocket could not be opened: states only, no percentages."
    )
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)
    files: list[SavedOutput] = Field(default_factory=list)
    texts: dict[str, list[str]] = Field(default_factory=dict)
    seconds: float | None = Field(default=None, description="Run time once finished.")
    asset_log: str | None = Field(
        default=None,
        description="Where the job was logged: the project/asset version that holds its seed and pictures.",
    )

    @classmethod
    def of(cls, record: JobRecord) -> JobView:
        done = record.nodes_done + (record.progress or 0.0)
        seconds = None
        if record.finished_at is not None:
            seconds = round(record.finished_at - record.submitted_at, 2)
        return cls(
            job_id=record.job_id,
            state=record.state.value,
            server=record.server,
            template=record.template,
            seed=record.seed,
            params=_brief(record.params),
            percent=round(100.0 * min(1.0, done / max(record.nodes_total, 1)), 1),
            current_node=record.current_node,
            live_progress=record.live_progress,
            error=record.error,
            warnings=record.warnings,
            files=record.saved,
            texts=record.texts,
            seconds=seconds,
        )

    def describe(self) -> str:
        head = f"Job {self.job_id} on {self.server}: {self.state}"
        if self.state == "running" and self.live_progress:
            head += f" ({self.percent:.0f}%)"
        if self.seed is not None:
            head += f", seed {self.seed}"
        lines = [head + "."]
        if self.error:
            lines.append(self.error)
        if self.files:
            shown = sum(f.previewed for f in self.files)
            lines.append(f"{len(self.files)} file(s) saved under workspace/outputs ({shown} shown below):")
            lines.extend(f"- {f.path}" + ("" if f.kind == "image" else f" ({f.kind})") for f in self.files)
        elif self.state in ("queued", "running"):
            lines.append(f"Still working; call comfyui_job with job_id='{self.job_id}' to wait for it.")
        lines.extend(f"Note: {w}" for w in self.warnings)
        if self.asset_log:
            lines.append(self.asset_log)
        return "\n".join(lines)


_ECHO_LIMIT = 2000  # characters of one parameter repeated in an answer; the job's sidecar keeps it whole


def _brief(value: Any) -> Any:
    """``value`` with every very long string cut to its start and length (answers never repeat a pasted file)."""
    if isinstance(value, str):
        return value if len(value) <= _ECHO_LIMIT else f"{value[:200]}... ({len(value):,} characters in all)"
    if isinstance(value, dict):
        return {key: _brief(item) for key, item in cast("dict[str, Any]", value).items()}
    if isinstance(value, list):
        return [_brief(item) for item in cast("list[Any]", value)]
    return value


class StatusView(BaseModel):
    servers: list[ServerStatus]
    jobs: list[JobView] = Field(default_factory=list, description="This session's unfinished jobs.")

    def describe(self) -> str:
        lines = []
        for s in self.servers:
            if s.reachable:
                models = ", ".join(f"{len(v)} {k}" for k, v in s.models.items() if v) or "no models"
                lines.append(
                    f"{s.url}: up, ComfyUI {s.version}, {s.queue_running} running / {s.queue_pending} waiting, {models}."
                )
            elif s.not_comfyui:
                lines.append(f"{s.url}: not ComfyUI. {s.error}")
            else:
                lines.append(f"{s.url}: not reachable. {s.error}")
        active = [j for j in self.jobs if j.state in ("queued", "running")]
        if active:
            lines.append(f"{len(active)} job(s) of this session still running: " + ", ".join(j.job_id for j in active))
        return "\n".join(lines)


class WorkflowAnswer(BaseModel):
    action: str
    name: str | None = None
    workflows: list[WorkflowSummary] = Field(default_factory=list)
    templates: list[dict[str, Any]] = Field(default_factory=list)
    workflow: dict[str, Any] | None = Field(default=None, description="For get: the workflow.")
    saved: WorkflowSummary | None = Field(default=None, description="For save: what was saved (get shows it whole).")
    path: str | None = None
    converted_from_ui: bool = False


class ComfyUIService:
    """The comfyui domain's entry points for the adapter."""

    def __init__(self, pool: ComfyUIPool, settings: Settings, store: GrimoireStore) -> None:
        self.pool = pool
        self.settings = settings
        self.store = store
        self.library = WorkflowLibrary(settings.grimoire_dir / "workflows")

    # --- status -------------------------------------------------------------------------------------------
    async def status(self) -> StatusView:
        unfinished = [JobView.of(r) for r in self.pool.jobs() if not r.state.finished]
        return StatusView(servers=await self.pool.status(), jobs=unfinished)

    # --- submit -------------------------------------------------------------------------------------------
    async def submit(
        self,
        *,
        template: str | None,
        params: dict[str, Any],
        workflow: dict[str, Any] | str | None,
        loras: list[LoraChoice],
        images: dict[str, str],
        wait_seconds: float,
        allow_flagged: bool,
        progress: Progress | None,
    ) -> JobView:
        """Fill/load the workflow, upload inputs, queue it, and wait up to ``wait_seconds`` for the pictures."""
        if (template is None) == (workflow is None):
            raise InvalidRequestError(
                "Give either a template (with params) or a workflow, not both or neither.",
                hint="E.g. template='txt2img-sdxl', params={'prompt': '...'}; or workflow=<API-format JSON or saved name>.",
            )
        seed: int | None = None
        warnings: list[str] = []
        if template is not None:
            chosen = get_template(template)
            image_params = {p.name for p in chosen.parameters if p.type == "image"}
            wrong = sorted(set(images) - image_params)
            if wrong:
                raise InvalidRequestError(
                    f"Template '{template}' has no image input {', '.join(map(repr, wrong))}.",
                    hint="Its image inputs: " + (", ".join(sorted(image_params)) or "none") + ".",
                )
            facts = await self._lora_facts() if loras else {}
            rendered = render_template(chosen, {**params, **images}, loras=loras, lora_facts=facts)
            graph, seed, warnings, used = rendered.workflow, rendered.seed, rendered.warnings, rendered.params
            targets = dict(rendered.images)
        else:
            graph = await self._resolve_workflow(workflow)
            used = {}
            targets = {key: (key, "image", path) for key, path in images.items()}
            missing = [k for k in targets if k not in graph]
            if missing:
                raise InvalidRequestError(
                    f"The workflow has no node {', '.join(missing)} to put an image into.",
                    hint="For a workflow, images maps a LoadImage node id to a file path.",
                )
        uploads = [await self._upload(node, inp, path) for node, inp, path in targets.values()]
        record = await self.pool.submit(
            graph, uploads=uploads, template=template, params=used, seed=seed, allow_flagged=allow_flagged
        )
        record.warnings.extend(warnings)
        wait = min(max(wait_seconds, 0.0), self.settings.comfyui.max_wait_seconds)
        return JobView.of(await self.pool.wait(record.job_id, wait, progress))

    async def _lora_facts(self) -> dict[str, LoraFacts]:
        try:
            inventory = await read_studio(self.store)
        except StateError:
            logger.warning("studio inventory unreadable; LoRA trigger words skipped")
            return {}
        facts: dict[str, LoraFacts] = {}
        for lora in inventory.loras:
            fact = LoraFacts(trigger_words=lora.trigger_words, weight_min=lora.weight_min, weight_max=lora.weight_max)
            facts[lora.name] = fact
            facts.setdefault(Path(lora.name).stem, fact)
        return facts

    async def _upload(self, node: str, inp: str, raw: str) -> ImageUpload:
        path = confine(raw, home=self.settings.home, roots=self.settings.roots, kind="file")
        data = await anyio.Path(path).read_bytes()
        return ImageUpload(node_id=node, input_name=inp, filename=path.name, data=data)

    async def _resolve_workflow(self, workflow: dict[str, Any] | str | None) -> dict[str, Any]:
        graph = await self.library.get(workflow) if isinstance(workflow, str) else dict(workflow or {})
        if is_ui_format(graph):
            graph = ui_to_api(graph, await self._any_object_info())
        if not all(isinstance(v, dict) for v in graph.values()):
            raise InvalidRequestError(
                "That is not an API-format workflow (expected {node id: {class_type, inputs}}).",
                hint="In ComfyUI use Workflow > Export (API), or import the editor file with workflow_manage.",
            )
        return graph

    async def _any_object_info(self) -> dict[str, Any]:
        for server in self.pool.servers():
            try:
                return await self.pool.object_info(server)
            except UpstreamError:
                continue
        raise UpstreamError(
            "No ComfyUI is answering, and converting an editor workflow needs one.",
            service="comfyui",
            hint="Start ComfyUI (see comfyui_status), then try again.",
        )

    # --- models (for the studio to learn what ComfyUI has) -----------------------------------------------
    async def listed_models(self, folders: tuple[str, ...] = ("checkpoints", "loras")) -> dict[str, dict[str, str]]:
        """Per folder, every model file the reachable servers list, with the URL of a server that has it."""
        found: dict[str, dict[str, str]] = {folder: {} for folder in folders}
        for server in self.pool.servers():
            try:
                for folder in folders:
                    for name in await server.client.models(folder):
                        found[folder].setdefault(name, server.client.url)
            except UpstreamError:
                continue  # an unreachable server lists nothing; the others still count
        return found

    async def model_metadata(self, url: str, folder: str, name: str) -> dict[str, Any] | None:
        """The file's safetensors metadata on the server at ``url``; None when it has none or cannot be read."""
        server = next((s for s in self.pool.servers() if s.client.url == url), None)
        if server is None:
            return None
        try:
            return await server.client.model_metadata(folder, name)
        except UpstreamError:
            return None

    # --- jobs ----------------------------------------------------------------------------------------------
    async def job(
        self,
        job_id: str,
        action: Literal["status", "wait", "cancel"],
        wait_seconds: float,
        progress: Progress | None,
    ) -> JobView:
        if action == "cancel":
            return JobView.of(await self.pool.cancel(job_id))
        if action == "wait":
            wait = min(max(wait_seconds, 0.0), self.settings.comfyui.max_wait_seconds)
            return JobView.of(await self.pool.wait(job_id, wait, progress))
        return JobView.of(self.pool.job(job_id))

    async def previews(self, view: JobView) -> list[tuple[bytes, str]]:
        """Downscaled previews of the job's images within the byte budget (marks ``previewed`` on files)."""
        cached = self.pool.previews(view.job_id)
        if cached or not view.files:
            return cached
        cfg = self.settings.comfyui
        return await make_previews(view.files, max_side=cfg.preview_max_side, budget_bytes=cfg.preview_budget_bytes)

    # --- workflows -----------------------------------------------------------------------------------------
    async def manage_workflow(
        self,
        action: Literal["list", "get", "save", "delete"],
        name: str | None,
        workflow: dict[str, Any] | None,
        overwrite: bool,
    ) -> WorkflowAnswer:
        if action == "list":
            templates = [{"name": t.name, "description": t.description, "family": t.family} for t in list_templates()]
            return WorkflowAnswer(action=action, workflows=await self.library.list(), templates=templates)
        if not name:
            raise InvalidRequestError(f"workflow_manage {action} needs a name.", hint="Pass name='my-workflow'.")
        if action == "get":
            return WorkflowAnswer(action=action, name=name, workflow=await self.get_workflow(name))
        if action == "delete":
            await self.library.delete(name)
            return WorkflowAnswer(action=action, name=name)
        if not workflow:
            raise InvalidRequestError("workflow_manage save needs the workflow JSON.", hint="Pass workflow={...}.")
        converted = is_ui_format(workflow)
        graph = ui_to_api(workflow, await self._any_object_info()) if converted else workflow
        if not is_api_format(graph):
            raise InvalidRequestError(
                "That JSON is not a ComfyUI workflow: it needs nodes, each with a class_type and inputs.",
                hint="In ComfyUI, export the workflow (Workflow > Export, or Export (API)) and pass that file's JSON.",
            )
        path = await self.library.save(name, graph, overwrite=overwrite)
        return WorkflowAnswer(
            action=action, name=name, path=str(path), converted_from_ui=converted, saved=summarise(name, graph)
        )

    async def get_workflow(self, name: str) -> dict[str, Any]:
        return await read_workflow(self.settings, name)


async def read_workflow(settings: Settings, name: str) -> dict[str, Any]:
    """A saved workflow, or a built-in template (with its parameters) when no saved one has that name."""
    library = WorkflowLibrary(settings.grimoire_dir / "workflows")
    if name not in {t.name for t in list_templates()} or await library.has(name):
        return await library.get(name)
    return get_template(name).model_dump(mode="json")
