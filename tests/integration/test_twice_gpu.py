"""Two conversations on one project spend money once: one confirmed quote rents one GPU, one instance is set up by
one conversation at a time.

Two servers (two wirings, two MCP clients) on one ATEGNATOS_HOME and one cloud account: the fake RunPod (built from
the recorded API examples) is shared, and counts every create it is sent. The first server is held at a chosen
point of its call, after it read the ledger, and the second server's call comes exactly then.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from ategnatos_mcp.providers import GpuService, RunPodProvider
from ategnatos_mcp.settings import GpuSettings, Settings
from ategnatos_mcp.state import GrimoireStore
from tests.support.fake_clouds import PUBLIC_KEY, FakeClock, FakeDeployer, FakeRunPod, Probe
from tests.support.two_servers import Gate, text_of, two_servers

pytestmark = pytest.mark.integration


def _service(store: GrimoireStore, cloud: FakeRunPod, clock: FakeClock, gate: Gate | None = None) -> GpuService:
    """The real GPU service on the shared fake RunPod; with ``gate``, a rental waits there before it is recorded
    (fetching our SSH key is the renter's last step before it marks the quote used)."""

    async def public_key() -> str:
        if gate is not None:
            await gate.pass_through()
        return PUBLIC_KEY

    provider = RunPodProvider(cloud.client(), graphql_url="https://api.runpod.io/graphql")
    return GpuService(
        GpuSettings(),
        store,
        {"runpod": provider},
        clock=clock,
        public_key=public_key,
        probe=Probe(),
        sleep=clock.sleep,
        missing_keys=["Vast.ai", "Lambda"],
    )


async def test_one_confirmed_quote_rents_once_whichever_conversation_asks(settings: Settings, home: Path) -> None:
    cloud, clock, gate = FakeRunPod(), FakeClock(), Gate()
    async with two_servers(settings) as (first, second):
        first.app.gpu = _service(first.app.store, cloud, clock, gate)
        second.app.gpu = _service(second.app.store, cloud, clock)
        first.app.deployer = second.app.deployer = FakeDeployer()  # type: ignore[assignment]
        offers = await first.client.call_tool("gpu_offers", {"gpu": "4090", "hours": 2})
        quote = offers.structured_content["offers"][0]["quote_id"]  # type: ignore[index]
        answers: dict[str, Any] = {}

        async def rent_first() -> None:
            answers["first"] = await first.client.call_tool("gpu_spinup", {"quote_id": quote, "confirm": True})

        gate.armed = True
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(rent_first)
                await gate.reached.wait()
                answers["second"] = await second.client.call_tool("gpu_spinup", {"quote_id": quote, "confirm": True})
                gate.go.set()

        rented, refused = answers["second"], answers["first"]
        assert not rented.is_error, text_of(rented)
        assert refused.is_error, text_of(refused)
        key = rented.structured_content["instance"]["key"]  # type: ignore[index]
        said = text_of(refused)
        assert f"Quote {quote} was already used: it rented" in said and key in said, said
        assert "Nothing more was rented" in said and "gpu_instances" in said, said
        assert cloud.created == 1 and len(cloud.calls("POST", "/v2/pods")) == 1
        listed = await first.client.call_tool("gpu_instances", {})
        assert [i["key"] for i in listed.structured_content["instances"]] == [key]  # type: ignore[index]
        # Later, after new offers dropped the used quote from the open ones, a third try hears the same.
        await second.client.call_tool("gpu_offers", {"gpu": "4090", "hours": 2})
        late = await first.client.call_tool("gpu_spinup", {"quote_id": quote, "confirm": True})
        assert late.is_error and f"Quote {quote} was already used: it rented" in text_of(late), text_of(late)
        assert cloud.created == 1


class _HeldDeployer(FakeDeployer):
    """The stand-in deployer (the real one runs against a loopback SSH server in test_gpu_deploy.py), held at
    ``gate`` while it sets up."""

    def __init__(self, gate: Gate) -> None:
        super().__init__()
        self.gate = gate

    async def deploy(self, rental: Any, plan: Any, progress: Any = None) -> Any:
        await self.gate.pass_through()
        return await super().deploy(rental, plan, progress)


async def test_an_instance_is_set_up_by_one_conversation_at_a_time(settings: Settings, home: Path) -> None:
    cloud, clock, gate = FakeRunPod(), FakeClock(), Gate()
    held, other = _HeldDeployer(gate), FakeDeployer()
    async with two_servers(settings) as (first, second):
        first.app.gpu = _service(first.app.store, cloud, clock)
        second.app.gpu = _service(second.app.store, cloud, clock)
        first.app.deployer, second.app.deployer = held, other  # type: ignore[assignment]
        offers = await first.client.call_tool("gpu_offers", {"gpu": "4090", "hours": 2})
        quote = offers.structured_content["offers"][0]["quote_id"]  # type: ignore[index]
        rented = await first.client.call_tool("gpu_spinup", {"quote_id": quote, "confirm": True})
        key = rented.structured_content["instance"]["key"]  # type: ignore[index]
        held.deployed.clear()  # the watchdog installed when it became ready
        answers: dict[str, Any] = {}

        async def deploy_first() -> None:
            answers["first"] = await first.client.call_tool("remote_deploy", {"instance": key, "target": "kohya"})

        gate.armed = True
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(deploy_first)
                await gate.reached.wait()
                answers["second"] = await second.client.call_tool("remote_deploy", {"instance": key})
                gate.go.set()

        assert not answers["first"].is_error, text_of(answers["first"])
        refused = text_of(answers["second"])
        assert answers["second"].is_error and f"{key} is being set up right now from another conversation" in refused
        assert "steps it already did are skipped" in refused
        assert [d[:2] for d in held.deployed + other.deployed] == [(key, "kohya")]
        again = await second.client.call_tool("remote_deploy", {"instance": key})  # once the first set-up is done
        assert not again.is_error, text_of(again)
        assert [d[:2] for d in other.deployed] == [(key, "comfyui")]


async def test_a_rental_found_by_another_conversation_while_its_answer_was_on_the_way_is_recorded_once(
    settings: Settings, home: Path
) -> None:
    cloud, clock, gate = FakeRunPod(), FakeClock(), Gate()

    async def answers_late(request: httpx.Request) -> httpx.Response:
        response = cloud.handle(request)
        if request.method == "POST" and request.url.path.endswith("/pods"):
            await gate.pass_through()  # created at the cloud; the answer is still on its way
        return response

    late = RunPodProvider(
        httpx.AsyncClient(
            base_url=cloud.base_url + "/",
            headers={"Authorization": f"Bearer {cloud.key}"},
            transport=httpx.MockTransport(answers_late),
        ),
        graphql_url="https://api.runpod.io/graphql",
    )
    async with two_servers(settings) as (first, second):
        first.app.gpu = _service(first.app.store, cloud, clock)
        first.app.gpu.providers["runpod"] = late
        second.app.gpu = _service(second.app.store, cloud, clock)
        first.app.deployer = second.app.deployer = FakeDeployer()  # type: ignore[assignment]
        offers = await first.client.call_tool("gpu_offers", {"gpu": "4090", "hours": 2})
        quote = offers.structured_content["offers"][0]["quote_id"]  # type: ignore[index]
        answers: dict[str, Any] = {}

        async def rent() -> None:
            answers["rented"] = await first.client.call_tool("gpu_spinup", {"quote_id": quote, "confirm": True})

        gate.armed = True
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(rent)
                await gate.reached.wait()
                answers["listed"] = await second.client.call_tool("gpu_instances", {})
                gate.go.set()

        assert "the rental whose confirmation was lost" in text_of(answers["listed"]), text_of(answers["listed"])
        rented = answers["rented"]
        assert not rented.is_error, text_of(rented)
        key = rented.structured_content["instance"]["key"]  # type: ignore[index]
        ledger = json.loads((home / "grimoire" / ".state" / "gpu.json").read_text(encoding="utf-8"))
        opened = [e for e in ledger["ledger"] if e["event"] in ("rented", "adopted")]
        assert [(e["instance_id"], e["event"]) for e in opened] == [(key.split(":", 1)[1], "adopted")], opened
        assert list(ledger["rentals"]) == [key] and ledger["pending"] == {}
        assert cloud.created == 1
