"""MCP adapter for GPU clouds: gpu_offers, gpu_spinup, gpu_instances, gpu_teardown, remote_deploy."""

from __future__ import annotations

import logging
from typing import Annotated, Literal, NamedTuple

from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult, MCPServer, Resolve
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from ategnatos_mcp.errors import AtegnatosError
from ategnatos_mcp.providers import (
    MAX_HOURS,
    MAX_USD_PER_HOUR,
    MAX_VRAM_GB,
    MIN_HOURS,
    Consent,
    InstancesResult,
    InstanceView,
    OfferQuery,
    OffersResult,
    SpinupResult,
    TeardownResult,
)
from ategnatos_mcp.tools._common import NoDialog, app_of, client_has_dialog, guard, progress_reporter, respond
from ategnatos_mcp.tools._definitions import add_tool
from ategnatos_mcp.wiring import Wiring

__all__ = ["register"]

logger = logging.getLogger("ategnatos_mcp.tools.gpu")

SERVICE_KEY = "gpu"


class RentalConfirmation(BaseModel):
    """What the client's confirmation dialog asks."""

    rent: bool = Field(description="Yes, rent this GPU at this price.")


async def _ask_to_rent(ctx: Context[Wiring], quote_id: str, image: str = "") -> Elicit[RentalConfirmation] | NoDialog:
    """Ask in the client's own dialog, with the worst-case cost in plain words (before the tool body runs).

    The SDK sends this mid-call on older protocols and as an input-required round trip on 2026-07-28+.
    """
    if not client_has_dialog(ctx):
        return NoDialog()
    try:
        question = await (await app_of(ctx).gpu_service()).consent_question(quote_id, image=image or None)
    except AtegnatosError:
        return NoDialog()  # the body repeats the same check and reports the refusal in plain words
    return Elicit(question, RentalConfirmation)


def _consent(ctx: Context[Wiring], answer: ElicitationResult[RentalConfirmation], confirm: bool) -> Consent:
    if not client_has_dialog(ctx):
        return Consent(confirmed=confirm)
    # With a dialog only the user's answer there counts: confirm=true or "always allow" never does.
    approved = False
    # The resolver may have answered NoDialog (no form in this client): only a real form answer counts.
    data: object = answer.data if isinstance(answer, AcceptedElicitation) else None
    if isinstance(data, RentalConfirmation):
        approved = data.rent is True
    return Consent(dialog=True, approved=approved)


@guard
async def gpu_offers(
    ctx: Context[Wiring],
    gpu: Annotated[
        str | None, Field(description="GPU wish, e.g. '4090', 'A100', 'H100'. Empty = any.", max_length=100)
    ] = None,
    min_vram_gb: Annotated[
        float | None,
        Field(description="At least this much memory per GPU (GB), e.g. 24; at most 1024.", ge=0, le=MAX_VRAM_GB),
    ] = None,
    gpu_count: Annotated[int, Field(description="GPUs in one machine.", ge=1, le=8)] = 1,
    max_usd_per_hour: Annotated[
        float | None,
        Field(description="Only offers at or below this price (USD per hour).", gt=0, le=MAX_USD_PER_HOUR),
    ] = None,
    min_reliability: Annotated[
        float | None, Field(description="Marketplace host reliability 0-1, e.g. 0.98.", ge=0, le=1)
    ] = None,
    region: Annotated[
        str | None, Field(description="Part of a region or country name, e.g. 'US', 'EU'.", max_length=100)
    ] = None,
    hours: Annotated[
        float,
        Field(
            description="Hours the artist plans to rent (0.01-8760); the worst case covers them.",
            ge=MIN_HOURS,
            le=MAX_HOURS,
        ),
    ] = 1.0,
    disk_gb: Annotated[int, Field(description="Disk for models and outputs (GB).", ge=10, le=2000)] = 60,
    limit: Annotated[int, Field(description="How many offers to return.", ge=1, le=20)] = 6,
) -> Annotated[CallToolResult, OffersResult]:
    """The cheapest fitting GPU offers across the clouds whose keys are set (and this computer), each with a
    quote id and the worst-case cost for the hours. Renting needs gpu_spinup and the artist's explicit yes."""
    query = OfferQuery(
        gpu=gpu or None,
        min_vram_gb=min_vram_gb,
        gpu_count=gpu_count,
        max_usd_per_hour=max_usd_per_hour,
        min_reliability=min_reliability,
        region=region or None,
        hours=hours,
        disk_gb=disk_gb,
    )
    result = await (await app_of(ctx).gpu_service()).find_offers(query, limit=limit)
    return respond(result, **_offers_summary(result)._asdict())


@guard
async def gpu_spinup(
    ctx: Context[Wiring],
    quote_id: Annotated[str, Field(description="The quote id from gpu_offers the user agreed to.")],
    confirm: Annotated[
        bool,
        Field(description="Clients without a dialog: true ONLY after the artist said yes to this price."),
    ] = False,
    name: Annotated[
        str, Field(description="A short label for the instance, e.g. 'lora-training'.", max_length=40)
    ] = "",
    wait_seconds: Annotated[float, Field(description="How long to wait here for SSH to answer.", ge=0, le=600)] = 60,
    image: Annotated[
        str,
        Field(
            description="RunPod/Vast only: container image name[:tag] (default: a runpod/pytorch CUDA image); it must run Python 3, git and (RunPod) SSH from PUBLIC_KEY.",
            max_length=255,
        ),
    ] = "",
    answer: Annotated[ElicitationResult[RentalConfirmation], Resolve(_ask_to_rent)] = None,  # type: ignore[assignment]
) -> Annotated[CallToolResult, SpinupResult]:
    """Rent the GPU of a quote after the artist's yes: the client's dialog where it has one, else the quote id
    plus confirm=true. Expired quotes, price rises and budget caps refuse. Waits for SSH (gpu_instances follows)."""
    app = app_of(ctx)
    service = await app.gpu_service()
    result = await service.spinup(quote_id, _consent(ctx, answer, confirm), label=name, image=image or None)
    rental = await service.wait_ready(result.instance.key, wait_seconds, progress_reporter(ctx))
    watchdog = "The watchdog is installed once it is ready."
    if rental.ready:
        watchdog = await app.rental_ready(rental)
    elif rental.ended_at is None:
        app.watch_boot(rental.key)
    result = result.model_copy(update={"instance": InstanceView.of(rental, app.clock()), "watchdog": watchdog})
    return respond(result, **_spinup_summary(result)._asdict())


@guard
async def gpu_instances(
    ctx: Context[Wiring],
    include_ended: Annotated[bool, Field(description="Also list instances already torn down.")] = False,
    balances: Annotated[bool, Field(description="Also read each provider's remaining credit.")] = False,
) -> Annotated[CallToolResult, InstancesResult]:
    """Everything being paid for: every instance with status, age, cost so far and SSH, checked against
    the providers' own lists, so forgotten instances (orphans) show up too."""
    app = app_of(ctx)
    result = await (await app.gpu_service()).instances(include_ended=include_ended, balances=balances)
    if app.deployer is not None:  # only instances we already hold a session to: no new connections here
        live = {view.key for view in result.instances if view.status == "running"}
        silent = await app.deployer.heartbeat(live)
        result.notes.extend(f"{key} did not answer the heartbeat over SSH." for key in silent)
    return respond(result, **_instances_summary(result)._asdict())


@guard
async def gpu_teardown(
    ctx: Context[Wiring],
    keys: Annotated[
        list[Annotated[str, Field(max_length=200)]],
        Field(description="Instance keys from gpu_instances, e.g. 'runpod:abc123'.", max_length=64),
    ] = [],  # noqa: B006
    all_instances: Annotated[bool, Field(description="Tear down every instance (including orphans).")] = False,
    mode: Annotated[
        Literal["terminate", "stop"],
        Field(description="terminate (ends all billing) or stop (the disk keeps billing)."),
    ] = "terminate",
) -> Annotated[CallToolResult, TeardownResult]:
    """Terminate (or stop) instances and record their final cost; retried until the provider confirms,
    within a time limit per provider; what is unconfirmed is named with the call to retry. Stop keeps the disk,
    which keeps billing; Lambda cannot stop."""
    service = await app_of(ctx).gpu_service()
    result = await service.teardown(
        list(keys), everything=all_instances, stop=mode == "stop", progress=progress_reporter(ctx)
    )
    return respond(result, **_teardown_summary(result)._asdict())


def register(server: MCPServer[Wiring], app: Wiring) -> None:
    """Register the gpu tools and the grimoire/gpu.md view of the spend ledger."""
    add_tool(server, gpu_offers, name="gpu_offers", title="Find and price GPU offers", read_only=True, open_world=True)
    add_tool(server, gpu_spinup, name="gpu_spinup", title="Rent a GPU (after the artist's yes)", open_world=True)
    add_tool(
        server, gpu_instances, name="gpu_instances", title="Rented GPUs and their cost", read_only=True, open_world=True
    )
    add_tool(
        server,
        gpu_teardown,
        name="gpu_teardown",
        title="Stop paying for a GPU",
        destructive=True,
        idempotent=True,
        open_world=True,
    )


# Summaries -------------------------------------------------------------------------------------------
class _Said(NamedTuple):
    """An answer's words: the summary, what the next call needs written out, and the next step."""

    summary: str
    details: str = ""
    next_step: str = ""


def _offers_summary(result: OffersResult) -> _Said:
    if not result.offers:
        skipped = f" Not searched: {', '.join(result.not_searched)}." if result.not_searched else ""
        return _Said(
            f"No GPU offers fit right now.{skipped}",
            next_step="Try a different GPU, more VRAM flexibility, or a higher price cap, then call gpu_offers again.",
        )
    best = result.offers[0]
    summary = (
        f"{len(result.offers)} offer(s) fit for {result.hours:g} h; the cheapest is {best.gpu_label} on "
        f"{best.provider}{f' ({best.kind})' if best.kind else ''} at ${best.usd_per_hour:.2f}/h, at most "
        f"${best.worst_case_usd:.2f} in all (worst case = the most it can cost)."
    )
    lines = [
        f"- {offer.gpu_label} ×{offer.gpu_count} ({offer.vram_gb:g} GB) on {offer.provider}"
        + (f", {offer.kind}" if offer.kind else "")
        + f": ${offer.usd_per_hour:.2f}/h, worst case ${offer.worst_case_usd:.2f} — quote {offer.quote_id}"
        + ("" if offer.within_budget else f" (over budget: {offer.budget_note})")
        for offer in result.offers
    ]
    if result.why_prices_differ:
        lines.append("Why the same GPU has different prices: " + " ".join(result.why_prices_differ))
    if result.not_searched:
        lines.append(f"Not searched: {', '.join(result.not_searched)}.")
    return _Said(
        summary,
        "\n".join(lines),
        "Show the artist these offers with their worst-case cost; only after their yes, call gpu_spinup with the "
        "chosen offer's quote_id (quotes expire).",
    )


def _spinup_summary(result: SpinupResult) -> _Said:
    inst = result.instance
    if inst.ready:
        state = f"ready, SSH {inst.ssh}"
    elif inst.status == "running":
        state = "the machine is up but does not answer SSH yet (still setting up)"
    else:
        phase = {"pending": "waiting for a machine", "starting": "the machine is booting"}.get(inst.status, inst.status)
        state = f"still starting ({phase})"
    summary = (
        f"Rented {inst.gpu} on {inst.provider} ({inst.key}) at ${inst.usd_per_hour:.2f}/h — {state}. "
        f"It keeps billing until it is torn down; worst case for the quote was ${result.worst_case_usd:.2f}. "
        + result.watchdog
    )
    teardown = f"gpu_teardown with keys=['{inst.key}']"
    if inst.ready:
        return _Said(summary, next_step=f"Use it (e.g. remote_deploy); when the work is done, call {teardown}.")
    return _Said(
        summary, next_step=f"Check gpu_instances in a minute until it shows SSH; to stop paying, call {teardown}."
    )


def _instances_summary(result: InstancesResult) -> _Said:
    if not result.instances:
        return _Said("Nothing is running on your GPU accounts." + "".join(f"\n{note}" for note in result.notes))
    running = [inst for inst in result.instances if inst.status != "terminated"]
    summary = (
        f"{len(result.instances)} instance(s); running cost now ${result.burn_usd_per_hour:.2f}/h; this month "
        f"${result.month_spent_usd:.2f} of ${result.monthly_cap_usd:.2f}."
    )
    lines: list[str] = []
    for inst in result.instances:
        flag = " ORPHAN (not in records — offer teardown)" if inst.orphan else ""
        late = " over its time limit" if inst.over_time_limit else ""
        lines.append(
            f"- {inst.key} {inst.gpu} {inst.status}{late}, {inst.age_hours:.1f} h, ${inst.cost_so_far_usd:.2f} so far{flag}"
        )
    lines.extend(result.notes)
    orphans = [inst.key for inst in result.instances if inst.orphan]
    if orphans:
        step = f"Ask the artist whether to end the orphan(s) nobody recorded: gpu_teardown with keys={orphans}."
    elif running:
        step = f"Tear down what is no longer needed: gpu_teardown with keys={[inst.key for inst in running]}."
    else:
        step = ""
    return _Said(summary, "\n".join(lines), step)


def _teardown_summary(result: TeardownResult) -> _Said:
    if not result.items:
        return _Said("There was nothing to tear down: no instances are running or recorded. Nothing was changed.")
    lines = [
        f"{item.key}: {item.outcome}"
        + (f", final ${item.final_usd:.2f}" if item.final_usd is not None else "")
        + (f". {item.still_billing}" if item.still_billing else "")
        + (f" {item.message}" if item.message else "")
        for item in result.items
    ]
    lines.append(f"Final cost of these: ${result.total_final_usd:.2f}.")
    return _Said("\n".join(lines))  # the result's own next_step (a retry of what is unconfirmed) is the next step
