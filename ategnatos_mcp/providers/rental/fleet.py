"""The fleet: the rentals we hold, after they start. Boot watch (terminate if never usable), the billed-price check,
listing with reconcile, teardown, and the listeners told when a rental ends."""

from __future__ import annotations

import logging
from functools import partial

import anyio

from ategnatos_mcp.errors import AtegnatosError, InvalidRequestError, NotFoundError, UpstreamError
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.providers.clouds.base import GpuProvider
from ategnatos_mcp.providers.models import Balance, GpuDocument, Instance, InstanceStatus, LedgerEntry, Quote, Rental
from ategnatos_mcp.providers.rental.budget import month_spend
from ategnatos_mcp.providers.rental.hooks import Clock, EndListener, Probe, Sleep
from ategnatos_mcp.providers.rental.ledger import GPU_DOCUMENT, close_rental, refresh_rental, sync_studio
from ategnatos_mcp.providers.rental.priceguard import PriceRefusedError, PriceVerdict, judge_price, refusal
from ategnatos_mcp.providers.rental.quotes import make_quote
from ategnatos_mcp.providers.rental.reconcile import Reconciler
from ategnatos_mcp.providers.rental.results import InstancesResult, InstanceView, TeardownItem, TeardownResult
from ategnatos_mcp.providers.rental.teardown import (
    STILL_BILLING_WHEN_STOPPED,
    bounded_teardown,
    teardown_result,
    terminate_confirmed,
)
from ategnatos_mcp.settings import GpuSettings
from ategnatos_mcp.state import GrimoireStore

__all__ = ["Fleet"]

logger = logging.getLogger("ategnatos_mcp.providers")


class Fleet:
    """Boot watch, the billed-price check, instances and teardown of the rentals recorded in gpu.json."""

    def __init__(
        self,
        caps: GpuSettings,
        store: GrimoireStore,
        providers: dict[str, GpuProvider],
        *,
        clock: Clock,
        probe: Probe,
        sleep: Sleep = anyio.sleep,
        poll_seconds: float = 5.0,
    ) -> None:
        self.caps = caps
        self.store = store
        self.providers = providers
        self.clock = clock
        self.probe = probe
        self.sleep = sleep
        self.poll_seconds = poll_seconds
        self.end_listeners: dict[str, EndListener] = {}  # by name, so registering twice replaces

    # Boot watch ------------------------------------------------------------------------------------
    async def wait_ready(self, key: str, wait_seconds: float, progress: Progress | None = None) -> Rental:
        """Poll until SSH answers, the wait ends (still starting) or the boot deadline passes (terminated).

        Raises:
            UpstreamError: the instance failed or never became usable; it was terminated.
        """
        start = self.clock()
        while True:
            rental = await self._rental(key)
            if rental.ready or rental.ended_at is not None:
                return rental
            provider = self.provider(rental.provider)
            seen = await provider.get(rental.instance_id)
            now = self.clock()
            if seen is None or seen.status is InstanceStatus.TERMINATED:
                await self._close(key, "gone", InstanceStatus.TERMINATED, "the provider no longer lists it")
                raise UpstreamError(
                    f"{provider.label} ended instance {rental.instance_id} while it was starting.",
                    service=provider.name,
                    hint="Ask for offers again.",
                )
            if rental.unverified_price is not None and seen.usd_per_hour:
                await self.settle_price(key, seen.usd_per_hour)  # the first time the provider says what it bills
            # Stopped while we wait for it to start means outbid or stopped by the host: it will not come up.
            broken = seen.status in (InstanceStatus.FAILED, InstanceStatus.STOPPED)
            if broken or (rental.boot_deadline and now >= rental.boot_deadline):
                await self._boot_failed(rental, provider, seen)
            if (
                seen.status is InstanceStatus.RUNNING
                and seen.ssh_host
                and seen.ssh_port
                and await self.probe(seen.ssh_host, seen.ssh_port, seen.ssh_user, key)
            ):
                return await self._mark_ready(key, seen)
            await self._update(key, seen)
            waited = (now - start).total_seconds()
            if progress is not None:
                await progress(waited, wait_seconds, f"{provider.label}: {seen.provider_status or seen.status.value}")
            if waited >= wait_seconds:
                return await self._rental(key)
            await self.sleep(self.poll_seconds)

    async def refreshed(self, key: str) -> Rental:
        """The rental with its SSH endpoint re-read from the provider (ports change after a restart).

        Raises:
            NotFoundError: unknown instance, or the provider no longer has it.
            InvalidRequestError: it is not running with SSH yet.
        """
        rental = await self._rental(key)
        provider = self.provider(rental.provider)
        seen = None if rental.status is InstanceStatus.TERMINATED else await provider.get(rental.instance_id)
        if seen is None or seen.status is InstanceStatus.TERMINATED:
            if rental.ended_at is None:
                await self._close(rental.key, "gone", InstanceStatus.TERMINATED, "the provider no longer lists it")
            raise NotFoundError(
                f"{rental.key} is no longer running.", kind="instance", name=key, hint="Rent a new one with gpu_offers."
            )
        await self._update(rental.key, seen)
        if seen.status is not InstanceStatus.RUNNING or not seen.ssh_host or not seen.ssh_port:
            raise InvalidRequestError(
                f"{rental.key} is {seen.provider_status or seen.status.value}, not ready for SSH yet.",
                hint="Check gpu_instances in a minute; it becomes ready once SSH answers.",
            )
        return await self._rental(rental.key)

    async def _boot_failed(self, rental: Rental, provider: GpuProvider, seen: Instance) -> None:
        failed = seen.status in (InstanceStatus.FAILED, InstanceStatus.STOPPED)
        gone = await terminate_confirmed(provider, rental.instance_id, sleep=self.sleep)
        why = (
            f"failed to start ({seen.status_detail or seen.provider_status})"
            if failed
            else (f"was not usable within {self.caps.boot_timeout_seconds // 60} minutes")
        )
        final = await self._close(rental.key, "boot-timeout", InstanceStatus.TERMINATED, why)
        raise UpstreamError(
            f"The {rental.gpu} on {provider.label} {why}, so it was terminated"
            + ("" if gone else " (the provider has not confirmed yet)")
            + f". It cost about ${final.final_usd or 0:.2f}.",
            service=provider.name,
            hint="Ask for offers again; a different host or GPU usually works."
            if gone
            else "Check the provider's console to make sure it is gone, then ask for offers again.",
        )

    # Billed price -------------------------------------------------------------------------------------
    async def settle_price(self, key: str, billed: float | None) -> Rental:
        """Keep a new rental at its billed price if the user's yes and every cap cover it; else end it at once.

        Does nothing while the price is unknown (``billed`` None or 0) or once it was checked.

        Raises:
            PriceRefusedError: the price was not confirmed or breaks a cap; the rental was terminated (or, if the
                provider did not confirm that, the answer says it may still bill and how to end it).
        """
        if not billed:
            return await self._rental(key)
        verdict: PriceVerdict | None = None
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            rental = upd.doc.rentals[key]
            if rental.unverified_price is not None:
                others = [r for k, r in upd.doc.rentals.items() if k != key]
                verdict = judge_price(self.caps, rental.unverified_price, billed, others=others, now=self.clock())
                rental = rental.model_copy(update={"usd_per_hour": billed, "unverified_price": None})
                upd.doc.rentals[key] = rental
        if verdict is None or verdict.keep:
            return rental
        raise await self._refuse_price(rental, verdict)

    async def _refuse_price(self, rental: Rental, verdict: PriceVerdict) -> PriceRefusedError:
        provider = self.provider(rental.provider)
        try:
            gone = await terminate_confirmed(provider, rental.instance_id, sleep=self.sleep)
        except UpstreamError as exc:
            logger.warning("terminating %s after a refused price failed: %s", rental.key, exc.message)
            gone = False
        note = verdict.ledger_note()
        quote: Quote | None = None
        if gone:
            final = await self._close(rental.key, "price-refused", InstanceStatus.TERMINATED, f"{note}; terminated")
            cost = final.final_usd or 0.0
        else:
            cost = rental.cost_so_far(self.clock())
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            if not gone:
                upd.doc.ledger.append(
                    LedgerEntry(
                        at=self.clock(),
                        provider=rental.provider,
                        instance_id=rental.instance_id,
                        event="price-refused",
                        usd_per_hour=verdict.billed,
                        usd=cost,
                        note=f"{note}; terminate asked, not confirmed: may still bill",
                    )
                )
            elif not verdict.capped:
                # The next yes must be to the real price, or the same refusal would follow.
                agreement = verdict.agreement
                real = agreement.offer.model_copy(update={"usd_per_hour": verdict.billed})
                quote = make_quote(agreement.query, real, [], now=self.clock(), ttl_seconds=self.caps.quote_ttl_seconds)
                upd.doc.quotes[quote.quote_id] = quote
        return refusal(
            verdict,
            label=provider.label,
            gpu=rental.gpu,
            key=rental.key,
            terminated=gone,
            cost_usd=cost,
            quote=quote,
        )

    async def _mark_ready(self, key: str, seen: Instance) -> Rental:
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            upd.doc.rentals[key] = refresh_rental(upd.doc.rentals[key], seen).model_copy(update={"ready": True})
            doc = upd.doc
        await sync_studio(self.store, doc)
        return doc.rentals[key]

    async def _update(self, key: str, seen: Instance) -> None:
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            upd.doc.rentals[key] = refresh_rental(upd.doc.rentals[key], seen)

    async def _close(self, key: str, event: str, status: InstanceStatus, note: str) -> Rental:
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            final = close_rental(upd.doc, key, now=self.clock(), event=event, status=status, note=note)
            doc = upd.doc
        await sync_studio(self.store, doc)
        await self._ended([final])
        return final

    async def _close_shielded(self, key: str, event: str, status: InstanceStatus, note: str) -> Rental:
        """``_close`` that completes even when the caller's time limit strikes (the provider already confirmed)."""
        closed: list[Rental] = []
        with anyio.CancelScope(shield=True):
            closed.append(await self._close(key, event, status, note))
        return closed[0]

    async def _ended(self, rentals: list[Rental]) -> None:
        """Tell the listeners (e.g. the deployer holding SSH sessions and tunnels) which rentals ended."""
        for rental in rentals:
            for name, listener in list(self.end_listeners.items()):
                try:
                    await listener(rental)
                except Exception:  # cleanup after an ended rental must never undo the recorded teardown
                    logger.exception("%s could not clean up after %s", name, rental.key)

    async def _rental(self, key: str) -> Rental:
        doc = await self.store.read(GPU_DOCUMENT, GpuDocument)
        return _lookup(doc, key)

    def provider(self, name: str) -> GpuProvider:
        """The provider client by name.

        Raises:
            InvalidRequestError: its API key is not set.
        """
        provider = self.providers.get(name)
        if provider is None:
            raise InvalidRequestError(
                f"No {name} API key is set, so Ategnatos cannot manage that instance.",
                hint=f"Set {name.upper()}_API_KEY in the environment the server starts with, then try again.",
            )
        return provider

    # Instances and teardown ----------------------------------------------------------------------
    async def instances(self, *, include_ended: bool = False, balances: bool = False) -> InstancesResult:
        """Reconcile with every provider's own list, then show every instance with its running cost."""
        notes: list[str] = []
        before = await self.store.read(GPU_DOCUMENT, GpuDocument)
        still_open = {key for key, rental in before.rentals.items() if rental.ended_at is None}
        reconciled: dict[str, list[str]] = {}
        reconciler = Reconciler(self.caps, self.store, self.clock, self.probe, self.sleep, self.settle_price)

        async def reconcile(provider: GpuProvider) -> None:
            try:
                reconciled[provider.name] = await reconciler.reconcile(provider)
            except AtegnatosError as exc:  # in a task group: report it here, or it would end every reconcile
                reconciled[provider.name] = [f"{provider.label} could not be fully checked: {exc.message}"]

        async with anyio.create_task_group() as group:  # side by side: one slow cloud delays no other
            for provider in self.providers.values():
                if provider.name != "local":
                    group.start_soon(reconcile, provider)
        notes.extend(note for name in self.providers for note in reconciled.get(name, []))
        doc = await self.store.read(GPU_DOCUMENT, GpuDocument)
        await sync_studio(self.store, doc)
        # Reconcile may have found some gone, past their hour cap or past their boot deadline.
        await self._ended([r for key, r in doc.rentals.items() if key in still_open and r.ended_at is not None])
        now = self.clock()
        shown = [
            r for r in doc.rentals.values() if include_ended or r.ended_at is None or r.status is InstanceStatus.STOPPED
        ]
        views = [InstanceView.of(r, now) for r in sorted(shown, key=lambda r: r.started_at)]
        found_balances: list[Balance] = []
        if balances:
            for provider in self.providers.values():
                try:
                    found = await provider.balance()
                except UpstreamError as exc:
                    notes.append(f"{provider.label} balance unavailable: {exc.message}")
                    continue
                if found is not None and provider.name != "local":
                    found_balances.append(found)
        return InstancesResult(
            instances=views,
            burn_usd_per_hour=round(sum(v.usd_per_hour for v in views if v.status not in ("stopped", "terminated")), 4),
            month_spent_usd=month_spend(doc.rentals.values(), now),
            monthly_cap_usd=self.caps.monthly_usd_cap,
            orphans=sum(1 for v in views if v.orphan),
            balances=found_balances,
            notes=notes,
        )

    async def teardown(
        self, keys: list[str], *, everything: bool = False, stop: bool = False, progress: Progress | None = None
    ) -> TeardownResult:
        """Terminate (default) or stop instances; each terminate is retried until the provider confirms, within
        ``caps.teardown_seconds`` per provider (the providers in parallel). What is not confirmed is said so."""
        doc = await self.store.read(GPU_DOCUMENT, GpuDocument)
        if everything:
            targets = [r for r in doc.rentals.values() if r.ended_at is None or r.status is InstanceStatus.STOPPED]
        elif keys:
            targets = [_lookup(doc, key) for key in keys]
        else:
            raise InvalidRequestError(
                "Say which instances to tear down.",
                hint="Pass instance keys from gpu_instances, or all_instances=true.",
            )
        groups: dict[str, list[Rental]] = {}
        for rental in {r.key: r for r in targets}.values():
            groups.setdefault(rental.provider, []).append(rental)
        labels = {name: provider.label for name, provider in self.providers.items()}
        done = await bounded_teardown(
            groups,
            partial(self._teardown_one, stop=stop),
            labels=labels,
            seconds=self.caps.teardown_seconds,
            progress=progress,
        )
        return teardown_result([done[key] for key in dict.fromkeys(r.key for r in targets)])

    async def _teardown_one(self, rental: Rental, stop: bool) -> TeardownItem:
        if rental.status is InstanceStatus.TERMINATED:
            return TeardownItem(key=rental.key, outcome="already gone", final_usd=rental.final_usd)
        try:
            provider = self.provider(rental.provider)
        except InvalidRequestError as exc:
            return TeardownItem(
                key=rental.key,
                outcome="failed",
                message=f"{exc.message} {exc.hint}",
                still_billing="It may still be billing.",
            )
        if stop:
            await provider.stop(rental.instance_id)
            final = await self._close_shielded(rental.key, "stopped", InstanceStatus.STOPPED, "stopped by request")
            return TeardownItem(
                key=rental.key,
                outcome="stopped",
                final_usd=final.final_usd,
                still_billing=STILL_BILLING_WHEN_STOPPED[rental.provider],
            )
        try:
            gone = await terminate_confirmed(provider, rental.instance_id, sleep=self.sleep)
        except UpstreamError as exc:
            return TeardownItem(
                key=rental.key,
                outcome="failed",
                message=f"{exc.message} {exc.hint}".strip(),
                still_billing="It may still be billing: check the provider's console.",
            )
        if not gone:
            return TeardownItem(
                key=rental.key,
                outcome="failed",
                still_billing="It may still be billing.",
                message=f"{provider.label} accepted the request but still lists the instance; run gpu_teardown again shortly.",
            )
        final = await self._close_shielded(rental.key, "terminated", InstanceStatus.TERMINATED, "terminated by request")
        return TeardownItem(key=rental.key, outcome="terminated", final_usd=final.final_usd)


def _lookup(doc: GpuDocument, key: str) -> Rental:
    if key in doc.rentals:
        return doc.rentals[key]
    matches = [r for r in doc.rentals.values() if r.instance_id == key or r.name == key]
    if len(matches) == 1:
        return matches[0]
    raise NotFoundError(
        f"No instance '{key}' is known.", kind="instance", name=key, hint="Call gpu_instances to see the keys."
    )
