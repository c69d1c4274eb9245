"""The CUDA / PyTorch / driver matrix shipped with the studio skill (``skills/studio/reference/cuda-matrix.json``).

Used to answer "which PyTorch build works on this driver and this GPU?" before any GPU time is spent.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ategnatos_mcp.skills_catalog import find_skills_root

__all__ = ["CudaMatrix", "CudaRelease", "GpuGeneration", "PytorchRelease", "load_cuda_matrix", "version_tuple"]

_VERSION = re.compile(r"^\d+(\.\d+){1,3}$")


def version_tuple(value: str) -> tuple[int, ...]:
    """'570.26' -> (570, 26); compares driver and CUDA versions numerically."""
    return tuple(int(part) for part in value.split("."))


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


def load_cuda_matrix(path: Path | None = None) -> CudaMatrix:
    """Read and validate the matrix (default: the studio skill's copy in the package)."""
    path = path or find_skills_root() / "studio" / "reference" / "cuda-matrix.json"
    return CudaMatrix.model_validate_json(path.read_text(encoding="utf-8"))
