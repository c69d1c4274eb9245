"""A rental the provider bills above the confirmed price, or above a cap, is never kept (issue 16, High 1).

Through a real MCP client: gpu_offers, then gpu_spinup with the user's yes, against the recorded fake clouds made to
bill more than their catalogue said: in the create answer (RunPod's pod ``cost``; Vast.ai and Lambda once the new
instance is read back) or only on the first status read.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from ategnatos_mcp.providers import GpuDocument, InstanceStatus
from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import GpuSettings, Settings
from ategnatos_mcp.wiring import Wiring
from tests.support.fake_clouds import (
    FakeClock,
    FakeCloud,
    FakeDeployer,
    FakeLambda,
    FakeRunPod,
    FakeVast,
    make_service,
)

CLOUDS = {"runpod": FakeRunPod, "vast": FakeVast, "lambda": FakeLambda}


def _live(cloud: FakeCloud) -> list[str]:
    if isinstance(cloud, FakeRunPod):
        return list(cloud.pods)
    assert isinstance(cloud, FakeVast | FakeLambda)
    return [str(key) for key in cloud.instances]


def _text(result: object) -> str:
    return result.content[0].text  # type: ignore[attr-defined,no-any-return]


async def _cheapest(client: Client) -> dict[str, object]:
    offers = await client.call_tool("gpu_offers", {"hours": 2})
    assert not offers.is_error, offers.content
    return offers.structured_content["offers"][0]  # type: ignore[index,no-any-return]


def _doc(home: Path) -> GpuDocument:
    return GpuDocument.model_validate_json((home / "grimoire" / ".state" / "gpu.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("where", ["create answer", "first status read"])
@pytest.mark.parametrize("provider", list(CLOUDS))
async def test_a_rental_billed_above_the_confirmed_price_is_terminated_and_requoted(
    settings: Settings, app: Wiring, home: Path, provider: str, where: str
) -> None:
    cloud = CLOUDS[provider]()
    app.gpu = make_service(app.store, [cloud], FakeClock())
    app.deployer = FakeDeployer()
    async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
        offer = await _cheapest(client)
        confirmed = float(offer["usd_per_hour"])  # type: ignore[arg-type]
        billed = round(confirmed + 0.25, 2)
        cloud.charge = billed
        if where == "first status read":
            if isinstance(cloud, FakeRunPod):
                cloud.cost_in_create = False
            else:
                cloud.hidden_reads = 1  # the read-back right after the create does not list it yet
        refused = await client.call_tool("gpu_spinup", {"quote_id": offer["quote_id"], "confirm": True})

        assert refused.is_error
        text = _text(refused)
        assert f"at ${billed:.2f} per hour" in text and f"You confirmed ${confirmed:.2f} per hour" in text
        assert "terminated at once" in text and "it cost about $0.00" in text
        # Nothing stays rented at the provider, and the records say why, in the ledger and its markdown view.
        assert _live(cloud) == []
        doc = _doc(home)
        (rental,) = doc.rentals.values()
        assert rental.status is InstanceStatus.TERMINATED and rental.final_usd == 0.0
        assert rental.usd_per_hour == pytest.approx(billed)
        events = [(e.event, e.note) for e in doc.ledger]
        assert events[0] == ("rented", f"confirmed by the user at ${confirmed:.2f}/h")
        # The rented line shows what it bills as soon as the provider said so (else what the user confirmed).
        assert doc.ledger[0].usd_per_hour == pytest.approx(billed if where == "create answer" else confirmed)
        assert doc.ledger[1].usd_per_hour == pytest.approx(billed)
        assert events[1][0] == "price-refused"
        assert (
            f"NOT confirmed by the user: billed ${billed:.2f}/h, the user confirmed ${confirmed:.2f}/h" in events[1][1]
        )
        assert "NOT confirmed by the user" in (home / "grimoire" / "gpu.md").read_text(encoding="utf-8")

        # The next step names a quote at the real price; with the user's yes to it, the rental is kept.
        new_quote = text.split("quote_id '")[1].split("'")[0]
        assert new_quote != offer["quote_id"] and new_quote in doc.quotes
        assert doc.quotes[new_quote].offer.usd_per_hour == pytest.approx(billed)
        cloud.hidden_reads = 0
        kept = await client.call_tool("gpu_spinup", {"quote_id": new_quote, "confirm": True})
    assert not kept.is_error, kept.content
    assert kept.structured_content["instance"]["usd_per_hour"] == pytest.approx(billed)  # type: ignore[index]
    assert len(_live(cloud)) == 1


async def test_the_fuzzed_case_confirmed_034_billed_059_under_a_050_cap(
    settings: Settings, app: Wiring, home: Path
) -> None:
    """The issue's own numbers: cap $0.50/h, RunPod community quote $0.34/h, the pod bills $0.59/h."""
    runpod = FakeRunPod()
    runpod.charge = 0.59
    app.gpu = make_service(app.store, [runpod], FakeClock(), caps=GpuSettings(max_usd_per_hour=0.5))
    app.deployer = FakeDeployer()
    async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
        offers = (await client.call_tool("gpu_offers", {"hours": 2})).structured_content["offers"]  # type: ignore[index]
        offer = offers[0]
        assert offer["usd_per_hour"] == 0.34
        refused = await client.call_tool("gpu_spinup", {"quote_id": offer["quote_id"], "confirm": True})
    assert refused.is_error
    text = _text(refused)
    assert "You confirmed $0.34 per hour" in text and "above your cap of $0.50/h" in text
    # Above a cap, no quote at that price is offered: the cap would refuse it anyway.
    assert "quote_id '" not in text and "max_usd_per_hour" not in text and "raise the cap" in text
    assert runpod.pods == {}
    doc = _doc(home)
    assert [e.event for e in doc.ledger] == ["rented", "price-refused"]
    assert set(doc.quotes) == {o["quote_id"] for o in offers}  # no new quote was made


@pytest.mark.parametrize(("extra", "kept"), [(0.004, True), (-0.05, True), (0.006, False)])
async def test_rounding_up_to_half_a_cent_is_kept_and_a_cheaper_bill_too(
    client: Client, app: Wiring, home: Path, extra: float, kept: bool
) -> None:
    runpod = FakeRunPod()
    runpod.charge = round(0.34 + extra, 4)
    app.gpu = make_service(app.store, [runpod], FakeClock())
    app.deployer = FakeDeployer()
    offer = await _cheapest(client)
    result = await client.call_tool("gpu_spinup", {"quote_id": offer["quote_id"], "confirm": True})
    assert result.is_error is not kept
    assert len(runpod.pods) == (1 if kept else 0)
    (rental,) = _doc(home).rentals.values()
    assert rental.usd_per_hour == pytest.approx(runpod.charge)  # the ledger holds what is really billed
    assert rental.unverified_price is None
