"""The fast PNG/WebP decoders give exactly what Pillow gives, and every file they refuse still gets Pillow's verdict."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from ategnatos_mcp.dataset import fastdecode
from ategnatos_mcp.dataset.fastdecode import png_pixels, scan_png, webp_pixels
from ategnatos_mcp.dataset.probe import ProbeRecord, probe_bytes

COMPARED = ("error", "format", "mode", "width", "height", "display_width", "display_height", "orientation", "frames")
COMPARED += ("transparent", "bit_depth", "phash", "phash_mirror", "thumb", "color")


def _art(mode: str, size: tuple[int, int] = (300, 200), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    x = np.linspace(0, 255, w)[None, :]
    y = np.linspace(0, 255, h)[:, None]
    base = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1)
    rgb = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    im = Image.fromarray(rgb)
    if mode in ("RGBA", "LA"):
        alpha = np.full((h, w), 255, np.uint8)
        alpha[: h // 3, : w // 3] = 40  # a transparent corner
        im = im.convert("L" if mode == "LA" else "RGB")
        im.putalpha(Image.fromarray(alpha))
        return im
    return im.convert(mode)


def _encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()


@pytest.fixture
def pillow_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(fastdecode, "_spng", None)
    monkeypatch.setattr(fastdecode, "_webp", None)
    yield


def _pillow_record(data: bytes, monkeypatch: pytest.MonkeyPatch) -> ProbeRecord:
    with monkeypatch.context() as patch:
        patch.setattr(fastdecode, "_spng", None)
        patch.setattr(fastdecode, "_webp", None)
        return probe_bytes(data)


def _same(a: ProbeRecord, b: ProbeRecord) -> None:
    for field in COMPARED:
        assert getattr(a, field) == getattr(b, field), field


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_png_pixels_and_record_match_pillow(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _encode(_art(mode), "PNG")
    pixels = png_pixels(data, mode)
    assert pixels is not None, "the fast decoder must take a plain 8-bit PNG"
    assert np.array_equal(pixels, np.asarray(Image.open(io.BytesIO(data))))
    _same(probe_bytes(data), _pillow_record(data, monkeypatch))


@pytest.mark.parametrize(
    ("mode", "options"), [("RGB", {"quality": 85}), ("RGBA", {"quality": 80}), ("RGB", {"lossless": True})]
)
def test_webp_pixels_and_record_match_pillow(
    mode: str, options: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _encode(_art(mode, seed=3), "WEBP", **options)
    pixels = webp_pixels(data, mode)
    assert pixels is not None, "the fast decoder must take a still WebP"
    with Image.open(io.BytesIO(data)) as im:
        reference = np.asarray(im.convert(mode))
    assert pixels.shape == reference.shape
    # Both are libwebp; builds may round the colour conversion differently by a step, never more.
    assert int(np.abs(pixels.astype(int) - reference.astype(int)).max()) <= 2
    fast, slow = probe_bytes(data), _pillow_record(data, monkeypatch)
    assert bin(fast.phash ^ slow.phash).count("1") <= 2
    assert (fast.transparent, fast.mode, fast.display_width) == (slow.transparent, slow.mode, slow.display_width)


def _damaged(data: bytes) -> Iterator[tuple[str, bytes]]:
    for frac in (0.2, 0.5, 0.9, 0.999):
        yield f"cut at {frac}", data[: int(len(data) * frac)]
    for frac in (0.3, 0.5, 0.8):
        flipped = bytearray(data)
        flipped[int(len(data) * frac)] ^= 0xFF
        yield f"byte flipped at {frac}", bytes(flipped)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_damaged_files_get_pillows_verdict(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _encode(_art("RGB", (400, 300), seed=5), fmt)
    for label, bad in _damaged(data):
        fast, slow = probe_bytes(bad), _pillow_record(bad, monkeypatch)
        assert fast.error == slow.error, label
        if slow.ok:
            _same(fast, slow)


def test_a_flipped_byte_in_png_pixel_data_is_never_accepted_by_the_fast_path() -> None:
    data = bytearray(_encode(_art("RGB", (400, 300), seed=6), "PNG"))
    data[len(data) // 2] ^= 0x01  # inside IDAT: the CRC no longer matches
    assert not scan_png(bytes(data)).intact
    assert scan_png(_encode(_art("RGB"), "PNG")).intact


def _with_chunk_before_iend(png: bytes, kind: bytes, body: bytes) -> bytes:
    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return png[:-12] + chunk + png[-12:]


def test_png_exif_after_the_pixels_is_found_without_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: displayed size is swapped
    data = _with_chunk_before_iend(_encode(_art("RGB", (300, 200)), "PNG"), b"eXIf", exif.tobytes())
    scan = scan_png(data)
    assert scan.intact and scan.exif is not None
    fast = probe_bytes(data)
    assert (fast.orientation, fast.display_width, fast.display_height) == (6, 200, 300)
    _same(fast, _pillow_record(data, monkeypatch))


def test_animations_and_16_bit_and_grey_alpha_pngs_go_to_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    frames = [_art("RGB", seed=s) for s in range(3)]
    animated = io.BytesIO()
    frames[0].save(animated, "WEBP", save_all=True, append_images=frames[1:], duration=100)
    assert webp_pixels(animated.getvalue(), "RGB") is None
    record = probe_bytes(animated.getvalue())
    assert record.frames == 3 and record.ok
    grey_alpha = _encode(_art("LA"), "PNG")  # libspng has no grey+alpha output
    assert png_pixels(grey_alpha, "LA") is None
    _same(probe_bytes(grey_alpha), _pillow_record(grey_alpha, monkeypatch))
    deep = Image.fromarray((np.arange(200 * 300, dtype=np.uint16).reshape(200, 300) % 65535).astype(np.uint16))
    data = _encode(deep, "PNG")
    _same(probe_bytes(data), _pillow_record(data, monkeypatch))


def test_without_the_fast_libraries_everything_still_works(pillow_only: None) -> None:
    assert png_pixels(_encode(_art("RGB"), "PNG"), "RGB") is None
    assert webp_pixels(_encode(_art("RGB"), "WEBP"), "RGB") is None
    assert probe_bytes(_encode(_art("RGB"), "PNG")).ok
