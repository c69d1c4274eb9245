"""Reconcile our records with a provider's own list: adopt lost creates by tag, find orphans, close what is gone."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ategnatos_mcp.errors import UpstreamError
from ategnatos_mcp.providers.clouds.base import GpuProvider
from ategnatos_mcp.providers.models import GpuDocument, Instance, InstanceStatus, Rental
from ategnatos_mcp.providers.rental.hooks import Clock, Probe, Sleep
from ategnatos_mcp.providers.rental.ledger import GPU_DOCUMENT, close_rental, open_rental, refresh_rental
from ategnatos_mcp.providers.rental.priceguard import PriceRefusedError
from ategnatos_mcp.providers.rental.teardown import terminate_confirmed
from ategnatos_mcp.settings import GpuSettings
from ategnatos_mcp.state import GrimoireStore

__all__ = ["TAG_PREFIX", "Reconciler"]

logger = logging.getLogger("ategnatos_mcp.providers")

TAG_PREFIX = "ategnatos-"
_PENDING_GIVE_UP = timedelta(hours=6)


@dataclass(frozen=True)
class Reconciler:
    """Brings gpu.json in line with what a provider really runs, with what the fleet hands it."""

    caps: GpuSettings
    store: GrimoireStore
    clock: Clock
    probe: Probe
    sleep: Sleep
    # The fleet's check of a rental's billed price against the user's yes and the caps (it may end the rental).
    settle_price: Callable[[str, float], Awaitable[Rental]]

    async def reconcile(self, provider: GpuProvider) -> list[str]:
        """Bring gpu.json in line with what the provider really runs. Returns plain notes for the answer."""
        try:
            listed = await provider.list()
        except UpstreamError as exc:
            return [
                f"{provider.label} could not be checked just now ({exc.message}); its instances may be out of date."
            ]
        except (ValueError, KeyError, TypeError):
            logger.exception("instance list from %s could not be read", provider.name)
            return [
                f"{provider.label} answered in a form Ategnatos does not understand; its instances may be out of date."
            ]
        now = self.clock()
        notes: list[str] = []
        overdue: list[Rental] = []
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            doc = upd.doc
            seen: set[str] = set()
            for instance in listed:
                key = f"{provider.name}:{instance.instance_id}"
                seen.add(key)
                rental = doc.rentals.get(key)
                if rental is None:
                    if instance.status is not InstanceStatus.TERMINATED:
                        notes.append(_adopt(doc, instance, now, self.caps.boot_timeout_seconds))
                    continue
                overdue.extend(_update_known(doc, rental, instance, now, notes))
            notes.extend(_close_missing(doc, provider, seen, now))
            booting = {rental.key for rental in overdue}  # these are handled by the boot deadline instead
            capped = [
                r for r in _past_cap(doc, provider.name, self.caps.max_hours_per_instance, now) if r.key not in booting
            ]
            # Rentals whose billed price was never checked (a lost create answer, a restart before the first read).
            billed = {f"{provider.name}:{i.instance_id}": i.usd_per_hour for i in listed if i.usd_per_hour}
            unchecked = [
                (key, billed[key]) for key, r in doc.rentals.items() if key in billed and r.unverified_price is not None
            ]
        refused: set[str] = set()
        for key, price in unchecked:
            try:
                await self.settle_price(key, price)
            except PriceRefusedError as exc:
                refused.add(key)
                notes.append(f"{exc.message} Next step: {exc.hint}")
        notes.extend([await self._enforce_boot_deadline(provider, r) for r in overdue if r.key not in refused])
        notes.extend([await self._enforce_hour_cap(provider, r) for r in capped if r.key not in refused])
        return notes

    async def _enforce_hour_cap(self, provider: GpuProvider, rental: Rental) -> str:
        hours = self.caps.max_hours_per_instance
        if provider.name in ("runpod", "vast"):
            await provider.stop(rental.instance_id)  # keeps the disk, so work can be copied off before terminating
            event, status, done = "stopped", InstanceStatus.STOPPED, "stopped (its disk is kept, and still bills)"
        else:
            await terminate_confirmed(provider, rental.instance_id, sleep=self.sleep)
            event, status, done = "terminated", InstanceStatus.TERMINATED, "terminated (Lambda cannot stop)"
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            final = close_rental(upd.doc, rental.key, now=self.clock(), event=event, status=status, note="hour cap")
        return (
            f"{rental.key} ran past your cap of {hours:g} hours per instance, so it was {done}; "
            f"its compute cost ${final.final_usd or 0:.2f}."
        )

    async def _enforce_boot_deadline(self, provider: GpuProvider, rental: Rental) -> str:
        if rental.ssh_host and rental.ssh_port and rental.status is InstanceStatus.RUNNING:
            if await self.probe(rental.ssh_host, rental.ssh_port, rental.ssh_user, rental.key):
                async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
                    upd.doc.rentals[rental.key] = upd.doc.rentals[rental.key].model_copy(update={"ready": True})
                return f"{rental.key} is ready (SSH answers)."
        gone = await terminate_confirmed(provider, rental.instance_id, sleep=self.sleep)
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            final = close_rental(
                upd.doc,
                rental.key,
                now=self.clock(),
                event="boot-timeout",
                status=InstanceStatus.TERMINATED,
                note="never usable",
            )
        state = "terminated" if gone else "asked to terminate (not confirmed yet)"
        return (
            f"{rental.key} never became usable before its boot deadline, so it was {state}; "
            f"it cost about ${final.final_usd or 0:.2f}."
        )


def _past_cap(doc: GpuDocument, provider: str, max_hours: float, now: datetime) -> list[Rental]:
    """Our running rentals older than the settings' hard cap on hours per instance (orphans are only shown)."""
    cap = timedelta(hours=max_hours)
    return [
        rental
        for rental in doc.rentals.values()
        if rental.provider == provider
        and not rental.orphan
        and rental.ended_at is None
        and rental.status not in (InstanceStatus.STOPPED, InstanceStatus.TERMINATED)
        and now - rental.started_at > cap
    ]


def _adopt(doc: GpuDocument, instance: Instance, now: datetime, boot_timeout: int) -> str:
    pending = next(
        (p for p in doc.pending.values() if p.provider == instance.provider and p.tag in instance.name), None
    )
    started = pending.sent_at if pending else (instance.created_at or now)
    rental = Rental(
        provider=instance.provider,
        instance_id=instance.instance_id,
        name=instance.name,
        tag=pending.tag if pending else "",
        gpu=instance.gpu,
        usd_per_hour=instance.usd_per_hour or 0.0,
        status=instance.status,
        started_at=started,
        boot_deadline=started + timedelta(seconds=boot_timeout) if pending else None,
        ssh_host=instance.ssh_host,
        ssh_port=instance.ssh_port,
        ssh_user=instance.ssh_user,
        quote_id=pending.quote_id if pending else None,
        unverified_price=pending.agreement if pending else None,
        orphan=pending is None,
        ready=pending is None and instance.status is InstanceStatus.RUNNING,
    )
    if pending is not None:
        doc.pending.pop(pending.tag, None)
        open_rental(doc, rental, event="adopted", note="create answer was lost; found by tag")
        return f"Found {rental.key}, the rental whose confirmation was lost; it is now tracked with its cost."
    ours = instance.name.startswith(TAG_PREFIX)
    open_rental(doc, rental, event="adopted", note="orphan")
    origin = "started by Ategnatos but missing from its records" if ours else "not started through Ategnatos"
    return (
        f"Orphan: {rental.key} ({instance.gpu or 'unknown GPU'}, {instance.status.value}) is running on your account, "
        f"{origin}. It costs ${rental.usd_per_hour:.2f}/h — tear it down with gpu_teardown if nobody needs it."
    )


def _update_known(
    doc: GpuDocument, rental: Rental, instance: Instance, now: datetime, notes: list[str]
) -> list[Rental]:
    if rental.status is InstanceStatus.TERMINATED:
        if instance.status is not InstanceStatus.TERMINATED:
            notes.append(f"{rental.key} was torn down but the provider still lists it ({instance.provider_status}).")
        return []
    if instance.status is InstanceStatus.TERMINATED:
        close_rental(doc, rental.key, now=now, event="gone", status=InstanceStatus.TERMINATED, note="provider ended it")
        return []
    if rental.status is InstanceStatus.STOPPED and instance.status is InstanceStatus.STOPPED:
        return []
    updated = refresh_rental(rental, instance)
    doc.rentals[rental.key] = updated
    if not updated.ready and not updated.orphan and updated.boot_deadline and now >= updated.boot_deadline:
        return [updated]
    return []


def _close_missing(doc: GpuDocument, provider: GpuProvider, seen: set[str], now: datetime) -> list[str]:
    notes: list[str] = []
    for key, rental in list(doc.rentals.items()):
        if rental.provider != provider.name or key in seen or rental.status is InstanceStatus.TERMINATED:
            continue
        close_rental(doc, key, now=now, event="gone", status=InstanceStatus.TERMINATED, note="no longer listed")
        notes.append(f"{key} is no longer listed by {provider.label}; its final cost is recorded.")
    for tag, pending in list(doc.pending.items()):
        if pending.provider == provider.name and now - pending.sent_at > _PENDING_GIVE_UP:
            doc.pending.pop(tag)
            notes.append(f"A rental attempt with tag {tag} never appeared at {provider.label}; it was not created.")
    return notes
