"""The safety sweep (issue 12, point 4): every tool that writes, moves or deletes, called through a real MCP client on
an artist's project (``artist.py``: paintings with captions, a copy and a damaged file, a training set, the
hand-kept eye.md, studio.md, iterations.md, training record and library page of the markdown version, a saved
workflow, an earlier run's saves, earlier outputs and exports). After the calls, normal ones and refusals, every file
the artist had is at its place byte for byte with its permissions, or in a quarantine batch whose undo (through the
client) brings it back byte for byte, or, for the grimoire's markdown that tools render, kept byte for byte (and with
its permissions) in a copy beside the new render.

What each test covers (the tools killed mid-call are in ``test_sweep_kills.py``):

- eye_update: add, confirm, refusals (unknown category, unknown entry); the hand-kept eye.md imported, a copy kept.
- studio_register: add and update a LoRA, refusals (no kind, unknown entry); studio.md imported, a copy kept.
- workflow_manage: save a new workflow, delete it, refusals (save over the artist's one, delete an unknown one, a
  name leaving the folder); the artist's saved workflow untouched.
- art_prompt / art_iterations / art_library: a prompt logged on an asset whose iterations.md was kept by hand, log,
  spec, revert, approve with a library name the artist's own page has, save and refusals; both pages kept.
- comfyui_submit (fake ComfyUI): outputs saved beside earlier ones, an input picture uploaded from the dataset,
  logged on the hand-kept asset; refusal (a checkpoint the server lacks).
- asset_export: a spec and a custom size whose names are taken by earlier exports (new names, never over them);
  refusals (a source outside the project, an unknown spec).
- dataset_audit (quarantine_unreadable), dataset_dedupe (quarantine of proven copies, of named files, undo of one
  file), dataset_captions (write: new captions; one rewritten on request keeps its mode), dataset_structure (a
  kohya layout by hard links, rerun after a caption change); refusals (paths outside, output in the grimoire).
- train_plan (the hand-kept intent.md kept), train_confirm, train_validate_environment, train_dry_run,
  launch_training (files of an unrecorded earlier run in its output folder: refused, then moved aside with
  fresh=true), training_status (samples, stop refused after the end), train_evaluate (a hand-edited eval.md kept),
  on this computer with the stand-in trainer; and over SSH (loopback server): the dataset upload, dry run, launch
  and the samples copied back, with an earlier run's files on the host untouched.
- gpu_spinup / gpu_teardown / remote_deploy (fake RunPod, stand-in deployer): the ledger and its gpu.md view (a
  hand-written gpu.md kept), refusals (unknown quote, unconfirmed, unknown instance).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from ategnatos_mcp.context import AppContext
from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import Settings, load_settings
from tests.safety.artist import (
    COPY,
    DAMAGED,
    HAND_KEPT_ITERATIONS,
    HAND_KEPT_LIBRARY,
    HAND_KEPT_RECORD,
    OLD_RUN,
    PAINTINGS,
    SAVED_WORKFLOW,
    Snapshot,
    build_project,
    put_back_quarantined,
)

pytestmark = pytest.mark.anyio


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


@pytest.fixture
def project(home: Path) -> Snapshot:
    build_project(home)
    return Snapshot.take(home)


@asynccontextmanager
async def serve(settings: Settings, app: AppContext) -> AsyncIterator[Client]:
    """The real server in memory; tests put stand-ins for the GPU, clouds and SSH into ``app.services`` first."""
    async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
        yield client


Call = tuple[str, dict[str, Any], bool]  # tool, arguments, whether it must be refused

GRIMOIRE_CASES: dict[str, list[Call]] = {
    "eye_update": [
        ("eye_update", {"action": "add", "category": "color", "text": "teal accents", "note": "said so"}, False),
        ("eye_update", {"action": "add", "category": "colour-ish", "text": "x"}, True),
        ("eye_update", {"action": "remove", "entry_id": "no-such-entry"}, True),
        ("eye_update", {"action": "confirm", "text": "teal accents"}, False),
    ],
    "studio_register": [
        ("studio_register", {"action": "add", "kind": "lora", "name": "inkwash-v3", "trigger_words": ["inkw"]}, False),
        ("studio_register", {"action": "add", "name": "no kind"}, True),
        ("studio_register", {"action": "update", "kind": "model", "name": "Nobody Has This"}, True),
        ("studio_register", {"action": "update", "kind": "lora", "name": "inkwash-v3", "weight_max": 0.7}, False),
    ],
    "workflow_manage": [
        ("workflow_manage", {"action": "save", "name": "my-flow", "workflow": {"1": {"class_type": "X"}}}, True),
        ("workflow_manage", {"action": "save", "name": "../eye", "workflow": {"1": {"class_type": "X"}}}, True),
        (
            "workflow_manage",
            {
                "action": "save",
                "name": "new-flow",
                "workflow": json.loads(
                    '{"3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["8", 0]}}}'
                ),
            },
            False,
        ),  # fmt: skip
        ("workflow_manage", {"action": "delete", "name": "new-flow"}, False),
        ("workflow_manage", {"action": "delete", "name": "never-saved"}, True),
        ("workflow_manage", {"action": "delete", "name": "../../workspace/datasets/paintings/painting_00"}, True),
    ],
    "art": [
        (
            "art_prompt",
            {"intent": "fox mascot waving", "family": "sdxl", "project": "launch", "asset": "mascot"},
            False,
        ),
        (
            "art_iterations",
            {
                "action": "log",
                "project": "launch",
                "asset": "mascot",
                "version": 1,
                "seed": 7,
                "outputs": ["workspace/outputs/2025-01-10/a1b2c3d4e5f6_9_ComfyUI_00001_.png"],
                "feedback": "warmer",
            },
            False,
        ),  # fmt: skip
        (
            "art_iterations",
            {"action": "spec", "project": "launch", "asset": "mascot", "width": 1200, "height": 630},
            False,
        ),
        ("art_iterations", {"action": "revert", "project": "launch", "asset": "mascot", "feedback": "warmer"}, True),
        ("art_iterations", {"action": "revert", "project": "launch", "asset": "mascot", "version": 1}, False),
        ("art_iterations", {"action": "log", "project": "launch", "asset": "mascot", "outputs": ["/etc/passwd"]}, True),
        (
            "art_iterations",
            {
                "action": "approve",
                "project": "launch",
                "asset": "mascot",
                "version": 2,
                "save_as": "warm-mascot",
                "tags": ["mascot"],
            },
            False,
        ),  # fmt: skip
        ("art_library", {"action": "save", "name": "warm-mascot", "family": "sdxl", "positive": "fox"}, True),
        ("art_library", {"action": "save", "name": "calm-hills", "family": "sdxl", "positive": "misty hills"}, False),
        ("art_library", {"action": "save", "name": "../../eye", "family": "sdxl", "positive": "x"}, True),
    ],
}


@pytest.mark.parametrize("case", list(GRIMOIRE_CASES))
async def test_grimoire_writers_keep_every_file_the_artist_made(
    case: str, project: Snapshot, settings: Settings, app: AppContext, home: Path
) -> None:
    async with serve(settings, app) as client:
        for tool, args, refused in GRIMOIRE_CASES[case]:
            result = await client.call_tool(tool, args)
            assert result.is_error is refused, (tool, args, _text(result))
            assert project.check() == [], (tool, args)
        profile = await client.call_tool("eye_query", {"detail": True})
        inventory = json.loads((await client.read_resource("ategnatos://studio.json")).contents[0].text)  # type: ignore[union-attr]
    texts = [e["text"] for e in profile.structured_content["entries"]]  # type: ignore[index]
    assert "Painterly, visible brushwork" in texts and "余白を大きく" in texts  # the hand-kept eye.md, imported
    assert "mibera-style-v2" in [lora["name"] for lora in inventory["loras"]]  # the hand-kept studio.md, imported
    assert json.loads((home / SAVED_WORKFLOW).read_text(encoding="utf-8"))["9"]["class_type"] == "SaveImage"
    if case == "art":
        # The pages the markdown version kept by hand are kept beside the new renders, and the answers said so.
        for rel in (HAND_KEPT_ITERATIONS, HAND_KEPT_LIBRARY):
            assert [p.name for p in (home / rel).parent.glob("*.backup-*.md")], rel


async def test_comfyui_outputs_land_beside_earlier_ones_and_the_asset_log_keeps_the_hand_kept_page(
    project: Snapshot, home: Path
) -> None:
    from tests.integration.fake_comfyui import serve_fake

    async with serve_fake() as fake:
        settings = load_settings(env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": fake.url})
        from ategnatos_mcp.server import build_app

        async with serve(settings, build_app(settings)) as client:
            params = {"prompt": "ink wash hills", "checkpoint": "mcp_random_sd15_layout.safetensors", "steps": 2}
            params |= {"width": 64, "height": 64}
            made = await client.call_tool(
                "comfyui_submit",
                {
                    "template": "txt2img-sdxl",
                    "params": params,
                    "project": "launch",
                    "asset": "mascot",
                    "wait_seconds": 20,
                },
            )
            assert not made.is_error and made.structured_content["state"] == "succeeded", _text(made)  # type: ignore[index]
            assert project.check() == []
            painting = str(home / PAINTINGS / "painting_00.png")
            varied = await client.call_tool(
                "comfyui_submit",
                {
                    "template": "img2img-sdxl",
                    "params": {k: v for k, v in params.items() if k not in ("width", "height")},
                    "images": {"image": painting},
                    "wait_seconds": 20,
                },
            )
            assert not varied.is_error, _text(varied)
            missing = await client.call_tool(
                "comfyui_submit", {"template": "txt2img-sdxl", "params": {**params, "checkpoint": "nope.safetensors"}}
            )
            assert missing.is_error and "nope.safetensors" in _text(missing)
    assert project.check() == []
    outputs = sorted(p.name for p in (home / "workspace" / "outputs").rglob("*.png"))
    assert len(outputs) == 3 and "a1b2c3d4e5f6_9_ComfyUI_00001_.png" in outputs
    assert [p.name for p in (home / HAND_KEPT_ITERATIONS).parent.glob("iterations.backup-*.md")]


async def test_dataset_tools_move_only_into_quarantine_and_undo_brings_every_byte_back(
    project: Snapshot, settings: Settings, app: AppContext, home: Path
) -> None:
    dataset = home / PAINTINGS
    rewritten = f"{PAINTINGS}/painting_01.txt"  # the one caption the artist asks to change
    calls: list[Call] = [
        ("dataset_audit", {"path": "paintings", "quarantine_unreadable": True}, False),
        ("dataset_audit", {"path": "../../etc"}, True),
        ("dataset_audit", {"path": "paintings", "training_name": "../eye"}, True),
        ("dataset_dedupe", {"path": "paintings"}, False),
        ("dataset_dedupe", {"path": "paintings", "action": "quarantine"}, False),
        ("dataset_dedupe", {"path": "paintings", "action": "quarantine", "files": ["painting_07.jpg"]}, False),
        ("dataset_dedupe", {"path": "paintings", "action": "quarantine", "files": ["../ink/ink00.png"]}, True),
        ("dataset_dedupe", {"path": "paintings", "action": "undo", "files": ["painting_07.jpg"]}, False),
        ("dataset_dedupe", {"path": "paintings", "action": "undo", "files": ["painting_07.jpg"]}, True),
        ("dataset_captions", {"path": "paintings", "mode": "write"}, True),
        (
            "dataset_captions",
            {
                "path": "paintings",
                "mode": "write",
                "trigger_word": "inkwash",
                "captions": [
                    {"path": "painting_04.jpg", "caption": "a boat on a misty lake"},
                    {"path": "painting_01.jpg", "caption": "inkwash, hills at dawn, rewritten on request"},
                    {"path": "../ink/ink00.png", "caption": "not this dataset"},
                ],
            },
            False,
        ),  # fmt: skip
        ("dataset_structure", {"path": "paintings", "name": "style", "repeats": 2}, False),
        ("dataset_structure", {"path": "paintings", "name": "style", "output": "grimoire"}, True),
        ("dataset_structure", {"path": "paintings", "name": "style", "output": "workspace/datasets"}, True),
        ("dataset_structure", {"path": "paintings", "name": "style", "output": "workspace/datasets/paintings/k"}, True),
        (
            "dataset_captions",
            {
                "path": "paintings",
                "mode": "write",
                "captions": [{"path": "painting_04.jpg", "caption": "a boat on a misty lake, at dusk"}],
            },
            False,
        ),  # fmt: skip
        ("dataset_structure", {"path": "paintings", "name": "style", "repeats": 3}, False),  # renamed, one replaced
    ]
    async with serve(settings, app) as client:
        for tool, args, refused in calls:
            result = await client.call_tool(tool, args)
            assert result.is_error is refused, (tool, args, _text(result))
            if tool == "dataset_captions" and not refused:
                assert result.structured_content["write"]["refused"][-1:] != [] or len(args["captions"]) == 1  # type: ignore[index]
            assert [p for p in project.check(changed_on_request={rewritten}) if "gone" not in p] == [], (tool, args)
        assert not (dataset / COPY).exists() and not (dataset / DAMAGED).exists()  # set aside, not deleted
        assert sorted(await put_back_quarantined(client, home)) == sorted(
            [f"{PAINTINGS}/{COPY}", f"{PAINTINGS}/{DAMAGED}"]
        )
    assert project.check(changed_on_request={rewritten}) == []
    caption = home / rewritten
    assert caption.read_text(encoding="utf-8") == "inkwash, hills at dawn, rewritten on request\n"
    assert oct(caption.stat().st_mode & 0o777) == oct(project.files[rewritten].mode)
    new = dataset / "painting_04.txt"  # a new caption takes its image's mode (0644)
    assert new.read_text(encoding="utf-8").startswith("a boat") and new.stat().st_mode & 0o777 == 0o644
    layout = home / "workspace" / "datasets" / "paintings-kohya"
    assert [p.name for p in layout.iterdir() if p.is_dir()] == ["3_style"] or {"3_style", "quarantine"} == {
        p.name for p in layout.iterdir()
    }


async def test_exports_never_take_the_name_of_an_earlier_export(
    project: Snapshot, settings: Settings, app: AppContext, home: Path
) -> None:
    source = f"{PAINTINGS}/painting_00.png"
    calls: list[Call] = [
        ("asset_export", {"source": source, "spec": "og-image", "upscale": "lanczos"}, False),
        (
            "asset_export",
            {
                "source": source,
                "width": 512,
                "height": 512,
                "format": "webp",
                "name": "mascot",
                "crop": "fill",
                "upscale": "lanczos",
            },
            False,
        ),  # fmt: skip
        ("asset_export", {"source": source, "spec": "favicon", "upscale": "lanczos"}, False),
        ("asset_export", {"source": "/etc/hostname", "spec": "og-image"}, True),
        ("asset_export", {"source": PAINTINGS, "spec": "og-image"}, True),
        ("asset_export", {"source": source, "spec": "no-such-spec"}, True),
        ("asset_export", {"source": source, "width": 64, "height": 64, "name": "../../grimoire/eye"}, True),
        ("asset_export", {"project": "launch", "asset": "mascot"}, True),  # the hand-kept page is no log
    ]
    async with serve(settings, app) as client:
        for tool, args, refused in calls:
            result = await client.call_tool(tool, args)
            assert result.is_error is refused, (tool, args, _text(result))
            assert project.check() == [], (tool, args)
    exports = {p.name for p in (home / "workspace" / "exports").iterdir()}
    assert {"painting_00-og.jpg", "painting_00-og-v2.jpg", "mascot-512x512.webp", "mascot-512x512-v2.webp"} <= exports
    assert not [name for name in exports if name.startswith(".")]  # no temp file left behind


PLAN = {
    "name": "ink",
    "dataset_path": "ink",
    "training_type": "style",
    "family": "SDXL",
    "base_model": "/models/sdxl.safetensors",
    "trigger_word": "ink_style",
    "gpu_vram_gb": 24,
    "preset": "quick",
    "sample_prompts": ["ink_style, a cat"],
}


async def _call(client: Client, project: Snapshot, tool: str, args: dict[str, Any], refused: bool = False) -> Any:
    """One call, its refusal or success as expected, and the invariant right after it."""
    result = await client.call_tool(tool, args)
    assert result.is_error is refused, (tool, args, _text(result))
    assert project.check(moved_to=project.home / "workspace" / "training" / "ink" / "earlier-saves") == [], tool
    return result


async def test_training_tools_on_this_computer_write_only_their_own_files(
    project: Snapshot, settings: Settings, app: AppContext, home: Path, tmp_path: Path
) -> None:
    from ategnatos_mcp.training.execution import HostRegistry
    from tests.fixtures.training_exec.install import make_fake_install

    install = make_fake_install(tmp_path / "install")

    async def no_ssh():  # type: ignore[no-untyped-def]
        raise AssertionError("this test trains on this computer")

    app.services["training-hosts"] = HostRegistry(settings.workspace_dir / "training", no_ssh, local_env=install.env)
    kohya = install.backend_dirs["kohya"]
    async with serve(settings, app) as client:
        await _call(
            client, project, "dataset_audit", {"path": "ink", "training_name": "ink", "trigger_word": "ink_style"}
        )
        await _call(client, project, "train_plan", {**PLAN, "dataset_path": "/etc"}, refused=True)
        await _call(client, project, "train_plan", {**PLAN, "name": "../eye"}, refused=True)
        plan = await _call(client, project, "train_plan", PLAN)
        assert "intent.md was already there" in _text(plan)
        config_hash = plan.structured_content["config_hash"]
        await _call(client, project, "train_confirm", {"name": "ink", "config_hash": "0" * 16}, refused=True)
        await _call(client, project, "train_confirm", {"name": "ink", "config_hash": config_hash})
        await _call(client, project, "train_dry_run", {"name": "ink"}, refused=True)  # gate 3 first
        await _call(client, project, "train_validate_environment", {"name": "ink", "backend_dir": kohya})
        await _call(client, project, "train_dry_run", {"name": "ink", "wait_seconds": 60})
        refused = await _call(client, project, "launch_training", {"name": "ink"}, refused=True)
        assert "already holds files no recorded run of it made" in _text(refused)
        await _call(client, project, "launch_training", {"name": "ink", "fresh": True})
        status = await _call(client, project, "training_status", {"name": "ink", "wait_seconds": 60, "previews": 1})
        assert status.structured_content["state"] == "succeeded", _text(status)
        progress = home / "grimoire" / "training" / "ink" / "progress.md"
        progress.write_text(progress.read_text(encoding="utf-8") + "\nMy note: epoch 2 looked best.\n", "utf-8")
        project.add("grimoire/training/ink/progress.md")  # the artist's hand edit of a record we wrote
        await _call(client, project, "train_evaluate", {"name": "ink", "weights": [0.8], "prompts": ["a cat"]})
        await _call(client, project, "training_status", {"name": "ink"})  # writes progress.md again
        await _call(client, project, "launch_training", {"name": "ink"}, refused=True)
        await _call(client, project, "train_evaluate", {"name": "nobody"}, refused=True)
    saves = home / "workspace" / "training" / OLD_RUN / "output"
    assert sorted(p.name for p in saves.iterdir()) == [f"{OLD_RUN}-000001.safetensors", f"{OLD_RUN}-000002.safetensors",
                                                        f"{OLD_RUN}.safetensors"]  # fmt: skip
    assert [p.name for p in (home / HAND_KEPT_RECORD).parent.glob("intent.backup-*.md")]
    assert [p.name for p in progress.parent.glob("progress.edited-*.md")]


async def test_training_over_ssh_uploads_and_copies_back_without_touching_the_artists_files(
    project: Snapshot, settings: Settings, app: AppContext, home: Path, tmp_path: Path
) -> None:
    from ategnatos_mcp.remote import SSHConnector
    from ategnatos_mcp.training.execution import HostRegistry
    from tests.fixtures.training_exec.install import make_fake_install
    from tests.integration.ssh_server import ssh_lab

    install = make_fake_install(tmp_path / "install")
    async with ssh_lab(tmp_path) as (server, connector, _remote):

        async def the_connector() -> SSHConnector:
            return connector

        app.services["training-hosts"] = HostRegistry(
            settings.workspace_dir / "training", the_connector, remote_env=install.env
        )
        earlier = server.home / "ategnatos" / "training" / OLD_RUN / "output"  # a run made on this host before
        earlier.mkdir(parents=True)
        for name in (f"{OLD_RUN}-000001.safetensors", f"{OLD_RUN}.safetensors"):
            (earlier / name).write_bytes(b"made on the rented host: " + name.encode())
        on_host = Snapshot.take(server.home)
        host = f"artist@127.0.0.1:{server.port}"
        kohya = install.backend_dirs["kohya"]
        async with serve(settings, app) as client:
            await _call(client, project, "dataset_audit", {"path": "ink", "training_name": "ink"})
            plan = await _call(client, project, "train_plan", PLAN)
            await _call(
                client, project, "train_confirm", {"name": "ink", "config_hash": plan.structured_content["config_hash"]}
            )
            args = {"name": "ink", "host": host, "backend_dir": kohya, "upload_dataset": True}
            away = await _call(client, project, "train_validate_environment", {**args, "host": "artist@127.0.0.1:1"})
            assert away.structured_content["passed"] is False  # nothing listens there: said, nothing sent
            sent = await _call(client, project, "train_validate_environment", args)
            assert sent.structured_content["passed"] is True, _text(sent)
            await _call(client, project, "train_dry_run", {"name": "ink", "host": host, "wait_seconds": 60})
            await _call(client, project, "launch_training", {"name": "ink", "host": host})
            status = await _call(client, project, "training_status", {"name": "ink", "wait_seconds": 60, "previews": 1})
            report = status.structured_content
            assert report["state"] == "succeeded" and report["samples"]["new"] > 0, _text(status)
            copied = [Path(s["local_path"]) for s in report["samples"]["samples"]]
            assert all(p.is_file() and p.is_relative_to(home / "workspace" / "training" / "ink") for p in copied)
            await _call(client, project, "training_status", {"name": "ink", "stop": True})
    assert on_host.check() == []  # the host's earlier run is untouched


async def test_gpu_rentals_write_only_the_ledger_and_keep_a_hand_written_gpu_md(
    project: Snapshot, settings: Settings, app: AppContext, home: Path
) -> None:
    from tests.unit.providers.fakes import FakeClock, FakeDeployer, FakeRunPod, make_service

    gpu_md = home / "grimoire" / "gpu.md"
    gpu_md.write_text("# My rentals\n\n- RunPod A100, 2025-01-10, $1.89/h: LoRA for the mascot\n", encoding="utf-8")
    project.add("grimoire/gpu.md")
    runpod = FakeRunPod()
    app.services["gpu"] = make_service(app.store, [runpod], FakeClock(), missing=["Vast.ai", "Lambda"])
    app.services["gpu-deploy"] = FakeDeployer()
    async with serve(settings, app) as client:
        offers = await _call(client, project, "gpu_offers", {"gpu": "4090", "hours": 1})
        quote = offers.structured_content["offers"][0]["quote_id"]
        await _call(client, project, "gpu_spinup", {"quote_id": quote}, refused=True)  # no yes from the artist
        await _call(client, project, "gpu_spinup", {"quote_id": "q-never-given", "confirm": True}, refused=True)
        rented = await _call(client, project, "gpu_spinup", {"quote_id": quote, "confirm": True, "name": "lora"})
        key = rented.structured_content["instance"]["key"]
        await _call(client, project, "remote_deploy", {"instance": key, "target": "kohya"})
        await _call(client, project, "remote_deploy", {"instance": "runpod:not-mine"}, refused=True)
        await _call(client, project, "gpu_teardown", {"keys": [key]})
        await _call(client, project, "gpu_teardown", {"keys": ["runpod:not-mine"]}, refused=True)
    assert runpod.pods == {}
    assert gpu_md.read_text(encoding="utf-8").startswith("# GPU rentals and spend")  # the ledger's own view now
    assert [p.name for p in gpu_md.parent.glob("gpu.edited-*.md")]
