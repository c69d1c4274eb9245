"""The exact tool calls that open each gate, written the way a refusal or a next step names them.

A refusal that says "run dataset_audit" costs the artist a round trip to find out with which folder and name;
these spell the call out (``dataset_audit(path='...', training_name='ink')``) so it can be made as it stands.
"""

from __future__ import annotations

from typing import Any

from ategnatos_mcp.training.models import GateState

__all__ = [
    "audit_call",
    "confirm_call",
    "dataset_gate_words",
    "dry_run_call",
    "environment_call",
    "gate_calls",
    "planned_dataset",
]


def _call(tool: str, **arguments: Any) -> str:
    return f"{tool}(" + ", ".join(f"{key}={value!r}" for key, value in arguments.items() if value is not None) + ")"


def planned_dataset(doc: GateState) -> str | None:
    """The folder the plan trains on (else the one gate 1 checked)."""
    return (doc.planned_config or {}).get("dataset_path") or doc.dataset.dataset_path


def audit_call(name: str, dataset_path: str | None, trigger_word: str | None = None) -> str:
    """dataset_audit on the run's folder, recording gate 1 for ``name``."""
    return _call(
        "dataset_audit", path=dataset_path or "<the dataset folder>", training_name=name, trigger_word=trigger_word
    )


def confirm_call(name: str, config_hash: str | None) -> str:
    """train_confirm of the current plan (made after the artist's explicit yes)."""
    return _call("train_confirm", name=name, config_hash=config_hash or "<the plan's config hash>")


def environment_call(name: str, host: str) -> str:
    return _call("train_validate_environment", name=name, host=host)


def dry_run_call(name: str, host: str) -> str:
    return _call("train_dry_run", name=name, host=host)


def gate_calls(doc: GateState, host: str) -> dict[int, str]:
    """The call that passes each gate of ``doc`` on ``host`` (gate number -> call)."""
    trigger = (doc.planned_config or {}).get("trigger_word")
    return {
        1: audit_call(doc.name, planned_dataset(doc), trigger),
        2: confirm_call(doc.name, doc.planned_config_hash),
        3: environment_call(doc.name, host),
        4: dry_run_call(doc.name, host),
    }


def dataset_gate_words(doc: GateState, fingerprint: str | None) -> tuple[bool, str, str | None]:
    """Whether gate 1 holds for the plan in ``doc`` (its folder, as it is now: ``fingerprint``), in plain words,
    and the dataset_audit call that opens it when it does not."""
    folder = planned_dataset(doc)
    call = gate_calls(doc, "local")[1]
    gate = doc.dataset
    if gate.status == "passed" and gate.fingerprint == fingerprint and gate.dataset_path == folder:
        return True, f"Gate 1 (dataset) holds for '{doc.name}': the GO report of {folder} matches its images now.", None
    if gate.status == "failed" and gate.dataset_path == folder:
        reasons = "; ".join(gate.reasons) or "see dataset-report.md"
        why = f"the report of {folder} is NO-GO ({reasons}); fix that, then call {call}"
    elif gate.dataset_path and gate.dataset_path != folder:
        why = f"its dataset report is for {gate.dataset_path}, but the plan trains on {folder}: call {call}"
    else:
        why = f"there is no GO report for {folder} as it is now, for '{doc.name}': call {call}"
    return False, f"Gate 1 (dataset) is still open: {why} (before train_confirm).", call
