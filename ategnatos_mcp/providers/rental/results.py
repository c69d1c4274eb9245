"""What the gpu tools answer: small, plain models (the tool adds a one-paragraph summary)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from ategnatos_mcp.providers.models import Balance, ProviderName, Quote, Rental

__all__ = [
    "InstanceView",
    "InstancesResult",
    "OfferView",
    "OffersResult",
    "SpinupResult",
    "TeardownItem",
    "TeardownResult",
    "why_prices_differ",
]


class OfferView(BaseModel):
    """One offer the user can accept by its quote id."""

    quote_id: str
    provider: ProviderName
    gpu: str
    gpu_label: str
    gpu_count: int
    vram_gb: float
    usd_per_hour: float
    kind: str = Field(default="", description="What sets it apart from another offer of the same GPU.")
    hours: float
    worst_case_usd: float = Field(description="The most this rental can cost for the requested hours.")
    region: str | None = None
    reliability: float | None = None
    extra_costs: list[str] = Field(default_factory=list, description="Storage and bandwidth, where they bill.")
    expires_at: datetime
    within_budget: bool = True
    budget_note: str = Field(default="", description="Which budget cap this offer would break, if any.")

    @classmethod
    def of(cls, quote: Quote, budget_note: str = "") -> OfferView:
        offer = quote.offer
        extra: list[str] = []
        if offer.bandwidth_usd_per_gb:
            extra.append(f"downloads/uploads ${offer.bandwidth_usd_per_gb:.4f}/GB (worst case assumes a full disk)")
        if offer.storage_usd_per_gb_month and offer.storage_billed_when_stopped:
            extra.append(f"disk ${offer.storage_usd_per_gb_month:.2f}/GB/month, still billed while stopped")
        extra.extend(offer.notes)
        return cls(
            quote_id=quote.quote_id,
            provider=offer.provider,
            gpu=offer.gpu,
            gpu_label=offer.gpu_label,
            gpu_count=offer.gpu_count,
            vram_gb=offer.vram_gb,
            usd_per_hour=offer.usd_per_hour,
            kind=offer.kind,
            hours=quote.hours,
            worst_case_usd=quote.worst_case_usd,
            region=offer.region,
            reliability=offer.reliability,
            extra_costs=extra,
            expires_at=quote.expires_at,
            within_budget=not budget_note,
            budget_note=budget_note,
        )


class OffersResult(BaseModel):
    """Cheapest fitting offers first."""

    offers: list[OfferView]
    hours: float
    why_prices_differ: list[str] = Field(
        default_factory=list, description="For a GPU listed at several prices: what sets the offers apart."
    )
    not_searched: list[str] = Field(default_factory=list, description="Providers skipped (no key) or that failed.")
    max_usd_per_hour: float
    month_spent_usd: float
    monthly_cap_usd: float


def why_prices_differ(quotes: list[Quote]) -> list[str]:
    """For a GPU listed at several prices, what sets each offer apart (the provider's own note), once each."""
    prices: dict[tuple[str, int], set[float]] = {}
    for quote in quotes:
        prices.setdefault((quote.offer.gpu, quote.offer.gpu_count), set()).add(round(quote.offer.usd_per_hour, 2))
    notes: list[str] = []
    for quote in quotes:
        offer = quote.offer
        if len(prices[(offer.gpu, offer.gpu_count)]) > 1 and offer.notes and offer.notes[0] not in notes:
            notes.append(offer.notes[0])
    return notes


class InstanceView(BaseModel):
    """One instance with what it costs."""

    key: str = Field(description="provider:instance_id — what gpu_teardown takes.")
    provider: ProviderName
    instance_id: str
    name: str
    gpu: str
    status: str
    ready: bool
    age_hours: float
    usd_per_hour: float
    cost_so_far_usd: float
    ssh: str | None = Field(default=None, description="user@host:port once SSH answers.")
    orphan: bool = False
    over_time_limit: bool = False
    note: str = ""

    @classmethod
    def of(cls, rental: Rental, now: datetime, note: str = "") -> InstanceView:
        end = rental.ended_at or now
        age = max((end - rental.started_at).total_seconds(), 0) / 3600
        ssh = f"{rental.ssh_user}@{rental.ssh_host}:{rental.ssh_port}" if rental.ssh_host and rental.ssh_port else None
        return cls(
            key=rental.key,
            provider=rental.provider,
            instance_id=rental.instance_id,
            name=rental.name,
            gpu=rental.gpu,
            status=rental.status.value,
            ready=rental.ready,
            age_hours=round(age, 2),
            usd_per_hour=rental.usd_per_hour,
            cost_so_far_usd=round(rental.cost_so_far(now), 2),
            ssh=ssh,
            orphan=rental.orphan,
            over_time_limit=rental.max_hours is not None and rental.ended_at is None and age > rental.max_hours,
            note=note,
        )


class SpinupResult(BaseModel):
    """A rental that started; ``ready`` once SSH answers."""

    instance: InstanceView
    quote_id: str
    worst_case_usd: float
    tried: list[str] = Field(default_factory=list, description="Offers that vanished or were full before this one.")
    watchdog: str = Field(default="", description="Whether the idle/time-limit watchdog is on the instance.")
    image: str | None = Field(default=None, description="The container image started (RunPod, Vast.ai).")


class InstancesResult(BaseModel):
    """Every instance we know of or found at the providers, with the running cost."""

    instances: list[InstanceView]
    burn_usd_per_hour: float
    month_spent_usd: float
    monthly_cap_usd: float
    orphans: int = 0
    balances: list[Balance] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class TeardownItem(BaseModel):
    """What happened to one instance."""

    key: str
    outcome: Literal["terminated", "stopped", "already gone", "failed", "unconfirmed"] = Field(
        description="unconfirmed: the provider did not confirm in time; it may still be billing."
    )
    final_usd: float | None = None
    still_billing: str = ""
    message: str = ""


class TeardownResult(BaseModel):
    """Teardown outcome per instance."""

    items: list[TeardownItem]
    total_final_usd: float
    unconfirmed: list[str] = Field(default_factory=list, description="Keys whose teardown is not confirmed yet.")
    next_step: str = Field(default="", description="The exact call that retries what is not confirmed.")
