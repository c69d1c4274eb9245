"""Versions: a trained run keeps its gates and records; training again goes to the next version's own name."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training import (
    EnvironmentReport,
    Versions,
    find_versions,
    note_dataset_fingerprint,
    read_gates,
    record_confirmation,
    record_dataset_gate,
    record_dry_run_gate,
    record_environment_gate,
    record_plan,
    record_training_outcome,
    record_training_started,
    series_of,
)
from ategnatos_mcp.training.versions import start_version
from tests.support.training import record_all_gates

WHEN = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> GrimoireStore:
    return GrimoireStore(tmp_path / "grimoire")


async def _trained(store: GrimoireStore, name: str = "ink") -> None:
    await record_training_started(store, name, host="pod-a", config_hash="cfg-1", started_at=WHEN, resumed=False)


async def test_a_trained_run_keeps_its_gates_and_records_and_refuses_new_ones(store: GrimoireStore) -> None:
    await record_all_gates(store)
    await _trained(store)
    records = store.root / "training" / "ink"
    before = {p.name: p.read_bytes() for p in records.iterdir()}
    attempts = [
        record_dataset_gate(
            store, "ink", dataset_path=Path("/d/ink"), fingerprint="fp-2", go=True, reasons=[], report_markdown="new"
        ),
        record_plan(store, "ink", config_hash="cfg-2", backend="kohya", records={"config.md": "# other\n"}),
        record_confirmation(store, "ink", config_hash="cfg-1", method="explicit"),
        record_environment_gate(store, "ink", host="pod-b", report=EnvironmentReport(passed=True)),
        record_dry_run_gate(store, "ink", host="pod-a", config_hash="cfg-1", passed=True, log_tail=""),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidRequestError) as refused:
            await attempt
        assert "'ink' has already been trained" in refused.value.message
        assert refused.value.hint is not None and "train_plan with name='ink'" in refused.value.hint
    changed = await note_dataset_fingerprint(store, "ink", "fp-2")  # the dataset changed after training
    assert (changed.dataset.status, changed.confirmation.status, changed.dry_run.status) == ("passed",) * 3
    state = await read_gates(store, "ink")
    assert (state.dataset.fingerprint, state.planned_config_hash, state.environment.host) == ("fp-1", "cfg-1", "pod-a")
    assert {p.name: p.read_bytes() for p in records.iterdir()} == before


async def test_versions_are_numbered_in_order_and_a_planned_one_is_revised_not_doubled(
    store: GrimoireStore,
) -> None:
    assert series_of("ink") == ("ink", 1) and series_of("ink-v12") == ("ink", 12) and series_of("v2") == ("v2", 1)
    versions = await find_versions(store, "ink")
    assert (versions.next_name, versions.newest) == ("ink", None)  # not trained: plans revise it
    await record_all_gates(store)
    await _trained(store)
    assert (await find_versions(store, "ink")).next_name == "ink-v2"

    await start_version(store, "ink-v2", of="ink", dataset_path=Path("/d/ink"), fingerprint="fp-1")
    await record_plan(store, "ink-v2", config_hash="cfg-2", backend="kohya", records={})
    planned = await find_versions(store, "ink")
    assert (planned.next_name, planned.newest, planned.next_is_planned) == ("ink-v2", "ink-v2", True)

    await _trained(store, "ink-v2")
    after = await find_versions(store, "ink")
    assert (after.next_name, after.newest) == ("ink-v3", "ink-v2")
    assert await find_versions(store, "ink-v2") == Versions("ink-v3", None)  # nothing later than v2
    await record_plan(store, "ink-v3", config_hash="other", backend="kohya", records={})  # someone else's plan
    skipped = await find_versions(store, "ink", taken=lambda name: name == "ink-v4")  # files nobody recorded
    assert skipped.next_name == "ink-v5"


async def test_gate_one_carries_over_only_for_the_same_folder_as_it_is_now(store: GrimoireStore) -> None:
    await record_all_gates(store)
    await _trained(store)
    report = (store.root / "training" / "ink" / "dataset-report.md").read_text(encoding="utf-8")

    assert await start_version(store, "ink-v2", of="ink", dataset_path=Path("/d/ink"), fingerprint="fp-1") is True
    carried = await read_gates(store, "ink-v2")
    assert (carried.version_of, carried.dataset.status, carried.dataset.fingerprint) == ("ink", "passed", "fp-1")
    assert (carried.confirmation.status, carried.environment.status, carried.dry_run.status) == ("open",) * 3
    copied = (store.root / "training" / "ink-v2" / "dataset-report.md").read_text(encoding="utf-8")
    assert copied == "> Carried over from 'ink': the dataset is unchanged since this report.\n\n" + report

    assert await start_version(store, "ink-v3", of="ink", dataset_path=Path("/d/ink"), fingerprint="fp-2") is False
    assert await start_version(store, "ink-v4", of="ink", dataset_path=Path("/d/other"), fingerprint="fp-1") is False
    for name in ("ink-v3", "ink-v4"):
        state = await read_gates(store, name)
        assert (state.version_of, state.dataset.status) == ("ink", "open")
        assert not (store.root / "training" / name / "dataset-report.md").exists()
    await record_dataset_gate(
        store, "ink-v3", dataset_path=Path("/d/ink"), fingerprint="fp-2", go=True, reasons=[], report_markdown="r"
    )
    assert await start_version(store, "ink-v3", of="ink", dataset_path=Path("/d/ink"), fingerprint="fp-1") is None


async def test_how_a_run_ended_is_written_once_and_a_resume_counts(store: GrimoireStore) -> None:
    await record_all_gates(store)
    await _trained(store)
    ended: dict[str, Any] = {"host": "pod-a", "config_hash": "cfg-1", "started_at": WHEN, "at": WHEN.replace(hour=20)}
    stopped = await record_training_outcome(
        store, "ink", state="stopped", step=30, total_steps=40, resume_from_step=20, **ended
    )
    assert stopped.training_run is not None and stopped.training_run.ended_at == WHEN.replace(hour=20)
    revision = (await read_gates(store, "ink")).revision
    again = await record_training_outcome(
        store, "ink", state="stopped", step=30, total_steps=40, resume_from_step=20, **{**ended, "at": WHEN}
    )
    assert again.training_run == stopped.training_run  # it still ended when it first did
    assert (await read_gates(store, "ink")).revision == revision  # nothing changed: nothing written
    await record_training_started(store, "ink", host="pod-a", config_hash="cfg-1", started_at=WHEN, resumed=True)
    resumed = (await read_gates(store, "ink")).training_run
    assert resumed is not None and (resumed.state, resumed.resumes, resumed.started_at) == ("running", 1, WHEN)
    backfilled = await record_training_outcome(store, "old-run", state="succeeded", **ended)  # made before records
    assert backfilled.training_run is not None and backfilled.training_run.state == "succeeded"
