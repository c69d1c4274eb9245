"""A trained run is never trained over: relaunch after success, failure and stop, new versions, resume.

Through a real MCP client on the stand-in trainer (real detached supervisor and trainer processes on this
machine; only the GPU is faked). Each save the stand-in writes holds its process id and time, so a save that was
written again is caught by comparing bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from ategnatos_mcp.context import AppContext
from tests.fixtures.training_exec.install import FakeInstall
from tests.tools.test_runs_tools import PLAN, _fake_env, _text, _through_gate_4

pytestmark = pytest.mark.anyio


def _files(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _run_files(home: Path, name: str) -> dict[str, str]:
    """What a run made: its saves, logs and samples, its plan files and its records."""
    return {
        **{f"run/{k}": v for k, v in _files(home / "workspace" / "training" / name).items()},
        **{f"configs/{k}": v for k, v in _files(home / "workspace" / "configs" / name).items()},
        **{f"records/{k}": v for k, v in _files(home / "grimoire" / "training" / name).items()},
    }


async def _finished(client: Client, name: str) -> dict[str, Any]:
    status = await client.call_tool("training_status", {"name": name, "wait_seconds": 60, "previews": 0})
    report = status.structured_content
    assert report is not None and report["state"] == "succeeded", status.content
    return report


async def _gates_say(client: Client, name: str) -> tuple[dict[str, Any], str]:
    """train_gates' answer, after checking the resource says the same."""
    gates = await client.call_tool("train_gates", {"name": name})
    assert not gates.is_error, gates.content
    resource = await client.read_resource(f"ategnatos://training/{name}")
    text = resource.contents[0].text  # type: ignore[union-attr]
    assert text.startswith(_text(gates) + "\n"), (text[:600], _text(gates))
    return gates.structured_content, _text(gates)  # type: ignore[return-value]


async def _new_version_through_gate_4(client: Client, fake: FakeInstall, name: str, **plan: Any) -> dict[str, Any]:
    """train_plan with the trained run's name plans the next version; its gates 2-4 are passed for it."""
    planned = await client.call_tool("train_plan", {**PLAN, **plan})
    assert not planned.is_error, planned.content
    result = planned.structured_content
    assert result is not None and result["name"] == name, result
    assert result["config"]["name"] == name
    early = await client.call_tool("launch_training", {"name": name})
    assert early.is_error and "Gate 2 (confirmation)" in _text(early), _text(early)
    confirmed = await client.call_tool("train_confirm", {"name": name, "config_hash": result["config_hash"]})
    assert not confirmed.is_error, confirmed.content
    backend = plan.get("backend", "kohya")
    env_args = {"name": name} | ({"backend_dir": fake.backend_dirs[backend]} if backend in fake.backend_dirs else {})
    env = await client.call_tool("train_validate_environment", env_args)
    assert env.structured_content["passed"] is True, env.content  # type: ignore[index]
    dry = await client.call_tool("train_dry_run", {"name": name, "wait_seconds": 60})
    assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]
    return result


async def test_a_finished_run_is_not_launched_again_and_a_new_version_trains_beside_it(
    client: Client, app: AppContext, home: Path, tmp_path: Path
) -> None:
    fake = _fake_env(app, tmp_path)
    await _through_gate_4(client, home, fake, "kohya")
    assert not (await client.call_tool("launch_training", {"name": "ink"})).is_error
    await _finished(client, "ink")
    v1 = _run_files(home, "ink")
    assert "run/output/ink.safetensors" in v1 and "run/output/ink-000001.safetensors" in v1

    gates, text = await _gates_say(client, "ink")
    assert "training can be launched" not in text
    assert gates["training"]["state"] == "succeeded"
    assert "finished" in gates["next_step"] and "train_evaluate" in gates["next_step"]
    assert "'ink-v2'" in gates["next_step"] and "train_plan" in gates["next_step"]

    again = await client.call_tool("launch_training", {"name": "ink"})
    assert again.is_error and "already finished" in _text(again), _text(again)
    assert "train_evaluate" in _text(again) and "'ink-v2'" in _text(again)
    for args in ({"resume": True}, {"fresh": True}):
        refused = await client.call_tool("launch_training", {"name": "ink", **args})
        assert refused.is_error and "'ink-v2'" in _text(refused), _text(refused)
    for tool, args in (
        ("train_validate_environment", {"backend_dir": fake.backend_dirs["kohya"]}),
        ("train_dry_run", {"wait_seconds": 60}),
        ("train_confirm", {"config_hash": gates["confirmed_config_hash"]}),
    ):
        frozen = await client.call_tool(tool, {"name": "ink", **args})
        assert frozen.is_error and "already been trained" in _text(frozen), (tool, _text(frozen))
    assert _run_files(home, "ink") == v1

    plan = await _new_version_through_gate_4(client, fake, "ink-v2", overrides={"epochs": 4})
    assert plan["new_version_of"] == "ink"
    assert "new version" in plan["notices"][0] and "'ink'" in plan["notices"][0]
    assert plan["gates"]["dataset"]["status"] == "passed"  # the dataset is unchanged: gate 1 carries over
    assert plan["gates"]["confirmation"]["status"] == "open"  # the earlier yes does not
    launched = await client.call_tool("launch_training", {"name": "ink-v2"})
    assert not launched.is_error, launched.content
    report = await _finished(client, "ink-v2")
    output = home / "workspace" / "training" / "ink-v2" / "output"
    assert [Path(c["file"]) for c in report["checkpoints"]] == [
        *(output / f"ink-v2-{e:06d}.safetensors" for e in (1, 2, 3)),
        output / "ink-v2.safetensors",
    ]
    assert (home / "grimoire" / "training" / "ink-v2" / "progress.md").is_file()
    assert _run_files(home, "ink") == v1  # byte for byte: saves, logs, samples, plan files, records

    gates, _ = await _gates_say(client, "ink")
    assert gates["training"]["state"] == "succeeded" and "'ink-v2'" in gates["next_step"]
    third = await client.call_tool("train_plan", PLAN)
    assert third.structured_content["name"] == "ink-v3", third.content  # type: ignore[index]
    again = await client.call_tool("train_plan", {**PLAN, "name": "ink-v2"})
    assert again.structured_content["name"] == "ink-v3"  # type: ignore[index]  # revised, not a fourth
