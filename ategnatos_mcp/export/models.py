"""Asset specs (data), export requests and what an export wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Anchor",
    "AssetSpec",
    "CropMode",
    "ExportRequest",
    "ExportResult",
    "ExportTarget",
    "ExportedFile",
    "ImageFormat",
    "SizeTarget",
    "SpecCatalog",
]

ImageFormat = Literal["png", "jpeg", "webp", "avif"]
CropMode = Literal["fit", "fill", "pad"]
Anchor = Literal["centre", "attention"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SizeTarget(_Strict):
    """One output file of a spec: exact pixel size, optional file-name label and format override."""

    label: str = Field(description="Used in the file name, e.g. 'apple-touch-icon'.")
    width: int = Field(gt=0, le=16384)
    height: int = Field(gt=0, le=16384)
    format: ImageFormat | None = None


class AssetSpec(_Strict):
    """A named export recipe: one or more sizes, a default format and crop, optional .ico and print dpi."""

    name: str
    description: str
    sizes: list[SizeTarget] = Field(min_length=1)
    format: ImageFormat = "png"
    crop: CropMode = "fill"
    dpi: int | None = Field(default=None, gt=0, description="Written into the file; print specs use 300.")
    ico_sizes: list[int] = Field(default_factory=list, description="Also write a .ico holding these square sizes.")
    max_bytes: int | None = Field(default=None, ge=1024, description="The platform's upload limit per file.")
    source: str = Field(description="Where the numbers come from.")

    @model_validator(mode="after")
    def _ico_sizes_fit(self) -> AssetSpec:
        if any(not 1 <= size <= 256 for size in self.ico_sizes):
            raise ValueError("ico sizes must be between 1 and 256 pixels")
        return self


class SpecCatalog(_Strict):
    """The file ``export/specs.json``."""

    schema_version: int = 1
    specs: list[AssetSpec]

    @model_validator(mode="after")
    def _unique_names(self) -> SpecCatalog:
        names = [spec.name for spec in self.specs]
        if len(names) != len(set(names)):
            raise ValueError("spec names must be unique")
        return self


class ExportTarget(_Strict):
    """One file to produce: a label for its name, a box (one side may be open for ``fit``), a format."""

    label: str
    width: int | None = None
    height: int | None = None
    format: ImageFormat = "png"
    ico_sizes: tuple[int, ...] = ()


class ExportRequest(_Strict):
    """What to export: a spec name or a custom size, plus format, crop, budget and metadata choices."""

    source: Path
    spec: str | None = None
    width: int | None = Field(default=None, gt=0, le=16384)
    height: int | None = Field(default=None, gt=0, le=16384)
    format: ImageFormat | None = None
    crop: CropMode | None = None
    anchor: Anchor = "centre"
    max_bytes: int | None = Field(default=None, ge=1024)
    quality: int | None = Field(default=None, ge=1, le=100)
    keep_metadata: bool = False
    background: str = "#ffffff"
    dpi: int | None = Field(default=None, gt=0, le=2400)
    name: str | None = None


class ExportedFile(BaseModel):
    """One file written under exports/."""

    path: str
    label: str
    format: str
    width: int
    height: int
    bytes: int
    quality: int | None = Field(default=None, description="Encoder quality chosen (lossy formats).")
    ico_sizes: list[int] = Field(default_factory=list)


class ExportResult(BaseModel):
    """Everything an export wrote, and anything the artist should know about it."""

    source: str
    spec: str | None
    files: list[ExportedFile]
    colour: str = Field(description="What happened to the colours, e.g. 'converted from Display P3 to sRGB'.")
    metadata: Literal["kept", "stripped"]
    upscaled_by: float | None = Field(default=None, description="Largest enlargement factor needed, when > 1.")
    warnings: list[str] = Field(default_factory=list)
