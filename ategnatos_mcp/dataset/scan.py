"""Walk a dataset folder once: images, caption files, layout (flat or kohya ``{repeats}_{name}``).

The walk never follows symlinked folders (so a link loop cannot trap it), skips hidden entries and
the ``quarantine/`` folder, and records files it cannot read instead of failing on them. Given the
project's roots, it leaves out linked files that point outside them (the rule every tool follows, see
``paths.confine``) and lists them, so the answer can say so.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ategnatos_mcp.errors import InvalidRequestError, NotFoundError
from ategnatos_mcp.paths import inside_roots
from ategnatos_mcp.state.atomic import is_temp_name, remove_if_abandoned

__all__ = [
    "CAPTION_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "KOHYA_FOLDER",
    "QUARANTINE_DIR",
    "REGULARISATION_NAMES",
    "DatasetScan",
    "FileEntry",
    "dataset_fingerprint",
    "fingerprint_of",
    "is_regularisation_folder",
    "scan_dataset",
]

logger = logging.getLogger("ategnatos_mcp.dataset")

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
CAPTION_EXTENSIONS = (".txt", ".caption")
QUARANTINE_DIR = "quarantine"
KOHYA_FOLDER = re.compile(r"^(\d+)_(.+)$")
# Regularisation images: the top-level folder's name, without a kohya ``{repeats}_`` prefix, is one of these words
# (any letter case). ``1_reg``, ``1_Regularisation``, ``class`` are; ``1_reg_woman`` is not. Training writes them
# as regularisation data; captions there describe the class only, so the trigger word does not belong in them.
REGULARISATION_NAMES: tuple[str, ...] = ("reg", "regularization", "regularisation", "class")


def is_regularisation_folder(folder: str) -> bool:
    """True when ``folder`` (or the top-level folder of a relative path) holds regularisation images."""
    top = folder.split("/", 1)[0]
    match = KOHYA_FOLDER.match(top)
    return (match.group(2) if match else top).lower() in REGULARISATION_NAMES


@dataclass(frozen=True)
class FileEntry:
    """One file of the dataset; ``rel`` uses '/' separators, relative to the dataset root."""

    rel: str
    path: Path
    size: int
    mtime_ns: int

    @property
    def stem_key(self) -> str:
        """The path without its extension: an image and its caption share it."""
        return self.rel.rsplit(".", 1)[0] if "." in self.rel.rsplit("/", 1)[-1] else self.rel


@dataclass
class DatasetScan:
    """What one walk of the folder found."""

    root: Path
    images: list[FileEntry] = field(default_factory=list)
    captions: list[FileEntry] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (rel, reason)
    skipped_links: list[str] = field(default_factory=list)  # linked folders (never followed), broken links
    outside_links: list[FileEntry] = field(default_factory=list)  # linked files pointing outside the project
    layout: str = "flat"  # "flat" | "kohya" | "mixed"
    concepts: dict[str, int] = field(default_factory=dict)  # kohya folder -> repeats
    leftovers: list[Path] = field(default_factory=list)  # our temp files a killed write left (hidden, never data)

    def concept_of(self, rel: str) -> str:
        """The top-level folder of a file ('' for files at the root)."""
        return rel.split("/", 1)[0] if "/" in rel else ""


def _check_root(root: Path) -> None:
    try:
        mode = root.stat().st_mode
    except FileNotFoundError as exc:
        raise NotFoundError(
            f"The dataset folder '{root}' does not exist.",
            kind="dataset",
            name=str(root),
            hint="Check the path, or put your images in workspace/datasets/<name>/ first.",
        ) from exc
    if not stat.S_ISDIR(mode):
        raise InvalidRequestError(
            f"'{root}' is a file, not a folder.", hint="Give the folder that holds your training images."
        )


def scan_dataset(root: Path, *, roots: Sequence[Path] | None = None, tidy: bool = False) -> DatasetScan:
    """Walk ``root`` (blocking: run it in a worker thread).

    With ``roots`` (the project's folders), a linked file pointing outside them is left out and listed in
    ``outside_links``; without, every linked file is taken in. With ``tidy``, the temp files a killed write of ours
    left in the folder (a caption, the quarantine manifest) are removed on the way, unless a writer (another server)
    still holds one; ``leftovers`` lists the ones found.

    Raises:
        NotFoundError: the folder does not exist.
        InvalidRequestError: the path is a file.
    """
    _check_root(root)
    scan = DatasetScan(root=root)
    _walk(root, "", scan, depth=0, roots=roots)
    if tidy:
        for path in scan.leftovers:
            if remove_if_abandoned(path):
                logger.info("removed %s, left by a write that was killed", path)
    scan.images.sort(key=lambda e: e.rel)
    scan.captions.sort(key=lambda e: e.rel)
    _detect_layout(scan)
    return scan


def _walk(folder: Path, prefix: str, scan: DatasetScan, depth: int, roots: Sequence[Path] | None) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except PermissionError:
        scan.unreadable.append((prefix.rstrip("/") or ".", "permission denied on the folder"))
        return
    except OSError as exc:
        scan.unreadable.append((prefix.rstrip("/") or ".", exc.strerror or "cannot be listed"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            if is_temp_name(entry.name):
                scan.leftovers.append(Path(entry.path))
            continue
        rel = prefix + entry.name
        if entry.is_symlink():
            _add_symlink(entry, rel, scan, roots)
            continue
        if entry.is_dir(follow_symlinks=False):
            if depth == 0 and entry.name == QUARANTINE_DIR:
                _quarantine_leftovers(Path(entry.path), scan)  # its manifest's, never its files
                continue
            if depth < 8:
                _walk(Path(entry.path), rel + "/", scan, depth + 1, roots)
            continue
        _add_file(entry, rel, scan)


def _quarantine_leftovers(folder: Path, scan: DatasetScan) -> None:
    try:
        names = os.listdir(folder)
    except OSError:
        return
    scan.leftovers += [folder / name for name in names if is_temp_name(name)]


def _add_symlink(entry: os.DirEntry[str], rel: str, scan: DatasetScan, roots: Sequence[Path] | None) -> None:
    # A linked file inside the project is fine (artists link images from elsewhere); a linked folder is not followed.
    try:
        if entry.is_file(follow_symlinks=True):
            if roots is None or inside_roots(Path(entry.path), roots):
                _add_file(entry, rel, scan, follow=True)
            else:
                _add_outside(entry, rel, scan)
            return
    except OSError:
        pass
    scan.skipped_links.append(rel)


def _add_outside(entry: os.DirEntry[str], rel: str, scan: DatasetScan) -> None:
    suffix = os.path.splitext(entry.name)[1].lower()
    if suffix not in IMAGE_EXTENSIONS and suffix not in CAPTION_EXTENSIONS:
        return
    st = entry.stat(follow_symlinks=True)
    scan.outside_links.append(FileEntry(rel=rel, path=Path(entry.path), size=st.st_size, mtime_ns=st.st_mtime_ns))


def _add_file(entry: os.DirEntry[str], rel: str, scan: DatasetScan, *, follow: bool = False) -> None:
    suffix = os.path.splitext(entry.name)[1].lower()
    is_image = suffix in IMAGE_EXTENSIONS
    is_caption = suffix in CAPTION_EXTENSIONS
    if not (is_image or is_caption):
        return
    try:
        st = entry.stat(follow_symlinks=follow)
    except OSError as exc:
        scan.unreadable.append((rel, exc.strerror or "cannot be read"))
        return
    if not stat.S_ISREG(st.st_mode):
        return
    if not os.access(entry.path, os.R_OK):
        scan.unreadable.append((rel, "permission denied"))
        return
    item = FileEntry(rel=rel, path=Path(entry.path), size=st.st_size, mtime_ns=st.st_mtime_ns)
    (scan.images if is_image else scan.captions).append(item)


def _detect_layout(scan: DatasetScan) -> None:
    top_level = {scan.concept_of(e.rel) for e in scan.images}
    kohya = {name: int(m.group(1)) for name in top_level if name and (m := KOHYA_FOLDER.match(name))}
    other = top_level - set(kohya)
    scan.concepts = dict(sorted(kohya.items()))
    if kohya and not other:
        scan.layout = "kohya"
    elif kohya:
        scan.layout = "mixed"
    else:
        scan.layout = "flat"


def dataset_fingerprint(path: Path) -> str:
    """A cheap, stable digest of a dataset: sorted relative paths, sizes and mtimes of images and captions.

    Any added, removed, renamed, resized or touched image or caption changes it. Files in
    ``quarantine/`` and hidden files do not count.

    Raises:
        NotFoundError: the folder does not exist.
        InvalidRequestError: the path is a file.
    """
    return fingerprint_of(scan_dataset(Path(path)))


def fingerprint_of(scan: DatasetScan) -> str:
    """The fingerprint of an existing scan (see ``dataset_fingerprint``).

    Links left out as pointing outside the project count too: the fingerprint of a folder is the same whether or
    not it was walked with the project's roots.
    """
    digest = hashlib.sha256()
    for entry in sorted([*scan.images, *scan.captions, *scan.outside_links], key=lambda e: e.rel):
        digest.update(f"{entry.rel}\x00{entry.size}\x00{entry.mtime_ns}\n".encode())
    return digest.hexdigest()
