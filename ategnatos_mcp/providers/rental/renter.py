"""The renter: from a quote and the user's yes to a recorded rental. Every check runs before anyone is asked, the
create is remembered before it is sent (a lost answer is found by tag), and one quote never rents twice."""

from __future__ import annotations

from datetime import timedelta

from ategnatos_mcp.errors import ConsentError, InvalidRequestError, UpstreamError
from ategnatos_mcp.providers.clouds.base import GpuProvider, OfferUnavailableError, ProviderHttpError
from ategnatos_mcp.providers.clouds.images import IMAGE_PROVIDERS, cuda_too_new, image_for, min_cuda_for
from ategnatos_mcp.providers.models import (
    CreateRequest,
    GpuDocument,
    GpuOffer,
    Instance,
    PendingCreate,
    PriceAgreement,
    Quote,
    Rental,
)
from ategnatos_mcp.providers.rental.budget import enforce_budget
from ategnatos_mcp.providers.rental.consent import Consent, RentalPlan, get_consent
from ategnatos_mcp.providers.rental.create import create_once
from ategnatos_mcp.providers.rental.fleet import Fleet
from ategnatos_mcp.providers.rental.hooks import Clock, PublicKey
from ategnatos_mcp.providers.rental.ledger import GPU_DOCUMENT, open_rental, sync_studio
from ategnatos_mcp.providers.rental.priceguard import agreement_for
from ategnatos_mcp.providers.rental.quotes import find_quote, make_quote, new_tag, price_rose, worst_case_usd
from ategnatos_mcp.providers.rental.reconcile import TAG_PREFIX
from ategnatos_mcp.providers.rental.results import InstanceView, SpinupResult
from ategnatos_mcp.settings import GpuSettings
from ategnatos_mcp.state import GrimoireStore

__all__ = ["Renter"]


class Renter:
    """Rents from quotes; a new rental joins ``fleet``, which checks its billed price and watches it from then on."""

    def __init__(
        self,
        caps: GpuSettings,
        store: GrimoireStore,
        fleet: Fleet,
        *,
        clock: Clock,
        public_key: PublicKey,
        image: str,
    ) -> None:
        self.caps = caps
        self.store = store
        self.fleet = fleet
        self.clock = clock
        self.image = image
        self._public_key = public_key
        self._registered: set[str] = set()  # providers that already have our SSH key
        self._shown: dict[str, float] = {}  # quote id -> the hourly price the last dialog question showed

    async def question(self, quote_id: str, image: str | None = None) -> str:
        """The plain-language question a confirmation dialog shows for this quote (runs every check first).

        Raises:
            ConsentError, NotFoundError, BudgetExceededError, InvalidRequestError: as ``rent`` would, before
                anyone is asked.
        """
        plan = await self._plan(quote_id, dialog=True, image=image)
        self._shown[plan.quote.quote_id] = plan.ceiling
        return plan.question

    async def rent(self, quote_id: str, consent: Consent, label: str = "", image: str | None = None) -> SpinupResult:
        """Rent from a quote after an explicit yes; never rents twice for one quote. ``image``: the container
        image to start (RunPod and Vast.ai; default: ``self.image``).

        Raises:
            InvalidRequestError: not a plausible image name, or an image for a provider that starts none.
            ConsentError: no yes, an expired or used quote, or a price rise without a new yes.
            BudgetExceededError: a cap from the settings would be broken.
            UpstreamError: the provider failed; the message says whether anything may have been rented.
        """
        plan = await self._plan(quote_id, dialog=consent.dialog or consent.ask is not None, image=image)
        await get_consent(plan, consent, self._shown)
        return await self._rent(plan, label)

    async def _plan(self, quote_id: str, *, dialog: bool, image: str | None = None) -> RentalPlan:
        now = self.clock()
        doc = await self.store.read(GPU_DOCUMENT, GpuDocument)
        quote = find_quote(doc, quote_id, now)
        if quote.offer.provider == "local":
            raise InvalidRequestError(
                "That offer is this computer's own GPU: there is nothing to rent.",
                hint="Use it directly (ComfyUI and training run here), or pick a cloud offer to rent.",
            )
        provider = self.fleet.provider(quote.offer.provider)
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
        return RentalPlan(quote, provider, current, ceiling, worst, question, chosen)

    async def _requote(self, quote: Quote, current: GpuOffer) -> Quote:
        fresh = make_quote(
            quote.query, current, quote.alternatives, now=self.clock(), ttl_seconds=self.caps.quote_ttl_seconds
        )
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            upd.doc.quotes.pop(quote.quote_id, None)
            upd.doc.quotes[fresh.quote_id] = fresh
        return fresh

    async def _rent(self, plan: RentalPlan, label: str) -> SpinupResult:
        quote, provider, current, ceiling = plan.quote, plan.provider, plan.current, plan.ceiling
        tag = new_tag()
        name = f"{TAG_PREFIX}{tag}" + (f"-{_slug(label)}" if label else "")
        public_key = await self._ssh_key(provider)
        now = self.clock()
        agreement = agreement_for(quote, quote.offer, ceiling, plan.worst)
        async with self.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            # Under the grimoire's lock, which every server on this project shares: another conversation may have
            # rented from this quote since it was read. A quote rents once, whoever asks.
            find_quote(upd.doc, quote.quote_id, now)
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
                    instance = await create_once(provider, request, sleep=self.fleet.sleep)
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
        rental = await self.fleet.settle_price(rental.key, instance.usd_per_hour)
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
            found = upd.doc.rentals.get(rental.key)
            if found is None:
                open_rental(upd.doc, rental, note=f"confirmed by the user at ${agreement.usd_per_hour:.2f}/h")
            else:
                # Another server on this project (another conversation) reconciled while the create answer was on
                # its way and found the instance by its tag: one rental, one record, whatever it did with it since.
                rental = found
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
