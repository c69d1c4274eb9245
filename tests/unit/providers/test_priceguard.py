"""The billed-price check on its own: the rounding slack, every cap, a race between two yeses, a lost create."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ategnatos_mcp.errors import UpstreamError
from ategnatos_mcp.providers import GPU_DOCUMENT, Consent, GpuDocument, GpuOffer, OfferQuery, Rental
from ategnatos_mcp.providers.rental.priceguard import PriceAgreement, PriceRefusedError, judge_price, price_slack
from ategnatos_mcp.settings import GpuSettings
from ategnatos_mcp.state import GrimoireStore
from tests.support.fake_clouds import FakeClock, FakeRunPod, make_service

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
OFFER = GpuOffer(
    provider="runpod", offer_ref="x|COMMUNITY", gpu="RTX4090", gpu_label="RTX 4090", vram_gb=24, usd_per_hour=0.34
)


def _agreement(usd_per_hour: float = 0.34, hours: float = 2) -> PriceAgreement:
    return PriceAgreement(
        usd_per_hour=usd_per_hour,
        worst_case_usd=round(usd_per_hour * hours, 2),
        hours=hours,
        query=OfferQuery(),
        offer=OFFER,
    )


def test_the_slack_is_half_a_cent_or_one_percent_whichever_is_larger() -> None:
    assert price_slack(0.34) == 0.005
    assert price_slack(20.0) == pytest.approx(0.2)
    caps = GpuSettings(max_usd_per_hour=100, monthly_usd_cap=1000)
    assert judge_price(caps, _agreement(), 0.345, others=[], now=NOW).keep
    assert not judge_price(caps, _agreement(), 0.3451, others=[], now=NOW).keep
    assert judge_price(caps, _agreement(20.0, 1), 20.2, others=[], now=NOW).keep
    assert not judge_price(caps, _agreement(20.0, 1), 20.21, others=[], now=NOW).keep


def test_every_broken_cap_is_named_with_the_real_lifetime_cost() -> None:
    spent = Rental(
        provider="vast",
        instance_id="1",
        usd_per_hour=1.0,
        started_at=NOW.replace(hour=0),
        ended_at=NOW.replace(hour=9),
        final_usd=9.5,
    )
    running = Rental(provider="lambda", instance_id="2", usd_per_hour=0.3, started_at=NOW)
    caps = GpuSettings(max_usd_per_hour=0.8, monthly_usd_cap=10)
    verdict = judge_price(caps, _agreement(), 0.59, others=[spent, running], now=NOW)
    assert not verdict.keep and verdict.capped and verdict.above_confirmed
    assert verdict.reasons == [
        "you confirmed $0.34 per hour: over 2 hour(s) it could cost up to $1.18 instead of the $0.68 you agreed to",
        "This GPU costs $0.59/h (you already pay $0.30/h for running instances), above your cap of $0.80/h.",
        "This month you have spent $9.50; this rental could add up to $1.18, above your monthly cap of $10.00.",
    ]
    assert verdict.ledger_note() == "NOT confirmed by the user: billed $0.59/h, the user confirmed $0.34/h"


async def test_a_second_yes_racing_past_the_hourly_cap_is_terminated(tmp_path: Path) -> None:
    """Each quote fits the $0.60/h cap alone. While the user reads the second dialog, the first rental starts
    (another server on the same grimoire); the second one, checked before the answer, breaks the cap."""
    store, clock, runpod = GrimoireStore(tmp_path / "grimoire"), FakeClock(), FakeRunPod()
    caps = GpuSettings(max_usd_per_hour=0.6)
    here, other_server = (
        make_service(store, [runpod], clock, caps=caps),
        make_service(store, [runpod], clock, caps=caps),
    )
    first = (await other_server.find_offers(OfferQuery(gpu="4090"))).offers[0].quote_id
    second = (await here.find_offers(OfferQuery(gpu="4090"))).offers[0].quote_id

    async def yes_while_the_other_server_rents(question: str) -> bool:
        await other_server.spinup(first, Consent(confirmed=True))
        return True

    with pytest.raises(PriceRefusedError) as refused:
        await here.spinup(second, Consent(ask=yes_while_the_other_server_rents))
    assert "above your cap of $0.60/h" in refused.value.message and refused.value.terminated
    assert refused.value.quote_id is None  # a new quote would break the cap too
    assert len(runpod.pods) == 1
    doc = await store.read(GPU_DOCUMENT, GpuDocument)
    assert [e.event for e in doc.ledger] == ["rented", "rented", "price-refused"]
    assert doc.ledger[-1].note.startswith("above a budget cap at $0.34/h")


async def test_a_lost_create_adopted_later_has_its_price_checked(tmp_path: Path) -> None:
    store, clock, runpod = GrimoireStore(tmp_path / "grimoire"), FakeClock(), FakeRunPod()
    runpod.create_outcomes.append("lost")  # the pod is created, the answer is a 502...
    runpod.hidden_lists = 1  # ...and the list does not show it yet, so nothing is recorded
    runpod.charge = 0.59
    service = make_service(store, [runpod], clock)
    quote = (await service.find_offers(OfferQuery(gpu="4090"))).offers[0].quote_id
    with pytest.raises(UpstreamError, match="did not try again"):
        await service.spinup(quote, Consent(confirmed=True))
    assert len(runpod.pods) == 1
    listing = await service.instances()
    assert any("You confirmed $0.34 per hour" in n and "terminated at once" in n for n in listing.notes)
    assert runpod.pods == {}
    doc = await store.read(GPU_DOCUMENT, GpuDocument)
    assert [e.event for e in doc.ledger] == ["adopted", "price-refused"]


async def test_a_refused_price_the_provider_will_not_terminate_says_it_may_still_bill(tmp_path: Path) -> None:
    store, clock, runpod = GrimoireStore(tmp_path / "grimoire"), FakeClock(), FakeRunPod()
    runpod.charge = 0.59
    forbidden = {"status": 403, "json": {"title": "Forbidden", "status": 403, "detail": "not allowed"}}
    runpod.delete_outcomes.extend([forbidden] * 3)
    service = make_service(store, [runpod], clock)
    quote = (await service.find_offers(OfferQuery(gpu="4090"))).offers[0].quote_id
    with pytest.raises(PriceRefusedError) as refused:
        await service.spinup(quote, Consent(confirmed=True))
    assert not refused.value.terminated and "may still be billing" in refused.value.message
    assert f"gpu_teardown with keys=['{refused.value.key}']" in refused.value.hint
    doc = await store.read(GPU_DOCUMENT, GpuDocument)
    rental = doc.rentals[refused.value.key]
    assert rental.ended_at is None and rental.usd_per_hour == 0.59  # still shown as billing, at its real price
    assert doc.ledger[-1].event == "price-refused" and "not confirmed: may still bill" in doc.ledger[-1].note


def test_gpu_json_written_before_the_price_check_still_reads() -> None:
    old = {
        "schema_version": 1,
        "revision": 3,
        "rentals": {
            "runpod:a": {
                "provider": "runpod",
                "instance_id": "a",
                "usd_per_hour": 0.34,
                "status": "running",
                "started_at": "2026-11-29T10:00:00Z",
            }
        },
        "pending": {
            "t": {"tag": "t", "provider": "runpod", "name": "n", "quote_id": "q", "sent_at": "2026-11-29T10:00:00Z"}
        },
    }
    doc = GpuDocument.model_validate_json(json.dumps(old))
    assert doc.rentals["runpod:a"].unverified_price is None and doc.pending["t"].agreement is None
