"""The skills live at the top of the project (``skills/``) and ship in the wheel as ``ategnatos_mcp/skills/``: a
wheel built from the project carries every SKILL.md and reference file, and the package installed from that wheel
(not the clone) finds, serves and installs them.

The wheel is built offline (no build isolation, no index) with the environment's setuptools from a copy of the
project, so the clone is not touched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ategnatos_mcp.skills_catalog import find_skills_root

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[3]
SHIPPED = sorted(
    "ategnatos_mcp/skills/" + path.relative_to(PROJECT / "skills").as_posix()
    for path in (PROJECT / "skills").rglob("*")
    if path.is_file() and path.suffix in (".md", ".json")
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(PROJECT / name, source / name)
    shutil.copytree(PROJECT / "skills", source / "skills")
    shutil.copytree(
        PROJECT / "ategnatos_mcp", source / "ategnatos_mcp", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", "--isolated", "--no-deps", "--no-build-isolation"]
    built = subprocess.run(
        [*command, "--no-index", "--quiet", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (found,) = out.glob("ategnatos_mcp-*.whl")
    return found


def test_the_skills_are_found_at_the_top_of_the_clone() -> None:
    assert find_skills_root() == PROJECT / "skills"
    assert not (PROJECT / "ategnatos_mcp" / "skills").exists()
    assert sum(name.endswith("/SKILL.md") for name in SHIPPED) == 4


def test_the_wheel_carries_every_skill_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {f"ategnatos_mcp/skills/{skill}/SKILL.md" for skill in ("studio", "art", "train", "eye")} <= names
    assert [name for name in SHIPPED if name not in names] == []


def test_the_package_from_the_wheel_serves_and_installs_its_skills(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    project = tmp_path / "project"
    script = f"""
import json, sys
sys.path.insert(0, {str(site)!r})
import ategnatos_mcp
from ategnatos_mcp.cli import main
from ategnatos_mcp.cuda_matrix import load_cuda_matrix
from ategnatos_mcp.skills_catalog import find_skills_root, list_skills
load_cuda_matrix()
code = main(["install-skills", {str(project)!r}])
print(json.dumps({{"package": ategnatos_mcp.__file__, "root": str(find_skills_root()),
                  "skills": [s.name for s in list_skills()], "code": code}}))
"""
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-3000:]
    seen = json.loads(ran.stdout.strip().splitlines()[-1])
    assert seen["package"].startswith(str(site)) and seen["root"] == str(site / "ategnatos_mcp" / "skills")
    assert seen["skills"] == ["art", "eye", "studio", "train"] and seen["code"] == 0
    assert (project / ".claude" / "skills" / "train" / "SKILL.md").is_file()
