"""Where a training run stands: the four gates in plain words, the next step, and the confirmation (gate 2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import anyio.to_thread
from pydantic import BaseModel, Field

from ategnatos_mcp.dataset import dataset_fingerprint
from ategnatos_mcp.errors import AtegnatosError, InvalidRequestError, NotFoundError
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training.calls import gate_calls
from ategnatos_mcp.training.gates import note_dataset_fingerprint, read_gates, record_confirmation
from ategnatos_mcp.training.models import GateState, TrainingRunRecord
from ategnatos_mcp.training.records import RECORD_FILES, records_dir
from ategnatos_mcp.training.versions import find_versions, plan_call, trained_next_step

__all__ = ["GateView", "RunStatus", "confirm_plan", "read_records", "run_status"]


class GateView(BaseModel):
    """One gate in plain words."""

    number: int
    name: str
    status: str
    detail: str


class RunStatus(BaseModel):
    """A run's gates, what to do next, and what changed."""

    name: str
    backend: str | None
    planned_config_hash: str | None
    confirmed_config_hash: str | None
    plan_is_stale: bool = Field(description="The dataset changed since the plan was made: plan again.")
    gates: list[GateView]
    training: TrainingRunRecord | None = Field(
        default=None, description="The training run this version launched: it is never launched again."
    )
    version_of: str | None = Field(default=None, description="The trained run this one is a new version of.")
    next_version: str | None = Field(
        default=None, description="Once trained: the name train_plan with this name plans (its next version)."
    )
    new_version_call: str | None = Field(
        default=None, description="Once trained: the train_plan call that plans the next version, same settings."
    )
    next_step: str
    notices: list[str]


def _detail(status: str, passed: str, failed: str, missing: str) -> str:
    return {"passed": passed, "failed": failed, "pending": failed}.get(status, missing)


def _views(doc: GateState) -> list[GateView]:
    d, c, e, r = doc.dataset, doc.confirmation, doc.environment, doc.dry_run
    details = [
        (
            "dataset",
            d.status,
            _detail(
                d.status,
                f"GO report for {d.dataset_path}",
                f"NO-GO: {'; '.join(d.reasons) or 'see dataset-report.md'}",
                "no dataset report yet",
            ),
        ),
        (
            "confirmation",
            c.status,
            _detail(
                c.status, f"you confirmed config {c.config_hash} ({c.method})", "not confirmed yet", "not confirmed yet"
            ),
        ),
        (
            "environment",
            e.status,
            _detail(e.status, f"{e.host} checked", f"{e.host}: {'; '.join(e.problems)}", "not checked yet"),
        ),
        ("dry run", r.status, _detail(r.status, f"passed on {r.host}", f"failed on {r.host}", "not run yet")),
    ]
    return [
        GateView(number=n, name=name, status=status, detail=detail)
        for n, (name, status, detail) in enumerate(details, start=1)
    ]


def _next_step(doc: GateState, stale: bool) -> str:
    host = doc.environment.host or "local"
    calls = gate_calls(doc, host)
    if stale or doc.planned_config_hash is None:
        again = plan_call(doc.name, doc.plan_request)
        return f"Make the plan again: {again}." if again else "Make the plan with train_plan."
    if doc.dataset.status != "passed":
        return f"Check the dataset and fix what the report says (gate 1): {calls[1]}."
    if doc.confirmation.status != "passed":
        return f"Show the plan to the artist; after their yes (gate 2): {calls[2]}."
    if doc.environment.status == "pending":
        return f"The dataset is still being sent to {host}; follow it (gate 3): {calls[3]}."
    if doc.environment.status != "passed":
        where = (
            ""
            if doc.environment.host
            else " (host: 'local', a GPU instance name from gpu_instances, or user@host:port)"
        )
        return f"Check the training machine (gate 3): {calls[3]}{where}."
    if doc.dry_run.status != "passed":
        return f"Run the dry run on that host (gate 4): {calls[4]}."
    return f"All four gates passed: training can be launched with launch_training(name={doc.name!r}, host={host!r})."


def _fingerprint(path: Path) -> str | None:
    try:
        return dataset_fingerprint(path)
    except AtegnatosError:  # folder gone or unreadable: gate 1 will say so when the audit runs again
        return None


async def run_status(store: GrimoireStore, name: str, *, taken: Callable[[str], bool] | None = None) -> RunStatus:
    """The gates of run ``name`` after re-checking its dataset; a changed dataset resets them (unless the run was
    trained: then they stay as they were, and the next step is to evaluate, resume or plan a new version).

    ``taken`` is passed to ``find_versions`` (names whose folders exist without a plan).

    Raises:
        NotFoundError: nothing was ever planned or audited under this name.
    """
    doc = await read_gates(store, name)
    if doc.planned_config_hash is None and doc.dataset.status == "open" and doc.dataset.fingerprint is None:
        raise NotFoundError(
            f"There is no training run called '{name}'.",
            kind="training run",
            name=name,
            hint="Start one with train_plan (or dataset_audit for its dataset).",
        )
    before = list(doc.notices)
    # The folder the plan trains on is the one that must match gate 1 (it may not be the one audited first).
    dataset_path = (doc.planned_config or {}).get("dataset_path") or doc.dataset.dataset_path
    current = await anyio.to_thread.run_sync(_fingerprint, Path(dataset_path)) if dataset_path else None
    if current is not None:
        doc = await note_dataset_fingerprint(store, name, current, dataset_path)
    planned_fp = (doc.planned_config or {}).get("dataset_fingerprint")
    stale = current is not None and planned_fp is not None and planned_fp != current
    notices = [n for n in doc.notices if n not in before]
    versions = await find_versions(store, name, taken=taken) if doc.training_run is not None else None
    if versions is not None:
        if current is not None and doc.dataset.fingerprint not in (None, current):
            notices.append(
                f"The dataset has changed since '{name}' was checked and trained; a new version trains on it as it "
                "is now (after its own dataset check)."
            )
    elif stale:
        notices.append("The dataset changed since this plan was made; run train_plan again before confirming.")
    return RunStatus(
        name=name,
        backend=doc.backend,
        planned_config_hash=doc.planned_config_hash,
        confirmed_config_hash=doc.confirmation.config_hash if doc.confirmation.status == "passed" else None,
        plan_is_stale=stale and versions is None,
        gates=_views(doc),
        training=doc.training_run,
        version_of=doc.version_of,
        next_version=versions.next_name if versions is not None else None,
        new_version_call=plan_call(name, doc.plan_request) if versions is not None else None,
        next_step=trained_next_step(doc, versions) if versions is not None else _next_step(doc, stale),
        notices=notices,
    )


async def confirm_plan(
    store: GrimoireStore, name: str, *, config_hash: str, method: Literal["elicitation", "explicit"]
) -> RunStatus:
    """Record gate 2 for ``config_hash`` after checking the dataset has not changed since the plan.

    Raises:
        InvalidRequestError: the plan is stale, the hash is not the current plan's, or gate 1 has not passed.
    """
    status = await run_status(store, name)
    if status.plan_is_stale:
        raise InvalidRequestError(
            f"The dataset of '{name}' changed after the plan was made, so this plan cannot be confirmed.",
            hint=f"Plan it again ({plan_call(name, (await read_gates(store, name)).plan_request) or 'train_plan'}), "
            "show the new plan, then confirm its new config hash.",
        )
    await record_confirmation(store, name, config_hash=config_hash, method=method)
    return await run_status(store, name)


def _read_records(folder: Path) -> dict[str, str]:
    return {f: (folder / f).read_text(encoding="utf-8") for f in RECORD_FILES if (folder / f).is_file()}


async def read_records(store: GrimoireStore, name: str) -> dict[str, str]:
    """The markdown records of run ``name`` that exist, by file name."""
    return await anyio.to_thread.run_sync(_read_records, records_dir(store.root, name))
