"""Every way a rental ends tells the end listeners once (the deployer closes its SSH session and tunnel there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ategnatos_mcp.errors import UpstreamError
from ategnatos_mcp.providers import Consent, GpuService, OfferQuery, Rental
from ategnatos_mcp.settings import GpuSettings
from ategnatos_mcp.state import GrimoireStore
from tests.support.fake_clouds import FakeClock, FakeRunPod, make_service

YES = Consent(confirmed=True)


class Heard:
    def __init__(self) -> None:
        self.ended: list[tuple[str, str]] = []

    async def __call__(self, rental: Rental) -> None:
        self.ended.append((rental.key, rental.status.value))


async def _rent(service: GpuService) -> str:
    offers = await service.find_offers(OfferQuery(gpu="4090"))
    return (await service.spinup(offers.offers[0].quote_id, YES)).instance.key


@pytest.fixture
def store(tmp_path: Path) -> GrimoireStore:
    return GrimoireStore(tmp_path / "grimoire")


async def test_boot_timeout_is_heard(store: GrimoireStore) -> None:
    runpod = FakeRunPod()
    runpod.boot = ["PROVISIONING"]  # never gets an SSH endpoint
    service = make_service(store, [runpod], FakeClock(), caps=GpuSettings(boot_timeout_seconds=300))
    heard = service.end_listeners["test"] = Heard()
    key = await _rent(service)
    with pytest.raises(UpstreamError):
        await service.wait_ready(key, 3600)
    assert heard.ended == [(key, "terminated")]


async def test_teardown_stop_and_terminate_are_heard_once_each(store: GrimoireStore) -> None:
    service = make_service(store, [FakeRunPod()], FakeClock())
    heard = service.end_listeners["test"] = Heard()
    key = await _rent(service)
    await service.wait_ready(key, 60)
    await service.instances()
    assert heard.ended == []  # a listing of running instances ends nothing
    await service.teardown([key], stop=True)
    await service.instances()  # already recorded as stopped: not heard again
    await service.teardown([key])
    assert heard.ended == [(key, "stopped"), (key, "terminated")]


async def test_a_failing_listener_does_not_undo_the_teardown(
    store: GrimoireStore, caplog: pytest.LogCaptureFixture
) -> None:
    runpod = FakeRunPod()
    service = make_service(store, [runpod], FakeClock())

    async def broken(rental: Rental) -> None:
        raise RuntimeError("cleanup failed")

    heard = Heard()
    service.end_listeners.update({"broken": broken, "test": heard})
    key = await _rent(service)
    result = await service.teardown([key])
    assert result.items[0].outcome == "terminated" and runpod.pods == {}
    assert heard.ended == [(key, "terminated")]  # the next listener still ran
    assert "could not clean up" in caplog.text
