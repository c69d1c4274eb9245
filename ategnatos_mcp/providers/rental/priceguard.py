"""The billed price of a new rental, checked against what the user confirmed and every budget cap.

A provider may bill more than its catalogue said: RunPod's create answer carries the pod's own ``cost``; Vast.ai
(``dph_total``) and Lambda (``price_cents_per_hour`` of the instance's type) show theirs on the instance. The check
runs as soon as the price is known (the create answer, else the first status read, else the next reconcile).
A rental above the confirmed price or a cap is never kept: it is terminated at once (retried until the provider
confirms), the ledger says the user did not confirm that price and what it cost, and the answer offers a new quote
at the real price. Fail closed: nobody is asked again mid-rental, so a client without a dialog is as safe as one
with it.

Rounding: a billed price at most half a cent or 1 % (whichever is larger) above the confirmed one counts as the
confirmed price, because providers round differently (Lambda bills whole cents; Vast.ai folds storage into the
hourly price).
"""

from __future__ import annotations

from datetime import datetime

from ategnatos_mcp.errors import ConsentError
from ategnatos_mcp.providers.models import GpuOffer, PriceAgreement, Quote, Rental
from ategnatos_mcp.providers.rental.budget import budget_breaches
from ategnatos_mcp.settings import GpuSettings

__all__ = [
    "PRICE_SLACK_SHARE",
    "PRICE_SLACK_USD",
    "PriceRefusedError",
    "PriceVerdict",
    "agreement_for",
    "judge_price",
    "price_slack",
    "refusal",
]

PRICE_SLACK_USD = 0.005
PRICE_SLACK_SHARE = 0.01


def price_slack(confirmed_usd_per_hour: float) -> float:
    """How far above the confirmed hourly price a billed price may be and still count as it (rounding only)."""
    return max(PRICE_SLACK_USD, confirmed_usd_per_hour * PRICE_SLACK_SHARE)


def agreement_for(quote: Quote, offer: GpuOffer, usd_per_hour: float, worst_case_usd: float) -> PriceAgreement:
    """What the user said yes to for this rental (``usd_per_hour`` is the price the question showed)."""
    return PriceAgreement(
        usd_per_hour=usd_per_hour, worst_case_usd=worst_case_usd, hours=quote.hours, query=quote.query, offer=offer
    )


class PriceVerdict:
    """Whether a billed price can be kept, and if not, every reason in plain words."""

    def __init__(self, agreement: PriceAgreement, billed: float, reasons: list[str], capped: bool) -> None:
        self.agreement = agreement
        self.billed = billed
        self.reasons = reasons
        self.capped = capped

    @property
    def keep(self) -> bool:
        return not self.reasons

    @property
    def above_confirmed(self) -> bool:
        return self.billed > self.agreement.usd_per_hour + price_slack(self.agreement.usd_per_hour)

    def ledger_note(self) -> str:
        """The ledger line of a refused price: what the user did and did not confirm."""
        confirmed = self.agreement.usd_per_hour
        if self.above_confirmed:
            return f"NOT confirmed by the user: billed ${self.billed:.2f}/h, the user confirmed ${confirmed:.2f}/h"
        return f"above a budget cap at ${self.billed:.2f}/h (the user confirmed ${confirmed:.2f}/h)"


def judge_price(
    caps: GpuSettings, agreement: PriceAgreement, billed: float, *, others: list[Rental], now: datetime
) -> PriceVerdict:
    """Check the billed price against the user's yes and every cap (per hour, the rental's worst case, month).

    ``others`` are the other rentals on record (their running rate and this month's spend count).
    """
    confirmed = agreement.usd_per_hour
    above = billed > confirmed + price_slack(confirmed)
    # Within the rounding slack the billed price counts as the confirmed one, for the caps too.
    rate = billed if above else min(billed, confirmed)
    worst = round(agreement.worst_case_usd + (rate - confirmed) * agreement.hours, 2)
    reasons: list[str] = []
    if above:
        reasons.append(
            f"you confirmed ${confirmed:.2f} per hour: over {agreement.hours:g} hour(s) it could cost up to "
            f"${worst:.2f} instead of the ${agreement.worst_case_usd:.2f} you agreed to"
        )
    broken = budget_breaches(
        caps, usd_per_hour=rate, hours=agreement.hours, worst_case_usd=worst, rentals=others, now=now
    )
    reasons.extend(cap.message for cap in broken)
    return PriceVerdict(agreement, billed, reasons, capped=bool(broken))


class PriceRefusedError(ConsentError):
    """The provider bills more than the user confirmed, or more than a cap allows; the rental was not kept."""

    def __init__(
        self,
        message: str,
        *,
        hint: str,
        key: str,
        billed_usd_per_hour: float,
        confirmed_usd_per_hour: float,
        terminated: bool,
        cost_usd: float,
        quote_id: str | None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.key = key
        self.billed_usd_per_hour = billed_usd_per_hour
        self.confirmed_usd_per_hour = confirmed_usd_per_hour
        self.terminated = terminated
        self.cost_usd = cost_usd
        self.quote_id = quote_id


def refusal(
    verdict: PriceVerdict, *, label: str, gpu: str, key: str, terminated: bool, cost_usd: float, quote: Quote | None
) -> PriceRefusedError:
    """The plain-language answer for a refused price, with the next step."""
    sentences = [f"{label} bills this {gpu or 'GPU'} at ${verdict.billed:.2f} per hour."]
    sentences += [reason[0].upper() + reason[1:].rstrip(".") + "." for reason in verdict.reasons]
    why = " ".join(sentences)
    if terminated:
        done = f" It was terminated at once rather than kept; it cost about ${cost_usd:.2f}."
        if quote is not None:
            hint = (
                f"Tell the user the real price. Only if they accept ${verdict.billed:.2f}/h (worst case "
                f"${quote.worst_case_usd:.2f} for {quote.hours:g} hour(s)), call gpu_spinup with quote_id "
                f"'{quote.quote_id}' (confirm=true after their yes); otherwise look for another GPU with gpu_offers."
            )
        else:
            hint = (
                "That price breaks your budget caps: look for a cheaper GPU with gpu_offers, or raise the cap named "
                "above in ategnatos.toml first if the user wants to pay it."
            )
    else:
        done = (
            f" Ategnatos asked {label} to terminate it, but {label} has not confirmed yet, so it may still be "
            f"billing (about ${cost_usd:.2f} so far)."
        )
        hint = f"Call gpu_teardown with keys=['{key}'] now, and check the {label} console until it is gone."
    return PriceRefusedError(
        why + done,
        hint=hint,
        key=key,
        billed_usd_per_hour=verdict.billed,
        confirmed_usd_per_hour=verdict.agreement.usd_per_hour,
        terminated=terminated,
        cost_usd=cost_usd,
        quote_id=quote.quote_id if quote else None,
    )
