"""The confirmed plan a run executes, and the execution state document (runs started per plan)."""

from __future__ import annotations

import functools
import re
from contextlib import AbstractAsyncContextManager

from pydantic import ValidationError

from ategnatos_mcp.errors import BusyError, InvalidRequestError, NotFoundError
from ategnatos_mcp.paths import safe_name
from ategnatos_mcp.state import GrimoireStore, Update
from ategnatos_mcp.state.claims import Holder
from ategnatos_mcp.training import GateState, TrainingConfig, read_gates
from ategnatos_mcp.training.calls import confirm_call
from ategnatos_mcp.training.execution.models import ExecutionState, RunKind
from ategnatos_mcp.training.gates import DOCUMENT_PREFIX

__all__ = [
    "ConfirmedPlan",
    "claim_start",
    "execution_document",
    "load_confirmed_plan",
    "read_execution",
    "update_execution",
]


class ConfirmedPlan:
    """The run's gates, its standard config (the confirmed one) and backend."""

    def __init__(self, gates: GateState, cfg: TrainingConfig, backend: str) -> None:
        self.gates = gates
        self.cfg = cfg
        self.backend = backend


def execution_document(name: str) -> str:
    """What was started for run ``name`` (dry run, training): ``training+{name}+runs``, beside its gates."""
    return f"{DOCUMENT_PREFIX}{safe_name(name, what='training run name')}+runs"


async def load_confirmed_plan(store: GrimoireStore, name: str, *, require_confirmed: bool = True) -> ConfirmedPlan:
    """The plan of run ``name`` as the artist confirmed it (gate 2; the newest plan when not ``require_confirmed``).

    Raises:
        NotFoundError: no plan under that name.
        InvalidRequestError: the plan is not confirmed (or changed since it was).
    """
    gates = await read_gates(store, safe_name(name, what="training run name"))
    if gates.planned_config is None or gates.backend is None:
        raise NotFoundError(
            f"There is no training plan called '{name}'.",
            kind="training run",
            name=name,
            hint="Make one with train_plan, then confirm it with train_confirm.",
        )
    confirmed = gates.confirmation.status == "passed" and gates.confirmation.config_hash == gates.planned_config_hash
    if require_confirmed and not confirmed:
        raise InvalidRequestError(
            f"The plan of '{name}' is not confirmed yet (gate 2), so nothing can run on a GPU for it.",
            hint=f"Show the plan to the artist; after their yes: {confirm_call(name, gates.planned_config_hash)}.",
        )
    try:
        cfg = TrainingConfig(**gates.planned_config)
    except ValidationError as exc:
        raise InvalidRequestError(
            f"The saved plan of '{name}' no longer validates ({exc.errors()[0]['msg']}).",
            hint="Make the plan again with train_plan.",
        ) from exc
    return ConfirmedPlan(gates, cfg, gates.backend)


async def read_execution(store: GrimoireStore, name: str) -> ExecutionState:
    doc = await store.read(execution_document(name), ExecutionState)
    doc.name = doc.name or name
    return doc


def update_execution(store: GrimoireStore, name: str) -> AbstractAsyncContextManager[Update[ExecutionState]]:
    """``async with update_execution(store, name) as upd: upd.doc ...`` (an ``ExecutionState``)."""
    return store.update(execution_document(name), ExecutionState)


def claim_start(store: GrimoireStore, name: str, kind: RunKind) -> AbstractAsyncContextManager[None]:
    """Start the training run (or dry run) of ``name`` from one conversation at a time, across every server on this
    project: under it, re-read whether one was started meanwhile, and record the new one before letting go.

    Raises:
        BusyError: another conversation is starting it right now.
    """
    what = "training run" if kind == "training" else "dry run"
    step = "launch" if kind == "training" else "dry-run"
    return store.claim(
        f"{execution_document(name)}+{step}",
        f"starting the {what} of '{name}'",
        refuse=functools.partial(_starting_elsewhere, name, kind),
    )


def _upload_key(name: str, identity: str) -> str:
    return f"{execution_document(name)}+upload+{re.sub(r'[^A-Za-z0-9._@-]', '_', identity)}"


def claim_upload(store: GrimoireStore, name: str, identity: str) -> AbstractAsyncContextManager[None]:
    """Send the dataset of ``name`` to the host ``identity`` from one conversation at a time, across every server on
    this project (two would send every file twice, on a host that bills by the hour).

    Raises:
        BusyError: another conversation is sending it right now.
    """
    return store.claim(
        _upload_key(name, identity),
        f"sending the dataset of '{name}' to {identity}",
        refuse=functools.partial(sending_elsewhere, name, identity),
    )


def upload_holder(store: GrimoireStore, name: str, identity: str) -> Holder | None:
    """Who is sending the dataset of ``name`` to ``identity`` right now, or None."""
    return store.claim_holder(_upload_key(name, identity))


def sending_elsewhere(name: str, identity: str, holder: Holder) -> BusyError:
    """The answer while another conversation sends this dataset."""
    return BusyError(
        f"The dataset of '{name}' is being sent to {identity} right now by another call{holder.since_text} "
        "(perhaps from another conversation); nothing was sent twice.",
        hint=f"Wait for it: train_validate_environment(name='{name}', host='{identity}') without upload_dataset "
        "checks the host once it has arrived (the other conversation shows how far it got).",
    )


def _starting_elsewhere(name: str, kind: RunKind, holder: Holder) -> BusyError:
    what, status = (
        ("training run", f"training_status(name='{name}')")
        if kind == "training"
        else ("dry run", f"train_dry_run(name='{name}') (called again)")
    )
    return BusyError(
        f"The {what} of '{name}' is being started right now by another call{holder.since_text} (perhaps from "
        "another conversation); nothing was started twice.",
        hint=f"Do not start it again here: {status} shows it once it runs.",
    )
