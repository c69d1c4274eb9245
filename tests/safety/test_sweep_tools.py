"""The safety sweep (issue 12, point 4): every tool that writes, moves or deletes, called through a real MCP client on
an artist's project (``artist.py``: paintings with captions, a copy and a damaged file, a training set, the
hand-kept eye.md, studio.md, iterations.md, training record, library page and tuned config of the markdown version,
a saved workflow, earlier runs' saves, earlier outputs and exports, mixed permissions). After every call, normal
ones and refusals, every file the artist had is at its place byte for byte with its permissions, or in a quarantine
batch whose undo (through the client) brings it back byte for byte, or, for what tools render again (the grimoire's
markdown, training configs), kept byte for byte with its permissions in a copy beside the new render, or, for a
view whose hand edits are imported (eye.md, studio.md), taken into the grimoire.

What each test covers (the tools that write several files, killed mid-call, are in ``test_sweep_kills.py``):

- eye_update: add, confirm, a hand edit of our eye.md imported by the next call; refusals (unknown category,
  unknown entry, accept_edit with nothing held back). The hand-kept eye.md imported, its bytes kept beside.
- studio_register, studio_detect: add and update a LoRA, a hand-added LoRA row imported, the environment recorded;
  refusals (no kind, unknown entry). The hand-kept studio.md imported, its bytes kept beside.
- workflow_manage: save a new workflow and delete it; refusals (save over the artist's workflow, names leaving the
  folder, delete an unknown one). The artist's saved workflow untouched.
- art_prompt, art_iterations, art_library: build and adjust on an asset whose iterations.md was kept by hand, log,
  spec, revert, a hand edit of our iterations.md (kept beside), approve with save_as naming the artist's own library
  page (kept beside), save; refusals (no version, an output outside the project, a taken or escaping name).
- comfyui_submit, comfyui_job (fake ComfyUI on loopback): outputs saved beside earlier ones, a dataset picture
  uploaded as input, a job logged on the hand-kept asset, a job followed to its end; refusals (a checkpoint the
  server lacks, an input outside the project, project without asset, an unknown job).
- asset_export: a spec and a custom size whose names earlier exports hold (new names, never over them), a favicon
  set; refusals (a source outside the project or a folder, an unknown spec, an escaping name, an asset with no log).
- dataset_audit (quarantine_unreadable), dataset_dedupe (report; quarantine of proven copies and of a named file;
  undo of one file), dataset_captions (write: a new caption takes its image's mode, one rewritten on request keeps
  its 0640), dataset_structure (a kohya layout of hard links; rerun after a caption change sets the old one aside);
  refusals (paths outside, an escaping training name, undo of a file already back, output in the grimoire, the
  datasets folder or inside the source). Everything quarantined comes back byte for byte through undo.

The training and GPU tools are swept in ``test_sweep_training.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from ategnatos_mcp.settings import Settings, load_settings
from ategnatos_mcp.wiring import Wiring
from tests.safety.artist import (
    COPY,
    DAMAGED,
    HAND_KEPT_ITERATIONS,
    HAND_KEPT_LIBRARY,
    PAINTINGS,
    SAVED_WORKFLOW,
    Snapshot,
    put_back_quarantined,
)
from tests.safety.session import Call, call, ok, refused, serve, text_of


@dataclass(frozen=True)
class HandEdit:
    """The artist edits a page by hand between two calls: ``line`` goes in after the line starting with ``after``.
    ``imported``: the next write takes the edit into the grimoire (else it keeps the edited page beside)."""

    path: str
    after: str
    line: str
    imported: str | None  # the entry the edit adds, when the grimoire imports it


SAVE_NODE = {"3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["8", 0]}}}
ASSET = {"project": "launch", "asset": "mascot"}
EARLIER_OUTPUT = "workspace/outputs/2025-01-10/a1b2c3d4e5f6_9_ComfyUI_00001_.png"

GRIMOIRE_CASES: dict[str, list[Call | HandEdit]] = {
    "eye_update": [
        ok("eye_update", action="add", category="color", text="teal accents", note="said so"),
        refused("eye_update", action="add", category="colour-ish", text="x"),
        refused("eye_update", action="remove", entry_id="no-such-entry"),
        HandEdit("grimoire/eye.md", "## Color", "- cobalt blue shadows", imported="cobalt blue shadows"),
        ok("eye_update", action="confirm", text="teal accents"),
        refused("eye_update", action="accept_edit"),  # nothing is held back
    ],
    "studio_register, studio_detect": [
        ok("studio_register", action="add", kind="lora", name="inkwash-v3", trigger_words=["inkw"]),
        refused("studio_register", action="add", name="no kind"),
        refused("studio_register", action="update", kind="model", name="Nobody Has This"),
        HandEdit("grimoire/studio.md", "| mibera-style-v2 ", "| sumi-e | sumi | 0.5-0.7 | studies | | |", "sumi-e"),
        ok("studio_register", action="update", kind="lora", name="inkwash-v3", weight_max=0.7),
        ok("studio_detect"),
    ],
    "workflow_manage": [
        refused("workflow_manage", action="save", name="my-flow", workflow=SAVE_NODE),  # the artist's own
        refused("workflow_manage", action="save", name="../eye", workflow=SAVE_NODE),
        ok("workflow_manage", action="save", name="new-flow", workflow=SAVE_NODE),
        ok("workflow_manage", action="delete", name="new-flow"),
        refused("workflow_manage", action="delete", name="never-saved"),
        refused("workflow_manage", action="delete", name="../../workspace/datasets/paintings/painting_00"),
    ],
    "art_prompt, art_iterations, art_library": [
        ok("art_prompt", intent="fox mascot waving", family="sdxl", **ASSET),
        ok("art_iterations", action="log", version=1, seed=7, outputs=[EARLIER_OUTPUT], feedback="warmer", **ASSET),
        HandEdit(HAND_KEPT_ITERATIONS, "#", "My note: v1 had the best eyes.", imported=None),
        ok("art_iterations", action="spec", width=1200, height=630, **ASSET),
        refused("art_iterations", action="revert", feedback="warmer", **ASSET),  # which version?
        ok("art_iterations", action="revert", version=1, **ASSET),
        refused("art_iterations", action="log", outputs=["/etc/passwd"], **ASSET),
        ok("art_iterations", action="approve", version=2, save_as="warm-mascot", tags=["mascot"], **ASSET),
        refused("art_library", action="save", name="warm-mascot", family="sdxl", positive="fox"),
        ok("art_library", action="save", name="calm-hills", family="sdxl", positive="misty hills"),
        refused("art_library", action="save", name="../../eye", family="sdxl", positive="x"),
        ok("art_prompt", mode="adjust", feedback="less busy", **ASSET),
    ],
}


def _hand_edit(home: Path, edit: HandEdit) -> None:
    path = home / edit.path
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith(edit.after)) + 1
    path.write_text("".join([*lines[:at], edit.line + "\n", *lines[at:]]), encoding="utf-8")


@pytest.mark.parametrize("case", list(GRIMOIRE_CASES))
async def test_grimoire_writers_keep_every_file_the_artist_made(
    case: str, project: Snapshot, settings: Settings, app: Wiring, home: Path
) -> None:
    imported: dict[str, str] = {}
    async with serve(settings, app) as client:
        for step in GRIMOIRE_CASES[case]:
            if isinstance(step, HandEdit):
                _hand_edit(home, step)
                project.add(step.path)
                imported |= {step.path: step.imported} if step.imported else {}
                continue
            tool, args, must_refuse = step
            result = await client.call_tool(tool, args)
            assert result.is_error is must_refuse, (tool, args, text_of(result))
            assert project.check(imported=imported) == [], (tool, args)
        profile = await client.call_tool("eye_query", {"detail": True})
        inventory = json.loads((await client.read_resource("ategnatos://studio.json")).contents[0].text)  # type: ignore[union-attr]
    texts = [e["text"] for e in profile.structured_content["entries"]]  # type: ignore[index]
    assert "Painterly, visible brushwork" in texts and "余白を大きく" in texts  # the hand-kept eye.md, imported
    assert "mibera-style-v2" in [lora["name"] for lora in inventory["loras"]]  # the hand-kept studio.md, imported
    for entry in imported.values():  # the edits made after our render went in too
        assert entry in texts + [lora["name"] for lora in inventory["loras"]], entry
    assert json.loads((home / SAVED_WORKFLOW).read_text(encoding="utf-8"))["9"]["class_type"] == "SaveImage"
    if case.startswith("art"):
        # The pages the markdown version kept by hand are kept beside the new renders, and the answers said so.
        for rel in (HAND_KEPT_ITERATIONS, HAND_KEPT_LIBRARY):
            assert [p.name for p in (home / rel).parent.glob("*.backup-*.md")], rel


async def test_comfyui_outputs_land_beside_earlier_ones_and_the_asset_log_keeps_the_hand_kept_page(
    project: Snapshot, home: Path
) -> None:
    from ategnatos_mcp.server import build_app
    from tests.support.fake_comfyui import serve_fake

    params = {"prompt": "ink wash hills", "checkpoint": "mcp_random_sd15_layout.safetensors", "steps": 2}
    sized = {**params, "width": 64, "height": 64}
    painting = str(home / PAINTINGS / "painting_00.png")
    calls: list[Call] = [
        ok("comfyui_submit", template="txt2img-sdxl", params=sized, wait_seconds=20, **ASSET),
        ok("comfyui_submit", template="img2img-sdxl", params=params, images={"image": painting}, wait_seconds=0),
        refused("comfyui_submit", template="txt2img-sdxl", params={**sized, "checkpoint": "nope.safetensors"}),
        refused("comfyui_submit", template="img2img-sdxl", params=params, images={"image": "/etc/hostname"}),
        refused("comfyui_submit", template="txt2img-sdxl", params=sized, project="launch"),  # no asset
    ]
    async with serve_fake(node_seconds=0.02) as fake:
        settings = load_settings(env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": fake.url})
        async with serve(settings, build_app(settings)) as client:
            answers = [await call(client, project, tool, args, must_refuse) for tool, args, must_refuse in calls]
            queued = answers[1].structured_content["job_id"]
            done = await call(client, project, "comfyui_job", {"job_id": queued, "action": "wait", "wait_seconds": 20})
            assert done.structured_content["state"] == "succeeded", text_of(done)
            await call(client, project, "comfyui_job", {"job_id": "no-such-job"}, must_refuse=True)
    assert answers[0].structured_content["state"] == "succeeded", text_of(answers[0])
    assert "iterations.backup-" in text_of(answers[0])  # the hand-kept page, kept and said so
    outputs = sorted(p.name for p in (home / "workspace" / "outputs").rglob("*.png"))
    assert len(outputs) == 3 and "a1b2c3d4e5f6_9_ComfyUI_00001_.png" in outputs


async def test_dataset_tools_move_only_into_quarantine_and_undo_brings_every_byte_back(
    project: Snapshot, settings: Settings, app: Wiring, home: Path
) -> None:
    dataset = home / PAINTINGS
    rewritten = f"{PAINTINGS}/painting_01.txt"  # the one caption the artist asks to change
    captions = [
        {"path": "painting_04.jpg", "caption": "a boat on a misty lake"},
        {"path": "painting_01.jpg", "caption": "inkwash, hills at dawn, rewritten on request"},
        {"path": "../ink/ink00.png", "caption": "not this dataset"},  # refused inside the answer
    ]
    paintings = {"path": "paintings"}
    calls: list[Call] = [
        ok("dataset_audit", quarantine_unreadable=True, **paintings),
        refused("dataset_audit", path="../../etc"),
        refused("dataset_audit", training_name="../eye", **paintings),
        ok("dataset_dedupe", **paintings),
        ok("dataset_dedupe", action="quarantine", **paintings),
        ok("dataset_dedupe", action="quarantine", files=["painting_07.jpg"], **paintings),
        refused("dataset_dedupe", action="quarantine", files=["../ink/ink00.png"], **paintings),
        ok("dataset_dedupe", action="undo", files=["painting_07.jpg"], **paintings),
        refused("dataset_dedupe", action="undo", files=["painting_07.jpg"], **paintings),  # already back
        refused("dataset_captions", mode="write", **paintings),
        ok("dataset_captions", mode="write", trigger_word="inkwash", captions=captions, **paintings),
        ok("dataset_structure", name="style", repeats=2, **paintings),
        refused("dataset_structure", name="style", output="grimoire", **paintings),
        refused("dataset_structure", name="style", output="workspace/datasets", **paintings),
        refused("dataset_structure", name="style", output="workspace/datasets/paintings/k", **paintings),
        ok("dataset_captions", mode="write", captions=[{**captions[0], "caption": "a boat, at dusk"}], **paintings),
        ok("dataset_structure", name="style", repeats=3, **paintings),  # renamed; the replaced caption set aside
    ]
    async with serve(settings, app) as client:
        for tool, args, must_refuse in calls:
            result = await client.call_tool(tool, args)
            assert result.is_error is must_refuse, (tool, args, text_of(result))
            # Between calls a file may be away only in the dataset's quarantine, byte for byte, mode included.
            assert project.check(changed_on_request={rewritten}, moved_to=dataset / "quarantine") == [], (tool, args)
        assert not (dataset / COPY).exists() and not (dataset / DAMAGED).exists()  # in quarantine, not deleted
        back = await put_back_quarantined(client, home)
    assert sorted(back) == [f"{PAINTINGS}/{COPY}", f"{PAINTINGS}/{DAMAGED}"]
    assert project.check(changed_on_request={rewritten}) == []
    caption = home / rewritten
    assert caption.read_text(encoding="utf-8") == "inkwash, hills at dawn, rewritten on request\n"
    assert caption.stat().st_mode & 0o777 == project.files[rewritten].mode  # 0640 kept
    new = dataset / "painting_04.txt"  # a new caption takes its image's mode (0644)
    assert new.read_text(encoding="utf-8") == "a boat, at dusk\n" and new.stat().st_mode & 0o777 == 0o644
    layout = home / "workspace" / "datasets" / "paintings-kohya"
    assert sorted(p.name for p in layout.iterdir()) == ["3_style", "quarantine"]
    assert [p.read_text(encoding="utf-8") for p in (layout / "quarantine").rglob("*.txt")] == [
        "inkwash, a boat on a misty lake\n"  # the caption the layout had before, set aside
    ]


async def test_exports_never_take_the_name_of_an_earlier_export(
    project: Snapshot, settings: Settings, app: Wiring, home: Path
) -> None:
    source = {"source": f"{PAINTINGS}/painting_00.png", "upscale": "lanczos"}
    calls: list[Call] = [
        ok("asset_export", spec="og-image", **source),  # painting_00-og.jpg is taken by an earlier export
        ok("asset_export", width=512, height=512, format="webp", name="mascot", crop="fill", **source),  # taken too
        ok("asset_export", spec="favicon", **source),
        refused("asset_export", source="/etc/hostname", spec="og-image"),
        refused("asset_export", source=PAINTINGS, spec="og-image"),
        refused("asset_export", spec="no-such-spec", **source),
        refused("asset_export", width=64, height=64, name="../../grimoire/eye", **source),
        refused("asset_export", **ASSET),  # the hand-kept page is no log with an approved picture
    ]
    async with serve(settings, app) as client:
        for tool, args, must_refuse in calls:
            await call(client, project, tool, args, must_refuse)
    exports = {p.name for p in (home / "workspace" / "exports").iterdir()}
    assert {"painting_00-og.jpg", "painting_00-og-v2.jpg", "mascot-512x512.webp", "mascot-512x512-v2.webp"} <= exports
    assert not [name for name in exports if name.startswith(".")]  # no temp file left behind
