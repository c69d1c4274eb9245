from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from PIL import Image

from ategnatos_mcp.dataset.captioning import caption_guide, review_batch, summarise_captions, write_captions
from ategnatos_mcp.dataset.captions import CaptionRefused, estimate_tokens, normalise_caption
from ategnatos_mcp.dataset.models import CaptionWrite


def test_crlf_and_extra_lines_become_one_clean_line() -> None:
    assert normalise_caption("a castle ,  misty\r\nwatercolour\r\n\r\n") == "a castle, misty, watercolour"


def test_odd_unicode_is_normalised_and_kept() -> None:
    text = "\ufeffcafe\u0301 at night,\u200b neon\u00a0glow, 東京 , émigré\x00"
    assert normalise_caption(text) == "café at night, neon glow, 東京, émigré"


def test_trigger_word_goes_first_exactly_once() -> None:
    assert normalise_caption("a fox, mystyle, snow", trigger_word="mystyle") == "mystyle, a fox, snow"
    assert normalise_caption("MyStyle, a fox", trigger_word="mystyle") == "mystyle, a fox"
    assert normalise_caption("a fox in snow", trigger_word="mystyle") == "mystyle, a fox in snow"


def test_repeated_tags_are_dropped() -> None:
    assert normalise_caption("fox, Fox, snow, fox") == "fox, snow"


@pytest.mark.parametrize("bad", ["", " , ,\n", "mystyle", "x" * 2100, "broken \ud800 surrogate"])
def test_captions_that_would_break_the_file_are_refused(bad: str) -> None:
    with pytest.raises(CaptionRefused):
        normalise_caption(bad, trigger_word="mystyle")


def test_token_estimate_grows_with_words() -> None:
    short = estimate_tokens("a fox in the snow")
    assert short == 5
    assert estimate_tokens(", ".join(["watercolour landscape"] * 40)) > 75


def _image(path: Path, size: tuple[int, int] = (1600, 1200), mode: str = "RGB") -> None:
    img = Image.new(mode, size)
    img.paste((255, 128, 0) if mode == "RGB" else (255, 0, 0, 120), (0, 0, size[0] // 2, size[1] // 2))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    path.write_bytes(buf.getvalue())


def test_write_saves_atomically_next_to_the_image_and_keeps_caption_extension(tmp_path: Path) -> None:
    _image(tmp_path / "a.png")
    _image(tmp_path / "b.png")
    (tmp_path / "b.caption").write_text("old", encoding="utf-8")
    result = write_captions(
        tmp_path,
        [
            CaptionWrite(path="a.png", caption="a fox,\r\n snowy forest"),
            CaptionWrite(path="./b.png", caption="a hare, ink wash"),
            CaptionWrite(path="../escape.png", caption="nope"),
            CaptionWrite(path="a.png", caption="twice"),
        ],
        trigger_word="mystyle",
    )
    assert (tmp_path / "a.txt").read_bytes() == b"mystyle, a fox, snowy forest\n"
    assert (tmp_path / "b.caption").read_text(encoding="utf-8") == "mystyle, a hare, ink wash\n"
    assert not (tmp_path / "b.txt").exists()
    assert [p.path for p in result.refused] == ["../escape.png", "a.png"]
    assert not list(tmp_path.glob(".*tmp"))


def test_review_batch_returns_small_previews_and_the_guide(tmp_path: Path) -> None:
    for i in range(10):
        _image(tmp_path / f"img{i}.png", (2048, 1536) if i % 2 else (900, 1400), "RGBA" if i == 3 else "RGB")
    (tmp_path / "img1.txt").write_text("has one", encoding="utf-8")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    review, previews = review_batch(
        tmp_path, start=0, count=8, only_missing=True, trigger_word=None, max_side=512, budget=60_000
    )
    assert review.total == 10  # 11 images, one already captioned
    assert len(review.items) == 8
    assert review.items[0].path == "broken.png" and review.items[0].note
    assert len(previews) == 7
    for data in previews:
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "JPEG" and max(im.size) <= 512
        assert len(data) <= 60_000
    assert review.guide is not None
    assert "content" in review.guide.lower() and "style" in review.guide.lower()
    assert review.next_start == 9  # a position in the folder's list: img1 (captioned) was passed over


def test_review_write_review_of_missing_captions_shows_every_image_once(tmp_path: Path) -> None:
    for i in range(11):
        _image(tmp_path / f"img{i:02d}.png", (64, 64))
    (tmp_path / "img03.txt").write_text("has one", encoding="utf-8")
    seen: list[str] = []
    start: int | None = 0
    while start is not None:  # as Claude does it: look at a batch, caption it, ask for the next batch
        review, _ = review_batch(
            tmp_path, start=start, count=4, only_missing=True, trigger_word=None, max_side=64, budget=60_000
        )
        seen += [item.path for item in review.items]
        write_captions(
            tmp_path, [CaptionWrite(path=i.path, caption="a square") for i in review.items], trigger_word=None
        )
        start = review.next_start
    assert seen == [f"img{i:02d}.png" for i in range(11) if i != 3]


def test_the_guide_comes_with_the_first_batch_or_when_asked_and_a_note_otherwise(tmp_path: Path) -> None:
    for i in range(5):
        _image(tmp_path / f"img{i}.png", (64, 64))
    kwargs: dict = {"count": 2, "only_missing": False, "trigger_word": None, "max_side": 64, "budget": 60_000}
    first, _ = review_batch(tmp_path, start=0, **kwargs)
    assert first.guide == caption_guide() and first.guide_note is None
    later, _ = review_batch(tmp_path, start=2, **kwargs)
    assert later.guide is None
    assert later.guide_note is not None and "include_guide=true" in later.guide_note
    assert len(later.guide_note) < len(caption_guide()) // 5  # a one-line pointer, not the guide again
    asked, _ = review_batch(tmp_path, start=4, include_guide=True, **kwargs)
    assert asked.guide == caption_guide() and asked.guide_note is None


def test_summary_counts_tags_and_finds_one_off_tags(tmp_path: Path) -> None:
    for i in range(6):
        _image(tmp_path / f"i{i}.png", (64, 64))
        extra = ", typo-tag" if i == 0 else ""
        (tmp_path / f"i{i}.txt").write_text(f"mystyle, fox, snow{extra}", encoding="utf-8")
    summary = summarise_captions(tmp_path, trigger_word="mystyle")
    assert summary.stats.captioned == 6
    assert summary.stats.with_trigger == 6
    assert summary.stats.top_tags[0].count == 6
    assert summary.rare_tags == ["typo-tag"]


def test_regularisation_captions_never_get_the_trigger_word_and_do_not_count_against_it(tmp_path: Path) -> None:
    from ategnatos_mcp.dataset.captioning import caption_stats, index_captions
    from ategnatos_mcp.dataset.scan import is_regularisation_folder, scan_dataset

    for folder in ("10_ink", "1_reg"):
        (tmp_path / folder).mkdir()
        _image(tmp_path / folder / "a.png", (64, 64))
    result = write_captions(
        tmp_path,
        [
            CaptionWrite(path="10_ink/a.png", caption="a heron, ink wash"),
            CaptionWrite(path="1_reg/a.png", caption="a heron"),
        ],
        trigger_word="inkwash",
    )
    assert (tmp_path / "10_ink" / "a.txt").read_text(encoding="utf-8") == "inkwash, a heron, ink wash\n"
    assert (tmp_path / "1_reg" / "a.txt").read_text(encoding="utf-8") == "a heron\n"  # the class only
    assert result.warnings == []
    stats = caption_stats(["10_ink/a.png", "1_reg/a.png"], index_captions(scan_dataset(tmp_path)), "inkwash")
    assert (stats.with_trigger, stats.without_trigger, stats.regularisation_images) == (1, 0, 1)

    warned = write_captions(
        tmp_path, [CaptionWrite(path="1_reg/a.png", caption="inkwash, a heron")], trigger_word="inkwash"
    )
    assert warned.warnings and "regularisation image" in warned.warnings[0]
    assert [is_regularisation_folder(f) for f in ("1_reg", "1_Regularisation", "class", "1_reg_woman", "reg/x")] == [
        True,
        True,
        True,
        False,
        True,
    ]


def test_a_rewritten_caption_keeps_its_file_mode_and_a_new_one_takes_the_images(tmp_path: Path) -> None:
    # Issue 16 (Low 13): writes went through a 0600 temp file, so a shared 0664 caption lost group access.
    _image(tmp_path / "a.png")
    _image(tmp_path / "b.png")
    (tmp_path / "a.txt").write_text("old", encoding="utf-8")
    os.chmod(tmp_path / "a.txt", 0o664)
    os.chmod(tmp_path / "b.png", 0o644)
    write_captions(
        tmp_path,
        [CaptionWrite(path="a.png", caption="a fox"), CaptionWrite(path="b.png", caption="a hare")],
        trigger_word=None,
    )
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o664
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o644
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "a fox\n"
