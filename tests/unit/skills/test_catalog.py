"""The shipped skills: front matter, the five-heading format, structured data, and installing into a project."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from ategnatos_mcp.cuda_matrix import CudaMatrix, load_cuda_matrix
from ategnatos_mcp.errors import NotFoundError
from ategnatos_mcp.export import SPECS_FILE, SpecCatalog
from ategnatos_mcp.skills_catalog import (
    MANIFEST_NAME,
    find_skills_root,
    install_skills,
    install_skills_report,
    list_skills,
    load_skill,
    parse_front_matter,
    read_skill_file,
    tool_names_in,
)

ROOT = find_skills_root()
HEADINGS = [
    "## In Plain Language",
    "## What You Need to Know",
    "## Why This Matters",
    "## Details (For the Curious)",
    "## Sources",
]
REFERENCE_MD = sorted(ROOT.glob("*/reference/*.md"))
# Every structured data file shipped with the skills or the package, and the model that validates it.
DATA_MODELS: dict[str, type[BaseModel]] = {
    "studio/reference/cuda-matrix.json": CudaMatrix,
}


def test_the_four_skills_exist_with_front_matter_naming_them() -> None:
    skills = {skill.name: skill for skill in list_skills()}

    assert set(skills) == {"studio", "art", "train", "eye"}
    for name, skill in skills.items():
        assert skill.path.parent.name == name
        assert len(skill.description) > 60, f"{name}: the description should say when to use the skill"
        assert not skill.body.startswith("---")


@pytest.mark.parametrize("path", REFERENCE_MD, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_reference_file_has_exactly_the_five_headings_in_order(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    level2 = [line.rstrip() for line in lines if line.startswith("## ")]
    titles = [line for line in lines if line.startswith("# ")]

    assert level2 == HEADINGS
    assert len(titles) == 1 and lines[0] == titles[0]
    sections = re.split(r"^## .*$", text, flags=re.M)[1:]
    assert all(section.strip() for section in sections), "every section needs content"


def test_there_is_reference_material_for_every_skill() -> None:
    counts = {skill.name: len(skill.references) for skill in list_skills()}

    assert counts["studio"] >= 5 and counts["art"] >= 6 and counts["train"] >= 8 and counts["eye"] >= 1


def test_every_reference_a_skill_md_points_to_exists() -> None:
    for skill in list_skills():
        names = {ref.name for ref in skill.references}
        mentioned = set(re.findall(r"`reference/([\w.-]+)`", skill.body))
        assert mentioned, f"{skill.name} names no reference files"
        assert mentioned <= names, f"{skill.name} mentions missing files: {sorted(mentioned - names)}"


def test_every_structured_data_file_validates_against_its_model() -> None:
    data_files = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.json"))

    assert data_files == sorted(DATA_MODELS), "a new data file needs a model in DATA_MODELS"
    for relative, model in DATA_MODELS.items():
        model.model_validate_json((ROOT / relative).read_text(encoding="utf-8"))
    SpecCatalog.model_validate_json(SPECS_FILE.read_text(encoding="utf-8"))


def test_cuda_matrix_answers_driver_and_install_questions() -> None:
    matrix = load_cuda_matrix()

    assert matrix.cuda_for_driver("565.57.01")[:2] == ["12.6", "12.4"]
    assert "12.8" in matrix.cuda_for_driver("570.26")
    assert matrix.cuda_for_driver("450.0") == []
    assert matrix.install_command("2.7.0", "12.8") == (
        "pip install torch==2.7.0 torchvision==0.22.0 torchaudio==2.7.0 "
        "--index-url https://download.pytorch.org/whl/cu128"
    )
    with pytest.raises(ValueError, match="no CUDA 12.1 build"):
        matrix.install_command("2.9.1", "12.1")


def test_cuda_matrix_model_rejects_a_pytorch_build_for_an_unlisted_cuda() -> None:
    data = json.loads((ROOT / "studio/reference/cuda-matrix.json").read_text(encoding="utf-8"))
    data["pytorch"][0]["cuda_builds"].append("10.2")

    with pytest.raises(ValidationError, match="unknown CUDA builds"):
        CudaMatrix.model_validate(data)


def test_cuda_matrix_model_rejects_a_malformed_driver_version() -> None:
    data = json.loads((ROOT / "studio/reference/cuda-matrix.json").read_text(encoding="utf-8"))
    data["cuda"][0]["min_driver_linux"] = "latest"

    with pytest.raises(ValidationError):
        CudaMatrix.model_validate(data)


def test_front_matter_parsing() -> None:
    meta, body = parse_front_matter('---\nname: art\ndescription: "Makes: art"\n---\n\n# Body\n')

    assert meta == {"name": "art", "description": "Makes: art"}
    assert body == "# Body\n"
    assert parse_front_matter("# No front matter\n") == ({}, "# No front matter\n")


def test_tool_names_are_found_in_backticks_only() -> None:
    text = "Use `comfyui_submit`, then `launch_training`; not comfyui_job, not `clip_skip`, not `eye`."

    assert tool_names_in(text) == {"comfyui_submit", "launch_training"}


def test_reading_files_is_by_listed_name_only() -> None:
    assert read_skill_file("art", "SKILL.md").startswith("---\nname: art")
    assert read_skill_file("art", "weighting.md").startswith("# ")
    with pytest.raises(NotFoundError):
        read_skill_file("art", "../../pyproject.toml")
    with pytest.raises(NotFoundError):
        load_skill("sculpt")


def test_install_copies_every_skill_file_into_claude_skills(tmp_path: Path) -> None:
    written = install_skills(tmp_path / "project")

    target = tmp_path / "project" / ".claude" / "skills"
    expected = sorted(p.relative_to(ROOT).as_posix() for p in [*ROOT.glob("*/SKILL.md"), *ROOT.glob("*/reference/*")])
    assert sorted(p.relative_to(target).as_posix() for p in written) == expected
    assert (target / "art" / "SKILL.md").read_bytes() == (ROOT / "art" / "SKILL.md").read_bytes()
    assert (target / MANIFEST_NAME).is_file()


def test_reinstall_keeps_files_the_user_changed_unless_asked(tmp_path: Path) -> None:
    target = tmp_path / ".claude" / "skills"
    install_skills(target)
    edited = target / "eye" / "SKILL.md"
    edited.write_text("my own notes\n", encoding="utf-8")

    again = install_skills_report(target)

    assert again.written == []
    assert again.skipped_user_changed == [edited]
    assert edited.read_text(encoding="utf-8") == "my own notes\n"
    forced = install_skills_report(target, overwrite=True)
    assert forced.written == [edited]
    assert edited.read_bytes() == (ROOT / "eye" / "SKILL.md").read_bytes()


def test_reinstall_updates_files_the_user_did_not_touch(tmp_path: Path) -> None:
    source = tmp_path / "skills"
    shutil.copytree(ROOT, source)
    target = tmp_path / "project"
    install_skills(target, root=source)
    (source / "art" / "reference" / "weighting.md").write_text("# Newer text\n", encoding="utf-8")

    report = install_skills_report(target, root=source)

    updated = target / ".claude" / "skills" / "art" / "reference" / "weighting.md"
    assert report.written == [updated]
    assert updated.read_text(encoding="utf-8") == "# Newer text\n"


def test_a_file_already_in_place_that_we_never_installed_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / ".claude" / "skills"
    (target / "art").mkdir(parents=True)
    (target / "art" / "SKILL.md").write_text("the user's own art skill\n", encoding="utf-8")

    report = install_skills_report(target)

    assert target / "art" / "SKILL.md" in report.skipped_user_changed
    assert (target / "art" / "SKILL.md").read_text(encoding="utf-8") == "the user's own art skill\n"
