"""Path confinement: every path a tool accepts goes through ``confine``.

A path is allowed when, after resolving symlinks, it lies inside one of the project's roots
(grimoire, workspace, and folders the user configured as ``extra_roots``). Relative paths are
taken relative to the project home. Traversal, symlink escapes and special files are refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from ategnatos_mcp.errors import InvalidRequestError, NotFoundError, PathNotAllowedError

__all__ = ["confine", "dataset_folder", "inside_roots", "safe_name"]

Kind = Literal["file", "dir", "any", "new"]


def dataset_folder(raw: str, *, home: Path, roots: Sequence[Path], datasets_dir: Path) -> Path:
    """A dataset folder given as a path (as ``confine`` takes it) or just by its name in ``workspace/datasets/``.

    "Audit my paintings" arrives as ``paintings``: when no such path exists in the project, the folder of that
    name among the datasets is meant. A name that is neither says which datasets there are.
    """
    text = raw.strip()
    bare = bool(text) and "/" not in text and os.sep not in text and text not in (".", "..") and "\x00" not in text
    if bare and not _exists(home / text):
        named = datasets_dir / text
        if _exists(named) and named.is_dir():
            return confine(named, home=home, roots=roots, kind="dir")
        known = _dataset_names(datasets_dir)
        raise NotFoundError(
            f"There is no dataset folder '{text}' in {datasets_dir}.",
            kind="dataset",
            name=text,
            hint=(f"Datasets there now: {', '.join(known)}. " if known else "")
            + f"Put the images in {datasets_dir / text}/, or give the folder's full path.",
        )
    return confine(raw, home=home, roots=roots, kind="dir")


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # e.g. a name too long for the file system: not a dataset name, confine says what is wrong
        return True


def _dataset_names(datasets_dir: Path, limit: int = 12) -> list[str]:
    try:
        names = sorted(p.name for p in datasets_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    return names[:limit] + ([f"and {len(names) - limit} more"] if len(names) > limit else [])


def confine(raw: str | os.PathLike[str], *, home: Path, roots: Sequence[Path], kind: Kind = "any") -> Path:
    """Resolve ``raw`` and check it stays inside ``roots``.

    ``kind``: ``file`` must be an existing regular file, ``dir`` an existing folder, ``new`` may not
    exist yet (its parent folder is checked instead), ``any`` an existing file or folder.

    Raises:
        PathNotAllowedError: outside the roots, through a symlink that escapes, or a special file.
        NotFoundError: the path does not exist (for kinds other than ``new``).
    """
    text = os.fspath(raw)
    if not text.strip():
        raise PathNotAllowedError("The path is empty.", path=text, hint="Give a file or folder inside the project.")
    if "\x00" in text:
        raise PathNotAllowedError(
            "The path contains a NUL character, which no file name can hold.",
            path=text.replace("\x00", "\\0"),
            hint="Give the path again as plain text, e.g. workspace/datasets/mystyle.",
        )
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        candidate = home / candidate
    resolved = _resolve(candidate, text)
    allowed = [root.resolve() for root in roots]
    if not any(resolved == root or resolved.is_relative_to(root) for root in allowed):
        names = ", ".join(str(root) for root in allowed)
        raise PathNotAllowedError(
            f"'{text}' is outside the folders Ategnatos may use.",
            path=text,
            hint=f"Use a path inside {names}, or add the folder to `extra_roots` in ategnatos.toml.",
        )
    _check_kind(resolved, text, kind)
    return resolved


def inside_roots(path: Path, roots: Sequence[Path]) -> bool:
    """Whether ``path``, with every symlink followed, lies inside one of ``roots`` (the rule ``confine`` applies).

    Tools that walk folders use it to skip, and report, links that leave the project instead of refusing the walk.
    """
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):  # gone, unreadable or a loop: not a file of the project either
        return False
    return any(resolved == root.resolve() or resolved.is_relative_to(root.resolve()) for root in roots)


def _resolve(candidate: Path, text: str) -> Path:
    try:
        return candidate.resolve(strict=False)
    except RuntimeError as exc:  # a symlink loop
        raise PathNotAllowedError(
            f"'{text}' goes round a symlink loop.", path=text, hint="Remove the looping link."
        ) from exc
    except OSError as exc:
        raise PathNotAllowedError(
            f"'{text}' cannot be resolved: {exc.strerror}.",
            path=text,
            hint="Check the path is spelled right and that its folders can be opened.",
        ) from exc


def _check_kind(resolved: Path, text: str, kind: Kind) -> None:
    if kind == "new":
        if resolved.exists() and not (resolved.is_file() or resolved.is_dir()):
            raise PathNotAllowedError(
                f"'{text}' exists and is not a regular file or folder.",
                path=text,
                hint="Choose another name or location.",
            )
        return
    try:
        mode = resolved.stat().st_mode
    except FileNotFoundError as exc:
        raise NotFoundError(
            f"'{text}' does not exist.", kind="path", name=text, hint="Check the spelling, or list the folder first."
        ) from exc
    except OSError as exc:
        raise PathNotAllowedError(
            f"'{text}' cannot be read: {exc.strerror}.", path=text, hint="Check the file's permissions."
        ) from exc
    is_file, is_dir = stat.S_ISREG(mode), stat.S_ISDIR(mode)
    if not (is_file or is_dir):
        raise PathNotAllowedError(
            f"'{text}' is a special file (device, pipe or socket), not an image or folder.",
            path=text,
            hint="Give an ordinary file or folder inside the project.",
        )
    if kind == "file" and not is_file:
        raise PathNotAllowedError(
            f"'{text}' is a folder; a file is needed here.",
            path=text,
            hint="Give the path of one file inside that folder.",
        )
    if kind == "dir" and not is_dir:
        raise PathNotAllowedError(
            f"'{text}' is a file; a folder is needed here.",
            path=text,
            hint=f"Give the folder that holds it ('{Path(text).parent}'), or another folder.",
        )


_SAFE_EXTRA = set("-_. ")
_MAX_NAME_BYTES = 200


def safe_name(value: str, *, what: str = "name", max_length: int = 80) -> str:
    """Check a user-chosen name that becomes a file or folder name (project, asset, LoRA, workflow).

    Raises:
        InvalidRequestError: empty, too long, or with characters that would escape or break a path.
    """
    cleaned = value.strip()
    bad = [ch for ch in cleaned if not (ch.isalnum() or ch in _SAFE_EXTRA)]
    # File systems count bytes (255 per name), and the name gets suffixes: 80 emoji are 320 bytes.
    too_long = len(cleaned) > max_length or len(cleaned.encode("utf-8")) > _MAX_NAME_BYTES
    if not cleaned or cleaned in {".", ".."} or cleaned.startswith(".") or bad or too_long:
        raise InvalidRequestError(
            f"'{value}' cannot be used as a {what}.",
            hint=f"Use letters, digits, spaces, '-', '_' or '.', at most {max_length} characters (fewer with emoji or "
            "non-Latin letters), not starting with '.'.",
        )
    return cleaned
