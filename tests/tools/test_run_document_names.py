"""Two runs never share a document: a run called ``exec-ink`` beside a run called ``ink`` (issue 13)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp import Client

from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.training import GateState
from ategnatos_mcp.training.execution.models import ExecutionState
from ategnatos_mcp.training.execution.plans import execution_document, update_execution
from ategnatos_mcp.training.gates import adopt_old_document_names, document_name
from ategnatos_mcp.wiring import Wiring
from tests.support.ink_run import PLAN_ARGS, placeholder_dataset


def test_no_two_runs_share_a_document_name() -> None:
    names = [
        f(run)
        for run in ("ink", "exec-ink", "ink-runs", "runs", "exec-exec-ink", "ink.runs")
        for f in (document_name, execution_document)
    ]
    assert len(set(names)) == len(names)
    assert execution_document("ink") != document_name("exec-ink")


async def test_a_run_called_exec_ink_keeps_its_own_gates_beside_run_ink(
    client: Client, app: Wiring, home: Path
) -> None:
    placeholder_dataset(home)
    for name in ("ink", "exec-ink"):
        planned = await client.call_tool("train_plan", {**PLAN_ARGS, "name": name})
        assert not planned.is_error, planned.content
    # run 'ink' records what it started; run 'exec-ink' must not read that as its gates
    async with update_execution(app.store, "ink") as upd:
        upd.doc.name = "ink"
        upd.doc.backend_dirs = {"local": "/opt/sd-scripts"}
    for name in ("ink", "exec-ink"):
        gates = await client.call_tool("train_gates", {"name": name})
        assert not gates.is_error, gates.content
        assert gates.structured_content["name"] == name  # type: ignore[index]
    state = home / "grimoire" / ".state"
    assert {p.name for p in state.glob("training*.json")} == {
        "training+ink.json",
        "training+ink+runs.json",
        "training+exec-ink.json",
    }


def _write(path: Path, model: Any) -> None:
    path.write_text(model.model_dump_json(), encoding="utf-8")


def test_an_older_grimoire_keeps_its_runs_under_the_new_names(tmp_path: Path) -> None:
    state = tmp_path / ".state"
    state.mkdir()
    _write(state / "training-ink.json", GateState(name="ink"))
    _write(state / "training-exec-ink.json", ExecutionState(name="ink"))  # run ink's execution record
    _write(state / "training-exec-sea.json", GateState(name="exec-sea"))  # the gates of a run called exec-sea
    _write(state / "training+ink.json", GateState(name="newer"))  # already there: never overwritten
    _write(state / "gpu.json", GateState(name="not a training document"))

    def is_execution(text: str) -> bool:
        try:
            ExecutionState.model_validate_json(text)
        except ValueError:
            return False
        return True

    renamed = adopt_old_document_names(state, is_execution)
    assert sorted(renamed) == ["training+exec-sea", "training+ink+runs"]
    assert GateState.model_validate_json((state / "training+ink.json").read_text()).name == "newer"
    assert (state / "training-ink.json").exists()  # left where it was rather than overwrite the newer one
    assert GateState.model_validate_json((state / "training+exec-sea.json").read_text()).name == "exec-sea"
    assert (state / "gpu.json").exists()


async def test_the_server_adopts_old_names_at_start_up(settings: Settings, home: Path) -> None:
    placeholder_dataset(home)
    async with Client(build_server(settings)) as first:
        assert not (await first.call_tool("train_plan", PLAN_ARGS)).is_error
    state = home / "grimoire" / ".state"
    (state / "training+ink.json").rename(state / "training-ink.json")  # as an older release named it
    async with Client(build_server(settings)) as second:
        gates = await second.call_tool("train_gates", {"name": "ink"})
        assert not gates.is_error and gates.structured_content["name"] == "ink"  # type: ignore[index]
        assert gates.structured_content["gates"][1]["status"] != "passed"  # type: ignore[index]
    assert (state / "training+ink.json").exists() and not (state / "training-ink.json").exists()
