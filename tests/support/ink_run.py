"""The 'ink' training run as the tools tests walk it through a real MCP client: its dataset, its plan, gates 1-4,
and a launch held then stopped. Only the GPU is faked: ``local_fake_install`` makes the stand-in trainer the
training host's backend (tests/support/fake_install.py); the supervisor and the trainer run as real processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from ategnatos_mcp.training.execution import HostRegistry
from ategnatos_mcp.wiring import Wiring
from tests.support.fake_install import FakeInstall, make_fake_install

# The plan of a run trained to the end on the stand-in trainer (ink_dataset's 10 pictures).
PLAN = {
    "name": "ink",
    "dataset_path": "workspace/datasets/ink",
    "training_type": "style",
    "family": "SDXL",
    "base_model": "/models/sdxl.safetensors",
    "trigger_word": "ink_style",
    "gpu_vram_gb": 24,
    "preset": "quick",
    "sample_prompts": ["ink_style, a cat", "ink_style, a harbour at dawn"],
}

# The plan of the planning tests (placeholder_dataset's 15 files are never decoded).
PLAN_ARGS: dict[str, Any] = {
    "name": "ink",
    "dataset_path": "workspace/datasets/ink",
    "training_type": "style",
    "family": "Pony",
    "base_model": "/models/pony.safetensors",
    "trigger_word": "ink_style",
    "gpu_vram_gb": 12,
    "intent": "a LoRA of my ink drawings",
}


def first_text(result: Any) -> str:
    """The first text block of a tool's answer."""
    return result.content[0].text


def ink_dataset(home: Path) -> Path:
    """Ten distinct real pictures with captions in ``workspace/datasets/ink``: an audit says GO."""
    import numpy as np
    from PIL import Image

    folder = home / "workspace" / "datasets" / "ink"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(11)
    for i in range(10):
        blocks = rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8)
        Image.fromarray(blocks).resize((1024, 1024), Image.Resampling.NEAREST).save(folder / f"ink{i:02}.png")
        (folder / f"ink{i:02}.txt").write_text(f"ink_style, study {i}", encoding="utf-8")
    return folder


def placeholder_dataset(home: Path) -> Path:
    """Fifteen captioned files in ``workspace/datasets/ink`` that only look like pictures by their names."""
    folder = home / "workspace" / "datasets" / "ink"
    folder.mkdir(parents=True)
    for i in range(15):
        (folder / f"ink{i}.png").write_bytes(b"fake png")
        (folder / f"ink{i}.txt").write_text("ink_style, a drawing", encoding="utf-8")
    return folder


def local_fake_install(app: Wiring, tmp_path: Path, **knobs: str) -> FakeInstall:
    """Train on this machine with the fake install (``knobs``: extra FAKE_* variables for the stand-in trainer)."""
    fake = make_fake_install(tmp_path / "install")

    async def no_ssh():  # type: ignore[no-untyped-def]
        raise AssertionError("these tests run on the local host only")

    env = {**fake.env, **knobs}
    app.hosts = HostRegistry(app.settings.workspace_dir / "training", no_ssh, local_env=env)
    return fake


async def gates_1_and_2(client: Client, home: Path) -> tuple[Path, str]:
    """ink_dataset audited for the run (gate 1), PLAN planned and confirmed (gate 2); the folder and config hash."""
    folder = ink_dataset(home)
    audit = await client.call_tool(
        "dataset_audit", {"path": "workspace/datasets/ink", "training_name": "ink", "trigger_word": "ink_style"}
    )
    assert not audit.is_error and audit.structured_content["go"] is True, audit.content  # type: ignore[index]
    plan = await client.call_tool("train_plan", PLAN)
    assert not plan.is_error, plan.content
    config_hash = plan.structured_content["config_hash"]  # type: ignore[index]
    confirmed = await client.call_tool("train_confirm", {"name": "ink", "config_hash": config_hash})
    assert not confirmed.is_error, confirmed.content
    return folder, config_hash


async def through_gate_3(client: Client, home: Path, fake: FakeInstall) -> None:
    """Gates 1 and 2 for 'ink', then gate 3 on this machine with the fake install's kohya."""
    await gates_1_and_2(client, home)
    env = await client.call_tool(
        "train_validate_environment", {"name": "ink", "backend_dir": fake.backend_dirs["kohya"]}
    )
    assert env.structured_content["passed"] is True, env.content  # type: ignore[index]


async def through_gate_4(client: Client, home: Path, fake: FakeInstall, backend: str, **plan: Any) -> None:
    """Gates 1-4 passed for PLAN on ``backend`` (with ``plan`` overrides), the dry run included."""
    ink_dataset(home)
    audit = await client.call_tool(
        "dataset_audit", {"path": "workspace/datasets/ink", "training_name": "ink", "trigger_word": "ink_style"}
    )
    assert audit.structured_content["go"] is True, audit.content  # type: ignore[index]
    planned = await client.call_tool("train_plan", {**PLAN, "backend": backend, **plan})
    assert not planned.is_error, planned.content
    config_hash = planned.structured_content["config_hash"]  # type: ignore[index]
    assert not (await client.call_tool("train_confirm", {"name": "ink", "config_hash": config_hash})).is_error
    env_args = {"name": "ink"} | ({"backend_dir": fake.backend_dirs[backend]} if backend in fake.backend_dirs else {})
    env = await client.call_tool("train_validate_environment", env_args)
    assert env.structured_content["passed"] is True, env.content  # type: ignore[index]
    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]


async def held_then_stopped(client: Client, app: Wiring, fake: FakeInstall, go: Path) -> dict[str, Any]:
    """Launch, wait until the trainer is held before its last step (every kept epoch saved), stop it."""
    assert app.hosts is not None  # set by local_fake_install
    app.hosts.local_env = {**fake.env, "FAKE_WAIT_FILE": str(go)}
    launched = await client.call_tool("launch_training", {"name": "ink"})
    assert not launched.is_error, launched.content
    with anyio.fail_after(10):
        while True:
            status = (await client.call_tool("training_status", {"name": "ink"})).structured_content["status"]  # type: ignore[index]
            if status["total_steps"] and status["step"] == status["total_steps"] - 1:
                break
            await anyio.sleep(0.05)
    stopped = await client.call_tool("launch_training", {"name": "ink", "action": "stop"})
    assert stopped.structured_content["status"]["state"] == "stopped", stopped.content  # type: ignore[index]
    return (await client.call_tool("training_status", {"name": "ink", "previews": 0})).structured_content  # type: ignore[return-value]
