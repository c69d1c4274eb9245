"""Asset export on real files: exact sizes, formats, byte budgets, .ico contents, crops, colour, no overwrite."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from ategnatos_mcp.errors import InvalidRequestError, NotFoundError, UpstreamError
from ategnatos_mcp.export import AssetExporter, ExportRequest, load_specs
from ategnatos_mcp.export.encode import format_available
from tests.support.images import noisy_image, profile_description, subject_at_right, swapped_primaries_profile


@pytest.fixture
def exporter(tmp_path: Path) -> AssetExporter:
    return AssetExporter(tmp_path / "exports")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return noisy_image(tmp_path / "mascot.png", size=(1000, 800))


@pytest.mark.parametrize(
    ("spec", "size", "pil_format"),
    [
        ("og-image", (1200, 630), "JPEG"),
        ("social-square", (1080, 1080), "JPEG"),
        ("hero", (1920, 1080), "WEBP"),
        ("avatar", (512, 512), "PNG"),
        ("app-icon", (1024, 1024), "PNG"),
    ],
)
async def test_named_spec_writes_exact_size_and_format(
    exporter: AssetExporter, source: Path, spec: str, size: tuple[int, int], pil_format: str
) -> None:
    result = await exporter.export(ExportRequest(source=source, spec=spec))

    (file,) = result.files
    with Image.open(file.path) as im:
        assert (im.size, im.format) == (size, pil_format)
    assert (file.width, file.height) == size
    assert file.bytes == Path(file.path).stat().st_size


async def test_favicon_spec_writes_every_size_and_an_ico_holding_16_32_48(
    exporter: AssetExporter, source: Path
) -> None:
    result = await exporter.export(ExportRequest(source=source, spec="favicon"))

    pngs = {Path(f.path).name: f for f in result.files if f.format == "png"}
    assert sorted((f.width, f.height) for f in pngs.values()) == [(s, s) for s in (16, 32, 48, 180, 192, 512)]
    assert "mascot-apple-touch-icon.png" in pngs
    (ico,) = [f for f in result.files if f.format == "ico"]
    assert Path(ico.path).name == "mascot-favicon.ico"
    with Image.open(ico.path) as im:
        assert im.format == "ICO"
        assert set(im.ico.sizes()) == {(16, 16), (32, 32), (48, 48)}
        for side in (16, 32, 48):
            im.size = (side, side)
            im.load()
            assert im.size == (side, side)


async def test_print_spec_writes_300_dpi(exporter: AssetExporter, source: Path) -> None:
    result = await exporter.export(ExportRequest(source=source, spec="print-a4"))

    with Image.open(result.files[0].path) as im:
        assert im.size == (2480, 3508)
        assert tuple(round(v) for v in im.info["dpi"]) == (300, 300)
    assert result.upscaled_by is not None and result.upscaled_by > 4
    assert any("enlarged" in w for w in result.warnings)


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
async def test_lossy_byte_budget_is_met_by_lowering_quality(exporter: AssetExporter, source: Path, fmt: str) -> None:
    unconstrained = await exporter.export(ExportRequest(source=source, width=800, height=600, format=fmt))
    budget = unconstrained.files[0].bytes // 2

    result = await exporter.export(ExportRequest(source=source, width=800, height=600, format=fmt, max_bytes=budget))

    file = result.files[0]
    assert file.bytes <= budget
    assert Path(file.path).stat().st_size <= budget
    assert file.quality is not None and file.quality < unconstrained.files[0].quality  # type: ignore[operator]
    with Image.open(file.path) as im:
        assert im.size == (800, 600)


async def test_png_budget_reduces_colours(exporter: AssetExporter, tmp_path: Path) -> None:
    horizontal = Image.linear_gradient("L").rotate(90).resize((400, 400))
    gradient = Image.merge(
        "RGB",
        (Image.linear_gradient("L").resize((400, 400)), horizontal, Image.radial_gradient("L").resize((400, 400))),
    )
    src = tmp_path / "gradient.png"
    gradient.save(src)
    full = await exporter.export(ExportRequest(source=src, width=400, height=400))

    budget = full.files[0].bytes // 2
    result = await exporter.export(ExportRequest(source=src, width=400, height=400, max_bytes=budget))

    assert result.files[0].bytes <= budget
    with Image.open(result.files[0].path) as im:
        assert im.mode == "P"  # palette: the colour count was reduced
    assert any("colours" in w for w in result.warnings)


async def test_impossible_budget_is_refused_and_writes_nothing(
    exporter: AssetExporter, source: Path, tmp_path: Path
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await exporter.export(ExportRequest(source=source, spec="hero", format="jpeg", max_bytes=2048))

    assert "budget" in caught.value.message
    assert not (tmp_path / "exports").exists() or not any((tmp_path / "exports").iterdir())


async def test_exporting_twice_keeps_the_first_file_and_versions_the_second(
    exporter: AssetExporter, source: Path
) -> None:
    first = await exporter.export(ExportRequest(source=source, spec="avatar"))
    before = Path(first.files[0].path).read_bytes()

    second = await exporter.export(ExportRequest(source=source, spec="avatar", format="webp"))
    third = await exporter.export(ExportRequest(source=source, spec="avatar"))

    assert Path(first.files[0].path).name == "mascot-avatar.png"
    assert Path(second.files[0].path).name == "mascot-avatar.webp"
    assert Path(third.files[0].path).name == "mascot-avatar-v2.png"
    assert Path(first.files[0].path).read_bytes() == before


async def test_fit_keeps_proportions_inside_the_box(exporter: AssetExporter, source: Path) -> None:
    result = await exporter.export(ExportRequest(source=source, width=500, height=500, crop="fit"))

    assert (result.files[0].width, result.files[0].height) == (500, 400)


async def test_width_only_follows_the_picture_proportions(exporter: AssetExporter, source: Path) -> None:
    result = await exporter.export(ExportRequest(source=source, width=250))

    assert (result.files[0].width, result.files[0].height) == (250, 200)


async def test_pad_fills_the_bars_with_the_background(exporter: AssetExporter, source: Path) -> None:
    result = await exporter.export(
        ExportRequest(source=source, width=500, height=500, crop="pad", background="#00ff00")
    )

    with Image.open(result.files[0].path) as im:
        assert im.size == (500, 500)
        assert im.convert("RGB").getpixel((250, 5)) == (0, 255, 0)  # a 50 px bar above the 500x400 picture


def _red_pixels(path: str) -> int:
    with Image.open(path) as im:
        data = im.convert("RGB").tobytes()
    pixels = zip(data[0::3], data[1::3], data[2::3], strict=True)
    return sum(1 for r, g, b in pixels if r > 180 and g < 160 and b < 90)


async def test_attention_crop_follows_the_subject_where_centre_crop_misses_it(
    exporter: AssetExporter, tmp_path: Path
) -> None:
    src = subject_at_right(tmp_path / "wide.png")

    centre = await exporter.export(ExportRequest(source=src, width=300, height=300, anchor="centre"))
    attention = await exporter.export(ExportRequest(source=src, width=300, height=300, anchor="attention"))

    assert _red_pixels(centre.files[0].path) == 0
    assert _red_pixels(attention.files[0].path) > 1000


async def test_embedded_profile_is_converted_to_srgb(exporter: AssetExporter, tmp_path: Path) -> None:
    src = tmp_path / "swapped.png"
    Image.new("RGB", (64, 64), (255, 0, 0)).save(src, icc_profile=swapped_primaries_profile())

    result = await exporter.export(ExportRequest(source=src, width=32, height=32))

    assert result.colour == "converted from Swapped RB xx to sRGB"
    with Image.open(result.files[0].path) as im:
        r, g, b = im.convert("RGB").getpixel((16, 16))
        assert "icc_profile" not in im.info
    assert b > 200 and r < 60


async def test_metadata_is_stripped_by_default_and_kept_on_request(exporter: AssetExporter, tmp_path: Path) -> None:
    src = tmp_path / "generated.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a fox\nSteps: 20, Sampler: Euler, Seed: 1")
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    Image.new("RGB", (64, 64), "teal").save(
        src, pnginfo=info, exif=exif.tobytes(), icc_profile=swapped_primaries_profile()
    )

    stripped = await exporter.export(ExportRequest(source=src, width=32, height=32))
    kept = await exporter.export(ExportRequest(source=src, width=32, height=32, keep_metadata=True, name="kept"))

    with Image.open(stripped.files[0].path) as im:
        assert "parameters" not in im.text  # type: ignore[attr-defined]
        assert len(im.getexif()) == 0
    with Image.open(kept.files[0].path) as im:
        assert im.text["parameters"].startswith("a fox")  # type: ignore[attr-defined]
        assert im.getexif()[0x010F] == "CameraMaker"
        assert profile_description(im.info["icc_profile"]) == "sRGB built-in"
    assert (stripped.metadata, kept.metadata) == ("stripped", "kept")


async def test_transparent_source_is_flattened_onto_the_background_for_jpeg(
    exporter: AssetExporter, tmp_path: Path
) -> None:
    src = tmp_path / "alpha.png"
    Image.new("RGBA", (50, 50), (255, 0, 0, 0)).save(src)

    result = await exporter.export(ExportRequest(source=src, width=50, height=50, format="jpeg", background="black"))

    with Image.open(result.files[0].path) as im:
        assert im.mode == "RGB"
        assert max(im.getpixel((25, 25))) < 10  # type: ignore[arg-type]


@pytest.mark.skipif(not format_available("avif"), reason="this Pillow build has no AVIF encoder")
async def test_avif_export(exporter: AssetExporter, source: Path) -> None:
    result = await exporter.export(ExportRequest(source=source, width=320, height=240, format="avif"))

    with Image.open(result.files[0].path) as im:
        assert (im.format, im.size) == ("AVIF", (320, 240))


async def test_upscaler_seam_is_used_when_the_source_is_too_small(tmp_path: Path) -> None:
    small = noisy_image(tmp_path / "small.png", size=(300, 200))
    calls: list[float] = []

    async def fake_model_upscaler(path: Path, factor: float) -> Path:
        calls.append(factor)
        bigger = tmp_path / "upscaled.png"
        with Image.open(path) as im:
            im.resize((im.width * 4, im.height * 4)).save(bigger)
        return bigger

    exporter = AssetExporter(tmp_path / "exports", upscaler=fake_model_upscaler)
    result = await exporter.export(ExportRequest(source=small, spec="og-image"))

    assert calls == [pytest.approx(4.0)]
    assert result.upscaled_by == 4.0
    assert result.files[0].width == 1200
    assert not any("Lanczos" in w for w in result.warnings)


async def test_a_model_that_enlarges_too_little_is_not_called_missing(tmp_path: Path) -> None:
    small = noisy_image(tmp_path / "small.png", size=(150, 100))

    async def x2_model(path: Path, factor: float) -> Path:  # one pass of a 2x model; 8x was needed
        bigger = tmp_path / "upscaled.png"
        with Image.open(path) as im:
            im.resize((im.width * 2, im.height * 2)).save(bigger)
        return bigger

    exporter = AssetExporter(tmp_path / "exports", upscaler=x2_model)
    result = await exporter.export(ExportRequest(source=small, spec="og-image"))

    assert result.files[0].width == 1200 and result.upscaled_by == 8.0
    assert result.warnings[0] == "Enlarged with the upscale model before resizing (needed 8.0x)."
    assert result.warnings[1].startswith("The upscale model's result (300x200) still had to be enlarged up to 4.0x")
    assert not any("An upscaler model in ComfyUI" in w for w in result.warnings)


async def test_spec_and_custom_size_together_are_refused(exporter: AssetExporter, source: Path) -> None:
    with pytest.raises(InvalidRequestError):
        await exporter.export(ExportRequest(source=source, spec="hero", width=100))


async def test_unknown_spec_names_the_known_ones(exporter: AssetExporter, source: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        await exporter.export(ExportRequest(source=source, spec="poster"))

    assert "og-image" in caught.value.hint


def test_spec_catalogue_validates_and_covers_the_required_specs() -> None:
    names = {spec.name for spec in load_specs().specs}

    assert {"og-image", "social-square", "hero", "avatar", "favicon", "app-icon", "print-a4"} <= names


async def test_truncated_source_is_refused_with_a_plain_message(exporter: AssetExporter, tmp_path: Path) -> None:
    whole = noisy_image(tmp_path / "whole.png", size=(300, 300))
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[:5000])

    with pytest.raises(InvalidRequestError) as caught:
        await exporter.export(ExportRequest(source=cut, spec="avatar"))

    assert "cut.png" in caught.value.message
    assert "truncated" in caught.value.hint


async def test_a_failing_upscaler_falls_back_to_lanczos_and_says_why(tmp_path: Path) -> None:
    small = noisy_image(tmp_path / "small.png", size=(300, 200))

    async def no_comfyui(path: Path, factor: float) -> Path:
        raise UpstreamError("No reachable ComfyUI server has an upscale model.", service="comfyui")

    exporter = AssetExporter(tmp_path / "exports", upscaler=no_comfyui)
    result = await exporter.export(ExportRequest(source=small, spec="og-image"))

    assert result.files[0].width == 1200
    assert result.warnings[0].startswith("The upscaler was not used (No reachable ComfyUI")
    assert result.upscaled_by == 4.0
    assert any("Lanczos" in w for w in result.warnings[1:])
