"""The four gates before training, recorded per run in the grimoire.

Gate 1 dataset (a GO report for one dataset fingerprint) → gate 2 confirmation (the user said yes to one
config hash) → gate 3 environment (one host checked) → gate 4 dry run (that config passed a short run on
that host). Each gate needs the one before it. A change to what a gate checked (dataset, config, host)
resets every gate after it, and ``GateState.notices`` says which and why.

Once a training run was launched for a name, its gates are kept as they were at launch: recording a gate (or
a plan) for it is refused, and a changed dataset no longer resets them (training again makes a new version,
see ``versions.py``).

The state document is ``training+{name}`` in the grimoire store ('+' never appears in a run name, so no run's
document can be another's); records go to ``grimoire/training/{name}/``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.paths import safe_name
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training.calls import audit_call, gate_calls
from ategnatos_mcp.training.models import (
    ConfirmationGate,
    DatasetGate,
    DryRunGate,
    EnvironmentGate,
    EnvironmentReport,
    GateState,
)
from ategnatos_mcp.training.records import records_dir, render_environment_md, write_record

__all__ = [
    "GATE_LABELS",
    "check_launch_ready",
    "DOCUMENT_PREFIX",
    "adopt_old_document_names",
    "document_name",
    "launch_blockers",
    "note_dataset_fingerprint",
    "read_gates",
    "record_confirmation",
    "record_dataset_gate",
    "record_dry_run_gate",
    "record_environment_gate",
    "record_plan",
    "refuse_if_trained",
    "write_records",
]

GATE_LABELS = {1: "dataset", 2: "confirmation", 3: "environment", 4: "dry run"}
_MAX_NOTICES = 20
Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def document_name(name: str) -> str:
    """The gates' document of run ``name`` (the name is checked: it becomes a folder name)."""
    return f"{DOCUMENT_PREFIX}{safe_name(name, what='training run name')}"


# A run's documents are named ``training+{name}`` (gates) and ``training+{name}+runs`` (what was started):
# '+' is not allowed in a run name, so the names of two runs never meet. Before, they were ``training-{name}``
# and ``training-exec-{name}``, and a run called ``exec-ink`` had the gates document of run ``ink``'s runs.
DOCUMENT_PREFIX = "training+"
_OLD_PREFIX, _OLD_EXEC_PREFIX = "training-", "training-exec-"


def adopt_old_document_names(state_dir: Path, is_execution: Callable[[str], bool]) -> list[str]:
    """Rename the documents of an older grimoire to today's names; returns the new names.

    An old ``training-exec-X`` file is run ``X``'s execution record when ``is_execution`` reads it as one,
    otherwise the gates of a run called ``exec-X``. A name already taken is never overwritten.
    """
    renamed: list[str] = []
    for old in sorted(state_dir.glob(f"{_OLD_PREFIX}*.json")) if state_dir.is_dir() else []:
        stem = old.name.removesuffix(".json")
        if stem.startswith(_OLD_EXEC_PREFIX) and is_execution(old.read_text(encoding="utf-8")):
            new = f"{DOCUMENT_PREFIX}{stem.removeprefix(_OLD_EXEC_PREFIX)}+runs"
        else:
            new = f"{DOCUMENT_PREFIX}{stem.removeprefix(_OLD_PREFIX)}"
        target = state_dir / f"{new}.json"
        if target.exists():
            continue
        try:
            os.replace(old, target)
        except FileNotFoundError:  # another server on this grimoire renamed it first
            continue
        renamed.append(new)
    return renamed


def _short(value: str | None) -> str:
    return (value or "none")[:12]


def refuse_if_trained(doc: GateState, what: str) -> None:
    """Refuse changing what the gates of an already trained run checked (``what``: the change asked for).

    Raises:
        InvalidRequestError: a training run was launched for ``doc``'s name.
    """
    if doc.training_run is None:
        return
    name = doc.name
    raise InvalidRequestError(
        f"'{name}' has already been trained ({_TRAINED[doc.training_run.state]}), so {what} is not recorded for it: "
        "its gates and records stay as they were when its training started.",
        hint=f"To train again, call train_plan with name='{name}': it plans a new version with its own name "
        f"(e.g. '{name}-v2') and folder; then pass that version's gates. train_gates(name='{name}') shows the "
        "exact call.",
    )


_TRAINED = {
    "running": "its training run was launched",
    "succeeded": "its training finished",
    "failed": "its training failed",
    "stopped": "its training was stopped",
    "lost": "its training ended without saying how",
}


def _reset_after(doc: GateState, gate: int, reason: str) -> None:
    """Reset every gate after ``gate`` that is not open, with a notice saying why."""
    reset: list[str] = []
    if gate < 2 and doc.confirmation.status != "open":
        doc.confirmation = ConfirmationGate()
        reset.append("2 (confirmation)")
    if gate < 3 and doc.environment.status != "open":
        doc.environment = EnvironmentGate()
        reset.append("3 (environment)")
    if gate < 4 and doc.dry_run.status != "open":
        doc.dry_run = DryRunGate()
        reset.append("4 (dry run)")
    if reset:
        doc.notices.append(f"Gate {', '.join(reset)} reset because {reason}.")
        del doc.notices[:-_MAX_NOTICES]


async def read_gates(store: GrimoireStore, name: str) -> GateState:
    """Where run ``name`` stands (a fresh, all-open state if nothing was recorded yet)."""
    doc = await store.read(document_name(name), GateState)
    if not doc.name:
        doc.name = name
    return doc


async def write_records(store: GrimoireStore, name: str, texts: dict[str, str]) -> list[str]:
    """Write records (``{"intent.md": text, ...}``) for run ``name``; returns notices about kept hand edits."""
    async with store.update(document_name(name), GateState) as upd:
        upd.doc.name = name
        notices = await anyio.to_thread.run_sync(_write_all, store.root, name, texts, upd.doc.record_hashes)
    return notices


_STUBS = {
    "progress.md": "# {name}: training progress\n\nNot started: training begins after all four gates pass.\n",
    "eval.md": "# {name}: evaluation\n\nNothing to evaluate yet.\n",
}


def _write_all(grimoire: Path, name: str, texts: dict[str, str], hashes: dict[str, str]) -> list[str]:
    folder = records_dir(grimoire, name)
    notices = [write_record(folder, filename, text, hashes) for filename, text in texts.items()]
    for filename, stub in _STUBS.items():
        write_record(folder, filename, stub.format(name=name), hashes, only_if_missing=True)
    return [n for n in notices if n]


async def record_dataset_gate(
    store: GrimoireStore,
    name: str,
    *,
    dataset_path: Path,
    fingerprint: str,
    go: bool,
    reasons: list[str],
    report_markdown: str,
    clock: Clock = _now,
) -> GateState:
    """Record gate 1 from a dataset audit and write dataset-report.md.

    A NO-GO report or a dataset whose fingerprint changed resets gates 2-4.
    """
    async with store.update(document_name(name), GateState) as upd:
        doc = upd.doc
        doc.name = name
        refuse_if_trained(doc, "a new dataset report")
        previous = doc.dataset.fingerprint
        if previous is not None and previous != fingerprint:
            _reset_after(
                doc,
                1,
                f"the dataset changed since it was checked (fingerprint {_short(previous)} → {_short(fingerprint)})",
            )
        elif not go:
            _reset_after(doc, 1, "the dataset report is NO-GO")
        doc.dataset = DatasetGate(
            status="passed" if go else "failed",
            dataset_path=str(dataset_path),
            fingerprint=fingerprint,
            reasons=list(reasons),
            recorded_at=clock(),
        )
        await anyio.to_thread.run_sync(
            _write_all, store.root, name, {"dataset-report.md": report_markdown}, doc.record_hashes
        )
        return doc.model_copy(deep=True)


async def note_dataset_fingerprint(
    store: GrimoireStore, name: str, fingerprint: str, dataset_path: str | Path | None = None
) -> GateState:
    """Compare the dataset as it is now with the one gate 1 passed; if it changed, reset gates 1-4.

    ``dataset_path`` is the folder ``fingerprint`` was taken of (the plan's); when it is not the folder gate 1
    checked, the notice says so instead of calling it a change.
    """
    async with store.update(document_name(name), GateState) as upd:
        doc = upd.doc
        if doc.dataset.fingerprint is None or doc.dataset.fingerprint == fingerprint or doc.training_run is not None:
            upd.discard = True
            return doc.model_copy(deep=True)
        checked = doc.dataset.dataset_path
        if dataset_path is not None and checked is not None and Path(checked) != Path(dataset_path):
            reason = f"the plan trains on {dataset_path}, but the dataset report is for {checked}"
            advice = f"call {audit_call(name, str(dataset_path), (doc.planned_config or {}).get('trigger_word'))}"
        else:
            reason = (
                f"the dataset changed since it was checked (fingerprint {_short(doc.dataset.fingerprint)} → "
                f"{_short(fingerprint)})"
            )
            advice = f"call {audit_call(name, checked, (doc.planned_config or {}).get('trigger_word'))} again"
        _reset_after(doc, 1, reason)
        if doc.dataset.status != "open":
            doc.notices.append(f"Gate 1 (dataset) reset because {reason}; {advice}.")
            del doc.notices[:-_MAX_NOTICES]
        doc.dataset = DatasetGate(dataset_path=str(dataset_path) if dataset_path is not None else checked)
        return doc.model_copy(deep=True)


async def record_plan(
    store: GrimoireStore,
    name: str,
    *,
    config_hash: str,
    backend: str,
    records: dict[str, str],
    config: dict[str, Any] | None = None,
    request: dict[str, Any] | None = None,
) -> tuple[GateState, list[str]]:
    """Remember the newest plan (config hash, config, the arguments it was made from) and write its records.

    A different config resets gates 2-4.
    """
    async with store.update(document_name(name), GateState) as upd:
        doc = upd.doc
        doc.name = name
        refuse_if_trained(doc, "a new plan")
        confirmed = doc.confirmation.config_hash
        if confirmed is not None and confirmed != config_hash:
            _reset_after(doc, 1, f"the configuration changed (hash {_short(confirmed)} → {_short(config_hash)})")
        elif doc.dry_run.config_hash is not None and doc.dry_run.config_hash != config_hash:
            _reset_after(doc, 3, f"the configuration changed since the dry run (hash {_short(config_hash)})")
        doc.planned_config_hash = config_hash
        doc.planned_config = config
        doc.plan_request = request
        doc.backend = backend
        notices = await anyio.to_thread.run_sync(_write_all, store.root, name, records, doc.record_hashes)
        return doc.model_copy(deep=True), notices


async def record_confirmation(
    store: GrimoireStore, name: str, *, config_hash: str, method: str, clock: Clock = _now
) -> GateState:
    """Record gate 2: the user confirmed the plan whose hash is ``config_hash``.

    Raises:
        InvalidRequestError: no plan, a hash that is not the newest plan's, or gate 1 not passed.
    """
    async with store.update(document_name(name), GateState) as upd:
        doc = upd.doc
        refuse_if_trained(doc, "a confirmation")
        if doc.planned_config_hash is None:
            raise InvalidRequestError(
                f"There is no training plan called '{name}' to confirm.",
                hint="Make one with train_plan first, then confirm the config hash it shows.",
            )
        if config_hash != doc.planned_config_hash:
            raise InvalidRequestError(
                f"The hash {config_hash!r} is not the current plan of '{name}' ({doc.planned_config_hash}).",
                hint=f"The plan changed: show the current one to the artist; after their yes: {gate_calls(doc, 'local')[2]}.",
            )
        if doc.dataset.status != "passed":
            raise InvalidRequestError(
                f"The dataset of '{name}' has no GO report yet (gate 1), so the plan cannot be confirmed.",
                hint=f"Call {gate_calls(doc, 'local')[1]}, fix what it reports, then confirm.",
            )
        if method not in ("elicitation", "explicit"):
            raise ValueError(f"unknown confirmation method {method}")
        if doc.confirmation.config_hash not in (None, config_hash):
            _reset_after(doc, 2, "a different configuration was confirmed")
        doc.confirmation = ConfirmationGate(
            status="passed",
            config_hash=config_hash,
            method=method,  # type: ignore[arg-type]
            recorded_at=clock(),
        )
        return doc.model_copy(deep=True)


async def record_environment_gate(
    store: GrimoireStore, name: str, *, host: str, report: EnvironmentReport, clock: Clock = _now
) -> GateState:
    """Record gate 3 for ``host`` and write environment.md; another host or a failed check resets gate 4.

    Raises:
        InvalidRequestError: gate 2 has not passed.
    """
    async with store.update(document_name(name), GateState) as upd:
        doc = upd.doc
        refuse_if_trained(doc, "an environment check")
        if doc.confirmation.status != "passed":
            raise InvalidRequestError(
                f"The configuration of '{name}' is not confirmed yet (gate 2); check the environment after that.",
                hint=f"Show the plan to the user; after their yes: {gate_calls(doc, host)[2]}.",
            )
        if doc.environment.host is not None and doc.environment.host != host:
            _reset_after(doc, 3, f"the host changed ({doc.environment.host} → {host})")
        elif report.pending:
            _reset_after(doc, 3, f"the environment on {host} is being checked again")
        elif not report.passed:
            _reset_after(doc, 3, f"the environment check on {host} failed")
        doc.environment = EnvironmentGate(
            status="pending" if report.pending else "passed" if report.passed else "failed",
            host=host,
            problems=list(report.problems),
            recorded_at=clock(),
        )
        markdown = report.markdown or render_environment_md(name, host, report)
        await anyio.to_thread.run_sync(_write_all, store.root, name, {"environment.md": markdown}, doc.record_hashes)
        return doc.model_copy(deep=True)


async def record_dry_run_gate(
    store: GrimoireStore,
    name: str,
    *,
    host: str,
    config_hash: str,
    passed: bool,
    log_tail: str,
    clock: Clock = _now,
) -> GateState:
    """Record gate 4: the dry run of ``config_hash`` on ``host`` passed or failed.

    Raises:
        InvalidRequestError: gate 3 has not passed for that host, or the config is not the confirmed one.
    """
    async with store.update(document_name(name), GateState) as upd:
        doc = upd.doc
        refuse_if_trained(doc, "a dry run")
        if doc.environment.status != "passed" or doc.environment.host != host:
            raise InvalidRequestError(
                f"The environment on {host} has not been validated for '{name}' (gate 3).",
                hint=f"Validate it first: {gate_calls(doc, host)[3]}; then run the dry run there.",
            )
        if doc.confirmation.config_hash != config_hash:
            raise InvalidRequestError(
                f"The dry run used config {_short(config_hash)}, but the confirmed config of '{name}' is "
                f"{_short(doc.confirmation.config_hash)}.",
                hint=f"Dry-run the confirmed configuration ({gate_calls(doc, host)[4]}), or confirm the new plan first.",
            )
        doc.dry_run = DryRunGate(
            status="passed" if passed else "failed",
            host=host,
            config_hash=config_hash,
            log_tail=log_tail[-4000:],
            recorded_at=clock(),
        )
        return doc.model_copy(deep=True)


def launch_blockers(doc: GateState, *, dataset_fingerprint: str, config_hash: str, host: str) -> list[str]:
    """Plain reasons why ``doc`` does not allow launching this exact run (empty = ready), each with the call that
    fixes it."""
    calls = gate_calls(doc.model_copy(update={"planned_config_hash": config_hash}), host)
    reasons: list[str] = []
    if doc.dataset.status != "passed":
        reasons.append(f"Gate 1 (dataset): there is no GO dataset report; call {calls[1]}.")
    elif doc.dataset.fingerprint != dataset_fingerprint:
        reasons.append(f"Gate 1 (dataset): the dataset changed since its report; call {calls[1]} again.")
    if doc.confirmation.status != "passed":
        reasons.append(
            f"Gate 2 (confirmation): the user has not confirmed the configuration; after their yes: {calls[2]}."
        )
    elif doc.confirmation.config_hash != config_hash:
        reasons.append(
            f"Gate 2 (confirmation): the confirmed config is {_short(doc.confirmation.config_hash)}, "
            f"not {_short(config_hash)}; confirm this configuration first: {calls[2]}."
        )
    if doc.environment.status != "passed":
        reasons.append(f"Gate 3 (environment): the environment on {host} has not passed its check; call {calls[3]}.")
    elif doc.environment.host != host:
        reasons.append(f"Gate 3 (environment): it was checked on {doc.environment.host}, not on {host}; {calls[3]}.")
    if doc.dry_run.status != "passed":
        reasons.append(f"Gate 4 (dry run): no passing dry run yet; call {calls[4]}.")
    elif doc.dry_run.host != host or doc.dry_run.config_hash != config_hash:
        reasons.append(
            f"Gate 4 (dry run): the dry run that passed was config {_short(doc.dry_run.config_hash)} on "
            f"{doc.dry_run.host}, not config {_short(config_hash)} on {host}; {calls[4]}."
        )
    return reasons


async def check_launch_ready(
    store: GrimoireStore, name: str, *, dataset_fingerprint: str, config_hash: str, host: str
) -> list[str]:
    """Reasons run ``name`` may not launch with this dataset, config and host; empty means all four gates hold."""
    doc = await read_gates(store, name)
    return launch_blockers(doc, dataset_fingerprint=dataset_fingerprint, config_hash=config_hash, host=host)
