"""image_info's reader on real files: ComfyUI PNGs from a real server, A1111-style files written here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.imageinfo import read_image_info
from tests.support.images import swapped_primaries_profile

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "imageinfo"

A1111_TEXT = (
    "masterpiece, 1girl, (red scarf:1.2), snowy forest <lora:wintery:0.8>\n"
    "Negative prompt: lowres, bad hands,\nblurry\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234567890, Size: 832x1216, "
    'Model hash: 67ab2fd8ec, Model: ponyDiffusionV6XL, Lora hashes: "wintery: 1a2b3c4d5e6f", Version: v1.10.1'
)


def test_comfyui_txt2img_png_gives_prompts_and_sampler_settings() -> None:
    info = read_image_info(FIXTURES / "view_txt2img.png")

    assert (info.format, info.width, info.height, info.mode) == ("PNG", 64, 64, "RGB")
    gen = info.generation
    assert gen is not None and gen.source == "comfyui"
    assert (gen.positive_prompt, gen.negative_prompt) == ("a red fox in the snow", "blurry")
    assert (gen.seed, gen.steps, gen.cfg, gen.sampler, gen.scheduler) == (42, 3, 7.0, "euler", "normal")
    assert gen.model == "mcp_random_sd15_layout.safetensors"
    assert (gen.width, gen.height, gen.node_count, gen.has_workflow) == (64, 64, 7, False)
    assert gen.raw is None


def test_comfyui_png_with_workflow_chunk_is_flagged_and_raw_text_only_on_request() -> None:
    info = read_image_info(FIXTURES / "view_basic_0.png", include_raw=True)

    gen = info.generation
    assert gen is not None
    assert gen.has_workflow is True
    assert gen.node_count == 3
    assert gen.positive_prompt is None  # a graph without a sampler has no prompt to report
    assert gen.raw is not None and '"class_type": "ImageInvert"' in gen.raw
    assert info.text_chunks == {}


def test_a1111_parameters_chunk_in_png(tmp_path: Path) -> None:
    path = tmp_path / "a1111.png"
    meta = PngImagePlugin.PngInfo()
    meta.add_text("parameters", A1111_TEXT)
    meta.add_text("Software", "stable-diffusion-webui")
    Image.new("RGB", (40, 60), "navy").save(path, pnginfo=meta)

    info = read_image_info(path)

    gen = info.generation
    assert gen is not None and gen.source == "a1111"
    assert gen.positive_prompt == "masterpiece, 1girl, (red scarf:1.2), snowy forest <lora:wintery:0.8>"
    assert gen.negative_prompt == "lowres, bad hands,\nblurry"
    assert (gen.steps, gen.sampler, gen.scheduler, gen.cfg, gen.seed) == (28, "DPM++ 2M", "Karras", 6.5, 1234567890)
    assert (gen.width, gen.height, gen.model) == (832, 1216, "ponyDiffusionV6XL")
    assert gen.loras == ["wintery"]
    assert gen.settings["Model hash"] == "67ab2fd8ec"
    assert gen.settings["Version"] == "v1.10.1"
    assert info.text_chunks == {"Software": "stable-diffusion-webui"}


@pytest.mark.parametrize(("fmt", "suffix"), [("JPEG", ".jpg"), ("WEBP", ".webp")])
def test_a1111_parameters_in_exif_user_comment(tmp_path: Path, fmt: str, suffix: str) -> None:
    path = tmp_path / f"a1111{suffix}"
    exif = Image.Exif()
    exif[0x010F] = "Ategnatos Test"
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + A1111_TEXT.encode("utf-16-be")
    Image.new("RGB", (32, 32), "olive").save(path, format=fmt, exif=exif.tobytes())

    info = read_image_info(path)

    assert info.format == fmt
    assert info.exif["Make"] == "Ategnatos Test"
    assert "UserComment" not in info.exif
    gen = info.generation
    assert gen is not None and gen.source == "a1111"
    assert gen.seed == 1234567890
    assert gen.positive_prompt is not None and gen.positive_prompt.startswith("masterpiece")


def test_colour_profile_alpha_and_dpi_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "profiled.png"
    Image.new("RGBA", (10, 20), (1, 2, 3, 4)).save(path, icc_profile=swapped_primaries_profile(), dpi=(300, 300))

    info = read_image_info(path)

    assert info.icc_profile == "Swapped RB xx"
    assert info.has_alpha is True
    assert info.dpi is not None and tuple(round(v) for v in info.dpi) == (300, 300)
    assert info.generation is None


def test_not_an_image_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("not really a png", encoding="utf-8")

    with pytest.raises(InvalidRequestError) as caught:
        read_image_info(path)

    assert "notes.png" in caught.value.message
    assert caught.value.hint


def test_truncated_comfyui_png_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    shutil.copy(FIXTURES / "view_txt2img.png", path)
    path.write_bytes(path.read_bytes()[:40])

    with pytest.raises(InvalidRequestError):
        read_image_info(path)
