"""What ``image_info`` reports about one image file."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["GenerationParameters", "ImageInfo"]


class GenerationParameters(BaseModel):
    """How an image was generated, as far as the file itself tells (ComfyUI graph or A1111 text)."""

    source: Literal["comfyui", "a1111"] = Field(description="Which tool wrote the parameters.")
    positive_prompt: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    steps: int | None = None
    cfg: float | None = None
    sampler: str | None = None
    scheduler: str | None = None
    model: str | None = Field(default=None, description="Checkpoint (or UNet) file name or model name.")
    width: int | None = None
    height: int | None = None
    loras: list[str] = Field(
        default_factory=list, description="LoRAs with their strength, e.g. 'style.safetensors@0.8'."
    )
    settings: dict[str, str] = Field(default_factory=dict, description="Every other key/value the file carried.")
    has_workflow: bool = Field(
        default=False, description="The ComfyUI editor workflow is embedded too (drag the PNG in)."
    )
    node_count: int | None = Field(default=None, description="Nodes in the embedded ComfyUI graph.")
    raw: str | None = Field(default=None, description="The embedded text itself, only when asked for (truncated).")


class ImageInfo(BaseModel):
    """Size, format, colour and metadata of one image file."""

    path: str
    file_bytes: int
    format: str = Field(description="PNG, JPEG, WEBP, ...")
    width: int
    height: int
    mode: str = Field(description="Pillow colour mode: RGB, RGBA (with transparency), L (greyscale), P, CMYK...")
    has_alpha: bool
    frames: int = 1
    dpi: tuple[float, float] | None = None
    icc_profile: str | None = Field(
        default=None, description="Embedded colour profile's name; none usually means sRGB."
    )
    exif: dict[str, str] = Field(
        default_factory=dict, description="Readable EXIF tags (long or binary values shortened)."
    )
    text_chunks: dict[str, str] = Field(default_factory=dict, description="Other text stored in the file (shortened).")
    generation: GenerationParameters | None = None
