"""The four gates: order, invalidation when the dataset, config or host changes, and launch readiness."""

from __future__ import annotations

from pathlib import Path

import pytest

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training import (
    EnvironmentReport,
    check_launch_ready,
    note_dataset_fingerprint,
    read_gates,
    record_confirmation,
    record_dataset_gate,
    record_dry_run_gate,
    record_environment_gate,
    record_plan,
)
from tests.support.training import record_all_gates


@pytest.fixture
def store(tmp_path: Path) -> GrimoireStore:
    return GrimoireStore(tmp_path / "grimoire")


async def test_a_fresh_run_has_four_open_gates_and_is_not_ready(store: GrimoireStore) -> None:
    state = await read_gates(store, "ink")
    assert (state.dataset.status, state.confirmation.status, state.environment.status, state.dry_run.status) == (
        "open",
        "open",
        "open",
        "open",
    )
    reasons = await check_launch_ready(store, "ink", dataset_fingerprint="fp", config_hash="c", host="h")
    assert [r.split(" (")[0] for r in reasons] == ["Gate 1", "Gate 2", "Gate 3", "Gate 4"]


async def test_all_four_gates_for_the_same_dataset_config_and_host_make_the_run_ready(store: GrimoireStore) -> None:
    await record_all_gates(store)
    assert await check_launch_ready(store, "ink", dataset_fingerprint="fp-1", config_hash="cfg-1", host="pod-a") == []
    records = store.root / "training" / "ink"
    assert (records / "dataset-report.md").read_text(encoding="utf-8") == "# ok\n"
    assert "| GPU | 4090 |" in (records / "environment.md").read_text(encoding="utf-8")
    assert sorted(p.name for p in records.iterdir()) == [
        "config.md",
        "dataset-report.md",
        "environment.md",
        "eval.md",
        "progress.md",
    ]
    assert (records / "progress.md").read_text(encoding="utf-8").startswith("# ink: training progress")


async def test_launch_with_another_config_or_host_or_dataset_is_refused_with_reasons(store: GrimoireStore) -> None:
    await record_all_gates(store)
    reasons = await check_launch_ready(store, "ink", dataset_fingerprint="fp-2", config_hash="cfg-9", host="pod-b")
    assert [r.split(" (")[0] for r in reasons] == ["Gate 1", "Gate 2", "Gate 3", "Gate 4"]
    assert "changed since its report" in reasons[0]


async def test_a_changed_dataset_fingerprint_resets_gates_two_to_four(store: GrimoireStore) -> None:
    await record_all_gates(store)
    state = await record_dataset_gate(
        store, "ink", dataset_path=Path("/d/ink"), fingerprint="fp-2", go=True, reasons=[], report_markdown="# ok\n"
    )
    assert state.dataset.status == "passed"
    assert (state.confirmation.status, state.environment.status, state.dry_run.status) == ("open", "open", "open")
    assert "dataset changed" in state.notices[-1] and "2 (confirmation)" in state.notices[-1]


async def test_a_no_go_report_fails_gate_one_and_resets_the_rest(store: GrimoireStore) -> None:
    await record_all_gates(store)
    state = await record_dataset_gate(
        store,
        "ink",
        dataset_path=Path("/d/ink"),
        fingerprint="fp-1",
        go=False,
        reasons=["3 blurry"],
        report_markdown="x",
    )
    assert state.dataset.status == "failed"
    assert state.confirmation.status == "open"
    assert "NO-GO" in state.notices[-1]


async def test_noting_the_same_fingerprint_changes_nothing_and_a_new_one_resets_everything(
    store: GrimoireStore,
) -> None:
    await record_all_gates(store)
    same = await note_dataset_fingerprint(store, "ink", "fp-1")
    assert same.dry_run.status == "passed"
    changed = await note_dataset_fingerprint(store, "ink", "fp-2")
    assert (changed.dataset.status, changed.confirmation.status, changed.dry_run.status) == ("open", "open", "open")
    assert "Gate 1 (dataset) reset" in changed.notices[-1]


async def test_a_revised_config_resets_confirmation_environment_and_dry_run(store: GrimoireStore) -> None:
    await record_all_gates(store)
    state, _ = await record_plan(store, "ink", config_hash="cfg-2", backend="kohya", records={})
    assert state.dataset.status == "passed"
    assert (state.confirmation.status, state.environment.status, state.dry_run.status) == ("open", "open", "open")
    assert "configuration changed" in state.notices[-1]


async def test_replanning_the_same_config_keeps_the_gates(store: GrimoireStore) -> None:
    await record_all_gates(store)
    state, _ = await record_plan(store, "ink", config_hash="cfg-1", backend="kohya", records={})
    assert state.dry_run.status == "passed"


async def test_switching_host_resets_only_the_dry_run(store: GrimoireStore) -> None:
    await record_all_gates(store)
    state = await record_environment_gate(store, "ink", host="pod-b", report=EnvironmentReport(passed=True))
    assert (state.confirmation.status, state.environment.status, state.dry_run.status) == ("passed", "passed", "open")
    assert "host changed (pod-a → pod-b)" in state.notices[-1]


async def test_confirming_needs_a_go_dataset_and_the_current_plan_hash(store: GrimoireStore) -> None:
    with pytest.raises(InvalidRequestError):
        await record_confirmation(store, "ink", config_hash="cfg-1", method="explicit")
    await record_plan(store, "ink", config_hash="cfg-1", backend="kohya", records={})
    with pytest.raises(InvalidRequestError) as no_dataset:
        await record_confirmation(store, "ink", config_hash="cfg-1", method="explicit")
    assert "gate 1" in no_dataset.value.message
    await record_dataset_gate(
        store, "ink", dataset_path=Path("/d"), fingerprint="fp", go=True, reasons=[], report_markdown="ok"
    )
    with pytest.raises(InvalidRequestError) as stale:
        await record_confirmation(store, "ink", config_hash="cfg-0", method="explicit")
    assert "cfg-1" in stale.value.message


async def test_dry_run_needs_the_environment_on_that_host_and_the_confirmed_config(store: GrimoireStore) -> None:
    await record_all_gates(store)
    with pytest.raises(InvalidRequestError):
        await record_dry_run_gate(store, "ink", host="pod-z", config_hash="cfg-1", passed=True, log_tail="")
    with pytest.raises(InvalidRequestError):
        await record_dry_run_gate(store, "ink", host="pod-a", config_hash="cfg-2", passed=True, log_tail="")


async def test_a_hand_edited_record_is_kept_beside_the_rewrite(store: GrimoireStore) -> None:
    await record_plan(store, "ink", config_hash="c1", backend="kohya", records={"config.md": "# v1\n"})
    path = store.root / "training" / "ink" / "config.md"
    path.write_text("# v1\nmy notes\n", encoding="utf-8")
    _, notices = await record_plan(store, "ink", config_hash="c2", backend="kohya", records={"config.md": "# v2\n"})
    assert path.read_text(encoding="utf-8") == "# v2\n"
    kept = list(path.parent.glob("config.edited-*.md"))
    assert [k.read_text(encoding="utf-8") for k in kept] == ["# v1\nmy notes\n"]
    assert "config.md" in notices[0]


async def test_a_run_name_that_would_escape_the_folder_is_refused(store: GrimoireStore) -> None:
    with pytest.raises(InvalidRequestError):
        await read_gates(store, "../evil")
