"""Start a run under the supervisor on a host, read its status back, wait for it, stop it.

A run folder ``<host base>/runs/<kind>-<stamp>/`` holds ``spec.json`` (what the supervisor runs),
``status.json`` (written by the supervisor), ``train.log`` and the run's own copy of the backend files
(the supervisor edits the batch size there on an OOM retry; the planned files stay as confirmed).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from importlib import resources

import anyio
import anyio.to_thread
from pydantic import ValidationError

from ategnatos_mcp.errors import StateError
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.training import RenderedBackend, RunPaths, TrainingConfig, render_backend
from ategnatos_mcp.training.execution.hosts import TrainingHost
from ategnatos_mcp.training.execution.ladder import memory_rungs
from ategnatos_mcp.training.execution.models import HostSpec, RunHandle, RunKind, SupervisorStatus, TrainingProgress
from ategnatos_mcp.training.execution.monitor import OOM_IDS, parse_log, progress_regex, signatures
from ategnatos_mcp.training.models import DRY_RUN_STEPS

__all__ = [
    "host_dataset_dir",
    "host_label",
    "never_started",
    "parse_run_log",
    "read_log_tail",
    "read_status",
    "render_for_host",
    "start_run",
    "stop_run",
    "wait_for_run",
]

_LOG_TAIL_BYTES = 256 * 1024


async def host_dataset_dir(host: TrainingHost, cfg: TrainingConfig) -> str:
    """Where the trainer reads the dataset: the project's folder locally, a synced copy on an SSH host."""
    if host.spec.kind == "local":
        return cfg.dataset_path
    return f"{await host.base_dir(cfg.name)}/dataset"


def supervisor_source(module: str = "supervisor_script") -> str:
    """The supervisor script (or its config edits, ``supervisor_edits``), shipped as package data."""
    return resources.files("ategnatos_mcp.training.execution").joinpath(f"{module}.py").read_text("utf-8")


def render_for_host(
    cfg: TrainingConfig,
    backend: str,
    *,
    dataset_dir: str,
    run_dir: str,
    output_dir: str,
    dry_run: bool,
    dry_run_steps: int = DRY_RUN_STEPS,
) -> RenderedBackend:
    """The backend's files and command with the host's own paths."""
    paths = RunPaths(dataset_dir=dataset_dir, config_dir=f"{run_dir}/config", output_dir=output_dir)
    return render_backend(cfg, backend, paths, dry_run=dry_run, dry_run_steps=dry_run_steps)  # type: ignore[arg-type]


def _edits(rendered: RenderedBackend, config_dir: str) -> list[dict[str, object]]:
    """Which files hold the batch size and gradient accumulation (error-signatures.md, recovery notes)."""
    edits: list[dict[str, object]] = []
    for filename in rendered.files:
        path = f"{config_dir}/{filename}"
        if filename.endswith("-dataset.toml"):
            edits.append({"path": path, "format": "toml", "batch_keys": ["batch_size"], "accumulation_key": None})
        elif filename.endswith(".toml"):
            edits.append(
                {
                    "path": path,
                    "format": "toml",
                    "batch_keys": ["train_batch_size"],
                    "accumulation_key": "gradient_accumulation_steps",
                }
            )
        elif filename.endswith("config.json"):
            edits.append(
                {
                    "path": path,
                    "format": "json",
                    "batch_keys": ["train_batch_size"],
                    "accumulation_key": "gradient_accumulation_steps",
                }
            )
        elif filename.endswith("multidatabackend.json"):
            edits.append({"path": path, "format": "json", "batch_keys": ["train_batch_size"], "accumulation_key": None})
        elif filename.endswith((".yaml", ".yml")):
            edits.append(
                {
                    "path": path,
                    "format": "yaml",
                    "batch_keys": ["batch_size"],
                    "accumulation_key": "gradient_accumulation_steps",
                }
            )
    return edits


def _job_name(rendered: RenderedBackend) -> str | None:
    for filename, text in rendered.files.items():
        if filename.endswith((".yaml", ".yml")):
            for line in text.splitlines():
                if line.startswith("  name: "):
                    return line.split(":", 1)[1].strip().strip("'\"")
    return None


async def start_run(
    host: TrainingHost,
    *,
    kind: RunKind,
    cfg: TrainingConfig,
    backend: str,
    backend_dir: str,
    dataset_dir: str,
    now: datetime,
    max_halvings: int = 3,
    hang_seconds: float = 600.0,
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
    batch: tuple[int, int] | None = None,
    dry_run_steps: int = DRY_RUN_STEPS,
    start_rung: int = 0,
    before_start: Callable[[RunHandle], Awaitable[RunHandle]] | None = None,
) -> RunHandle:
    """Write the run's files and start the supervisor detached; returns once it has written its status.

    ``batch`` (batch size, gradient accumulation) and ``start_rung`` (memory savers on) start at another rung than
    the plan's: the one an earlier run's OOM ladder reached (the supervisor edits its copy of the files before the
    first attempt). The spec carries every memory-saver rung of this backend, rendered (see ``ladder.py``).
    ``before_start`` gets the run's handle (and may complete it) just before the supervisor starts: the caller records
    it there, so a server killed from then on leaves a run its records know (see ``never_started``).

    Raises:
        StateError: the supervisor did not come up.
    """
    base = await host.base_dir(cfg.name)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    run_dir = f"{base}/runs/{kind}-{stamp}"
    for n in range(2, 100):  # a relaunch within the same second (a resume right after a stop) gets its own folder
        if await host.read_text(f"{run_dir}/spec.json") is None:
            break
        run_dir = f"{base}/runs/{kind}-{stamp}-{n}"
    output_dir = f"{base}/output" + ("/dryrun" if kind == "dry_run" else "")
    rendered = render_for_host(
        cfg,
        backend,
        dataset_dir=dataset_dir,
        run_dir=run_dir,
        output_dir=f"{base}/output",
        dry_run=kind == "dry_run",
        dry_run_steps=dry_run_steps,
    )
    config_dir = f"{run_dir}/config"
    for filename, text in rendered.files.items():
        await host.write_text(f"{config_dir}/{filename}", text)

    def files_of(variant: TrainingConfig) -> dict[str, str]:
        return render_for_host(
            variant, backend, dataset_dir=dataset_dir, run_dir=run_dir, output_dir=f"{base}/output",
            dry_run=kind == "dry_run", dry_run_steps=dry_run_steps,
        ).files  # fmt: skip

    rungs = [
        {**rung.model_dump(exclude={"files"}), "files": {f"{config_dir}/{n}": t for n, t in rung.files.items()}}
        for rung in memory_rungs(cfg, backend, files_of)
    ]
    workdir = rendered.workdir if rendered.workdir.startswith("/") else backend_dir
    progress, loss = progress_regex(backend, _job_name(rendered))
    start_batch, start_accumulation = batch or (cfg.batch_size, cfg.gradient_accumulation)
    spec = {
        "command": [*rendered.command, *(extra_args or [])],
        "workdir": workdir,
        "env": env or {},
        "run_dir": run_dir,
        "backend": backend,
        "batch_size": start_batch,
        "gradient_accumulation": start_accumulation,
        "edit_before_start": (start_batch, start_accumulation) != (cfg.batch_size, cfg.gradient_accumulation),
        "max_halvings": max_halvings,
        "hang_seconds": hang_seconds,
        "edits": _edits(rendered, config_dir),
        "rungs": rungs,
        "start_rung": min(start_rung, len(rungs)),
        "signatures": [{"id": s["id"], "regex": s["regex"]} for s in signatures()],
        "oom_ids": list(OOM_IDS),
        "progress_regex": progress,
        "loss_regex": loss,
        "heartbeat_command": host.heartbeat_command,
    }
    await host.write_text(f"{run_dir}/spec.json", json.dumps(spec, indent=1, ensure_ascii=False))
    script = f"{base}/supervisor.py"
    await host.write_text(f"{base}/supervisor_edits.py", supervisor_source("supervisor_edits"))
    await host.write_text(script, supervisor_source())
    process = f"{'dryrun' if kind == 'dry_run' else 'train'}-{cfg.name}"
    handle = RunHandle(
        kind=kind,
        host=host.spec,
        backend=backend,
        config_hash=cfg.config_hash,
        run_dir=run_dir,
        output_dir=output_dir,
        process_name=process,
        job_name=_job_name(rendered),
        started_at=now,
        batch_size=start_batch,
        gradient_accumulation=start_accumulation,
        memory_savers=[str(r["label"]) for r in rungs[:start_rung]],
    )
    if before_start is not None:
        handle = await before_start(handle)
    await host.start(
        process, [host.supervisor_python, script, f"{run_dir}/spec.json"], cwd=run_dir, log=f"{run_dir}/supervisor.out"
    )
    with anyio.move_on_after(20):
        while (await read_status(host, handle)).state == "missing":
            await anyio.sleep(0.05)
        return handle
    out = await host.read_text(f"{run_dir}/supervisor.out", tail_bytes=2000)
    raise StateError(
        f"The training supervisor did not start on {host.spec.identity}.",
        document=run_dir,
        hint=f"Check that '{host.supervisor_python}' runs there. Its output: {(out or '(none)').strip()[-300:]}",
    )


async def never_started(host: TrainingHost, handle: RunHandle) -> bool:
    """Whether a run recorded just before its supervisor was to start never ran: the server was killed in between
    (or the supervisor could not start). Its first act is to write its status, so a run folder without one on this
    host is a start that did not happen. Ask only while holding the run's start claim (``claim_start``)."""
    return handle.host == host.spec and await host.read_text(f"{handle.run_dir}/status.json") is None


async def read_status(host: TrainingHost, handle: RunHandle) -> SupervisorStatus:
    """The supervisor's status; ``lost`` when it died without saying how it ended."""
    path = f"{handle.run_dir}/status.json"
    status = SupervisorStatus(state="missing")
    for _ in range(2):
        text = await host.read_text(path)
        if not text:
            return SupervisorStatus(state="missing")
        try:
            status = SupervisorStatus.model_validate(json.loads(text))
        except (ValueError, ValidationError):
            return SupervisorStatus(state="missing", message="status.json could not be read")
        if status.finished or await host.alive(handle.process_name, status.pid):
            return status
        # It may have written its last status just before exiting: look once more before calling it lost.
    return status.model_copy(
        update={"state": "lost", "message": "The supervisor is gone without recording how the run ended."}
    )


async def read_log_tail(host: TrainingHost, handle: RunHandle, max_bytes: int = _LOG_TAIL_BYTES) -> str:
    return await host.read_text(f"{handle.run_dir}/train.log", tail_bytes=max_bytes) or ""


async def parse_run_log(handle: RunHandle, log: str) -> TrainingProgress:
    """``parse_log`` in a worker thread (a 256 KB tail takes tens of milliseconds)."""
    return await anyio.to_thread.run_sync(functools.partial(parse_log, handle.backend, log, job_name=handle.job_name))


async def stop_run(host: TrainingHost, handle: RunHandle) -> SupervisorStatus:
    """Ask the supervisor to stop (stop file + signal) and wait for it to record ``stopped``."""
    await host.write_text(f"{handle.run_dir}/stop", "stop requested\n")
    status = await read_status(host, handle)
    if not status.finished:
        await host.stop(handle.process_name, status.pid)
    with anyio.move_on_after(30):
        while not (status := await read_status(host, handle)).finished:
            await anyio.sleep(0.1)
    return status


async def wait_for_run(
    host: TrainingHost, handle: RunHandle, seconds: float, report: Progress | None = None
) -> SupervisorStatus:
    """Follow the run for at most ``seconds``, reporting progress; returns the last status seen."""
    status = await read_status(host, handle)
    with anyio.move_on_after(seconds):
        while not status.finished:
            if report is not None:
                total = float(status.total_steps) if status.total_steps else None
                await report(float(status.step), total, status.message or status.state)
            await anyio.sleep(0.25)
            status = await read_status(host, handle)
    return status


def host_label(spec: HostSpec) -> str:
    return "this machine" if spec.kind == "local" else spec.identity
