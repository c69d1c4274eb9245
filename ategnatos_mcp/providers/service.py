"""GpuService: offers across providers, spin-up with consent, boot watch, reconcile and teardown."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio

from ategnatos_mcp.errors import ConsentError, InvalidRequestError, NotFoundError, UpstreamError
from ategnatos_mcp.providers.base import (
    CreateOutcomeUnknownError,
    GpuProvider,
    OfferUnavailableError,
    ProviderHttpError,
)
from ategnatos_mcp.providers.budget import enforce_budget, month_spend
from ategnatos_mcp.providers.gpus import gpu_matches
from ategnatos_mcp.providers.ledger import GPU_DOCUMENT, close_rental, open_rental, refresh_rental, sync_studio
from ategnatos_mcp.providers.models import (
    CreateRequest,
    GpuDocument,
    GpuOffer,
    Instance,
    InstanceStatus,
    OfferQuery,
    PendingCreate,
    Quote,
    Rental,
)
from ategnatos_mcp.providers.quotes import find_quote, make_quote, new_tag, price_rose, worst_case_usd
from ategnatos_mcp.providers.reconcile import TAG_PREFIX, reconcile_provider
from ategnatos_mcp.providers.results import (
    InstancesResult,
    InstanceView,
    OffersResult,
    OfferView,
    SpinupResult,
    TeardownItem,
    TeardownResult,
)
from ategnatos_mcp.providers.teardown import STILL_BILLING_WHEN_STOPPED, terminate_confirmed
from ategnatos_mcp.settings import GpuSettings
from ategnatos_mcp.state import GrimoireStore

__all__ = ["Consent", "GpuService", "TAG_PREFIX"]

logger = logging.getLogger("ategnatos_mcp.providers")

DEFAULT_IMAGE = "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04"

# (host, port, user, identity) -> SSH answered (and its host key is pinned).
Probe = Callable[[str, int, str, str], Awaitable[bool]]
Progress = Callable[[float, float | None, str | None], Awaitable[None]]


@dataclass(frozen=True)
class _Plan:
    quote: Quote
    provider: GpuProvider
    current: GpuOffer | None
    ceiling: float
    worst: float
    question: str


@dataclass(frozen=True)
class Consent:
    """How the user says yes. A client with a confirmation dialog (elicitation) either asks live (``ask``) or
    already asked (``dialog`` + ``approved``); then ``confirmed`` counts for nothing. Only a client without a
    dialog may rent with ``confirmed`` (the explicit ``confirm=true`` after the user's yes)."""

    ask: Callable[[str], Awaitable[bool]] | None = None
    dialog: bool = False
    approved: bool = False
    confirmed: bool = False


class GpuService:
    """Everything that spends or saves money on GPU clouds goes through here."""

    def __init__(
        self,
        caps: GpuSettings,
        store: GrimoireStore,
        providers: dict[str, GpuProvider],
        *,
        clock: Callable[[], datetime],
        public_key: Callable[[], Awaitable[str]],
        probe: Probe,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        missing_keys: list[str] | None = None,
        image: str = DEFAULT_IMAGE,
        poll_seconds: float = 5.0,
    ) -> None:
        self.caps = caps
        self.store = store
        self.providers = providers
        self.clock = clock
        self._public_key = public_key
        self.probe = probe
        self.sleep = sleep
        self.missing_keys = missing_keys or []
        self.image = image
        self.poll_seconds = poll_seconds
        self._registered: set[str] = set()

    # Offers --------------------------------------------------------------------------------------
    async def find_offers(self, query: OfferQuery, limit: int = 8) -> OffersResult:
        """The cheapest fitting offers across providers, each saved as a quote with an expiry."""
        found: list[GpuOffer] = []
        not_searched = [f"{name} (no API key set)" for name in self.missing_keys]
        for name, provider in self.providers.items():
            try:
                found.extend(await provider.offers(query))
            except UpstreamError as exc:
                logger.info("offers from %s failed: %s", name, exc.message)
                not_searched.append(f"{provider.label} ({exc.message})")
        fitting = sorted((o for o in found if _fits(o, query)), key=lambda o: (o.usd_per_hour, -(o.reliability or 0)))
        now = self.clock()
        quotes = [
            make_quote(query, offer, _alternatives(offer, fitting), now=now, ttl_seconds=self.caps.quote_ttl_seconds)
            for offer in fitting[:limit]
        ]
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            upd.doc.quotes = {k: q for k, q in upd.doc.quotes.items() if q.expires_at > now and not q.used}
            upd.doc.quotes.update({q.quote_id: q for q in quotes})
            spent = month_spend(upd.doc.rentals.values(), now)
        return OffersResult(
            offers=[OfferView.of(q) for q in quotes],
            hours=query.hours,
            not_searched=not_searched,
            max_usd_per_hour=self.caps.max_usd_per_hour,
            month_spent_usd=spent,
            monthly_cap_usd=self.caps.monthly_usd_cap,
        )

    # Spin-up ---------------------------------------------------------------------------------------
    async def consent_question(self, quote_id: str) -> str:
        """The plain-language question a confirmation dialog shows for this quote (runs every check first).

        Raises:
            ConsentError, NotFoundError, BudgetExceededError: as ``spinup`` would, before anyone is asked.
        """
        return (await self._plan(quote_id, dialog=True)).question

    async def spinup(self, quote_id: str, consent: Consent, label: str = "") -> SpinupResult:
        """Rent from a quote after an explicit yes; never rents twice for one quote.

        Raises:
            ConsentError: no yes, an expired or used quote, or a price rise without a new yes.
            BudgetExceededError: a cap from the settings would be broken.
            UpstreamError: the provider failed; the message says whether anything may have been rented.
        """
        plan = await self._plan(quote_id, dialog=consent.dialog or consent.ask is not None)
        await self._get_consent(plan, consent)
        return await self._rent(plan, label)

    async def _plan(self, quote_id: str, *, dialog: bool) -> _Plan:
        now = self.clock()
        doc = await self.store.read(GPU_DOCUMENT, GpuDocument)
        quote = find_quote(doc, quote_id, now)
        provider = self._provider(quote.offer.provider)
        current = await provider.quote(quote.offer)
        ceiling, worst, note = quote.offer.usd_per_hour, quote.worst_case_usd, ""
        if current is not None and price_rose(quote.offer, current):
            if not dialog:
                fresh = await self._requote(quote, current)
                raise ConsentError(
                    f"The price went up from ${quote.offer.usd_per_hour:.2f}/h to ${current.usd_per_hour:.2f}/h "
                    f"since quote {quote.quote_id}. Nothing was rented.",
                    hint=f"Tell the user the new price (worst case ${fresh.worst_case_usd:.2f}); if they agree, "
                    f"call gpu_spinup with quote_id '{fresh.quote_id}' and confirm=true.",
                )
            # With a dialog the user is simply asked again, at the new price.
            ceiling = current.usd_per_hour
            worst = worst_case_usd(current, quote.hours, quote.query.disk_gb)
            note = f"The price went up from ${quote.offer.usd_per_hour:.2f}/h since the quote. "
        enforce_budget(
            self.caps,
            usd_per_hour=ceiling,
            hours=quote.hours,
            worst_case_usd=worst,
            rentals=list(doc.rentals.values()),
            now=now,
        )
        offer = quote.offer
        question = (
            f"{note}Rent {offer.gpu_count}× {offer.gpu_label} on {provider.label} for ${ceiling:.2f} per hour? "
            f"Over {quote.hours:g} hour(s) it costs at most ${worst:.2f}. It keeps billing until it is torn down."
        )
        return _Plan(quote, provider, current, ceiling, worst, question)

    async def _get_consent(self, plan: _Plan, consent: Consent) -> None:
        if consent.ask is not None:
            try:
                approved = await consent.ask(plan.question)
            except Exception:  # a client that fails to ask has not said yes
                logger.exception("asking the user to confirm the rental failed")
                approved = False
        elif consent.dialog:
            approved = consent.approved
        else:
            if not consent.confirmed:
                raise ConsentError(
                    f"Confirmation needed: {plan.question}",
                    hint="Show this to the user; only if they say yes, call gpu_spinup again with quote_id "
                    f"'{plan.quote.quote_id}' and confirm=true.",
                )
            approved = True
        if not approved:
            raise ConsentError(
                "The rental was not confirmed, so nothing was rented.", hint="Ask for offers again when ready."
            )

    async def _requote(self, quote: Quote, current: GpuOffer) -> Quote:
        fresh = make_quote(
            quote.query, current, quote.alternatives, now=self.clock(), ttl_seconds=self.caps.quote_ttl_seconds
        )
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            upd.doc.quotes.pop(quote.quote_id, None)
            upd.doc.quotes[fresh.quote_id] = fresh
        return fresh

    async def _rent(self, plan: _Plan, label: str) -> SpinupResult:
        quote, provider, current, ceiling = plan.quote, plan.provider, plan.current, plan.ceiling
        tag = new_tag()
        name = f"{TAG_PREFIX}{tag}" + (f"-{_slug(label)}" if label else "")
        public_key = await self._ssh_key(provider)
        now = self.clock()
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            # Mark the quote used and remember the create BEFORE sending it: a lost answer is then found by tag.
            upd.doc.quotes[quote.quote_id] = quote.model_copy(update={"used": True})
            upd.doc.pending[tag] = PendingCreate(
                tag=tag, provider=provider.name, name=name, quote_id=quote.quote_id, sent_at=now
            )
        tried: list[str] = []
        instance: Instance | None = None
        offer = quote.offer
        try:
            for candidate in [quote.offer, *quote.alternatives]:
                fresh = current if candidate is quote.offer else await provider.quote(candidate)
                if fresh is None or fresh.usd_per_hour > ceiling + 1e-9:
                    tried.append(f"{candidate.offer_ref}: gone or dearer")
                    continue
                request = CreateRequest(
                    offer=fresh,
                    name=name,
                    tag=tag,
                    image=self.image,
                    disk_gb=quote.query.disk_gb,
                    ssh_public_key=public_key,
                )
                try:
                    instance = await self._create(provider, request)
                except OfferUnavailableError as exc:
                    tried.append(f"{candidate.offer_ref}: {exc.message}")
                    continue
                offer = fresh
                break
        except ProviderHttpError:
            await self._forget_pending(tag)  # a definite refusal: nothing was rented
            raise
        if instance is None:
            await self._forget_pending(tag)
            raise UpstreamError(
                f"Every matching {provider.label} offer was taken or full; nothing was rented.",
                service=provider.name,
                hint="Ask for GPU offers again; capacity changes minute to minute.",
            )
        rental = await self._record(instance, tag, offer.gpu, instance.usd_per_hour or offer.usd_per_hour, quote)
        return SpinupResult(
            instance=InstanceView.of(rental, self.clock()),
            quote_id=quote.quote_id,
            worst_case_usd=plan.worst,
            tried=tried,
        )

    async def _create(self, provider: GpuProvider, request: CreateRequest) -> Instance:
        for attempt in range(3):
            try:
                return await provider.create(request)
            except CreateOutcomeUnknownError:
                found = await self._find_by_tag(provider, request.tag)
                if found is not None:
                    return found
                raise UpstreamError(
                    f"{provider.label} did not confirm the rental, and no instance with tag {request.tag} is listed yet. "
                    "To avoid paying twice, Ategnatos did not try again.",
                    service=provider.name,
                    hint="Call gpu_instances in a minute: if the rental appears it is picked up and shown with its cost.",
                ) from None
            except ProviderHttpError as exc:
                if exc.status != 429 or attempt == 2:
                    raise
                await self.sleep(min(exc.retry_after if exc.retry_after is not None else 12.0, 30.0))
        raise AssertionError("unreachable")

    async def _find_by_tag(self, provider: GpuProvider, tag: str) -> Instance | None:
        try:
            listed = await provider.list()
        except ProviderHttpError:
            return None
        return next((i for i in listed if tag in i.name and i.status is not InstanceStatus.TERMINATED), None)

    async def _record(self, instance: Instance, tag: str, gpu: str, usd_per_hour: float, quote: Quote) -> Rental:
        now = self.clock()
        rental = Rental(
            provider=instance.provider,
            instance_id=instance.instance_id,
            name=instance.name,
            tag=tag,
            gpu=instance.gpu or gpu,
            usd_per_hour=usd_per_hour,
            status=instance.status,
            started_at=now,
            max_hours=quote.hours,
            boot_deadline=now + timedelta(seconds=self.caps.boot_timeout_seconds),
            ssh_host=instance.ssh_host,
            ssh_port=instance.ssh_port,
            ssh_user=instance.ssh_user,
            quote_id=quote.quote_id,
        )
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            upd.doc.pending.pop(tag, None)
            open_rental(upd.doc, rental, note=f"quote {quote.quote_id}")
            doc = upd.doc
        await sync_studio(self.store, doc)
        return rental

    async def _forget_pending(self, tag: str) -> None:
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            upd.doc.pending.pop(tag, None)

    async def _ssh_key(self, provider: GpuProvider) -> str:
        key = await self._public_key()
        if provider.name not in self._registered:
            await provider.register_ssh_key(key)
            self._registered.add(provider.name)
        return key

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
            provider = self._provider(rental.provider)
            seen = await provider.get(rental.instance_id)
            now = self.clock()
            if seen is None or seen.status is InstanceStatus.TERMINATED:
                await self._close(key, "gone", InstanceStatus.TERMINATED, "the provider no longer lists it")
                raise UpstreamError(
                    f"{provider.label} ended instance {rental.instance_id} while it was starting.",
                    service=provider.name,
                    hint="Ask for offers again.",
                )
            if seen.status is InstanceStatus.FAILED or (rental.boot_deadline and now >= rental.boot_deadline):
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

    async def _boot_failed(self, rental: Rental, provider: GpuProvider, seen: Instance) -> None:
        failed = seen.status is InstanceStatus.FAILED
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
        return final

    async def _rental(self, key: str) -> Rental:
        doc = await self.store.read(GPU_DOCUMENT, GpuDocument)
        return _lookup(doc, key)

    def _provider(self, name: str) -> GpuProvider:
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
        for provider in self.providers.values():
            if provider.name == "local":
                continue
            notes.extend(await reconcile_provider(self, provider))
        doc = await self.store.read(GPU_DOCUMENT, GpuDocument)
        await sync_studio(self.store, doc)
        now = self.clock()
        shown = [
            r for r in doc.rentals.values() if include_ended or r.ended_at is None or r.status is InstanceStatus.STOPPED
        ]
        views = [InstanceView.of(r, now) for r in sorted(shown, key=lambda r: r.started_at)]
        found_balances = []
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

    async def teardown(self, keys: list[str], *, everything: bool = False, stop: bool = False) -> TeardownResult:
        """Terminate (default) or stop instances; every terminate is retried until the provider confirms."""
        doc = await self.store.read(GPU_DOCUMENT, GpuDocument)
        if everything:
            targets = [r for r in doc.rentals.values() if r.ended_at is None or r.status is InstanceStatus.STOPPED]
        elif keys:
            targets = [_lookup(doc, key) for key in keys]
        else:
            raise InvalidRequestError(
                "Say which instances to tear down.", hint="Pass instance keys from gpu_instances, or all=true."
            )
        items = [await self._teardown_one(rental, stop) for rental in targets]
        return TeardownResult(items=items, total_final_usd=round(sum(i.final_usd or 0 for i in items), 2))

    async def _teardown_one(self, rental: Rental, stop: bool) -> TeardownItem:
        provider = self._provider(rental.provider)
        if stop:
            await provider.stop(rental.instance_id)
            final = await self._close(rental.key, "stopped", InstanceStatus.STOPPED, "stopped by request")
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
        final = await self._close(rental.key, "terminated", InstanceStatus.TERMINATED, "terminated by request")
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


def _fits(offer: GpuOffer, query: OfferQuery) -> bool:
    if query.gpu and not gpu_matches(offer.gpu, query.gpu):
        return False
    if query.min_vram_gb and offer.vram_gb + 0.5 < query.min_vram_gb:
        return False
    if query.max_usd_per_hour is not None and offer.usd_per_hour > query.max_usd_per_hour:
        return False
    if query.min_reliability and offer.reliability is not None and offer.reliability < query.min_reliability:
        return False
    if query.region and offer.region and query.region.lower() not in offer.region.lower():
        return False
    return offer.gpu_count == query.gpu_count


def _alternatives(offer: GpuOffer, fitting: list[GpuOffer]) -> list[GpuOffer]:
    same = [o for o in fitting if o is not offer and o.provider == offer.provider and o.gpu == offer.gpu]
    return same[:3]


def _slug(label: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in label.lower()).strip("-")
    return cleaned[:24]
