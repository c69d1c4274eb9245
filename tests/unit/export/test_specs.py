"""The named export specs: banner, header and thumbnail sizes of the platforms artists publish on, each with
its source and upload limit; a word that fits several names the candidates instead of guessing."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ategnatos_mcp.errors import NotFoundError
from ategnatos_mcp.export import AssetExporter, ExportRequest, find_spec, load_specs
from tests.support.images import noisy_image

PLATFORMS = {
    "youtube-banner": [(2560, 1440)],
    "youtube-thumbnail": [(1280, 720)],
    "x-header": [(1500, 500)],
    "linkedin-banner": [(1584, 396)],
    "discord-banner": [(1200, 480), (1920, 1080)],
    "twitch-banner": [(1200, 480)],
    "etsy-banner": [(3360, 840)],
    "patreon-banner": [(1600, 400)],
    "website-header": [(1920, 480)],
}


def test_every_spec_says_where_its_numbers_come_from() -> None:
    specs = {spec.name: spec for spec in load_specs().specs}
    for name, sizes in PLATFORMS.items():
        assert [(s.width, s.height) for s in specs[name].sizes] == sizes
    for spec in specs.values():
        assert len(spec.source) > 15, spec.name
    assert specs["youtube-banner"].max_bytes == 6_000_000 and "support.google.com" in specs["youtube-banner"].source


@pytest.mark.parametrize(("asked", "found"), [("Twitter header", "x-header"), ("thumbnail", "youtube-thumbnail"),
                                               ("YouTube_Banner", "youtube-banner")])  # fmt: skip
def test_specs_are_found_by_the_words_people_use(asked: str, found: str) -> None:
    assert find_spec(asked).name == found


@pytest.mark.parametrize(("asked", "some"), [("banner", ["youtube-banner (2560x1440)", "linkedin-banner (1584x396)"]),
                                              ("header", ["x-header (1500x500)", "website-header (1920x480)"])])  # fmt: skip
def test_a_word_several_specs_share_names_them_all(asked: str, some: list[str]) -> None:
    with pytest.raises(NotFoundError) as caught:
        find_spec(asked)
    assert all(s in caught.value.message for s in some)


async def test_a_platform_upload_limit_is_kept_without_being_asked(tmp_path: Path) -> None:
    source = noisy_image(tmp_path / "noise.png", size=(2560, 1440))  # noise compresses worst
    result = await AssetExporter(tmp_path / "exports").export(ExportRequest(source=source, spec="youtube-thumbnail"))
    [file] = result.files
    assert file.bytes <= 2_000_000 and Path(file.path).stat().st_size == file.bytes
    with Image.open(file.path) as im:
        assert (im.size, im.format) == ((1280, 720), "JPEG")
