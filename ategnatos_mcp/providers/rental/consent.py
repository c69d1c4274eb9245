"""How the user says yes to a rental, and when a yes counts: asked live, answered in an earlier dialog (at the price
it showed), or confirmed explicitly by a client without a dialog. No yes, no rental."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ategnatos_mcp.errors import ConsentError
from ategnatos_mcp.providers.clouds.base import GpuProvider
from ategnatos_mcp.providers.models import GpuOffer, Quote
from ategnatos_mcp.providers.rental.quotes import PRICE_TOLERANCE_USD

__all__ = ["Consent", "RentalPlan", "get_consent"]

logger = logging.getLogger("ategnatos_mcp.providers")


@dataclass(frozen=True)
class Consent:
    """How the user says yes. A client with a confirmation dialog (elicitation) either asks live (``ask``) or
    already asked (``dialog`` + ``approved``); then ``confirmed`` counts for nothing. Only a client without a
    dialog may rent with ``confirmed`` (the explicit ``confirm=true`` after the user's yes)."""

    ask: Callable[[str], Awaitable[bool]] | None = None
    dialog: bool = False
    approved: bool = False
    confirmed: bool = False


@dataclass(frozen=True)
class RentalPlan:
    """A quote that passed every check, with the price ceiling and worst case the user is asked to accept."""

    quote: Quote
    provider: GpuProvider
    current: GpuOffer | None
    ceiling: float
    worst: float
    question: str
    image: str


async def get_consent(plan: RentalPlan, consent: Consent, shown_prices: dict[str, float]) -> None:
    """Return only if the user said yes to this plan. ``shown_prices``: quote id -> the hourly price the last
    dialog question showed; an answer from an earlier dialog uses up its quote's entry.

    Raises:
        ConsentError: no yes, or a yes given to a lower price than the plan's.
    """
    if consent.ask is not None:
        try:
            approved = await consent.ask(plan.question)
        except Exception:  # a client that fails to ask has not said yes
            logger.exception("asking the user to confirm the rental failed")
            approved = False
    elif consent.dialog:
        # The user answered a question asked earlier (maybe minutes ago): it must have shown this price.
        shown = shown_prices.pop(plan.quote.quote_id, None)
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
