"""GpuService: the one door to GPU clouds, made of three parts. It finds offers across providers itself; renting
from a quote after the user's yes is its ``Renter``; the life of a rental after it starts (boot watch, price check,
reconcile, teardown) is its ``Fleet``."""

from __future__ import annotations

import logging
from datetime import datetime

import anyio

from ategnatos_mcp.errors import AtegnatosError
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.providers.clouds.base import GpuProvider
from ategnatos_mcp.providers.clouds.images import DEFAULT_IMAGE
from ategnatos_mcp.providers.models import GpuDocument, GpuOffer, OfferQuery, Quote, Rental
from ategnatos_mcp.providers.rental.budget import BudgetExceededError, enforce_budget, month_spend
from ategnatos_mcp.providers.rental.consent import Consent
from ategnatos_mcp.providers.rental.fleet import Fleet
from ategnatos_mcp.providers.rental.hooks import Clock, EndListener, Probe, PublicKey, Sleep
from ategnatos_mcp.providers.rental.ledger import GPU_DOCUMENT
from ategnatos_mcp.providers.rental.quotes import alternatives, fits, make_quote
from ategnatos_mcp.providers.rental.renter import Renter
from ategnatos_mcp.providers.rental.results import (
    InstancesResult,
    OffersResult,
    OfferView,
    SpinupResult,
    TeardownResult,
    why_prices_differ,
)
from ategnatos_mcp.settings import GpuSettings
from ategnatos_mcp.state import GrimoireStore

__all__ = ["GpuService"]

logger = logging.getLogger("ategnatos_mcp.providers")


class GpuService:
    """Everything that spends or saves money on GPU clouds goes through here."""

    def __init__(
        self,
        caps: GpuSettings,
        store: GrimoireStore,
        providers: dict[str, GpuProvider],
        *,
        clock: Clock,
        public_key: PublicKey,
        probe: Probe,
        sleep: Sleep = anyio.sleep,
        missing_keys: list[str] | None = None,
        image: str = DEFAULT_IMAGE,
        poll_seconds: float = 5.0,
    ) -> None:
        self.caps = caps
        self.store = store
        self.providers = providers  # one dict, shared with the fleet
        self.clock = clock
        self.missing_keys = missing_keys or []
        self.fleet = Fleet(caps, store, providers, clock=clock, probe=probe, sleep=sleep, poll_seconds=poll_seconds)
        self.renter = Renter(caps, store, self.fleet, clock=clock, public_key=public_key, image=image)

    # The fleet's collaborators, readable and replaceable here (tests swap the SSH probe and the sleep).
    @property
    def probe(self) -> Probe:
        """Whether SSH answers on a new instance."""
        return self.fleet.probe

    @probe.setter
    def probe(self, probe: Probe) -> None:
        self.fleet.probe = probe

    @property
    def sleep(self) -> Sleep:
        """How the service waits between polls and retries."""
        return self.fleet.sleep

    @sleep.setter
    def sleep(self, sleep: Sleep) -> None:
        self.fleet.sleep = sleep

    @property
    def end_listeners(self) -> dict[str, EndListener]:
        """Told once about each rental that ended, by name (registering a name again replaces it)."""
        return self.fleet.end_listeners

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

    # Spin-up: the renter's ----------------------------------------------------------------------------
    async def consent_question(self, quote_id: str, image: str | None = None) -> str:
        """The question a confirmation dialog shows for this quote, after every check (``Renter.question``)."""
        return await self.renter.question(quote_id, image)

    async def spinup(self, quote_id: str, consent: Consent, label: str = "", image: str | None = None) -> SpinupResult:
        """Rent from a quote after an explicit yes, never twice for one quote (``Renter.rent``)."""
        return await self.renter.rent(quote_id, consent, label, image)

    # The life of a rental after it starts: the fleet's ----------------------------------------------------
    async def wait_ready(self, key: str, wait_seconds: float, progress: Progress | None = None) -> Rental:
        """Poll until SSH answers, the wait ends or the boot deadline passes (``Fleet.wait_ready``)."""
        return await self.fleet.wait_ready(key, wait_seconds, progress)

    async def refreshed(self, key: str) -> Rental:
        """The rental with its SSH endpoint re-read from the provider (``Fleet.refreshed``)."""
        return await self.fleet.refreshed(key)

    async def settle_price(self, key: str, billed: float | None) -> Rental:
        """Keep a new rental at its billed price, or end it at once (``Fleet.settle_price``)."""
        return await self.fleet.settle_price(key, billed)

    async def instances(self, *, include_ended: bool = False, balances: bool = False) -> InstancesResult:
        """Reconcile with every provider's own list, then show every instance with its running cost."""
        return await self.fleet.instances(include_ended=include_ended, balances=balances)

    async def teardown(
        self, keys: list[str], *, everything: bool = False, stop: bool = False, progress: Progress | None = None
    ) -> TeardownResult:
        """Terminate (default) or stop instances, each until the provider confirms (``Fleet.teardown``)."""
        return await self.fleet.teardown(keys, everything=everything, stop=stop, progress=progress)
