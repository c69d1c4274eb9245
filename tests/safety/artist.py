"""An artist's project as it is before a call, a byte-for-byte snapshot of it, and the check made after the call.

``build_project(home)`` writes what a working artist has: paintings (PNG, JPEG, WebP) with hand-written captions,
one exact copy and one damaged file among them, a training set, the hand-kept ``grimoire/eye.md`` and
``studio.md`` of the markdown version of Ategnatos (``tests/fixtures/grimoire``), a hand-kept ``iterations.md``, a
training record, a library page and a tuned training config from that version, a saved workflow, the saves of
earlier training runs, earlier ComfyUI outputs and earlier exports. Files carry different permissions (0644,
0664, 0640, 0600) so a changed mode shows.

``Snapshot`` records path -> (sha256, mode) of every one of those files. ``check`` says, for each file, whether it
is still at its place byte for byte with its mode, or (for the grimoire's markdown and training configs, which
tools render again) whether its exact bytes are kept, with its mode, in a copy beside it.
``put_back_quarantined`` undoes every quarantine batch through the MCP client first, so a file moved aside counts
only if its undo really brings it back.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import shutil
import stat
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mcp import Client
from PIL import Image

from tests.conftest import FIXTURES

PAINTINGS = "workspace/datasets/paintings"  # a style set: mixed formats, a copy, a damaged file
TRAINING_SET = "workspace/datasets/ink"  # ten 1024 px images with captions: passes gate 1
COPY = "painting_02 copy.webp"  # byte-identical to painting_02.webp: a proven duplicate
DAMAGED = "painting_09.jpg"  # a JPEG cut off after its header: cannot be opened
OLD_RUN = "oldink"  # a run of the markdown version: its saves, no records in the grimoire
HAND_KEPT_ITERATIONS = "grimoire/projects/launch/assets/mascot/iterations.md"
HAND_KEPT_RECORD = "grimoire/training/ink/intent.md"
HAND_KEPT_LIBRARY = "grimoire/library/sdxl/warm-mascot.md"
SAVED_WORKFLOW = "grimoire/workflows/my-flow.json"

ITERATIONS_MD = """# Mascot — iterations

## v1
- Prompt: fox mascot, waving, flat colours
- Seed: 1234
- Feedback: too busy

## v2
- Prompt: fox mascot, waving, flat colours, simple background
- Seed: 1234
- Feedback: better, a bit warmer please
"""
INTENT_MD = "# Intent\n\nMy ink paintings, for a style LoRA. Keep the paper texture!\n"
LIBRARY_MD = "# warm mascot\n\nPositive: fox mascot, warm palette, golden hour\nNotes: worked on Pony V6 at CFG 7\n"
WORKFLOW = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "pony.safetensors"}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "mine", "images": ["8", 0]}},
}


@functools.cache
def _encoded(seed: int, size: tuple[int, int], fmt: str, blocky: bool = False) -> bytes:
    """A painting's file bytes (made once per test session: encoding 1024 px pictures is the slow part)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 255, size=(8, 8, 3) if blocky else (6, 8, 3), dtype=np.uint8)
    resample = Image.Resampling.NEAREST if blocky else Image.Resampling.BILINEAR
    image = Image.fromarray(blocks).resize(size, resample)
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 85} if fmt in ("JPEG", "WEBP") else {}))
    return out.getvalue()


def _put(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    path.chmod(mode)


def build_project(home: Path) -> None:
    """Write the artist's project under ``home`` (see the module docstring)."""
    paintings = home / PAINTINGS
    formats = [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP")]
    for i in range(9):
        ext, fmt = formats[i % 3]
        _put(paintings / f"painting_{i:02}.{ext}", _encoded(i, (320, 256), fmt), 0o664 if i % 2 else 0o644)
        if i != 4:  # one painting still waits for its caption
            _put(paintings / f"painting_{i:02}.txt", f"ink wash, painting {i}, misty hills\n", 0o640)
    shutil.copy2(paintings / "painting_02.webp", paintings / COPY)
    _put(paintings / DAMAGED, b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 60, 0o644)

    ink = home / TRAINING_SET
    for i in range(10):
        _put(ink / f"ink{i:02}.png", _encoded(100 + i, (1024, 1024), "PNG", blocky=True), 0o644)
        _put(ink / f"ink{i:02}.txt", f"ink_style, study {i}", 0o664)

    grimoire = home / "grimoire"
    _put(grimoire / "eye.md", (FIXTURES / "grimoire" / "eye_hand_kept.md").read_bytes(), 0o600)
    _put(grimoire / "studio.md", (FIXTURES / "grimoire" / "studio_hand_kept.md").read_bytes(), 0o644)
    _put(home / HAND_KEPT_ITERATIONS, ITERATIONS_MD, 0o644)
    _put(home / HAND_KEPT_RECORD, INTENT_MD, 0o664)
    _put(home / HAND_KEPT_LIBRARY, LIBRARY_MD, 0o644)
    _put(home / SAVED_WORKFLOW, json.dumps(WORKFLOW, indent=2), 0o644)

    output = home / "workspace" / "training" / OLD_RUN / "output"
    for name in (f"{OLD_RUN}-000001.safetensors", f"{OLD_RUN}-000002.safetensors", f"{OLD_RUN}.safetensors"):
        _put(output / name, b"safetensors of an earlier run: " + name.encode() * 40, 0o644)
    _put(output.parent / "ink.toml", 'pretrained_model_name_or_path = "/models/sdxl.safetensors"\n', 0o644)
    own_config = home / "workspace" / "configs" / "ink" / "ink.toml"  # where the markdown version wrote configs
    _put(own_config, "# tuned by hand\nlearning_rate = 0.00008\nnetwork_dim = 12\n", 0o664)
    # Saves of an 'ink' run no record knows (the markdown version's), where a new 'ink' run writes its own.
    leftover = home / "workspace" / "training" / "ink" / "output" / "ink-000001.safetensors"
    _put(leftover, b"safetensors the artist trained before: " + b"ink" * 100, 0o644)

    day = home / "workspace" / "outputs" / "2025-01-10"
    _put(day / "a1b2c3d4e5f6_9_ComfyUI_00001_.png", _encoded(20, (256, 256), "PNG"), 0o644)
    _put(day / "a1b2c3d4e5f6_9_ComfyUI_00001_.png.json", '{"seed": 1234}', 0o644)
    exports = home / "workspace" / "exports"
    _put(exports / "painting_00-og.jpg", _encoded(21, (1200, 630), "JPEG"), 0o644)  # the name og-image takes
    _put(exports / "mascot-512x512.webp", _encoded(22, (512, 512), "WEBP"), 0o644)  # a custom size's name


@dataclass(frozen=True)
class KeptCopy:
    name: str
    mode: int


@dataclass(frozen=True)
class Entry:
    sha256: str
    mode: int


def _entry(path: Path) -> Entry:
    return Entry(hashlib.sha256(path.read_bytes()).hexdigest(), stat.S_IMODE(path.lstat().st_mode))


def _rendered(rel: str) -> bool:
    """Files tools write again from their records (the grimoire's markdown, training configs): an earlier version
    the artist made must be kept beside."""
    return (rel.startswith("grimoire/") and rel.endswith(".md")) or rel.startswith("workspace/configs/")


def _ours(rel: str) -> bool:
    """Files Ategnatos itself keeps (its state and cache), not the artist's."""
    parts = rel.split("/")
    return ".state" in parts or ".cache" in parts


@dataclass
class Snapshot:
    """Every file of the project: relative path -> sha256 and permission bits."""

    home: Path
    files: dict[str, Entry] = field(default_factory=dict)

    @classmethod
    def take(cls, home: Path) -> Snapshot:
        files = {
            p.relative_to(home).as_posix(): _entry(p)
            for p in sorted(home.rglob("*"))
            if p.is_file() and not p.is_symlink() and not _ours(p.relative_to(home).as_posix())
        }
        return cls(home, files)

    def check(
        self, *, changed_on_request: Collection[str] = (), moved_to: Path | None = None, imported: Collection[str] = ()
    ) -> list[str]:
        """What is lost or altered: an empty list when every file is at its place byte for byte (mode included),
        or, for files tools render (the grimoire's markdown, training configs), kept byte for byte with its mode in a
        copy beside it (the new render keeping the mode too).

        ``changed_on_request``: files the call was explicitly asked to change (a caption rewritten on request).
        ``moved_to``: a folder the call said it moved files into (kept byte for byte, mode included, there).
        ``imported``: views whose hand edits the grimoire takes in (eye.md, studio.md): rewritten, mode kept; the
        test checks the edit's entry is in the profile.
        """
        problems: list[str] = []
        for rel, before in self.files.items():
            if rel in changed_on_request:
                continue
            path = self.home / rel
            now = _entry(path) if path.is_file() else None
            if now == before:
                continue
            if now is not None and now.sha256 == before.sha256:
                problems.append(f"{rel}: mode {oct(now.mode)} instead of {oct(before.mode)}")
            elif rel in imported and now is not None:
                if now.mode != before.mode:
                    problems.append(f"{rel}: rendered again with mode {oct(now.mode)} instead of {oct(before.mode)}")
            elif _rendered(rel) and (kept := self._kept_beside(path, before)):
                if now is not None and now.mode != before.mode:
                    problems.append(f"{rel}: rendered again with mode {oct(now.mode)} instead of {oct(before.mode)}")
                if kept.mode != before.mode:
                    problems.append(f"{rel}: kept as {path.parent.name}/{kept.name}, mode {oct(kept.mode)}")
            elif not (moved_to is not None and self._moved(rel, before, moved_to)):
                problems.append(f"{rel}: {'changed' if now is not None else 'gone'}")
        return problems

    def add(self, rel: str) -> None:
        """Record a file the artist made or edited during the test (e.g. a hand edit of a rendered record)."""
        self.files[rel] = _entry(self.home / rel)

    def _kept_beside(self, path: Path, before: Entry) -> KeptCopy | None:
        if not path.parent.is_dir():
            return None
        for sibling in sorted(path.parent.glob(f"{path.stem}.*{path.suffix}")):
            entry = _entry(sibling)
            if sibling != path and entry.sha256 == before.sha256:
                return KeptCopy(sibling.name, entry.mode)
        return None

    def _moved(self, rel: str, before: Entry, folder: Path) -> bool:
        matches = [p for p in folder.rglob(Path(rel).name) if p.is_file()]
        return any(_entry(p) == before for p in matches)


async def put_back_quarantined(client: Client, home: Path) -> list[str]:
    """Undo every quarantine batch of every dataset through the client; the paths it put back."""
    back: list[str] = []
    for manifest in sorted((home / "workspace").rglob("quarantine/manifest.json")):
        dataset = manifest.parent.parent.relative_to(home).as_posix()
        entries = json.loads(manifest.read_text(encoding="utf-8"))["entries"]
        for _ in range(len(entries) + 1):
            undone = await client.call_tool("dataset_dedupe", {"path": dataset, "action": "undo"})
            if undone.is_error:
                assert "Nothing is in quarantine" in _text(undone), _text(undone)
                break
            moved = undone.structured_content["quarantine"]["moved"]  # type: ignore[index]
            back += [f"{dataset}/{rel}" for rel in moved]
    return back


def stray_temp_files(home: Path) -> list[str]:
    """Temp files of an interrupted write left among the artist's files (outside Ategnatos' own folders)."""
    return sorted(
        p.relative_to(home).as_posix()
        for p in home.rglob("*")
        if p.is_file() and (p.name.endswith(".tmp")) and not _ours(p.relative_to(home).as_posix())
    )


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")
