"""The safety sweep (issue 12, point 4) of the training and GPU tools, through a real MCP client on the artist's
project of ``artist.py`` (see ``test_sweep_tools.py`` for the invariant checked after every call).

- train_plan (the hand-kept intent.md and tuned ink.toml kept beside), train_confirm, train_validate_environment,
  train_dry_run, launch_training (an unrecorded earlier run's save in its output folder: refused, then moved aside
  byte for byte with fresh=true), training_status (finished; a hand edit of progress.md kept beside its rewrite),
  train_evaluate, train_gates, all on this computer with the stand-in trainer; refusals (a dataset outside, an
  escaping name, a wrong hash, gates out of order, a relaunch, an unknown run). Over SSH (loopback server): the
  dataset upload, dry run, launch, samples copied back and stop, with an earlier run's saves on the host untouched.
- gpu_offers, gpu_spinup, remote_deploy, gpu_instances, gpu_teardown (fake RunPod, stand-in deployer): the ledger
  and its gpu.md view (a hand-written gpu.md kept beside); refusals (unconfirmed, unknown quote, unknown instance).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ategnatos_mcp.settings import Settings
from ategnatos_mcp.wiring import Wiring
from tests.safety.artist import HAND_KEPT_RECORD, OLD_RUN, Snapshot
from tests.safety.session import call, serve, text_of

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


async def test_training_tools_on_this_computer_write_only_their_own_files(
    project: Snapshot, home: Path, tmp_path: Path
) -> None:
    from ategnatos_mcp.server import build_app
    from ategnatos_mcp.settings import load_settings
    from tests.support.fake_comfyui import serve_fake
    from tests.support.fake_install import make_fake_install

    install = make_fake_install(tmp_path / "install")
    models = tmp_path / "ComfyUI" / "models"  # the evaluation copies the saves into ComfyUI's loras folder
    (models / "loras").mkdir(parents=True)
    async with serve_fake() as fake:
        fake.models_dir = models
        env = {"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": fake.url}
        settings = load_settings(env=env, comfyui={"models_dir": str(models)})
        await _train_and_evaluate(project, settings, build_app(settings), home, install)


async def _train_and_evaluate(project: Snapshot, settings: Settings, app: Wiring, home: Path, install: Any) -> None:
    from ategnatos_mcp.training.execution import HostRegistry

    async def no_ssh():  # type: ignore[no-untyped-def]
        raise AssertionError("this test trains on this computer")

    app.hosts = HostRegistry(settings.workspace_dir / "training", no_ssh, local_env=install.env)
    kohya = install.backend_dirs["kohya"]
    async with serve(settings, app) as client:
        await call(
            client, project, "dataset_audit", {"path": "ink", "training_name": "ink", "trigger_word": "ink_style"}
        )
        await call(client, project, "train_plan", {**PLAN, "dataset_path": "/etc"}, must_refuse=True)
        await call(client, project, "train_plan", {**PLAN, "name": "../eye"}, must_refuse=True)
        plan = await call(client, project, "train_plan", PLAN)
        assert "intent.md was already there" in text_of(plan)
        config_hash = plan.structured_content["config_hash"]
        await call(client, project, "train_confirm", {"name": "ink", "config_hash": "0" * 16}, must_refuse=True)
        await call(client, project, "train_confirm", {"name": "ink", "config_hash": config_hash})
        await call(client, project, "train_dry_run", {"name": "ink"}, must_refuse=True)  # gate 3 first
        await call(client, project, "train_validate_environment", {"name": "ink", "backend_dir": kohya})
        await call(client, project, "train_dry_run", {"name": "ink", "wait_seconds": 60})
        refused = await call(client, project, "launch_training", {"name": "ink"}, must_refuse=True)
        assert "already holds files no recorded run of it made" in text_of(refused)
        await call(client, project, "launch_training", {"name": "ink", "fresh": True})
        status = await call(client, project, "training_status", {"name": "ink", "wait_seconds": 60, "previews": 1})
        assert status.structured_content["state"] == "succeeded", text_of(status)
        progress = home / "grimoire" / "training" / "ink" / "progress.md"
        progress.write_text(progress.read_text(encoding="utf-8") + "\nMy note: epoch 2 looked best.\n", "utf-8")
        project.add("grimoire/training/ink/progress.md")  # the artist's hand edit of a record we wrote
        on_fake = {"checkpoint": "mcp_random_sd15_layout.safetensors"}  # the base model the fake ComfyUI has
        sheet = await call(
            client,
            project,
            "train_evaluate",
            {"name": "ink", "weights": [0.8], "prompts": ["a cat"], "wait_seconds": 60, **on_fake},
        )
        assert sheet.structured_content["state"] == "done", text_of(sheet)
        keep = {"name": "ink", "action": "keep", "epoch": 6, "weight": 0.8, "verdict": "crisp lines"}
        await call(client, project, "train_evaluate", keep)
        await call(client, project, "training_status", {"name": "ink"})  # writes progress.md again
        await call(client, project, "train_gates", {"name": "ink"})
        await call(client, project, "launch_training", {"name": "ink"}, must_refuse=True)
        await call(client, project, "train_evaluate", {"name": "nobody"}, must_refuse=True)
    saves = home / "workspace" / "training" / OLD_RUN / "output"
    assert sorted(p.name for p in saves.iterdir()) == [f"{OLD_RUN}-000001.safetensors", f"{OLD_RUN}-000002.safetensors",
                                                        f"{OLD_RUN}.safetensors"]  # fmt: skip
    assert [p.name for p in (home / HAND_KEPT_RECORD).parent.glob("intent.backup-*.md")]
    assert [p.name for p in progress.parent.glob("progress.edited-*.md")]


async def test_training_over_ssh_uploads_and_copies_back_without_touching_the_artists_files(
    project: Snapshot, settings: Settings, app: Wiring, home: Path, tmp_path: Path
) -> None:
    from ategnatos_mcp.remote import SSHConnector
    from ategnatos_mcp.training.execution import HostRegistry
    from tests.support.fake_install import make_fake_install
    from tests.support.ssh_server import ssh_lab

    install = make_fake_install(tmp_path / "install")
    async with ssh_lab(tmp_path) as (server, connector, _remote):

        async def the_connector() -> SSHConnector:
            return connector

        app.hosts = HostRegistry(settings.workspace_dir / "training", the_connector, remote_env=install.env)
        earlier = server.home / "ategnatos" / "training" / OLD_RUN / "output"  # a run made on this host before
        earlier.mkdir(parents=True)
        for name in (f"{OLD_RUN}-000001.safetensors", f"{OLD_RUN}.safetensors"):
            (earlier / name).write_bytes(b"made on the rented host: " + name.encode())
        on_host = Snapshot.take(server.home)
        host = f"artist@127.0.0.1:{server.port}"
        kohya = install.backend_dirs["kohya"]
        async with serve(settings, app) as client:
            await call(client, project, "dataset_audit", {"path": "ink", "training_name": "ink"})
            plan = await call(client, project, "train_plan", PLAN)
            await call(
                client, project, "train_confirm", {"name": "ink", "config_hash": plan.structured_content["config_hash"]}
            )
            args = {"name": "ink", "host": host, "backend_dir": kohya, "upload_dataset": True}
            away = await call(client, project, "train_validate_environment", {**args, "host": "artist@127.0.0.1:1"})
            assert away.structured_content["passed"] is False  # nothing listens there: said, nothing sent
            sent = await call(client, project, "train_validate_environment", args)
            assert sent.structured_content["passed"] is True, text_of(sent)
            await call(client, project, "train_dry_run", {"name": "ink", "host": host, "wait_seconds": 60})
            await call(client, project, "launch_training", {"name": "ink", "host": host})
            status = await call(client, project, "training_status", {"name": "ink", "wait_seconds": 60, "previews": 1})
            report = status.structured_content
            assert report["state"] == "succeeded" and report["samples"]["new"] > 0, text_of(status)
            copied = [Path(s["local_path"]) for s in report["samples"]["samples"]]
            assert all(p.is_file() and p.is_relative_to(home / "workspace" / "training" / "ink") for p in copied)
            await call(client, project, "training_status", {"name": "ink", "stop": True})
    assert on_host.check() == []  # the host's earlier run is untouched


async def test_gpu_rentals_write_only_the_ledger_and_keep_a_hand_written_gpu_md(
    project: Snapshot, settings: Settings, app: Wiring, home: Path
) -> None:
    from tests.support.fake_clouds import FakeClock, FakeDeployer, FakeRunPod, make_service

    gpu_md = home / "grimoire" / "gpu.md"
    gpu_md.write_text("# My rentals\n\n- RunPod A100, 2025-01-10, $1.89/h: LoRA for the mascot\n", encoding="utf-8")
    project.add("grimoire/gpu.md")
    runpod = FakeRunPod()
    app.gpu = make_service(app.store, [runpod], FakeClock(), missing=["Vast.ai", "Lambda"])
    app.deployer = FakeDeployer()
    async with serve(settings, app) as client:
        offers = await call(client, project, "gpu_offers", {"gpu": "4090", "hours": 1})
        quote = offers.structured_content["offers"][0]["quote_id"]
        await call(client, project, "gpu_spinup", {"quote_id": quote}, must_refuse=True)  # no yes from the artist
        await call(client, project, "gpu_spinup", {"quote_id": "q-never-given", "confirm": True}, must_refuse=True)
        rented = await call(client, project, "gpu_spinup", {"quote_id": quote, "confirm": True, "name": "lora"})
        key = rented.structured_content["instance"]["key"]
        await call(client, project, "remote_deploy", {"instance": key, "target": "kohya"})
        await call(client, project, "gpu_instances", {"include_ended": True})
        await call(client, project, "remote_deploy", {"instance": "runpod:not-mine"}, must_refuse=True)
        await call(client, project, "gpu_teardown", {"keys": [key]})
        await call(client, project, "gpu_teardown", {"keys": ["runpod:not-mine"]}, must_refuse=True)
    assert runpod.pods == {}
    assert gpu_md.read_text(encoding="utf-8").startswith("# GPU rentals and spend")  # the ledger's own view now
    assert [p.name for p in gpu_md.parent.glob("gpu.edited-*.md")]
