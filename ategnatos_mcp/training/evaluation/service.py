"""train_evaluate: put the run's saves where ComfyUI finds them, draw the grid there, and compose one contact sheet.

The work outlives the call: it runs in the server's task group (bringing LoRA files from a rented host and drawing
a dozen pictures can take minutes); a call waits at most ``wait_seconds`` and answers with how far it got, and a
repeat call with the same question follows the same work (never a second copy). A finished sheet is kept with its
question's fingerprint, so asking again answers at once. Where a server restart cut the work, the next call
continues it: LoRA files already in place (same sha256) are not sent again, pictures already made are kept.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any, Protocol

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup

from ategnatos_mcp.errors import AtegnatosError, InvalidRequestError, NotFoundError
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.state import GrimoireStore, write_bytes_atomic
from ategnatos_mcp.training import TrainingConfig, write_records
from ategnatos_mcp.training.evaluation.grid import (
    RECIPES,
    choose_saves,
    choose_weights,
    default_prompts,
    job_request,
    plan_images,
    resolve_models,
)
from ategnatos_mcp.training.evaluation.models import (
    EvalAnswer,
    EvalRecord,
    EvalSave,
    EvalSpec,
    evaluation_document,
)
from ategnatos_mcp.training.evaluation.placing import place_saves
from ategnatos_mcp.training.evaluation.records import eval_answer, render_eval_md, sheet_cells
from ategnatos_mcp.training.evaluation.shelves import LoraShelf
from ategnatos_mcp.training.execution import HostRegistry, RunHandle, TrainingRuns
from ategnatos_mcp.training.execution.plans import load_confirmed_plan, read_execution

__all__ = ["EvalRequest", "EvalStudio", "Evaluations", "RenderResult", "Renderer", "Work"]

logger = logging.getLogger(__name__)

_IMAGE_WAIT_SECONDS = 1800.0  # one picture that takes longer is reported as not made, the sheet goes on


@dataclass
class RenderResult:
    """Where one queued picture stands."""

    state: str
    image: str | None = None
    error: str | None = None


class Renderer(Protocol):
    """The ComfyUI that draws the sheet (the wiring builds it from the ComfyUI pool)."""

    url: str

    async def listing(self) -> dict[str, list[str]]:
        """Model folder -> files ComfyUI lists now (checkpoints, loras, diffusion_models, text_encoders, vae)."""
        ...

    async def submit(self, template: str, params: dict[str, Any], loras: list[tuple[str, float]]) -> str:
        """Queue one picture; returns its job id."""
        ...

    async def wait(self, job_id: str, seconds: float) -> RenderResult:
        """Wait up to ``seconds``. Raises NotFoundError for a job this server no longer knows (after a restart)."""
        ...


@dataclass
class EvalStudio:
    """What the evaluation draws with: the ComfyUI, and its LoRA folder when Ategnatos can reach it."""

    renderer: Renderer
    shelf: LoraShelf | None


@dataclass
class EvalRequest:
    """The artist's question (every field optional: the defaults make the small grid)."""

    epochs: list[int] | None = None
    weights: list[float] | None = None
    prompts: list[str] | None = None
    checkpoint: str | None = None
    reference_image: Path | None = None
    seed: int | None = None


@dataclass
class Work:
    """Work going on in the background: a call follows it until ``finished`` or its own wait ends."""

    spec_hash: str
    finished: anyio.Event = field(default_factory=anyio.Event)
    message: str = "starting"
    done: int = 0
    total: int = 0


class Evaluations:
    """The contact sheets of one grimoire's runs."""

    def __init__(
        self,
        store: GrimoireStore,
        runs: TrainingRuns,
        hosts: HostRegistry,
        clock: Callable[[], datetime],
        task_group: TaskGroup | None,
        workspace: Path,
        *,
        preview_max_side: int = 1536,
        preview_budget_bytes: int = 600_000,
    ) -> None:
        self.store, self.runs, self.hosts, self.clock = store, runs, hosts, clock
        self.task_group = task_group
        self.workspace = workspace
        self.preview_max_side, self.preview_budget_bytes = preview_max_side, preview_budget_bytes
        self._jobs: dict[str, Work] = {}
        self._lock = anyio.Lock()

    async def training_run(self, name: str) -> tuple[TrainingConfig, RunHandle]:
        """The confirmed plan and its training run's handle.

        Raises:
            NotFoundError: no plan, or no training run started yet.
        """
        plan = await load_confirmed_plan(self.store, name, require_confirmed=False)
        handle = (await read_execution(self.store, plan.cfg.name)).training
        if handle is None:
            raise NotFoundError(
                f"No training run of '{plan.cfg.name}' was started yet, so there is nothing to evaluate.",
                kind="training run",
                name=plan.cfg.name,
                hint="Start it with launch_training, and evaluate once training_status lists saved files.",
            )
        return plan.cfg, handle

    async def run_facts(self, name: str) -> tuple[TrainingConfig, RunHandle, list[Any], int | None, str]:
        """The confirmed plan, the training run's handle, its saves, its epochs and its state.

        Raises:
            NotFoundError: no plan, or no training run started yet.
        """
        cfg, handle = await self.training_run(name)
        report = await self.runs.status(
            cfg.name, kind="training", wait_seconds=0, log_lines=0, stop=False, report=None, samples=False
        )
        return cfg, handle, report.checkpoints, report.status.total_epochs, report.state

    async def evaluate(
        self,
        name: str,
        request: EvalRequest,
        studio: EvalStudio,
        *,
        wait_seconds: float,
        report: Progress | None = None,
    ) -> tuple[EvalAnswer, bytes | None]:
        """The sheet for ``request`` (made now, or followed, or the one already made) and its preview when done.

        Raises:
            NotFoundError: no plan or run.
            InvalidRequestError: nothing saved yet, bad epochs/weights, ComfyUI lacks a base-model file, or the
                LoRA files cannot be put where ComfyUI finds them.
        """
        cfg, handle, checkpoints, total_epochs, run_state = await self.run_facts(name)
        listing = await studio.renderer.listing()
        spec = self._spec(cfg, checkpoints, total_epochs, request, studio, listing)
        spec_hash = spec.fingerprint()
        notes = [] if run_state == "succeeded" else [f"The run is {run_state}: this sheet covers the saves so far."]
        async with self._lock:  # two calls at once start one piece of work, not two
            record = await self.store.read(evaluation_document(cfg.name), EvalRecord)
            job = self._jobs.get(cfg.name)
            if job is not None and not job.finished.is_set() and job.spec_hash != spec_hash:
                raise InvalidRequestError(
                    f"Another sheet of '{cfg.name}' is still being made ({job.message}).",
                    hint="Wait for it (call train_evaluate again with the same arguments as before), then ask this one.",
                )
            fresh = (
                record.spec_hash == spec_hash
                and record.state == "done"
                and not any(i.error for i in record.images)  # a picture that failed is tried again
                and record.sheet is not None
                and await anyio.Path(record.sheet).is_file()
            )
            if not fresh and (job is None or job.finished.is_set()):
                self._check_shelf(spec, studio, listing)
                job = await self._start(cfg, handle, spec, spec_hash, studio, record)
        if job is not None and not fresh:
            await self.follow(job, wait_seconds, report)
        record = await self.store.read(evaluation_document(cfg.name), EvalRecord)
        preview = None
        if record.state == "done" and record.sheet:
            png = await anyio.Path(record.sheet).read_bytes()
            preview = await anyio.to_thread.run_sync(
                lambda: _sheet().preview_of(png, max_side=self.preview_max_side, budget_bytes=self.preview_budget_bytes)
            )
        return eval_answer(record, job.message if job is not None else None, notes), preview

    # --- the question -------------------------------------------------------------------------------------------
    @staticmethod
    def _spec(
        cfg: TrainingConfig,
        checkpoints: list[Any],
        total_epochs: int | None,
        request: EvalRequest,
        studio: EvalStudio,
        listing: dict[str, list[str]],
    ) -> EvalSpec:
        saves = choose_saves(cfg.name, checkpoints, request.epochs, total_epochs)
        weights = choose_weights(request.weights)
        prompts = default_prompts(cfg, request.prompts)
        recipe = RECIPES[cfg.family]
        models = resolve_models(cfg, recipe, listing, request.checkpoint, studio.renderer.url)
        spec = EvalSpec(
            saves=saves,
            weights=weights,
            prompts=prompts,
            seed=cfg.seed if request.seed is None else request.seed,
            template=recipe.template,
            models=models,
            settings={**recipe.settings, "width": cfg.resolution, "height": cfg.resolution},
            reference_image=str(request.reference_image) if request.reference_image else None,
        )
        plan_images(spec)  # refuses a grid too big for one sheet before anything is sent
        return spec

    @staticmethod
    def _check_shelf(spec: EvalSpec, studio: EvalStudio, listing: dict[str, list[str]]) -> None:
        listed = set(listing.get("loras", []))
        missing = [s for s in spec.saves if s.comfyui_name not in listed]
        if studio.shelf is None and missing:
            files = ", ".join(PurePosixPath(s.file).name for s in missing)
            raise InvalidRequestError(
                f"I can't put the LoRA files ({files}) where the ComfyUI at {studio.renderer.url} finds them: I don't "
                "know which folder it reads its models from.",
                hint="Set [comfyui] models_dir in ategnatos.toml to that ComfyUI's models folder (e.g. "
                "~/ComfyUI/models), or use a ComfyUI set up with remote_deploy; then call train_evaluate again.",
            )

    # --- the work -----------------------------------------------------------------------------------------------
    async def _start(
        self,
        cfg: TrainingConfig,
        handle: RunHandle,
        spec: EvalSpec,
        spec_hash: str,
        studio: EvalStudio,
        previous: EvalRecord,
    ) -> Work:
        images = plan_images(spec)
        if previous.spec_hash == spec_hash and previous.images:  # the same question again: keep what was made
            images = [
                i if i.path or not i.error else i.model_copy(update={"job_id": None, "error": None})
                for i in previous.images
            ]
        async with self.store.update(evaluation_document(cfg.name), EvalRecord) as upd:
            upd.doc.name = cfg.name
            upd.doc.spec, upd.doc.spec_hash, upd.doc.server = spec, spec_hash, studio.renderer.url
            upd.doc.images, upd.doc.state, upd.doc.sheet, upd.doc.message = images, "placing", None, ""
            upd.doc.started_at, upd.doc.finished_at = self.clock(), None
        job = Work(spec_hash=spec_hash, total=len(images), done=sum(1 for i in images if i.path))
        self._jobs[cfg.name] = job
        if self.task_group is None:  # no server task group (scripts): do it within the call
            await self._work(cfg, handle, spec, studio, job)
        else:
            self.task_group.start_soon(self._work, cfg, handle, spec, studio, job)
        return job

    async def follow(self, job: Work, wait_seconds: float, report: Progress | None) -> None:
        """Wait for ``job`` at most ``wait_seconds``, reporting progress meanwhile."""
        with anyio.move_on_after(wait_seconds if wait_seconds >= 0 else math.inf):
            while not job.finished.is_set():
                if report is not None:
                    await report(float(job.done), float(job.total) or None, job.message)
                with anyio.move_on_after(1.0):
                    await job.finished.wait()

    async def _work(
        self, cfg: TrainingConfig, handle: RunHandle, spec: EvalSpec, studio: EvalStudio, job: Work
    ) -> None:
        try:
            count = iter(range(1, len(spec.saves) + 1))

            def placing(save: EvalSave) -> None:
                job.message = f"putting {PurePosixPath(save.file).name} where ComfyUI finds it ({next(count)} of {len(spec.saves)})"

            await place_saves(
                self.hosts, self.workspace, cfg.name, handle, spec, studio.renderer, studio.shelf, placing
            )
            await self._render(cfg.name, spec, studio, job)
            await self._compose(cfg, spec, job)
        except AtegnatosError as exc:
            await self._set(cfg.name, state="failed", message=str(exc))
        except Exception:  # top of a background task: one failed sheet must not take the server down
            logger.exception("Evaluation of %s failed", cfg.name)
            await self._set(
                cfg.name, state="failed", message="The sheet stopped unexpectedly (the server log has the details)."
            )
        finally:
            job.finished.set()

    async def _set(self, name: str, **changes: Any) -> None:
        async with self.store.update(evaluation_document(name), EvalRecord) as upd:
            for key, value in changes.items():
                setattr(upd.doc, key, value)
            if changes.get("state") in ("done", "failed"):
                upd.doc.finished_at = self.clock()

    async def _render(self, name: str, spec: EvalSpec, studio: EvalStudio, job: Work) -> None:
        record = await self.store.read(evaluation_document(name), EvalRecord)
        images = record.images
        renderer = studio.renderer
        job.message = "queueing the pictures"
        await self._set(name, state="rendering")
        for image in images:
            if image.path is not None:
                continue
            if image.job_id is not None:
                try:
                    await renderer.wait(image.job_id, 0)
                    continue
                except NotFoundError:
                    image.job_id = None  # queued by an earlier server process: ask again
            template, params, loras = job_request(spec, image, int(spec.settings.get("width", 1024)))
            image.job_id = await renderer.submit(template, params, loras)
        await self._set(name, images=images)
        for image in images:
            if image.path is not None:
                continue
            job.message = f"drawing the pictures ({job.done} of {job.total} done)"
            assert image.job_id is not None
            result = await renderer.wait(image.job_id, _IMAGE_WAIT_SECONDS)
            if result.state == "succeeded" and result.image:
                image.path = result.image
            else:
                image.error = (
                    result.error or f"not finished after {_IMAGE_WAIT_SECONDS / 60:.0f} minutes ({result.state})"
                )
            job.done += 1
            await self._set(name, images=images)

    async def _compose(self, cfg: TrainingConfig, spec: EvalSpec, job: Work) -> None:
        job.message = "composing the contact sheet"
        record = await self.store.read(evaluation_document(cfg.name), EvalRecord)
        title, rows, columns, cells = sheet_cells(cfg.name, spec, record.images)
        reference = Path(spec.reference_image) if spec.reference_image else None
        png = await anyio.to_thread.run_sync(lambda: _sheet().compose_sheet(title, rows, columns, cells, reference))
        path = self.workspace / "training" / cfg.name / "evaluation" / f"sheet-{record.spec_hash[:12]}.png"
        await anyio.to_thread.run_sync(_write_bytes, path, png)
        await self._set(cfg.name, state="done", sheet=str(path), message="")
        record = await self.store.read(evaluation_document(cfg.name), EvalRecord)
        await write_records(self.store, cfg.name, {"eval.md": render_eval_md(cfg.name, record)})


def _write_bytes(path: Path, data: bytes) -> None:
    write_bytes_atomic(path, data, mode=0o644)


def _sheet() -> ModuleType:
    # start-up: the sheet module loads Pillow (+15 ms after the server's own imports), needed only to draw a sheet
    from ategnatos_mcp.training.evaluation import sheet

    return sheet
