"""The CUDA / PyTorch / driver matrix shipped with the studio skill (``skills/studio/reference/cuda-matrix.json``).

Used to answer "which PyTorch build works on this driver and this GPU?" before any GPU time is spent:
``remote_deploy`` installs the build ``choose_torch`` picks, gate 3 (``check_torch``) names a mismatch with its
fix, and ``studio_detect`` says which build suits the local driver (``advice``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ategnatos_mcp.skills_catalog import find_skills_root

__all__ = [
    "CudaMatrix",
    "CudaRelease",
    "GpuGeneration",
    "PytorchRelease",
    "TorchChoice",
    "cuda_matrix",
    "load_cuda_matrix",
    "version_tuple",
]

_VERSION = re.compile(r"^\d+(\.\d+){1,3}$")


def version_tuple(value: str) -> tuple[int, ...]:
    """'570.26' -> (570, 26); compares driver and CUDA versions numerically."""
    return tuple(int(part) for part in value.split("."))


def _parsed(value: str | None) -> tuple[int, ...] | None:
    """A version tuple, or None for text that is not a dotted version (e.g. '[N/A]')."""
    text = (value or "").strip()
    return version_tuple(text) if _VERSION.match(text) else None


# GPU names nvidia-smi prints, by generation (the matrix names them; compute_cap is not queryable on old drivers).
_GENERATION_NAMES = (
    ("12.0", re.compile(r"RTX\s*50\d\d|Blackwell|\bB[12]00\b|GB200", re.IGNORECASE)),
    ("9.0", re.compile(r"\bG?H[12]00\b", re.IGNORECASE)),
    ("8.9", re.compile(r"RTX\s*40\d\d|\bL4\b|\bL40S?\b|RTX\s*\d000\s*Ada", re.IGNORECASE)),
    ("8.6", re.compile(r"RTX\s*30\d\d|\bA10G?\b|\bA40\b|RTX\s*A\d000|\bA16\b", re.IGNORECASE)),
    ("8.0", re.compile(r"\bA100\b|\bA30\b", re.IGNORECASE)),
)


def _check_version(value: str) -> str:
    if not _VERSION.match(value):
        raise ValueError(f"'{value}' is not a dotted version number")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CudaRelease(_Strict):
    """A CUDA toolkit line and the NVIDIA drivers it needs."""

    version: str
    min_driver_linux: str = Field(description="Driver for every feature of this toolkit (release notes, table 3).")
    minor_compat_driver_linux: str = Field(description="Oldest driver that runs it with minor-version compatibility.")
    minor_compat_driver_windows: str
    source: str

    _v = field_validator("version", "min_driver_linux", "minor_compat_driver_linux", "minor_compat_driver_windows")(
        _check_version
    )


class PytorchRelease(_Strict):
    """A PyTorch release and the CUDA builds published for it."""

    version: str
    torchvision: str
    torchaudio: str
    cuda_builds: list[str] = Field(min_length=1)
    source: str

    _v = field_validator("version", "torchvision", "torchaudio")(_check_version)


class GpuGeneration(_Strict):
    """A GPU generation and the oldest CUDA that knows it."""

    name: str
    compute_capability: str
    min_cuda: str
    source: str

    _v = field_validator("compute_capability", "min_cuda")(_check_version)


class CudaMatrix(_Strict):
    """The whole file, validated: every CUDA build a PyTorch release names is listed under ``cuda``."""

    schema_version: int = 1
    checked: str
    cuda: list[CudaRelease]
    pytorch: list[PytorchRelease]
    gpu_generations: list[GpuGeneration]
    index_url: str

    @model_validator(mode="after")
    def _builds_are_known(self) -> CudaMatrix:
        known = {release.version for release in self.cuda}
        for release in self.pytorch:
            unknown = set(release.cuda_builds) - known
            if unknown:
                raise ValueError(f"PyTorch {release.version} names unknown CUDA builds {sorted(unknown)}")
        if "{cuda_nodot}" not in self.index_url:
            raise ValueError("index_url needs the {cuda_nodot} placeholder")
        return self

    def cuda_for_driver(self, driver: str) -> list[str]:
        """CUDA lines whose full feature set this Linux driver supports, newest first."""
        have = version_tuple(driver)
        usable = [c.version for c in self.cuda if version_tuple(c.min_driver_linux) <= have]
        return sorted(usable, key=version_tuple, reverse=True)

    def generation(self, *, gpu_name: str | None = None, compute_cap: str | None = None) -> GpuGeneration | None:
        """The GPU's generation: by compute capability when nvidia-smi gave one, else by the card's name."""
        cap = (compute_cap or "").strip()
        if not _parsed(cap):
            cap = next((c for c, pattern in _GENERATION_NAMES if gpu_name and pattern.search(gpu_name)), "")
        return next((g for g in self.gpu_generations if g.compute_capability == cap), None)

    def choose_torch(
        self,
        driver: str,
        *,
        gpu_name: str | None = None,
        compute_cap: str | None = None,
        prefer: Sequence[str] = (),
    ) -> TorchChoice:
        """The PyTorch build for this driver and GPU: the first of ``prefer`` (a backend's tested releases) that
        has a fitting build, else the newest release; built for the newest CUDA line both the driver and the GPU
        accept.

        Raises:
            ValueError: the driver is unreadable or too old, or no build fits (the message says what to do).
        """
        if _parsed(driver) is None:
            raise ValueError(f"The GPU driver version '{driver}' could not be read, so no PyTorch build can be chosen.")
        return _choose(self, driver, self.generation(gpu_name=gpu_name, compute_cap=compute_cap), prefer)

    def check_torch(
        self,
        *,
        torch_version: str | None,
        torch_cuda: str | None,
        driver: str | None,
        gpu_name: str | None = None,
        compute_cap: str | None = None,
    ) -> list[str]:
        """Problems between the installed PyTorch, the driver and the GPU, each with its fix; empty when they fit
        (or when the driver or PyTorch is unknown: other checks report those)."""
        if not torch_version or _parsed(driver) is None:
            return []
        assert driver is not None
        gen = self.generation(gpu_name=gpu_name, compute_cap=compute_cap)
        try:
            choice = self.choose_torch(driver, gpu_name=gpu_name, compute_cap=compute_cap)
        except ValueError as exc:
            return [str(exc)]
        fix = f"install torch {choice.label} ({choice.command})"
        built = _parsed(torch_cuda)
        if built is None:
            return [
                f"PyTorch {torch_version} here is a build without CUDA, so training cannot use the GPU. Your driver "
                f"supports CUDA {choice.driver_cuda}: {fix}."
            ]
        if built[:2] > version_tuple(choice.driver_cuda)[:2]:
            return [
                f"PyTorch {torch_version} is built for CUDA {torch_cuda}, but the GPU driver {driver} only runs CUDA "
                f"up to {choice.driver_cuda}, so training would fail or break part-way. Your driver supports CUDA "
                f"{choice.driver_cuda}: {fix}, or use a host with a newer driver."
            ]
        if gen is not None and built[:2] < version_tuple(gen.min_cuda)[:2]:
            return [
                f"The {gpu_name or gen.name} needs PyTorch built for CUDA {gen.min_cuda} or newer, but this PyTorch "
                f"({torch_version}) is built for CUDA {torch_cuda} and has no code for this GPU: {fix}."
            ]
        return []

    def advice(self, driver: str | None, *, gpu_name: str | None = None) -> str | None:
        """One sentence for studio_detect: which PyTorch build suits this machine's driver and GPU."""
        if _parsed(driver) is None:
            return None
        assert driver is not None
        try:
            choice = self.choose_torch(driver, gpu_name=gpu_name)
        except ValueError as exc:
            return str(exc)
        return (
            f"Your driver {driver} supports CUDA {choice.driver_cuda}: for training here install torch "
            f"{choice.label} ({choice.command})."
        )

    def install_command(self, torch_version: str, cuda: str) -> str:
        """The pip line for a PyTorch release built for ``cuda``.

        Raises:
            ValueError: that release has no build for that CUDA line.
        """
        release = next((r for r in self.pytorch if r.version == torch_version), None)
        if release is None or cuda not in release.cuda_builds:
            raise ValueError(f"PyTorch {torch_version} has no CUDA {cuda} build in the matrix")
        url = self.index_url.format(cuda_nodot=cuda.replace(".", ""))
        return (
            f"pip install torch=={release.version} torchvision=={release.torchvision} "
            f"torchaudio=={release.torchaudio} --index-url {url}"
        )


class TorchChoice(BaseModel):
    """The PyTorch build to install for a driver and GPU, with the pip line and the reason in plain words."""

    torch: str
    torchvision: str
    torchaudio: str
    cuda: str = Field(description="The CUDA line the build is made for, e.g. '12.4'.")
    driver_cuda: str = Field(description="The newest CUDA line the driver runs with every feature.")
    index_url: str
    reason: str

    @property
    def label(self) -> str:
        """'2.6.0+cu124', as pip and torch.__version__ write it."""
        return f"{self.torch}+cu{self.cuda.replace('.', '')}"

    @property
    def pip_args(self) -> list[str]:
        """The arguments after ``pip install``."""
        return [
            f"torch=={self.torch}",
            f"torchvision=={self.torchvision}",
            f"torchaudio=={self.torchaudio}",
            "--index-url",
            self.index_url,
        ]

    @property
    def command(self) -> str:
        return "pip install " + " ".join(self.pip_args)


def _choose(matrix: CudaMatrix, driver: str, gen: GpuGeneration | None, prefer: Sequence[str]) -> TorchChoice:
    lines = matrix.cuda_for_driver(driver)
    if not lines:
        oldest = min(matrix.cuda, key=lambda c: version_tuple(c.version))
        raise ValueError(
            f"The GPU driver {driver} is too old for every PyTorch build Ategnatos knows (the oldest, for CUDA "
            f"{oldest.version}, needs driver {oldest.min_driver_linux} or newer): update the driver, or use another "
            "GPU host."
        )
    floor = version_tuple(gen.min_cuda) if gen is not None else (0,)
    usable = {c for c in lines if version_tuple(c) >= floor}
    if not usable:
        raise ValueError(
            f"The {gen.name if gen else 'GPU'} needs PyTorch built for CUDA {gen.min_cuda if gen else '?'} or newer, "
            f"but the driver {driver} only runs CUDA up to {lines[0]}: update the driver, or use another GPU host."
        )
    # The newest CUDA line first (it is what the driver and GPU are made for), then the newest release built for it.
    pairs = sorted(
        ((r, c) for r in matrix.pytorch for c in r.cuda_builds if c in usable),
        key=lambda p: (version_tuple(p[1]), version_tuple(p[0].version)),
        reverse=True,
    )
    if not pairs:
        raise ValueError(f"No PyTorch release in the matrix is built for CUDA {', '.join(sorted(usable))}.")
    preferred = [p for version in prefer for p in pairs if p[0].version == version]
    release, cuda = (preferred or pairs)[0]
    reason = f"the driver {driver} runs CUDA up to {lines[0]}"
    if len(usable) < len(lines) and gen is not None:
        reason += f"; the {gen.name.split(' (')[0]} GPU needs CUDA {gen.min_cuda} or newer"
    return TorchChoice(
        torch=release.version,
        torchvision=release.torchvision,
        torchaudio=release.torchaudio,
        cuda=cuda,
        driver_cuda=lines[0],
        index_url=matrix.index_url.format(cuda_nodot=cuda.replace(".", "")),
        reason=reason,
    )


@cache
def cuda_matrix() -> CudaMatrix:
    """The packaged matrix, read once."""
    return load_cuda_matrix()


def load_cuda_matrix(path: Path | None = None) -> CudaMatrix:
    """Read and validate the matrix (default: the studio skill's copy in the package)."""
    path = path or find_skills_root() / "studio" / "reference" / "cuda-matrix.json"
    return CudaMatrix.model_validate_json(path.read_text(encoding="utf-8"))
