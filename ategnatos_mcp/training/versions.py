"""Versions of a LoRA: a name trains once; training again makes '<name>-v2', then '<name>-v3', ...

A version whose training run was launched keeps its gates and records as they were at launch (``gates.py``
refuses to record anything new for it), and its run is never started again from step 0: a stopped or failed run
may be resumed (the same run, continued, its saves kept), a finished one evaluated. ``train_plan`` with a trained
name plans the next version, which has its own name and therefore its own folders (``workspace/training/<name>``,
``workspace/configs/<name>``, ``grimoire/training/<name>``) and its own LoRA file names. Gate 1 carries over when
the dataset is unchanged; gates 2-4 are passed again for the new version.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio.to_thread

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training.gates import document_name, read_gates
from ategnatos_mcp.training.models import GateState, TrainingOutcome, TrainingRunRecord
from ategnatos_mcp.training.records import records_dir, write_record

__all__ = [
    "Versions",
    "find_versions",
    "new_version_notice",
    "plan_call",
    "record_training_outcome",
    "record_training_started",
    "relaunch_refusal",
    "series_of",
    "start_version",
    "trained_next_step",
]

_SERIES = re.compile(r"^(?P<base>.+)-v(?P<number>\d+)$")
_MAX_VERSION = 999
_FINISHED = ("succeeded", "failed", "stopped", "lost")


def series_of(name: str) -> tuple[str, int]:
    """The series a name belongs to and its number in it: 'ink' -> ('ink', 1), 'ink-v3' -> ('ink', 3)."""
    match = _SERIES.match(name)
    return (match["base"], int(match["number"])) if match else (name, 1)


@dataclass(frozen=True)
class Versions:
    """Where a name stands among its versions."""

    next_name: str
    """The name a train_plan for it writes to: itself until it trained, then its next version."""
    newest: str | None
    """The latest later version that exists (planned or trained), if any."""

    @property
    def next_is_planned(self) -> bool:
        return self.newest is not None and self.newest == self.next_name


async def find_versions(store: GrimoireStore, name: str, *, taken: Callable[[str], bool] | None = None) -> Versions:
    """Where ``name`` stands: a trained name's next version is the first of its series that is not trained and is
    either already one of its versions (revised, never duplicated) or a name nothing was planned under yet.

    ``taken(name)`` says a name's folders exist without a plan (files nobody recorded): such a name is skipped.

    Raises:
        InvalidRequestError: every version name up to -v999 is used.
    """
    doc = await read_gates(store, name)
    if doc.training_run is None:
        return Versions(name, None)
    base, number = series_of(name)
    newest: str | None = None
    for n in range(number + 1, _MAX_VERSION + 1):
        candidate = f"{base}-v{n}"
        other = await read_gates(store, candidate)
        ours = other.version_of is not None and series_of(other.version_of)[0] == base
        if other.training_run is not None:
            newest = candidate if ours else newest
        elif ours:
            return Versions(candidate, candidate)
        elif other.planned_config_hash is None and not (taken is not None and taken(candidate)):
            return Versions(candidate, newest)
    raise InvalidRequestError(
        f"Every version name of '{base}' up to '{base}-v{_MAX_VERSION}' is used.",
        hint="Plan the new training under a new name.",
    )


async def start_version(
    store: GrimoireStore, name: str, *, of: str, dataset_path: Path, fingerprint: str
) -> bool | None:
    """Make ``name`` the next version of the trained run ``of`` (before its plan is recorded).

    Gate 1 carries over when ``of``'s GO report is for this very folder as it is now; its report is copied into
    the new version's records. Returns whether it carried over (None: the version has a dataset check of its own).
    """
    earlier = await read_gates(store, of)
    report = await anyio.to_thread.run_sync(_read_report, records_dir(store.root, of))
    async with store.update(document_name(name), GateState) as upd:
        doc = upd.doc
        doc.name = name
        doc.version_of = doc.version_of or of
        if doc.dataset.status != "open" or doc.dataset.fingerprint is not None:
            return None
        gate = earlier.dataset
        if not (
            gate.status == "passed"
            and gate.fingerprint == fingerprint
            and gate.dataset_path is not None
            and Path(gate.dataset_path) == dataset_path
        ):
            return False
        doc.dataset = gate.model_copy(deep=True)
        if report is not None:
            note = f"> Carried over from '{of}': the dataset is unchanged since this report.\n\n"
            folder = records_dir(store.root, name)
            await anyio.to_thread.run_sync(write_record, folder, "dataset-report.md", note + report, doc.record_hashes)
        return True


def _read_report(folder: Path) -> str | None:
    try:
        return (folder / "dataset-report.md").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def new_version_notice(earlier: GateState, name: str, carried: bool | None) -> str:
    """What the artist is told when a plan becomes a new version of a trained run."""
    record = earlier.training_run
    ended = _ENDED[record.state] if record is not None else "was trained"
    text = (
        f"'{earlier.name}' {ended}, so it is not trained again: its files and records stay as they are. This plan "
        f"is for a new version, '{name}', with its own folder, records and LoRA files ({name}.safetensors). Like "
        f"any plan it trains only after its own gates: the artist confirms it (train_confirm with name='{name}'), "
        "then the environment check and the dry run."
    )
    if record is not None and record.state in ("failed", "stopped", "lost"):
        text += f" ('{earlier.name}' itself can still be resumed: launch_training with resume=true.)"
    if carried:
        text += f" Gate 1 carries over: the dataset is unchanged since the report for '{earlier.name}'."
    elif carried is False:
        text += (
            " Gate 1 does not carry over (the dataset changed, or the plan uses another folder): run dataset_audit "
            f"with training_name='{name}'."
        )
    return text


_ENDED = {
    "running": "is being trained",
    "succeeded": "has finished training",
    "failed": "failed while training",
    "stopped": "was stopped while training",
    "lost": "ended its training without saying how",
}


def plan_call(name: str, request: dict[str, Any] | None) -> str | None:
    """The exact train_plan call that plans ``name`` again with the arguments it was planned with."""
    if not request:
        return None
    return "train_plan(" + ", ".join(f"{key}={value!r}" for key, value in {"name": name, **request}.items()) + ")"


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else "at an unknown time"


def _again(name: str, versions: Versions, call: str | None) -> str:
    if versions.next_is_planned:
        return (
            f"Its next version, '{versions.next_name}', is planned: train_gates(name='{versions.next_name}') shows "
            f"where it stands (train_plan with name='{name}' revises it)."
        )
    text = (
        f"To train again (the same settings or changed ones), call train_plan with name='{name}': it plans a new "
        f"version, '{versions.next_name}', in its own folder; this run's files stay as they are."
    )
    if versions.newest:
        text = f"A later version, '{versions.newest}', has been trained too. " + text
    return text + (f" Same settings: {call}" if call else "")


def trained_next_step(doc: GateState, versions: Versions) -> str:
    """What to do with a run whose training was launched: follow, evaluate, resume, or plan a new version."""
    record, name = doc.training_run, doc.name
    assert record is not None
    call = plan_call(name, doc.plan_request)
    if record.state == "running":
        return (
            f"Training of '{name}' was started on {record.host} ({_when(record.started_at)}): follow it with "
            f"training_status(name='{name}'). It is never started a second time."
        )
    again = _again(name, versions, call)
    if record.state == "succeeded":
        return (
            f"Training of '{name}' finished on {record.host} ({_when(record.ended_at)}): compare its saved LoRA "
            f"files with train_evaluate(name='{name}'). {again}"
        )
    where = f" at step {record.step} of {record.total_steps}" if record.total_steps else ""
    head = {
        "failed": f"Training of '{name}' failed on {record.host}{where}",
        "stopped": f"Training of '{name}' was stopped on {record.host}{where}",
        "lost": f"Training of '{name}' on {record.host} ended without saying how{where}",
    }[record.state]
    head += f" ({record.message.rstrip('.')})." if record.message and record.state != "stopped" else "."
    if record.resume_from_step is not None:
        resume = (
            f"launch_training(name='{name}', resume=true) continues it from step {record.resume_from_step}, its last "
            "saved state (the same run; its saves are kept)."
        )
    else:
        resume = "It saved no state a resume could continue from."
    return f"{head} {resume} {again}"


def relaunch_refusal(doc: GateState, versions: Versions, *, resume: bool, fresh: bool) -> InvalidRequestError:
    """The refusal of a launch that would start a trained run again (resume is allowed for unfinished runs)."""
    record, name = doc.training_run, doc.name
    assert record is not None
    if record.state == "succeeded":
        message = f"'{name}' already finished training on {record.host} ({_when(record.ended_at)})" + (
            ": there is nothing to resume."
            if resume
            else "; it is not trained again under the same name (that would write over its LoRA files)."
        )
    else:
        message = (
            f"'{name}' {_ENDED[record.state]} on {record.host}; a new launch would start it again from step 0 over "
            "its saves."
        )
    if fresh:
        message += " (fresh=true only moves aside files that no recorded run of this name made.)"
    return InvalidRequestError(message, hint=trained_next_step(doc, versions))


async def record_training_started(
    store: GrimoireStore, name: str, *, host: str, config_hash: str, started_at: datetime, resumed: bool
) -> None:
    """Remember that ``name``'s training run started (or, ``resumed``, continues): it is never started again."""
    async with store.update(document_name(name), GateState) as upd:
        previous = upd.doc.training_run
        if resumed and previous is not None:
            upd.doc.training_run = previous.model_copy(
                update={
                    "state": "running",
                    "ended_at": None,
                    "message": "",
                    "resume_from_step": None,
                    "resumes": previous.resumes + 1,
                }
            )
        else:
            upd.doc.training_run = TrainingRunRecord(host=host, config_hash=config_hash, started_at=started_at)


async def record_training_outcome(
    store: GrimoireStore,
    name: str,
    *,
    state: TrainingOutcome,
    host: str,
    config_hash: str,
    started_at: datetime,
    at: datetime,
    message: str = "",
    step: int = 0,
    total_steps: int | None = None,
    resume_from_step: int | None = None,
) -> GateState:
    """Keep how ``name``'s training run stands (written only when that changed); a run launched before these
    records existed gets one here.
    """
    async with store.update(document_name(name), GateState) as upd:
        current = upd.doc.training_run
        base = current or TrainingRunRecord(host=host, config_hash=config_hash, started_at=started_at)
        changed = current is None or current.state != state
        updated = base.model_copy(
            update={
                "state": state,
                "ended_at": (at if state in _FINISHED else None) if changed else base.ended_at,
                "message": message,
                "step": step,
                "total_steps": total_steps,
                "resume_from_step": resume_from_step,
            }
        )
        if updated == current:
            upd.discard = True
        upd.doc.training_run = updated
        return upd.doc.model_copy(deep=True)
