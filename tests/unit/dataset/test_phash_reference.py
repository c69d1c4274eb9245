"""Our numpy pHash is imagehash's pHash, bit for bit, on real pictures.

imagehash (the reference, and a declared dependency) takes the 32x32 grey picture, the 2-D type-II DCT, the 8x8
lowest frequencies and their median. Ours builds the same DCT from a cosine matrix (a constant factor apart, which
the median threshold ignores) so the dataset workers need neither scipy nor the per-call overhead.
"""

from __future__ import annotations

import io
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from ategnatos_mcp.dataset.probe import HASH_SIDE, dct_hash
from tests.support.datasets import generated_dataset

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _pictures(tmp_root: Path) -> list[Path]:
    generated = generated_dataset(tmp_root, n=24, seed=11, dup_fraction=0.3, bad_per_kind=0)
    photos = sorted(
        p for p in (generated / "dataset").rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"}
    )
    shipped = sorted(p for p in FIXTURES.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"})
    return photos + shipped


def _ours(grey: Image.Image) -> int:
    return dct_hash(np.asarray(grey, dtype=np.float32))


def test_our_phash_equals_imagehash_bit_for_bit_on_real_pictures(tmp_path_factory: pytest.TempPathFactory) -> None:
    pictures = _pictures(tmp_path_factory.mktemp("phash"))
    assert len(pictures) >= 30
    compared = 0
    for path in pictures:
        try:
            with Image.open(path) as im:
                im.load()
                source = im.copy()
        except OSError:
            continue  # the shipped fixtures include damaged files on purpose
        # imagehash's own preprocessing: grey, then 32x32 with its resampling
        grey = source.convert("L").resize((HASH_SIDE, HASH_SIDE), Image.Resampling.LANCZOS)
        reference = imagehash.phash(grey, hash_size=8, highfreq_factor=HASH_SIDE // 8)
        assert _ours(grey) == int(str(reference), 16), path.name
        mirrored = grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        assert _ours(mirrored) == int(str(imagehash.phash(mirrored)), 16), path.name
        compared += 1
    assert compared >= 30


def test_a_picture_saved_and_read_again_keeps_both_hashes_equal() -> None:
    gradient = Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (64, 1))).resize((HASH_SIDE, HASH_SIDE))
    buffer = io.BytesIO()
    gradient.save(buffer, format="PNG")
    again = Image.open(io.BytesIO(buffer.getvalue())).convert("L")
    assert _ours(again) == int(str(imagehash.phash(again)), 16)


def _painting() -> Image.Image:
    """A picture with structure at every scale: gradients in three directions and grain."""
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:240, 0:320]
    base = np.stack([(x * 0.8) % 256, (y * 1.1) % 256, ((x + y) * 0.4) % 256], axis=-1)
    noise = rng.integers(0, 24, size=base.shape)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def _encoded(picture: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "GIF"])
def test_formats_without_a_fast_decoder_are_hashed_by_imagehash_to_the_same_bits(fmt: str) -> None:
    from ategnatos_mcp.dataset.probe import probe_bytes

    picture = _painting().convert("P").convert("RGB") if fmt == "GIF" else _painting()  # GIF keeps 256 colours
    png = probe_bytes(_encoded(picture, "PNG"))  # the fast PNG decoder and our numpy DCT
    other = probe_bytes(_encoded(picture, fmt))  # Pillow's general path and imagehash's pHash
    assert png.ok and other.ok, (png.error_detail, other.error_detail)
    assert other.format == fmt
    assert other.thumb == png.thumb  # the same 32x32 grey picture reached both hashers
    grey = Image.frombytes("L", (HASH_SIDE, HASH_SIDE), other.thumb)
    assert other.phash == int(str(imagehash.phash(grey)), 16)
    assert (other.phash, other.phash_mirror) == (png.phash, png.phash_mirror)


def test_imagehash_is_loaded_only_when_a_file_without_a_fast_decoder_comes() -> None:
    import subprocess
    import sys

    script = (
        "import io, sys\n"
        "from PIL import Image\n"
        "from ategnatos_mcp.dataset.probe import probe_bytes\n"
        "for fmt in ('PNG', 'JPEG', 'WEBP'):\n"
        "    b = io.BytesIO(); Image.new('RGB', (64, 48), (200, 90, 30)).save(b, format=fmt)\n"
        "    assert probe_bytes(b.getvalue()).ok, fmt\n"
        "print('imagehash' in sys.modules, 'scipy' in sys.modules)\n"
        "b = io.BytesIO(); Image.new('RGB', (64, 48), (200, 90, 30)).save(b, format='BMP')\n"
        "assert probe_bytes(b.getvalue()).ok\n"
        "print('imagehash' in sys.modules, 'scipy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.split() == ["False", "False", "True", "True"]
