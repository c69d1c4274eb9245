"""Budget caps from settings, enforced before any rental: burn rate per hour, hours per instance, monthly total."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.providers.models import Rental
from ategnatos_mcp.settings import GpuSettings

__all__ = ["BudgetExceededError", "budget_breaches", "enforce_budget", "month_spend"]


class BudgetExceededError(InvalidRequestError):
    """A rental would break a budget cap from the settings. Nothing was rented."""

    def __init__(self, message: str, *, cap: str, hint: str) -> None:
        super().__init__(message, hint=hint)
        self.cap = cap


def month_spend(rentals: Iterable[Rental], now: datetime) -> float:
    """What rentals started this calendar month (UTC) cost so far, across providers."""
    total = 0.0
    for rental in rentals:
        if (rental.started_at.year, rental.started_at.month) == (now.year, now.month):
            total += rental.cost_so_far(now)
    return round(total, 2)


def enforce_budget(
    caps: GpuSettings, *, usd_per_hour: float, hours: float, worst_case_usd: float, rentals: list[Rental], now: datetime
) -> None:
    """Refuse (raise) when the rental breaks a cap.

    Raises:
        BudgetExceededError: which cap, by how much, and how to change it (the first one broken).
    """
    broken = budget_breaches(
        caps, usd_per_hour=usd_per_hour, hours=hours, worst_case_usd=worst_case_usd, rentals=rentals, now=now
    )
    if broken:
        raise broken[0]


def budget_breaches(
    caps: GpuSettings, *, usd_per_hour: float, hours: float, worst_case_usd: float, rentals: list[Rental], now: datetime
) -> list[BudgetExceededError]:
    """Every cap the rental would break (burn rate per hour, hours per instance, monthly total), in that order."""
    broken: list[BudgetExceededError] = []
    running_rate = sum(r.usd_per_hour for r in rentals if r.ended_at is None and r.status.billing)
    if running_rate + usd_per_hour > caps.max_usd_per_hour + 1e-9:
        already = f" (you already pay ${running_rate:.2f}/h for running instances)" if running_rate else ""
        broken.append(
            BudgetExceededError(
                f"This GPU costs ${usd_per_hour:.2f}/h{already}, above your cap of ${caps.max_usd_per_hour:.2f}/h.",
                cap="max_usd_per_hour",
                hint="Pick a cheaper offer, tear down what you no longer use, or raise [gpu] max_usd_per_hour in "
                "ategnatos.toml.",
            )
        )
    if hours > caps.max_hours_per_instance + 1e-9:
        broken.append(
            BudgetExceededError(
                f"You asked for {hours:g} hours; one instance may run at most {caps.max_hours_per_instance:g} hours.",
                cap="max_hours_per_instance",
                hint="Ask for fewer hours, or raise [gpu] max_hours_per_instance in ategnatos.toml.",
            )
        )
    spent = month_spend(rentals, now)
    if spent + worst_case_usd > caps.monthly_usd_cap + 1e-9:
        broken.append(
            BudgetExceededError(
                f"This month you have spent ${spent:.2f}; this rental could add up to ${worst_case_usd:.2f}, "
                f"above your monthly cap of ${caps.monthly_usd_cap:.2f}.",
                cap="monthly_usd_cap",
                hint="Rent for fewer hours or a cheaper GPU, or raise [gpu] monthly_usd_cap in ategnatos.toml.",
            )
        )
    return broken
