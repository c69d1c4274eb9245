"""The spend ledger and rental records in ``grimoire/.state/gpu.json``, plus the mirror in the studio inventory."""

from __future__ import annotations

from datetime import datetime

from ategnatos_mcp.providers.models import GpuDocument, Instance, InstanceStatus, LedgerEntry, Rental
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.studio import InstanceEntry, mirror_instances

__all__ = ["GPU_DOCUMENT", "close_rental", "open_rental", "refresh_rental", "sync_studio"]

GPU_DOCUMENT = "gpu"


def open_rental(doc: GpuDocument, rental: Rental, *, event: str = "rented", note: str = "") -> None:
    """Record a new rental and its ledger line."""
    doc.rentals[rental.key] = rental
    doc.ledger.append(
        LedgerEntry(
            at=rental.started_at,
            provider=rental.provider,
            instance_id=rental.instance_id,
            event=event,  # type: ignore[arg-type]
            usd_per_hour=rental.usd_per_hour,
            note=note,
        )
    )


def close_rental(
    doc: GpuDocument, key: str, *, now: datetime, event: str, status: InstanceStatus, note: str = ""
) -> Rental:
    """End the compute bill of a rental: final cost written to the rental and the ledger."""
    rental = doc.rentals[key]
    ended = rental.ended_at or now
    final = rental.model_copy(update={"ended_at": ended, "status": status})
    final = final.model_copy(update={"final_usd": final.cost_so_far(now)})
    doc.rentals[key] = final
    doc.ledger.append(
        LedgerEntry(
            at=now,
            provider=final.provider,
            instance_id=final.instance_id,
            event=event,  # type: ignore[arg-type]
            usd_per_hour=final.usd_per_hour,
            usd=final.final_usd or 0.0,
            note=note,
        )
    )
    return final


def refresh_rental(rental: Rental, seen: Instance) -> Rental:
    """Copy what the provider reports now (status, SSH endpoint, price) onto our record."""
    update: dict[str, object] = {"status": seen.status, "ssh_host": seen.ssh_host, "ssh_port": seen.ssh_port}
    if seen.usd_per_hour:
        update["usd_per_hour"] = seen.usd_per_hour
    if seen.ssh_user:
        update["ssh_user"] = seen.ssh_user
    return rental.model_copy(update=update)


async def sync_studio(store: GrimoireStore, doc: GpuDocument) -> None:
    """Mirror live rentals into the studio inventory (``instances``), replacing what was there."""
    live = [r for r in doc.rentals.values() if r.status is not InstanceStatus.TERMINATED]
    await mirror_instances(
        store,
        [
            InstanceEntry(
                provider=r.provider,
                instance_id=r.instance_id,
                gpu=r.gpu,
                status=r.status.value,
                usd_per_hour=r.usd_per_hour,
                started_at=r.started_at,
                ssh_host=r.ssh_host,
                ssh_port=r.ssh_port,
                name=r.name,
            )
            for r in live
        ],
    )
