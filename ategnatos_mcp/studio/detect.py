"""Environment detection: local GPUs via nvidia-smi, disk, provider keys, ComfyUI reachability."""

from __future__ import annotations

import csv
import io
import platform
import re
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

import anyio

from ategnatos_mcp.cuda_matrix import cuda_matrix
from ategnatos_mcp.studio.models import ComfyUIServerInfo, Environment, GpuInfo

__all__ = [
    "GpuReport",
    "describe_environment",
    "detect_environment",
    "detect_gpus",
    "parse_gpu_csv",
    "ServerProbe",
    "server_info",
]

GPU_QUERY = "index,name,memory.total,memory.used,driver_version,utilization.gpu"
_CUDA = re.compile(r"CUDA Version:\s*([0-9.]+)")


class GpuReport:
    """What nvidia-smi said: the GPUs, the driver and CUDA versions, or why there are none."""

    def __init__(
        self, gpus: list[GpuInfo], driver: str | None = None, cuda: str | None = None, problem: str | None = None
    ) -> None:
        self.gpus, self.driver, self.cuda, self.problem = gpus, driver, cuda, problem


def _int(text: str) -> int | None:
    match = re.search(r"\d+", text)
    return int(match.group()) if match else None


def parse_gpu_csv(text: str) -> tuple[list[GpuInfo], str | None]:
    """Parse ``nvidia-smi --query-gpu=... --format=csv`` output (header line included)."""
    rows = [row for row in csv.reader(io.StringIO(text), skipinitialspace=True) if row]
    if not rows:
        return [], None
    header = [h.split(" [")[0].strip() for h in rows[0]]
    gpus: list[GpuInfo] = []
    driver = None
    for row in rows[1:]:
        values = dict(zip(header, (cell.strip() for cell in row), strict=False))
        driver = values.get("driver_version") or driver
        gpus.append(
            GpuInfo(
                index=_int(values.get("index", "")) or len(gpus),
                name=values.get("name", "unknown GPU"),
                memory_total_mib=_int(values.get("memory.total", "")) or 0,
                memory_used_mib=_int(values.get("memory.used", "")),
                utilization_percent=_int(values.get("utilization.gpu", "")),
            )
        )
    return gpus, driver


async def _run(command: Sequence[str], timeout: float) -> tuple[int, str]:
    with anyio.fail_after(timeout):
        done = await anyio.run_process(list(command), check=False, stderr=subprocess.STDOUT)
    return done.returncode, done.stdout.decode("utf-8", "replace")


async def detect_gpus(nvidia_smi: str = "nvidia-smi", *, timeout: float = 10.0) -> GpuReport:
    """Ask nvidia-smi which GPUs this machine has. Never raises: a missing or failing tool is a plain reason."""
    try:
        code, out = await _run([nvidia_smi, f"--query-gpu={GPU_QUERY}", "--format=csv"], timeout)
    except FileNotFoundError:
        return GpuReport([], problem="nvidia-smi is not installed, so no NVIDIA GPU or driver was found here")
    except TimeoutError:
        return GpuReport([], problem=f"nvidia-smi did not answer within {timeout:.0f} s; the driver may be stuck")
    except OSError as exc:
        return GpuReport([], problem=f"nvidia-smi could not be started ({exc.strerror})")
    if code != 0:
        first = out.strip().splitlines()[0] if out.strip() else f"exit status {code}"
        if "no devices were found" in out.casefold():
            return GpuReport([], problem="the NVIDIA driver is installed but found no GPU")
        return GpuReport([], problem=f"nvidia-smi failed: {first}")
    gpus, driver = parse_gpu_csv(out)
    cuda = None
    try:
        code, banner = await _run([nvidia_smi], timeout)
        if match := _CUDA.search(banner):
            cuda = match.group(1)
    except (OSError, TimeoutError):
        pass
    return GpuReport(gpus, driver=driver, cuda=cuda, problem=None if gpus else "nvidia-smi listed no GPU")


ComfyProbe = Callable[[list[str]], Awaitable[list[ComfyUIServerInfo]]]


async def detect_environment(
    *,
    now: datetime,
    disk_path: Path,
    provider_keys: dict[str, bool],
    comfyui_urls: list[str],
    probe_comfyui: ComfyProbe,
    nvidia_smi: str = "nvidia-smi",
) -> Environment:
    """Detect everything at once (GPU, disk and ComfyUI checks run concurrently)."""
    report: GpuReport | None = None
    comfy: list[ComfyUIServerInfo] = []

    async def gpus() -> None:
        nonlocal report
        report = await detect_gpus(nvidia_smi)

    async def servers() -> None:
        nonlocal comfy
        comfy = await probe_comfyui(comfyui_urls) if comfyui_urls else []

    async with anyio.create_task_group() as tg:
        tg.start_soon(gpus)
        tg.start_soon(servers)
    assert report is not None
    existing = disk_path if disk_path.exists() else Path(disk_path.anchor or "/")
    usage = shutil.disk_usage(existing)
    return Environment(
        detected_at=now,
        gpus=report.gpus,
        driver_version=report.driver,
        cuda_version=report.cuda,
        gpu_problem=report.problem,
        disk_free_gb=round(usage.free / 1e9, 1),
        disk_total_gb=round(usage.total / 1e9, 1),
        comfyui=comfy,
        provider_keys=provider_keys,
        platform=f"{platform.system()} {platform.machine()}",
    )


class ServerProbe(Protocol):
    """What a ComfyUI probe found (the comfyui package's ``ComfyUIProbe`` fits)."""

    @property
    def url(self) -> str: ...
    @property
    def reachable(self) -> bool: ...
    @property
    def version(self) -> str | None: ...
    @property
    def models(self) -> Mapping[str, list[str]]: ...
    @property
    def error(self) -> str | None: ...


def server_info(probe: ServerProbe) -> ComfyUIServerInfo:
    """What the inventory records of one probed ComfyUI server."""
    return ComfyUIServerInfo(
        url=probe.url,
        reachable=probe.reachable,
        version=probe.version,
        models={kind: len(names) for kind, names in probe.models.items()},
        error=probe.error,
    )


def describe_environment(env: Environment) -> list[str]:
    """The environment in plain sentences, one per line."""
    lines = []
    if env.gpus:
        lines.extend(f"GPU {g.index}: {g.name}, {g.memory_total_mib / 1024:.0f} GB memory" for g in env.gpus)
        lines.append(f"Driver {env.driver_version or '?'}, CUDA {env.cuda_version or '?'}.")
        advice = cuda_matrix().advice(env.driver_version, gpu_name=env.gpus[0].name)
        if advice:
            lines.append(advice)
    else:
        lines.append(f"No local GPU: {env.gpu_problem}. Rented GPUs (gpu_offers) can do the heavy work.")
    if env.disk_free_gb is not None:
        lines.append(f"Disk: {env.disk_free_gb:.0f} GB free of {env.disk_total_gb:.0f} GB.")
    for server in env.comfyui:
        if server.reachable:
            counts = ", ".join(f"{n} {folder}" for folder, n in server.models.items() if n) or "no models listed"
            lines.append(f"ComfyUI at {server.url} answers (version {server.version or '?'}; {counts}).")
        else:
            lines.append(server.error or f"ComfyUI at {server.url} does not answer.")
    keys = [name for name, present in env.provider_keys.items() if present]
    lines.append(f"GPU cloud keys set: {', '.join(keys)}." if keys else "No GPU cloud API keys are set.")
    return lines
