"""Gate 3: is the training host ready for this exact plan? Python, torch + CUDA, GPU and free VRAM against the
plan's estimate, free disk, the backend installed, and the dataset present. One probe script, one round trip.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from pydantic import BaseModel, Field

from ategnatos_mcp.cuda_matrix import cuda_matrix
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training import (
    EnvironmentReport,
    GateState,
    RunPaths,
    TrainingConfig,
    record_environment_gate,
    render_backend,
)
from ategnatos_mcp.training.costs import vram_inputs
from ategnatos_mcp.training.execution.hosts import TrainingHost
from ategnatos_mcp.training.execution.models import HostSpec, UploadProgress
from ategnatos_mcp.training.execution.runner import host_dataset_dir
from ategnatos_mcp.training.vram import estimate_vram

__all__ = ["EnvironmentCheck", "check_environment", "probe_script"]

_MIN_PYTHON = (3, 10)
_CACHE_HEADROOM_GB = 5.0  # latent / text-encoder caches, optimizer state, logs

# Runs on the host with the backend's Python: standard library only, prints one JSON object.
_PROBE = r"""
import json, os, shutil, subprocess, sys, importlib.util
args = json.loads(sys.argv[1])
out = {"python": "%d.%d.%d" % sys.version_info[:3]}
try:
    import torch
    out["torch"] = torch.__version__
    out["cuda_available"] = bool(torch.cuda.is_available())
    out["torch_cuda"] = getattr(torch.version, "cuda", None)
except Exception as exc:
    # Plain words for the artist: the exception's class name would mean nothing to them.
    missing = isinstance(exc, ImportError) and getattr(exc, "name", None) == "torch"
    out["torch_error"] = "it is not installed" if missing else (str(exc) or "it failed to import")
try:
    smi = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.total,memory.free,driver_version", "--format=csv,noheader,nounits"],
        capture_output=True, text=True, timeout=30)
    if smi.returncode == 0 and smi.stdout.strip():
        out["gpus"] = [[p.strip() for p in line.split(",")] for line in smi.stdout.strip().splitlines()]
    else:
        out["nvidia_smi_error"] = (smi.stdout + smi.stderr).strip()[-300:] or "exit status %d" % smi.returncode
except (OSError, subprocess.SubprocessError) as exc:
    out["nvidia_smi_error"] = str(exc)
try:  # a query of its own: drivers older than 510 do not know compute_cap and would fail the one above
    cap = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=30)
    if cap.returncode == 0:
        out["compute_caps"] = [line.strip() for line in cap.stdout.splitlines() if line.strip()]
except (OSError, subprocess.SubprocessError):
    pass
probe = args["disk_path"]
while probe and not os.path.exists(probe):
    probe = os.path.dirname(probe)
out["disk_free_gb"] = round(shutil.disk_usage(probe or "/").free / 1e9, 1)
backend, folder = args["backend"], os.path.expanduser(args["backend_dir"] or "")
if backend == "simpletuner":
    out["backend_found"] = bool(shutil.which("simpletuner") or importlib.util.find_spec("simpletuner"))
else:
    out["backend_found"] = os.path.isfile(os.path.join(folder, args["script"]))
exts = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
count = 0
for root, _dirs, files in os.walk(args["dataset_dir"]):
    count += sum(1 for f in files if f.lower().endswith(exts))
out["dataset_images"] = count
out["dataset_found"] = os.path.isdir(args["dataset_dir"])
print(json.dumps(out))
"""


def probe_script() -> str:
    """The probe's source (standard library only)."""
    return _PROBE


class _Probe(BaseModel):
    """What the probe printed."""

    python: str = "0.0.0"
    torch: str | None = None
    torch_error: str | None = None
    cuda_available: bool = False
    torch_cuda: str | None = None
    gpus: list[list[str]] = Field(default_factory=list)
    compute_caps: list[str] = Field(default_factory=list)
    nvidia_smi_error: str | None = None
    disk_free_gb: float = 0.0
    backend_found: bool = False
    dataset_images: int = 0
    dataset_found: bool = False


class EnvironmentCheck(BaseModel):
    """What gate 3 found, and whether it passed."""

    name: str
    host: str
    passed: bool
    problems: list[str]
    facts: dict[str, str]
    warnings: list[str] = Field(default_factory=list)
    dataset_uploaded: bool = False
    upload: UploadProgress | None = Field(
        default=None, description="Set while the dataset is still being sent in the background (not checked yet)."
    )
    gates: GateState


def _script(cfg: TrainingConfig, backend: str) -> str:
    command = render_backend(cfg, backend, RunPaths(dataset_dir="d", config_dir="c", output_dir="o")).command  # type: ignore[arg-type]
    return next((part for part in command if part.endswith(".py")), "run.py")


def needed_disk_gb(cfg: TrainingConfig, dataset_gb: float) -> float:
    """A rough need: the dataset, every saved LoRA file (size grows with rank), caches."""
    lora_gb = cfg.network_rank * 0.006 * (4 if cfg.family in ("flux1", "sd35") else 1)
    saves = max(1, cfg.effective_epochs // max(cfg.save_every_epochs, 1))
    return round(dataset_gb + saves * lora_gb + _CACHE_HEADROOM_GB, 1)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _torch_problems(probe: _Probe, gpu: list[str] | None) -> list[str]:
    """PyTorch against the driver and the GPU (the CUDA matrix), else whether it sees a GPU at all."""
    driver = gpu[3] if gpu is not None and len(gpu) > 3 else None
    mismatch = cuda_matrix().check_torch(
        torch_version=probe.torch,
        torch_cuda=probe.torch_cuda,
        driver=driver,
        gpu_name=gpu[0] if gpu is not None else None,
        compute_cap=probe.compute_caps[0] if probe.compute_caps else None,
    )
    if mismatch:
        return mismatch
    if not probe.cuda_available:
        return ["PyTorch cannot see a CUDA GPU: it is a CPU-only build, or the GPU driver is not loaded."]
    return []


def _judge(cfg: TrainingConfig, probe: _Probe, need_disk: float) -> tuple[list[str], list[str], dict[str, str]]:
    problems: list[str] = []
    warnings: list[str] = []
    facts = {"python": probe.python}
    version = tuple(int(p) for p in probe.python.split(".")[:2] if p.isdigit())
    if version < _MIN_PYTHON:
        problems.append(f"Python {probe.python} is too old for the trainer; it needs 3.10 or newer.")
    usable = [g for g in probe.gpus if len(g) >= 3 and _number(g[1]) and _number(g[2])]
    gpu = usable[0] if usable else None  # trainers use GPU 0 unless told otherwise
    if probe.torch_error is not None:
        problems.append(
            f"PyTorch does not load there ({probe.torch_error}): install the trainer's requirements in the "
            "Python it uses."
        )
    else:
        facts["torch"] = f"{probe.torch} (CUDA {probe.torch_cuda})"
        problems += _torch_problems(probe, gpu)
    estimate = estimate_vram(vram_inputs(cfg))
    facts["vram needed"] = f"about {estimate.gb:g} GB (range {estimate.low_gb:g}-{estimate.high_gb:g})"
    if gpu is None:
        problems.append(f"No NVIDIA GPU answered nvidia-smi ({probe.nvidia_smi_error or 'no output'}).")
    else:
        name, total, free = gpu[0], float(gpu[1]) / 1024, float(gpu[2]) / 1024
        facts["gpu"] = f"{name}, {total:.1f} GB, {free:.1f} GB free"
        if len(gpu) > 3:
            facts["driver"] = gpu[3]
        if free < estimate.low_gb:
            problems.append(
                f"The GPU has {free:.1f} GB free but this plan needs about {estimate.gb:g} GB: close what uses the GPU, "
                "or re-plan with memory savers / a smaller batch (train_plan with gpu_vram_gb)."
            )
        elif free < estimate.gb:
            warnings.append(
                f"Tight: {free:.1f} GB free for about {estimate.gb:g} GB needed. If it runs out of memory the "
                "supervisor halves the batch (at most 3 times)."
            )
    facts["disk"] = f"{probe.disk_free_gb:g} GB free, about {need_disk:g} GB needed"
    if probe.disk_free_gb < need_disk:
        problems.append(
            f"Only {probe.disk_free_gb:g} GB of disk is free where the run writes; it needs about {need_disk:g} GB."
        )
    return problems, warnings, facts


async def check_environment(
    host: TrainingHost,
    store: GrimoireStore,
    cfg: TrainingConfig,
    *,
    backend: str,
    backend_dir: str,
    upload_dataset: bool = False,
    report: Progress | None = None,
) -> EnvironmentCheck:
    """Probe the host for ``cfg`` and record gate 3 for it."""
    local_dataset = Path(cfg.dataset_path)
    base = await host.base_dir(cfg.name)
    dataset_dir = await host_dataset_dir(host, cfg)
    uploaded = False
    if upload_dataset and host.spec.kind != "local":
        if report:
            await report(0, None, f"Sending the dataset to {host.spec.identity}")
        await host.put_dataset(local_dataset, dataset_dir, report)  # type: ignore[arg-type]
        uploaded = True
    if report:
        await report(0, None, f"Checking {host.spec.identity}")
    args = {
        "backend": backend,
        "backend_dir": backend_dir,
        "script": _script(cfg, backend),
        "dataset_dir": dataset_dir,
        "disk_path": base,
    }
    done = await host.run(f"{host.python} -c {shlex.quote(_PROBE)} {shlex.quote(json.dumps(args))}", timeout=120)
    try:
        probe = _Probe.model_validate_json(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        probe = None
    if probe is None:
        problems = [
            f"'{host.python}' did not run on {host.spec.identity}: {(done.stderr or done.stdout).strip()[-300:]}"
        ]
        return await _record(store, cfg, host.spec, problems, [], {}, uploaded)
    dataset_gb = await _dataset_gb(local_dataset)
    problems, warnings, facts = _judge(cfg, probe, needed_disk_gb(cfg, dataset_gb))
    facts["backend"] = f"{backend} in {backend_dir or '(on PATH)'}"
    if not probe.backend_found:
        where = "on PATH or importable" if backend == "simpletuner" else f"{backend_dir}/{args['script']}"
        problems.append(
            f"The {backend} trainer is not installed where expected ({where}). Install it (remote_deploy) or pass "
            "backend_dir."
        )
    images = probe.dataset_images
    facts["dataset"] = f"{images} images in {dataset_dir}"
    if images < cfg.image_count:
        hint = " Call again with upload_dataset=true to send it." if host.spec.kind != "local" else ""
        problems.append(
            f"The dataset on the host has {images} of the plan's {cfg.image_count} images ({dataset_dir}).{hint}"
        )
    return await _record(store, cfg, host.spec, problems, warnings, facts, uploaded)


async def _dataset_gb(folder: Path) -> float:
    import anyio.to_thread

    def size() -> float:
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e9 if folder.is_dir() else 0.0

    return await anyio.to_thread.run_sync(size)


async def _record(
    store: GrimoireStore,
    cfg: TrainingConfig,
    spec: HostSpec,
    problems: list[str],
    warnings: list[str],
    facts: dict[str, str],
    uploaded: bool,
) -> EnvironmentCheck:
    report = EnvironmentReport(passed=not problems, problems=problems, facts=facts)
    gates = await record_environment_gate(store, cfg.name, host=spec.identity, report=report)
    return EnvironmentCheck(
        name=cfg.name,
        host=spec.identity,
        passed=not problems,
        problems=problems,
        facts=facts,
        warnings=warnings,
        dataset_uploaded=uploaded,
        gates=gates,
    )
