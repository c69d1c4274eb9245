"""One entry point per tool: resolve the host, load the confirmed plan, do the step, keep the records."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path, PurePosixPath

import anyio
from anyio.abc import TaskGroup

from ategnatos_mcp.errors import NotFoundError
from ategnatos_mcp.remote.models import Progress
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training import EnvironmentReport, read_gates, record_environment_gate
from ategnatos_mcp.training.execution.dryrun import DryRunResult, run_dry_run
from ategnatos_mcp.training.execution.environment import EnvironmentCheck, check_environment
from ategnatos_mcp.training.execution.hosts import HostRegistry, TrainingHost, resolve_host
from ategnatos_mcp.training.execution.launch import LaunchResult, check_start_choice, ensure_launch_ready, launch_run
from ategnatos_mcp.training.execution.models import HostSpec, RunKind, UploadProgress
from ategnatos_mcp.training.execution.plans import (
    ConfirmedPlan,
    load_confirmed_plan,
    read_execution,
    update_execution,
)
from ategnatos_mcp.training.execution.runner import Reporter, host_dataset_dir
from ategnatos_mcp.training.execution.samples import SamplePreview, sample_previews
from ategnatos_mcp.training.execution.tracking import RunReport, follow_run
from ategnatos_mcp.training.execution.uploads import DatasetUploads, UploadJob

__all__ = ["DEFAULT_BACKEND_DIRS", "TrainingRuns"]

# Where remote_deploy puts kohya; the others follow the same convention.
DEFAULT_BACKEND_DIRS = {"kohya": "~/sd-scripts", "ai-toolkit": "~/ai-toolkit", "simpletuner": ""}


class TrainingRuns:
    """Gate 3, gate 4, launch and status for the runs of one grimoire (evaluation: ``training/evaluation``)."""

    def __init__(
        self,
        store: GrimoireStore,
        hosts: HostRegistry,
        clock: Callable[[], datetime],
        task_group: TaskGroup | None = None,
    ) -> None:
        self.store = store
        self.hosts = hosts
        self.clock = clock
        self.uploads = DatasetUploads(task_group)  # gate-3 uploads that go on after the call returns

    async def _backend_dir(self, host: TrainingHost, name: str, backend: str, given: str | None) -> str:
        if given is None:
            state = await read_execution(self.store, name)
            given = state.backend_dirs.get(host.spec.identity, DEFAULT_BACKEND_DIRS.get(backend, ""))
        return await host.expand(given) if given else ""

    async def validate_environment(
        self,
        name: str,
        host_text: str,
        *,
        backend_dir: str | None,
        upload_dataset: bool,
        report: Reporter | None,
        wait_seconds: float | None = None,
    ) -> EnvironmentCheck:
        """Gate 3 on the host. A dataset upload to an SSH host runs in the background when the server has a task
        group: the call waits at most ``wait_seconds`` (None: until done) and a repeat call finds the same upload.
        """
        plan = await load_confirmed_plan(self.store, name)
        spec = await resolve_host(self.store, host_text)
        key = (plan.cfg.name, spec.identity)
        job = self.uploads.get(key)
        background = upload_dataset and spec.kind != "local" and self.uploads.can_run_in_background
        if job is None and background and wait_seconds is not None:
            # Recorded first, so the check the upload ends with is never overwritten by this note.
            await record_environment_gate(
                self.store, plan.cfg.name, host=spec.identity,
                report=EnvironmentReport(passed=False, pending=True, problems=[f"The dataset is being sent to {spec.identity} "
                    "in the background; the check runs by itself once it has arrived (train_validate_environment "
                    "shows how far it got)."]),
            )  # fmt: skip
            job = self.uploads.get(key)  # another call may have started it meanwhile: never send twice
            if job is None:
                job = self.uploads.start(
                    key,
                    UploadProgress(host=spec.identity, started_at=self.clock()),
                    functools.partial(self._upload_then_check, plan, spec, backend_dir),
                )
        if job is not None:
            return await self._follow_upload(key, job, plan.cfg.name, wait_seconds, report)
        async with self.hosts.open(spec) as host:
            folder = await self._backend_dir(host, plan.cfg.name, plan.backend, backend_dir)
            check = await check_environment(
                host, self.store, plan.cfg, backend=plan.backend, backend_dir=folder,
                upload_dataset=upload_dataset, report=report,
            )  # fmt: skip
        await self._remember_backend_dir(plan.cfg.name, spec.identity, folder)
        return check

    async def _remember_backend_dir(self, name: str, identity: str, folder: str) -> None:
        async with update_execution(self.store, name) as upd:
            upd.doc.name = name
            upd.doc.backend_dirs[identity] = folder

    async def _upload_then_check(
        self, plan: ConfirmedPlan, spec: HostSpec, backend_dir: str | None, job: UploadJob, on_bytes: Progress
    ) -> EnvironmentCheck:
        """The background part: send the dataset (only new or changed files), then run the gate-3 check."""
        async with self.hosts.open(spec) as host:
            folder = await self._backend_dir(host, plan.cfg.name, plan.backend, backend_dir)
            await host.put_dataset(Path(plan.cfg.dataset_path), await host_dataset_dir(host, plan.cfg), on_bytes)
            job.progress.state = "checking"
            check = await check_environment(
                host, self.store, plan.cfg, backend=plan.backend, backend_dir=folder, upload_dataset=False
            )
        await self._remember_backend_dir(plan.cfg.name, spec.identity, folder)
        return check.model_copy(update={"dataset_uploaded": True})

    async def _follow_upload(
        self, key: tuple[str, str], job: UploadJob, name: str, wait_seconds: float | None, report: Reporter | None
    ) -> EnvironmentCheck:
        """Wait for a background upload at most ``wait_seconds``; its check once done, else the progress so far."""
        with anyio.move_on_after(wait_seconds if wait_seconds is not None else math.inf):
            while not job.finished.is_set():
                if report is not None:
                    total = float(job.progress.total_bytes) if job.progress.total_bytes else None
                    await report(
                        float(job.progress.sent_bytes), total, f"Sending the dataset: {job.progress.describe()}"
                    )
                with anyio.move_on_after(0.5):
                    await job.finished.wait()
        if not job.finished.is_set():
            gates = await read_gates(self.store, name)
            problem = f"The dataset is still being sent to {key[1]}: {job.progress.describe()}."
            return EnvironmentCheck(
                name=name, host=key[1], passed=False, problems=[problem], facts={}, upload=job.progress, gates=gates
            )
        self.uploads.forget(key)
        if job.result is not None:
            return job.result
        problem = (
            f"Sending the dataset to {key[1]} failed: {job.progress.message}"
            + (f" {job.error.hint}" if job.error is not None and job.error.hint else "")
            + " Call train_validate_environment again with upload_dataset=true: what arrived is kept and only "
            "missing or changed files are sent."
        )
        gates = await record_environment_gate(
            self.store, name, host=key[1], report=EnvironmentReport(passed=False, problems=[problem])
        )
        return EnvironmentCheck(
            name=name, host=key[1], passed=False, problems=[problem], facts={}, upload=job.progress, gates=gates
        )

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
        check_start_choice(resume=resume, fresh=fresh)
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
