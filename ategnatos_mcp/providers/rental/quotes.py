"""Quotes: a priced offer with an id and an expiry. Consent is given to a quote, never to a tool."""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta

from ategnatos_mcp.errors import ConsentError, NotFoundError
from ategnatos_mcp.providers.clouds.gpus import gpu_matches
from ategnatos_mcp.providers.models import GpuDocument, GpuOffer, OfferQuery, Quote, Rental

__all__ = [
    "PRICE_TOLERANCE_USD",
    "alternatives",
    "find_quote",
    "fits",
    "make_quote",
    "new_tag",
    "price_rose",
    "worst_case_usd",
]

# Prices are compared to a tenth of a cent per hour; anything above that is a rise that needs a new yes.
PRICE_TOLERANCE_USD = 0.001


def new_tag() -> str:
    """A short unique tag carried in the instance name, so a lost create answer can be found again."""
    return secrets.token_hex(4)


def worst_case_usd(offer: GpuOffer, hours: float, disk_gb: int) -> float:
    """The most this rental can cost for ``hours``: compute (storage folded in) plus downloading a full disk."""
    total = offer.usd_per_hour * hours
    if offer.bandwidth_usd_per_gb:
        total += offer.bandwidth_usd_per_gb * disk_gb
    if offer.storage_usd_per_gb_month and offer.provider == "runpod":
        total += offer.storage_usd_per_gb_month * disk_gb * hours / 730
    return math.ceil(total * 100) / 100


def make_quote(
    query: OfferQuery, offer: GpuOffer, alternatives: list[GpuOffer], *, now: datetime, ttl_seconds: int
) -> Quote:
    """A quote for ``offer``; ``alternatives`` are same-GPU offers at or below its price, tried if it vanishes."""
    return Quote(
        quote_id="q-" + secrets.token_hex(5),
        query=query,
        offer=offer,
        alternatives=[alt for alt in alternatives if alt.usd_per_hour <= offer.usd_per_hour + PRICE_TOLERANCE_USD],
        hours=query.hours,
        worst_case_usd=worst_case_usd(offer, query.hours, query.disk_gb),
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )


def find_quote(doc: GpuDocument, quote_id: str, now: datetime) -> Quote:
    """The quote, if it exists, is unused and has not expired.

    Raises:
        NotFoundError: no such quote.
        ConsentError: the quote expired or was already used.
    """
    quote = doc.quotes.get(quote_id.strip())
    if quote is None and (used := _rental_of(doc, quote_id.strip())) is not None:
        raise _used(doc, used)  # used, then dropped from the open quotes by a later gpu_offers
    if quote is None:
        raise NotFoundError(
            f"There is no quote '{quote_id}'.",
            kind="quote",
            name=quote_id,
            hint="Ask for GPU offers again (gpu_offers) and use a quote id from that answer.",
        )
    if quote.used:
        raise _used(doc, quote)
    if now >= quote.expires_at:
        minutes = max(int((now - quote.expires_at).total_seconds() // 60), 0)
        raise ConsentError(
            f"Quote {quote.quote_id} expired {minutes} minute(s) ago; prices may have changed.",
            hint="Ask for GPU offers again (gpu_offers), check the new price with the user, then use the new quote id.",
        )
    return quote


def price_rose(quoted: GpuOffer, current: GpuOffer) -> bool:
    """Whether today's price is above the one the user saw."""
    return current.usd_per_hour > quoted.usd_per_hour + PRICE_TOLERANCE_USD


def fits(offer: GpuOffer, query: OfferQuery) -> bool:
    """The offer meets every wish in the query."""
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


def alternatives(offer: GpuOffer, fitting: list[GpuOffer]) -> list[GpuOffer]:
    """Up to three equivalent offers (same provider and GPU) to fall back on if this one is taken."""
    same = [o for o in fitting if o is not offer and o.provider == offer.provider and o.gpu == offer.gpu]
    return same[:3]


def _rental_of(doc: GpuDocument, quote_id: str) -> Rental | None:
    return next((r for r in doc.rentals.values() if r.quote_id == quote_id), None)


def _used(doc: GpuDocument, quote: Quote | Rental) -> ConsentError:
    """A quote already used: what it rented (perhaps from another conversation on this project), and nothing more."""
    again = "Each quote rents once. Ask for GPU offers again (gpu_offers) if the artist wants another GPU."
    quote_id = quote.quote_id or ""
    rental = quote if isinstance(quote, Rental) else _rental_of(doc, quote_id)
    if rental is not None:
        state = "still running" if rental.ended_at is None else "ended since"
        return ConsentError(
            f"Quote {quote_id} was already used: it rented {rental.gpu} on {rental.provider} as {rental.key} at "
            f"{rental.started_at:%H:%M} UTC (perhaps from another conversation), {state}. Nothing more was rented.",
            hint=f"gpu_instances shows it with its cost. {again}",
        )
    pending = next((p for p in doc.pending.values() if p.quote_id == quote_id), None)
    if pending is not None:
        return ConsentError(
            f"Quote {quote_id} is being rented right now (asked at {pending.sent_at:%H:%M} UTC, perhaps from "
            "another conversation). Nothing more was rented.",
            hint=f"gpu_instances shows the instance once the provider answers. {again}",
        )
    return ConsentError(f"Quote {quote_id} was already used for a rental. Nothing more was rented.", hint=again)
