"""One entry point per tool: resolve the host, load the confirmed plan, do the step, keep the records."""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path, PurePosixPath

import anyio
from anyio.abc import TaskGroup

from ategnatos_mcp.errors import AtegnatosError, NotFoundError
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training import (
    EnvironmentReport,
    read_gates,
    record_environment_gate,
    record_training_started,
    refuse_if_trained,
)
from ategnatos_mcp.training.execution.dryrun import DryRunResult, check_dry_run_steps, run_dry_run
from ategnatos_mcp.training.execution.environment import EnvironmentCheck, check_environment
from ategnatos_mcp.training.execution.hosts import HostRegistry, TrainingHost, resolve_host
from ategnatos_mcp.training.execution.launch import LaunchResult, check_start_choice, ensure_launch_ready, launch_run
from ategnatos_mcp.training.execution.models import HostSpec, RunHandle, RunKind, UploadProgress
from ategnatos_mcp.training.execution.plans import (
    ConfirmedPlan,
    claim_start,
    claim_upload,
    load_confirmed_plan,
    read_execution,
    sending_elsewhere,
    update_execution,
    upload_holder,
)
from ategnatos_mcp.training.execution.runner import host_dataset_dir
from ategnatos_mcp.training.execution.samples import SamplePreview, sample_previews
from ategnatos_mcp.training.execution.tracking import RunReport, follow_run
from ategnatos_mcp.training.execution.uploads import DatasetUploads, UploadJob
from ategnatos_mcp.training.models import DRY_RUN_STEPS

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
        self._launching: dict[str, anyio.Lock] = {}

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
        report: Progress | None,
        wait_seconds: float | None = None,
    ) -> EnvironmentCheck:
        """Gate 3 on the host. A dataset upload to an SSH host runs in the background when the server has a task
        group: the call waits at most ``wait_seconds`` (None: until done) and a repeat call finds the same upload.
        """
        plan = await load_confirmed_plan(self.store, name)
        refuse_if_trained(plan.gates, "an environment check")  # before any upload
        spec = await resolve_host(self.store, host_text)
        key = (plan.cfg.name, spec.identity)
        job = self.uploads.get(key)
        sending = upload_dataset and spec.kind != "local"
        if job is None and sending and (holder := upload_holder(self.store, plan.cfg.name, spec.identity)):
            raise sending_elsewhere(plan.cfg.name, spec.identity, holder)  # never a second upload of it
        background = sending and self.uploads.can_run_in_background
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
        async with contextlib.AsyncExitStack() as stack:
            if sending:
                await stack.enter_async_context(claim_upload(self.store, plan.cfg.name, spec.identity))
            host = await stack.enter_async_context(self.hosts.open(spec))
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
        async with claim_upload(self.store, plan.cfg.name, spec.identity), self.hosts.open(spec) as host:
            folder = await self._backend_dir(host, plan.cfg.name, plan.backend, backend_dir)
            await host.put_dataset(Path(plan.cfg.dataset_path), await host_dataset_dir(host, plan.cfg), on_bytes)
            job.progress.state = "checking"
            check = await check_environment(
                host, self.store, plan.cfg, backend=plan.backend, backend_dir=folder, upload_dataset=False
            )
        await self._remember_backend_dir(plan.cfg.name, spec.identity, folder)
        return check.model_copy(update={"dataset_uploaded": True})

    async def _follow_upload(
        self, key: tuple[str, str], job: UploadJob, name: str, wait_seconds: float | None, report: Progress | None
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

    async def dry_run(
        self, name: str, host_text: str, *, wait_seconds: float, report: Progress | None, steps: int = DRY_RUN_STEPS
    ) -> DryRunResult:
        check_dry_run_steps(steps)  # before anything else: a plain word on the argument first
        plan = await load_confirmed_plan(self.store, name)
        refuse_if_trained(plan.gates, "a dry run")  # its dry-run folder is kept as it was too
        spec = await resolve_host(self.store, host_text)
        async with self.hosts.open(spec) as host:
            folder = await self._backend_dir(host, plan.cfg.name, plan.backend, None)
            return await run_dry_run(
                host, self.store, plan, backend_dir=folder, wait_seconds=wait_seconds, now=self.clock(), report=report,
                steps=steps,
            )  # fmt: skip

    async def launch(
        self, name: str, host_text: str, *, report: Progress | None, resume: bool = False, fresh: bool = False
    ) -> LaunchResult:
        check_start_choice(resume=resume, fresh=fresh)
        plan = await load_confirmed_plan(self.store, name, require_confirmed=False)
        spec = await resolve_host(self.store, host_text)
        # refuse before reaching for the GPU host
        await ensure_launch_ready(self.store, plan, spec.identity, resume=resume, fresh=fresh)
        # Two calls of this server wait for each other (the second then hears the run is going); every other server
        # on this project is kept out by the claim, and launch_run re-checks under it whether a run was started
        # meanwhile, recording its own before letting go.
        async with (
            self._launching.setdefault(plan.cfg.name, anyio.Lock()),
            claim_start(self.store, plan.cfg.name, "training"),
        ):
            async with self.hosts.open(spec) as host:
                folder = await self._backend_dir(host, plan.cfg.name, plan.backend, None)
                return await launch_run(
                    host, self.store, plan, backend_dir=folder, now=self.clock(), report=report, resume=resume,
                    fresh=fresh,
                )  # fmt: skip

    async def refresh_outcome(self, name: str) -> str | None:
        """Look on the host whether a training run recorded as running has ended, and keep how (the gates and
        train_gates then say so). Returns a notice when the host could not be asked.

        A run started before the gates recorded training runs gets its record here.
        """
        gates = await read_gates(self.store, name)
        handle = (await read_execution(self.store, name)).training
        if handle is None or (gates.training_run is not None and gates.training_run.state != "running"):
            return None
        notice = None
        try:
            await self.status(
                name, kind="training", wait_seconds=0, log_lines=0, stop=False, report=None, samples=False
            )
        except AtegnatosError as exc:
            notice = f"Could not ask {handle.host.identity} how the training run stands: {exc.message}"
        if (await read_gates(self.store, name)).training_run is None:
            await record_training_started(
                self.store, name, host=handle.host.identity, config_hash=handle.config_hash,
                started_at=handle.started_at, resumed=False,
            )  # fmt: skip
        return notice

    async def status(
        self,
        name: str,
        *,
        kind: RunKind,
        wait_seconds: float,
        log_lines: int,
        stop: bool,
        report: Progress | None,
        samples: bool = True,
        stall_seconds: float = 15 * 60,
    ) -> RunReport:
        """Where the run stands; ``samples``: also list its sample images (new ones count as shown after this).

        ``stop`` ends it first (launch_training's stop; training_status only reads). A run whose log has been still
        for ``stall_seconds`` is reported as stalled, with what to do.
        """
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
                report=report, samples_dir=folder if samples else None, now=self.clock(), stall_seconds=stall_seconds,
            )  # fmt: skip

    async def stop(self, name: str) -> tuple[RunReport, RunHandle, bool]:
        """Stop the training run of ``name`` (or its dry run, when only that runs) and wait until it is recorded.

        A run that has already ended is left as it is and reported as it ended (the flag says whether this call
        stopped it).

        Raises:
            NotFoundError: nothing was ever started for ``name``.
        """
        plan = await load_confirmed_plan(self.store, name, require_confirmed=False)
        state = await read_execution(self.store, plan.cfg.name)
        kind: RunKind = "training" if state.training is not None else "dry_run"  # a training run follows its dry run
        if state.training is None and state.dry_run is None:
            raise NotFoundError(
                f"Nothing of '{name}' was started, so there is nothing to stop.",
                kind="training run",
                name=name,
                hint=f"train_gates(name='{name}') shows where it stands.",
            )
        handle = state.training or state.dry_run
        assert handle is not None
        before = await self.status(name, kind=kind, wait_seconds=0, log_lines=5, stop=False, report=None, samples=False)
        if before.status.finished:
            return before, handle, False
        report = await self.status(name, kind=kind, wait_seconds=0, log_lines=5, stop=True, report=None, samples=False)
        return report, handle, True

    async def status_with_previews(
        self,
        name: str,
        *,
        kind: RunKind,
        wait_seconds: float,
        log_lines: int,
        previews: int,
        report: Progress | None,
        stall_seconds: float = 15 * 60,
    ) -> tuple[RunReport, list[SamplePreview]]:
        """``status`` (read only: it never stops the run) plus small previews of the newest new sample images
        (newest first, at most ``previews``)."""
        result = await self.status(
            name, kind=kind, wait_seconds=wait_seconds, log_lines=log_lines, stop=False, report=report,
            stall_seconds=stall_seconds,
        )  # fmt: skip
        return result, await sample_previews(result.samples, count=previews) if previews else []
