"""The Agent Skills (``skills/`` at the top of the project, shipped in the wheel as ``ategnatos_mcp/skills/``):
list, read, install.

A skill is ``skills/<name>/SKILL.md`` (front matter ``name`` and ``description``, then the body) plus
reference files in ``skills/<name>/reference/``. ``install_skills`` copies them into a project's
``.claude/skills/`` and never replaces a file the user changed unless asked to.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, Field

from ategnatos_mcp.errors import NotFoundError, StateError
from ategnatos_mcp.state import write_bytes_atomic

__all__ = [
    "InstallReport",
    "ReferenceFile",
    "Skill",
    "find_skills_root",
    "install_skills",
    "install_skills_report",
    "list_skills",
    "load_skill",
    "parse_front_matter",
    "read_skill_file",
    "tool_names_in",
]

SKILLS_DIR = "skills"
SKILL_FILE = "SKILL.md"
REFERENCE_DIR = "reference"
MANIFEST_NAME = ".ategnatos-skills.json"
_REFERENCE_SUFFIXES = {".md", ".json"}
# Tool names are <domain>_<verb>...; these are the domains' prefixes (plus the fixed launch_training).
_TOOL_NAME = re.compile(
    r"`((?:studio|comfyui|workflow|gpu|remote|dataset|train|training|launch|art|asset|image|eye)_[a-z][a-z_]*)`"
)


class ReferenceFile(BaseModel):
    """One reference file of a skill."""

    skill: str
    name: str = Field(description="File name inside the skill's reference/ folder.")
    title: str
    mime_type: str
    path: Path

    @property
    def uri(self) -> str:
        return f"ategnatos://skills/{self.skill}/{self.name}"


class Skill(BaseModel):
    """A skill: its front matter, its body and its reference files."""

    name: str
    description: str
    path: Path
    body: str
    references: list[ReferenceFile]


class InstallReport(BaseModel):
    """What ``install_skills_report`` did, file by file."""

    target: Path
    written: list[Path] = Field(default_factory=list)
    unchanged: list[Path] = Field(default_factory=list)
    skipped_user_changed: list[Path] = Field(default_factory=list)


def find_skills_root() -> Path:
    """The skills folder: inside the installed package (a wheel), else at the top of the project (a clone or an
    editable install, where ``skills/`` is the source).

    Raises:
        NotFoundError: neither is there (a build that left the skills out).
    """
    packaged = resources.files("ategnatos_mcp") / SKILLS_DIR
    candidates = [Path(str(packaged)), Path(__file__).resolve().parent.parent / SKILLS_DIR]
    for root in candidates:
        if root.is_dir() and any(root.glob(f"*/{SKILL_FILE}")):
            return root
    raise NotFoundError(
        f"The skills folder was not found (looked in {candidates[0]} and {candidates[1]}).",
        kind="skills folder",
        name=str(candidates[0]),
        hint="Reinstall Ategnatos (pip install ategnatos-mcp, or pip install -e . in a clone): the wheel carries "
        "the skills as ategnatos_mcp/skills/.",
    )


def parse_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Split ``---`` front matter (simple ``key: value`` lines) from the body."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 4)
    if end == -1:
        return {}, text
    meta: dict[str, str] = {}
    for line in text[4:end].splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and not line.startswith((" ", "\t", "#")):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            meta[key.strip()] = value
    return meta, text[end + 4 :].lstrip("\n")


def list_skills(root: Path | None = None) -> list[Skill]:
    """Every skill under ``root`` (default: the package's skills folder), sorted by name."""
    root = root or find_skills_root()
    return [load_skill(path.parent.name, root) for path in sorted(root.glob(f"*/{SKILL_FILE}"))]


def load_skill(name: str, root: Path | None = None) -> Skill:
    """One skill by name.

    Raises:
        NotFoundError: no such skill.
        StateError: its SKILL.md lacks the ``name``/``description`` front matter.
    """
    root = root or find_skills_root()
    path = root / name / SKILL_FILE
    if name not in {p.parent.name for p in root.glob(f"*/{SKILL_FILE}")}:
        known = ", ".join(sorted(p.parent.name for p in root.glob(f"*/{SKILL_FILE}")))
        raise NotFoundError(f"There is no skill called '{name}'.", kind="skill", name=name, hint=f"Known: {known}.")
    meta, body = parse_front_matter(path.read_text(encoding="utf-8"))
    if not meta.get("name") or not meta.get("description"):
        raise StateError(
            f"{path} has no `name`/`description` front matter.",
            document=str(path),
            hint="Start the file with '---', 'name: ...', 'description: ...', '---'.",
        )
    return Skill(
        name=meta["name"], description=meta["description"], path=path, body=body, references=_references(root, name)
    )


def _references(root: Path, skill: str) -> list[ReferenceFile]:
    folder = root / skill / REFERENCE_DIR
    files = sorted(p for p in folder.glob("*") if p.is_file() and p.suffix in _REFERENCE_SUFFIXES)
    return [
        ReferenceFile(
            skill=skill,
            name=p.name,
            title=_title(p),
            mime_type="text/markdown" if p.suffix == ".md" else "application/json",
            path=p,
        )
        for p in files
    ]


def _title(path: Path) -> str:
    if path.suffix == ".md":
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return path.stem.replace("-", " ").capitalize()


def read_skill_file(skill: str, name: str, root: Path | None = None) -> str:
    """The text of ``SKILL.md`` or of one reference file, looked up by name (never by a free path).

    Raises:
        NotFoundError: no such skill or file.
    """
    loaded = load_skill(skill, root)
    if name == SKILL_FILE:
        return loaded.path.read_text(encoding="utf-8")
    for ref in loaded.references:
        if ref.name == name:
            return ref.path.read_text(encoding="utf-8")
    names = ", ".join(ref.name for ref in loaded.references)
    raise NotFoundError(
        f"The {skill} skill has no reference file '{name}'.", kind="reference file", name=name, hint=f"Known: {names}."
    )


def tool_names_in(text: str) -> set[str]:
    """Tool names written in backticks in a skill's text (``comfyui_submit``, ``launch_training``...)."""
    return set(_TOOL_NAME.findall(text))


def install_skills(target: Path, *, overwrite: bool = False, root: Path | None = None) -> list[Path]:
    """Copy every skill into ``target`` (a project folder, or its ``.claude/skills`` folder); return files written."""
    return install_skills_report(target, overwrite=overwrite, root=root).written


def install_skills_report(target: Path, *, overwrite: bool = False, root: Path | None = None) -> InstallReport:
    """Copy every skill into the project's ``.claude/skills/``.

    A file already there is replaced only when it is still exactly what an earlier install wrote (the
    manifest records its hash) or when ``overwrite`` is set; a file the user edited is left alone.
    """
    root = root or find_skills_root()
    dest_root = target if target.name == "skills" and target.parent.name == ".claude" else target / ".claude" / "skills"
    manifest_path = dest_root / MANIFEST_NAME
    manifest = _read_manifest(manifest_path)
    report = InstallReport(target=dest_root)
    for skill in list_skills(root):
        for source in [skill.path, *(ref.path for ref in skill.references)]:
            relative = source.relative_to(root).as_posix()
            dest = dest_root / relative
            data = source.read_bytes()
            new_hash = _sha256(data)
            if dest.exists():
                current = _sha256(dest.read_bytes())
                if current == new_hash:
                    manifest[relative] = new_hash
                    report.unchanged.append(dest)
                    continue
                if current != manifest.get(relative) and not overwrite:
                    report.skipped_user_changed.append(dest)
                    continue
            write_bytes_atomic(dest, data)
            manifest[relative] = new_hash
            report.written.append(dest)
    write_bytes_atomic(manifest_path, json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
    return report


def _read_manifest(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
