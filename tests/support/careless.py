"""The world of the bad-input and fuzz tests: a project holding things the artist made (``project``), what they
made before the careless calls (``prepare``), and the checks every answer must pass (``check_answer``): an error
where one is due, our own words, no traceback or exception class, the wrong thing named, a next step."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

DATASET = "workspace/datasets/mine"
FLAT = "workspace/datasets/flat"
SNEAKY = "workspace/datasets/sneaky"  # one picture of its own and a link to one outside the project

# Files the artist made: no call, failing or not, may change or remove them.
PROTECTED = (
    "workspace/datasets/mine/",
    "workspace/datasets/flat/",
    "workspace/datasets/sneaky/",
    "workspace/note.txt",
    "grimoire/workflows/keep.json",
)
# What a refused call may still touch: caches and logs, never the artist's files or the grimoire's records.
SCRATCH = re.compile(r"(^|/)(\.cache|cache|logs?)(/|$)|\.log$")

CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*(Error|Exception|Warning)\b")
SCHEMA_ERROR = re.compile(r"\d+ validation errors? for \w+Arguments")  # pydantic's own wording


@dataclass
class Case:
    """One call: ``expect`` is 'error', 'ok' or 'either'; ``names`` must all appear in the answer."""

    args: dict[str, Any]
    expect: str = "error"
    names: tuple[str, ...] = ()
    label: str = ""


@pytest.fixture(scope="module")
def art(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("art") / "mine"
    folder.mkdir()
    rng = np.random.default_rng(11)
    for i in range(12):
        blocks = rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8)  # distinct pictures that compress well
        Image.fromarray(blocks).resize((1024, 1024), Image.Resampling.NEAREST).save(folder / f"art{i:02}.png")
        (folder / f"art{i:02}.txt").write_text(f"ink_style, study number {i}", encoding="utf-8")
    return folder


@pytest.fixture
def project(home: Path, art: Path, tmp_path: Path) -> Path:
    shutil.copytree(art, home / DATASET)
    outside = tmp_path / "outside"  # not a project root: reachable only through the links below
    outside.mkdir()
    shutil.copy(art / "art00.png", outside / "secret.png")
    (home / "workspace" / "escape").symlink_to(outside, target_is_directory=True)
    (home / SNEAKY).mkdir(parents=True)
    shutil.copy(art / "art01.png", home / SNEAKY / "own.png")
    (home / SNEAKY / "linked.png").symlink_to(outside / "secret.png")
    (home / "workspace" / "note.txt").write_text("a note, not a picture", encoding="utf-8")
    from PIL import Image

    (home / FLAT).mkdir()
    for i in range(3):
        Image.new("RGB", (64, 64), (i * 50, 0, 0)).save(home / FLAT / f"{i}.png")
    return home


def project_files(home: Path) -> dict[str, str]:
    """Every file of the project, by its path relative to ``home``, with the sha256 of its bytes."""
    return {
        p.relative_to(home).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file()
    }


def answer_text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def _substitute(args: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    return {k: last[v[1:]] if isinstance(v, str) and v.startswith("$") else v for k, v in args.items()}


async def prepare(client: Client, setup: list[tuple[str, dict[str, Any]]]) -> None:
    """What the artist made before the careless calls: a saved workflow, a taste entry, a LoRA, then the setup."""
    base = [
        ("workflow_manage", {"action": "save", "name": "keep", "workflow": {"1": {"class_type": "X", "inputs": {}}}}),
        ("eye_update", {"action": "add", "text": "muted earth tones", "category": "color"}),
        ("studio_register", {"kind": "lora", "action": "add", "name": "inkwash", "trigger_words": ["ink_style"]}),
    ]
    last: dict[str, Any] = {}
    for name, args in base + setup:
        result = await client.call_tool(name, _substitute(args, last))
        assert not result.is_error, (name, answer_text(result))
        last.update(result.structured_content or {})


def check_answer(tool: str, case: Case, result: Any) -> list[str]:
    text = answer_text(result)
    where = f"{tool} {case.label or json.dumps(case.args, ensure_ascii=False)[:160]}"
    problems = []
    if case.expect == "error" and not result.is_error:
        problems.append(f"{where}: expected an error, got: {text[:300]}")
    if case.expect == "ok" and result.is_error:
        problems.append(f"{where}: expected a graceful answer, got: {text[:300]}")
    body = text.removeprefix(f"Error executing tool {tool}: ") if result.is_error else text
    if result.is_error and text.strip().startswith("Error executing tool") and body == text:
        return [f"{where}: crashed (bare 'Error executing tool')"]
    if "Traceback" in body or 'File "' in body:
        problems.append(f"{where}: traceback in the answer: {body[:300]}")
    if CLASS_NAME.search(body):
        problems.append(f"{where}: exception class name {CLASS_NAME.search(body)[0]!r} in: {body[:300]}")  # type: ignore[index]
    if "\u202e" in body or "\x00" in body:
        problems.append(f"{where}: a raw bidi override or NUL in the answer (it hides or reverses text)")
    if re.search(r"'None'|\bNone[.,)]", body):
        problems.append(f"{where}: a Python None where a name belongs: {body[:300]}")
    if result.is_error and len(body) > 5000:
        problems.append(f"{where}: answer of {len(body)} characters (a huge input echoed back?)")
    if result.is_error:
        problems += _refusal_problems(tool, case, where, body)
    missing = [n for n in case.names if n.lower() not in body.lower()]
    if missing:
        problems.append(f"{where}: does not name {missing}: {body[:300]}")
    return problems


def _refusal_problems(tool: str, case: Case, where: str, body: str) -> list[str]:
    problems = []
    if "Next step:" not in body:
        problems.append(f"{where}: no next step in: {body[:300]}")
    if SCHEMA_ERROR.match(body):
        problems.append(f"{where}: the SDK's raw schema error reached the answer: {body[:300]}")
    argument_mistake = case.label == "missing required" or case.label.startswith("wrong type for")
    if argument_mistake and not body.startswith(f"The arguments of {tool} need fixing:"):
        problems.append(f"{where}: an argument mistake not said in our words: {body[:300]}")
    return problems
