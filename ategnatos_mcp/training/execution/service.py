"""One entry point per tool: resolve the host, load the confirmed plan, do the step, keep the records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import PurePosixPath

from ategnatos_mcp.errors import NotFoundError
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training.execution.dryrun import DryRunResult, run_dry_run
from ategnatos_mcp.training.execution.environment import EnvironmentCheck, check_environment
from ategnatos_mcp.training.execution.evaluate import Submitter, build_eval_grid, submit_grid, write_eval_md
from ategnatos_mcp.training.execution.hosts import HostRegistry, TrainingHost, resolve_host
from ategnatos_mcp.training.execution.launch import LaunchResult, ensure_launch_ready, launch_run
from ategnatos_mcp.training.execution.models import EvalGrid, RunKind
from ategnatos_mcp.training.execution.plans import load_confirmed_plan, read_execution, update_execution
from ategnatos_mcp.training.execution.runner import Reporter
from ategnatos_mcp.training.execution.samples import SamplePreview, sample_previews
from ategnatos_mcp.training.execution.tracking import RunReport, follow_run

__all__ = ["DEFAULT_BACKEND_DIRS", "TrainingRuns"]

# Where remote_deploy puts kohya; the others follow the same convention.
DEFAULT_BACKEND_DIRS = {"kohya": "~/sd-scripts", "ai-toolkit": "~/ai-toolkit", "simpletuner": ""}


class TrainingRuns:
    """Gate 3, gate 4, launch, status and evaluation for the runs of one grimoire."""

    def __init__(self, store: GrimoireStore, hosts: HostRegistry, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.hosts = hosts
        self.clock = clock

    async def _backend_dir(self, host: TrainingHost, name: str, backend: str, given: str | None) -> str:
        if given is None:
            state = await read_execution(self.store, name)
            given = state.backend_dirs.get(host.spec.identity, DEFAULT_BACKEND_DIRS.get(backend, ""))
        return await host.expand(given) if given else ""

    async def validate_environment(
        self, name: str, host_text: str, *, backend_dir: str | None, upload_dataset: bool, report: Reporter | None
    ) -> EnvironmentCheck:
        plan = await load_confirmed_plan(self.store, name)
        spec = await resolve_host(self.store, host_text)
        async with self.hosts.open(spec) as host:
            folder = await self._backend_dir(host, plan.cfg.name, plan.backend, backend_dir)
            check = await check_environment(
                host, self.store, plan.cfg, backend=plan.backend, backend_dir=folder,
                upload_dataset=upload_dataset, report=report,
            )  # fmt: skip
        async with update_execution(self.store, plan.cfg.name) as upd:
            upd.doc.name = plan.cfg.name
            upd.doc.backend_dirs[spec.identity] = folder
        return check

    async def dry_run(self, name: str, host_text: str, *, wait_seconds: float, report: Reporter | None) -> DryRunResult:
        plan = await load_confirmed_plan(self.store, name)
        spec = await resolve_host(self.store, host_text)
        async with self.hosts.open(spec) as host:
            folder = await self._backend_dir(host, plan.cfg.name, plan.backend, None)
            return await run_dry_run(
                host, self.store, plan, backend_dir=folder, wait_seconds=wait_seconds, now=self.clock(), report=report
            )

    async def launch(
        self, name: str, host_text: str, *, report: Reporter | None, resume: bool = False, fresh: bool = False
    ) -> LaunchResult:
        plan = await load_confirmed_plan(self.store, name, require_confirmed=False)
        spec = await resolve_host(self.store, host_text)
        await ensure_launch_ready(self.store, plan, spec.identity)  # refuse before reaching for the GPU host
        async with self.hosts.open(spec) as host:
            folder = await self._backend_dir(host, plan.cfg.name, plan.backend, None)
            return await launch_run(
                host, self.store, plan, backend_dir=folder, now=self.clock(), report=report, resume=resume, fresh=fresh
            )

    async def status(
        self,
        name: str,
        *,
        kind: RunKind,
        wait_seconds: float,
        log_lines: int,
        stop: bool,
        report: Reporter | None,
        samples: bool = True,
    ) -> RunReport:
        """Where the run stands; ``samples``: also list its sample images (new ones count as shown after this)."""
        plan = await load_confirmed_plan(self.store, name, require_confirmed=False)
        state = await read_execution(self.store, plan.cfg.name)
        handle = state.training if kind == "training" else state.dry_run
        if handle is None:
            what = "training run" if kind == "training" else "dry run"
            raise NotFoundError(
                f"No {what} of '{name}' was started yet.",
                kind=what,
                name=name,
                hint="Start it with launch_training" if kind == "training" else "Start it with train_dry_run.",
            )
        folder = self.hosts.runs_root / plan.cfg.name / "samples" / PurePosixPath(handle.run_dir).name
        async with self.hosts.open(handle.host) as host:
            return await follow_run(
                host, self.store, handle, plan.cfg, wait_seconds=wait_seconds, log_lines=log_lines, stop=stop,
                report=report, samples_dir=folder if samples else None,
            )  # fmt: skip

    async def status_with_previews(
        self,
        name: str,
        *,
        kind: RunKind,
        wait_seconds: float,
        log_lines: int,
        stop: bool,
        previews: int,
        report: Reporter | None,
    ) -> tuple[RunReport, list[SamplePreview]]:
        """``status`` plus small previews of the newest new sample images (newest first, at most ``previews``)."""
        result = await self.status(
            name, kind=kind, wait_seconds=wait_seconds, log_lines=log_lines, stop=stop, report=report
        )
        return result, await sample_previews(result.samples, count=previews) if previews else []

    async def evaluate(
        self,
        name: str,
        *,
        weights: list[float] | None,
        prompts: list[str] | None,
        seed: int | None,
        submit: Submitter | None = None,
    ) -> tuple[EvalGrid, list[str]]:
        report = await self.status(
            name, kind="training", wait_seconds=0, log_lines=0, stop=False, report=None, samples=False
        )
        plan = await load_confirmed_plan(self.store, name, require_confirmed=False)
        grid = build_eval_grid(plan.cfg, report.checkpoints, weights=weights, prompts=prompts, seed=seed)
        if report.state not in ("succeeded",):
            grid.notes.insert(0, f"The run is {report.state}: this grid covers the files saved so far.")
        if submit is not None:
            await submit_grid(grid, submit)
        notices = await write_eval_md(self.store, grid)
        return grid, notices
