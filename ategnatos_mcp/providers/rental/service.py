"""GpuService: offers across providers, spin-up with consent, boot watch, reconcile and teardown."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio

from ategnatos_mcp.errors import AtegnatosError, ConsentError, InvalidRequestError, UpstreamError
from ategnatos_mcp.providers.clouds.base import (
    GpuProvider,
    OfferUnavailableError,
    ProviderHttpError,
)
from ategnatos_mcp.providers.clouds.images import DEFAULT_IMAGE, IMAGE_PROVIDERS, cuda_too_new, image_for, min_cuda_for
from ategnatos_mcp.providers.models import (
    CreateRequest,
    GpuDocument,
    GpuOffer,
    Instance,
    OfferQuery,
    PendingCreate,
    PriceAgreement,
    Quote,
    Rental,
)
from ategnatos_mcp.providers.rental.budget import BudgetExceededError, enforce_budget, month_spend
from ategnatos_mcp.providers.rental.create import create_once
from ategnatos_mcp.providers.rental.fleet import EndListener, Lifecycle, Probe
from ategnatos_mcp.providers.rental.ledger import GPU_DOCUMENT, open_rental, sync_studio
from ategnatos_mcp.providers.rental.priceguard import agreement_for
from ategnatos_mcp.providers.rental.quotes import (
    PRICE_TOLERANCE_USD,
    alternatives,
    find_quote,
    fits,
    make_quote,
    new_tag,
    price_rose,
    worst_case_usd,
)
from ategnatos_mcp.providers.rental.reconcile import TAG_PREFIX
from ategnatos_mcp.providers.rental.results import (
    InstanceView,
    OffersResult,
    OfferView,
    SpinupResult,
    why_prices_differ,
)
from ategnatos_mcp.settings import GpuSettings
from ategnatos_mcp.state import GrimoireStore

__all__ = ["Consent", "GpuService", "TAG_PREFIX"]

logger = logging.getLogger("ategnatos_mcp.providers")


@dataclass(frozen=True)
class _Plan:
    quote: Quote
    provider: GpuProvider
    current: GpuOffer | None
    ceiling: float
    worst: float
    question: str
    image: str


@dataclass(frozen=True)
class Consent:
    """How the user says yes. A client with a confirmation dialog (elicitation) either asks live (``ask``) or
    already asked (``dialog`` + ``approved``); then ``confirmed`` counts for nothing. Only a client without a
    dialog may rent with ``confirmed`` (the explicit ``confirm=true`` after the user's yes)."""

    ask: Callable[[str], Awaitable[bool]] | None = None
    dialog: bool = False
    approved: bool = False
    confirmed: bool = False


class GpuService(Lifecycle):
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
        self.end_listeners: dict[str, EndListener] = {}  # by name, so registering twice replaces
        self._registered: set[str] = set()
        self._shown: dict[str, float] = {}  # quote id -> the hourly price the last dialog question showed

    # Offers --------------------------------------------------------------------------------------
    async def find_offers(self, query: OfferQuery, limit: int = 8) -> OffersResult:
        """The cheapest fitting offers across providers, each saved as a quote with an expiry."""
        offered: dict[str, list[GpuOffer]] = {}
        failed: dict[str, str] = {}

        async def search(name: str, provider: GpuProvider) -> None:
            try:
                offered[name] = await provider.offers(query)
            except AtegnatosError as exc:  # in a task group: report it here, or it would end the whole search
                logger.info("offers from %s failed: %s", name, exc.message)
                failed[name] = f"{provider.label} ({exc.message})"
            except (ValueError, KeyError, TypeError):  # an answer in a shape we do not know: skip, don't fail all
                logger.exception("offers from %s could not be read", name)
                failed[name] = f"{provider.label} (answered in a form Ategnatos does not understand)"

        async with anyio.create_task_group() as group:  # the clouds side by side: one slow cloud delays no other
            for name, provider in self.providers.items():
                group.start_soon(search, name, provider)
        found = [offer for name in self.providers for offer in offered.get(name, [])]
        not_searched = [f"{name} (no API key set)" for name in self.missing_keys]
        not_searched += [failed[name] for name in self.providers if name in failed]
        fitting = sorted((o for o in found if fits(o, query)), key=lambda o: (o.usd_per_hour, -(o.reliability or 0)))
        now = self.clock()
        quotes = [
            make_quote(query, offer, alternatives(offer, fitting), now=now, ttl_seconds=self.caps.quote_ttl_seconds)
            for offer in fitting[:limit]
        ]
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            upd.doc.quotes = {k: q for k, q in upd.doc.quotes.items() if q.expires_at > now and not q.used}
            upd.doc.quotes.update({q.quote_id: q for q in quotes})
            spent = month_spend(upd.doc.rentals.values(), now)
            rentals = list(upd.doc.rentals.values())
        return OffersResult(
            offers=[OfferView.of(q, self._budget_note(q, rentals, now)) for q in quotes],
            hours=query.hours,
            why_prices_differ=why_prices_differ(quotes),
            not_searched=not_searched,
            max_usd_per_hour=self.caps.max_usd_per_hour,
            month_spent_usd=spent,
            monthly_cap_usd=self.caps.monthly_usd_cap,
        )

    def _budget_note(self, quote: Quote, rentals: list[Rental], now: datetime) -> str:
        try:
            enforce_budget(
                self.caps,
                usd_per_hour=quote.offer.usd_per_hour,
                hours=quote.hours,
                worst_case_usd=quote.worst_case_usd,
                rentals=rentals,
                now=now,
            )
        except BudgetExceededError as exc:
            return exc.message
        return ""

    # Spin-up ---------------------------------------------------------------------------------------
    async def consent_question(self, quote_id: str, image: str | None = None) -> str:
        """The plain-language question a confirmation dialog shows for this quote (runs every check first).

        Raises:
            ConsentError, NotFoundError, BudgetExceededError, InvalidRequestError: as ``spinup`` would, before
                anyone is asked.
        """
        plan = await self._plan(quote_id, dialog=True, image=image)
        self._shown[plan.quote.quote_id] = plan.ceiling
        return plan.question

    async def spinup(self, quote_id: str, consent: Consent, label: str = "", image: str | None = None) -> SpinupResult:
        """Rent from a quote after an explicit yes; never rents twice for one quote. ``image``: the container
        image to start (RunPod and Vast.ai; default: the service's image).

        Raises:
            InvalidRequestError: not a plausible image name, or an image for a provider that starts none.
            ConsentError: no yes, an expired or used quote, or a price rise without a new yes.
            BudgetExceededError: a cap from the settings would be broken.
            UpstreamError: the provider failed; the message says whether anything may have been rented.
        """
        plan = await self._plan(quote_id, dialog=consent.dialog or consent.ask is not None, image=image)
        await self._get_consent(plan, consent)
        return await self._rent(plan, label)

    async def _plan(self, quote_id: str, *, dialog: bool, image: str | None = None) -> _Plan:
        now = self.clock()
        doc = await self.store.read(GPU_DOCUMENT, GpuDocument)
        quote = find_quote(doc, quote_id, now)
        if quote.offer.provider == "local":
            raise InvalidRequestError(
                "That offer is this computer's own GPU: there is nothing to rent.",
                hint="Use it directly (ComfyUI and training run here), or pick a cloud offer to rent.",
            )
        provider = self._provider(quote.offer.provider)
        chosen = image_for(provider.name, provider.label, image, default=self.image)
        needed = cuda_too_new(chosen, quote.offer.max_cuda)
        if needed is not None:
            raise InvalidRequestError(
                f"The image {chosen} needs CUDA {needed}, but this {quote.offer.gpu_label} host's driver runs CUDA "
                f"{quote.offer.max_cuda:g} at most, so it would never start. Nothing was rented.",
                hint="Pick another offer, or an image built for an older CUDA (its tag usually names it).",
            )
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
            f"Over {quote.hours:g} hour(s) it costs at most ${worst:.2f}. It keeps billing until it is torn down "
            f"(at the latest after {self.caps.max_hours_per_instance:g} hours, your cap)."
            + (f" It starts the image {chosen}." if image and image.strip() else "")
        )
        return _Plan(quote, provider, current, ceiling, worst, question, chosen)

    async def _get_consent(self, plan: _Plan, consent: Consent) -> None:
        if consent.ask is not None:
            try:
                approved = await consent.ask(plan.question)
            except Exception:  # a client that fails to ask has not said yes
                logger.exception("asking the user to confirm the rental failed")
                approved = False
        elif consent.dialog:
            # The user answered a question asked earlier (maybe minutes ago): it must have shown this price.
            shown = self._shown.pop(plan.quote.quote_id, None)
            if consent.approved and (shown is None or plan.ceiling > shown + PRICE_TOLERANCE_USD):
                raise ConsentError(
                    "The price changed while the user was deciding, so nothing was rented.",
                    hint="Call gpu_spinup again with the same quote id to ask with the current price.",
                )
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
        agreement = agreement_for(quote, quote.offer, ceiling, plan.worst)
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            # Mark the quote used and remember the create BEFORE sending it: a lost answer is then found by tag.
            upd.doc.quotes[quote.quote_id] = quote.model_copy(update={"used": True})
            upd.doc.pending[tag] = PendingCreate(
                tag=tag, provider=provider.name, name=name, quote_id=quote.quote_id, sent_at=now, agreement=agreement
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
                if cuda_too_new(plan.image, fresh.max_cuda) is not None:
                    tried.append(f"{candidate.offer_ref}: its driver is too old for the image's CUDA")
                    continue
                request = CreateRequest(
                    offer=fresh,
                    name=name,
                    tag=tag,
                    image=plan.image,
                    disk_gb=quote.query.disk_gb,
                    min_cuda=min_cuda_for(quote.query.min_cuda, plan.image),
                    ssh_public_key=public_key,
                )
                try:
                    instance = await create_once(provider, request, sleep=self.sleep)
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
        agreement = agreement.model_copy(update={"offer": offer})
        rental = await self._record(instance, tag, offer.gpu, quote, agreement)
        # The create answer may already say what the provider bills (RunPod's pod cost; Vast.ai and Lambda once
        # the new instance is read back); above the yes or a cap it is ended here, before any answer.
        rental = await self.settle_price(rental.key, instance.usd_per_hour)
        return SpinupResult(
            instance=InstanceView.of(rental, self.clock()),
            quote_id=quote.quote_id,
            worst_case_usd=plan.worst,
            tried=tried,
            image=plan.image if provider.name in IMAGE_PROVIDERS else None,
        )

    async def _record(self, instance: Instance, tag: str, gpu: str, quote: Quote, agreement: PriceAgreement) -> Rental:
        now = self.clock()
        rental = Rental(
            provider=instance.provider,
            instance_id=instance.instance_id,
            name=instance.name,
            tag=tag,
            gpu=instance.gpu or gpu,
            usd_per_hour=instance.usd_per_hour or agreement.usd_per_hour,  # what it bills, once the provider says
            unverified_price=agreement,
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
            open_rental(upd.doc, rental, note=f"confirmed by the user at ${agreement.usd_per_hour:.2f}/h")
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


def _slug(label: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in label.lower()).strip("-")
    return cleaned[:24]
