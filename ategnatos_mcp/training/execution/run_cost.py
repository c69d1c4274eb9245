"""What a run on a rented GPU costs: so far, to finish, in all — at the rate the GPU ledger holds for its instance.

The rate is read from the ledger (``grimoire/.state/gpu.json``, kept by the providers package), never copied: a
price the provider corrected later is the one used. The run's cost covers this run's time on the instance; the
instance's own total (it bills from rental to teardown, whatever runs on it) is given beside it.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from ategnatos_mcp.providers import GPU_DOCUMENT, GpuDocument, Rental
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training.execution.models import HostSpec, RunHandle, SupervisorStatus

__all__ = ["RunCost", "run_cost"]


class RunCost(BaseModel):
    """Money for one run on a rented instance (US dollars)."""

    instance: str = Field(description="The rental, as gpu_instances names it (provider:id).")
    gpu: str = ""
    usd_per_hour: float
    hours_so_far: float
    usd_so_far: float = Field(description="This run's time on the instance so far, at its rate.")
    usd_to_finish: float | None = Field(default=None, description="The time left at the same rate (while running).")
    usd_projected: float | None = Field(default=None, description="So far + to finish: this run in all.")
    instance_usd_so_far: float = Field(description="Everything the instance has cost since it was rented.")
    words: str


async def _rental(store: GrimoireStore, host: HostSpec) -> Rental | None:
    if host.kind == "local":
        return None
    rentals = (await store.read(GPU_DOCUMENT, GpuDocument)).rentals
    if host.name in rentals:
        return rentals[host.name]
    # An instance given as user@host:port: the rental whose SSH address it is.
    same = [r for r in rentals.values() if r.ssh_host == host.host and (r.ssh_port or 22) == host.port]
    return max(same, key=lambda r: r.started_at) if same else None


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 else "under $0.01"


async def run_cost(
    store: GrimoireStore,
    handle: RunHandle,
    status: SupervisorStatus,
    *,
    now: datetime,
    seconds_left: float | None,
) -> RunCost | None:
    """The cost of ``handle``'s run on its rented instance; None on this computer or a host that is not a rental."""
    rental = await _rental(store, handle.host)
    if rental is None or not rental.usd_per_hour:
        return None
    end = rental.ended_at or now
    if status.finished and status.updated_at:
        try:
            finished = datetime.fromisoformat(status.updated_at.replace("Z", "+00:00"))
            end = min(end, max(finished, handle.started_at))
        except ValueError:
            pass
    hours = max(0.0, (end - handle.started_at).total_seconds()) / 3600
    rate = rental.usd_per_hour
    so_far = round(hours * rate, 4)
    running = not status.finished and rental.ended_at is None
    to_finish = round(seconds_left / 3600 * rate, 4) if running and seconds_left is not None else None
    projected = round(so_far + to_finish, 4) if to_finish is not None else None
    instance_total = rental.cost_so_far(now)
    words = f"On {rental.key} ({rental.gpu or 'GPU'}) at ${rate:g}/hour: {_usd(so_far)} so far for this run"
    if projected is not None and to_finish is not None:
        words += f", about {_usd(to_finish)} more to finish, about {_usd(projected)} in all"
    words += f". The instance has cost {_usd(instance_total)} since it was rented"
    words += "." if rental.ended_at else " and bills until it is torn down (gpu_teardown)."
    return RunCost(
        instance=rental.key,
        gpu=rental.gpu,
        usd_per_hour=rate,
        hours_so_far=round(hours, 3),
        usd_so_far=so_far,
        usd_to_finish=to_finish,
        usd_projected=projected,
        instance_usd_so_far=instance_total,
        words=words,
    )
