"""The gpu tools answer in plain words: absurd numbers (issue 16, point 8), two prices for one GPU and a rental
that is up but not reachable yet (issue 15, "Small")."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from ategnatos_mcp.wiring import Wiring
from tests.support.fake_clouds import FakeClock, FakeDeployer, FakeRunPod, FakeVast, Probe, make_service


@pytest.fixture
def runpod(app: Wiring) -> FakeRunPod:
    cloud = FakeRunPod()
    app.gpu = make_service(app.store, [cloud, FakeVast()], FakeClock(), probe=Probe(answer=False))
    app.deployer = FakeDeployer()
    return cloud


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"min_vram_gb": 1e308}, "min_vram_gb"),
        ({"hours": 1e308}, "hours"),
        ({"max_usd_per_hour": 1e308}, "max_usd_per_hour"),
        ({"hours": 1e-300}, "hours"),
        ({"gpu": "4090" * 1000}, "gpu"),
    ],
)
async def test_absurd_numbers_are_refused_in_plain_words(
    client: Client, runpod: FakeRunPod, arguments: dict[str, Any], named: str
) -> None:
    result = await client.call_tool("gpu_offers", arguments)
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "The arguments of gpu_offers need fixing" in text and f"`{named}`" in text and "Next step:" in text
    assert runpod.calls("GET", "/catalog/gpus") == []  # refused before any cloud was asked


async def test_the_largest_sensible_numbers_still_search(client: Client, runpod: FakeRunPod) -> None:
    result = await client.call_tool("gpu_offers", {"min_vram_gb": 1024, "hours": 8760, "max_usd_per_hour": 1000})
    assert not result.is_error, result.content
    assert result.structured_content["offers"] == []  # type: ignore[index]
    assert "No GPU offers fit right now" in result.content[0].text  # type: ignore[union-attr]


async def test_two_prices_of_one_gpu_say_what_sets_them_apart(client: Client, runpod: FakeRunPod) -> None:
    result = await client.call_tool("gpu_offers", {"gpu": "4090"})
    assert not result.is_error, result.content
    text = result.content[0].text  # type: ignore[union-attr]
    assert "on runpod, community cloud: $0.34/h" in text and "on runpod, secure cloud: $0.59/h" in text
    assert "on vast, marketplace host in Oregon, US: $0.33/h" in text
    data = result.structured_content
    assert data is not None
    assert [o["kind"] for o in data["offers"]] == [
        "marketplace host in Oregon, US",
        "community cloud",
        "secure cloud",
    ]
    why = data["why_prices_differ"]
    assert any(w.startswith("Community cloud: third-party hosts, cheaper") for w in why)
    assert any(w.startswith("Secure cloud: RunPod's own data centres") for w in why)
    assert "Why the same GPU has different prices: " + " ".join(why) in text


@pytest.mark.parametrize(
    ("boot", "words"),
    [
        (["RUNNING"], "the machine is up but does not answer SSH yet (still setting up)"),
        (["PROVISIONING"], "still starting (waiting for a machine)"),
        (["STARTING"], "still starting (the machine is booting)"),
    ],
)
async def test_a_rental_not_ready_yet_says_where_it_is_in_words(
    client: Client, runpod: FakeRunPod, boot: list[str], words: str
) -> None:
    runpod.boot = boot
    offers = await client.call_tool("gpu_offers", {"gpu": "4090"})
    quote = next(o for o in offers.structured_content["offers"] if o["provider"] == "runpod")  # type: ignore[index]
    rented = await client.call_tool("gpu_spinup", {"quote_id": quote["quote_id"], "confirm": True, "wait_seconds": 0})
    assert not rented.is_error, rented.content
    text = rented.content[0].text  # type: ignore[union-attr]
    assert words in text
    assert "still starting (running)" not in text
