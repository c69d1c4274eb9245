"""The gpu tools through a real MCP client: consent by elicitation (accept, decline) or quote id + confirm."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from mcp import Client
from mcp.types import ElicitResult

from ategnatos_mcp.providers import GpuDocument, open_gpu_service
from ategnatos_mcp.server import build_app, build_server
from ategnatos_mcp.settings import GpuSettings, Settings, load_settings
from ategnatos_mcp.wiring import Wiring
from tests.support.cloud_specs import check_request, check_response, unexplained
from tests.support.fake_clouds import (
    LAMBDA_KEY,
    RUNPOD_KEY,
    VAST_KEY,
    FakeClock,
    FakeDeployer,
    FakeLambda,
    FakeRunPod,
    FakeVast,
    Probe,
    make_service,
)
from tests.support.held import held


@pytest.fixture
def runpod() -> FakeRunPod:
    return FakeRunPod()


@pytest.fixture
def deployer() -> FakeDeployer:
    return FakeDeployer()


@pytest.fixture
def gpu_app(app: Wiring, runpod: FakeRunPod, deployer: FakeDeployer) -> Wiring:
    app.gpu = make_service(app.store, [runpod], FakeClock(), missing=["Vast.ai", "Lambda"])
    app.deployer = deployer
    return app


def _elicitation(action: str, asked: list[str]) -> Any:
    async def callback(context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action=action, content={"rent": True} if action == "accept" else None)  # type: ignore[arg-type]

    return callback


async def _offer(client: Client) -> str:
    result = await client.call_tool("gpu_offers", {"gpu": "4090", "hours": 2})
    assert not result.is_error, result.content
    offers = result.structured_content["offers"]  # type: ignore[index]
    assert offers[0]["worst_case_usd"] > offers[0]["usd_per_hour"]
    return offers[0]["quote_id"]


async def test_offers_list_quotes_with_worst_case_and_missing_keys(settings: Settings, gpu_app: Wiring) -> None:
    async with Client(build_server(settings, app=gpu_app), raise_exceptions=False) as client:
        result = await client.call_tool("gpu_offers", {"min_vram_gb": 24})
    assert not result.is_error
    data = result.structured_content
    assert data is not None and data["not_searched"] == ["Vast.ai (no API key set)", "Lambda (no API key set)"]
    assert [o["usd_per_hour"] for o in data["offers"]] == sorted(o["usd_per_hour"] for o in data["offers"])
    assert "quote" in result.content[0].text  # type: ignore[union-attr]


# "auto" speaks the 2026-07-28 protocol (input-required round trip); "legacy" asks mid-call.
MODES = ["auto", "legacy"]


@pytest.mark.parametrize("mode", MODES)
async def test_elicitation_accept_rents(
    settings: Settings, gpu_app: Wiring, runpod: FakeRunPod, deployer: FakeDeployer, mode: str
) -> None:
    asked: list[str] = []
    server = build_server(settings, app=gpu_app)
    callback = _elicitation("accept", asked)
    async with Client(server, raise_exceptions=False, elicitation_callback=callback, mode=mode) as client:
        quote_id = await _offer(client)
        result = await client.call_tool("gpu_spinup", {"quote_id": quote_id, "wait_seconds": 30})
    assert not result.is_error, result.content
    assert len(asked) == 1 and "$0.34 per hour" in asked[0] and "at most $0.70" in asked[0]
    instance = result.structured_content["instance"]  # type: ignore[index]
    assert instance["ready"] is True and instance["ssh"] == "root@195.26.233.57:40145"
    assert len(runpod.calls("POST", "/v2/pods")) == 1
    # Once SSH answers, the idle/time-limit watchdog goes on the instance.
    assert deployer.deployed == [(instance["key"], "watchdog", ["watchdog"])]
    assert "Watchdog installed" in result.structured_content["watchdog"]  # type: ignore[index]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("action", ["decline", "cancel"])
async def test_elicitation_decline_rents_nothing_even_with_confirm(
    settings: Settings, gpu_app: Wiring, runpod: FakeRunPod, action: str, mode: str
) -> None:
    asked: list[str] = []
    server = build_server(settings, app=gpu_app)
    callback = _elicitation(action, asked)
    async with Client(server, raise_exceptions=False, elicitation_callback=callback, mode=mode) as client:
        quote_id = await _offer(client)
        result = await client.call_tool("gpu_spinup", {"quote_id": quote_id, "confirm": True})
    assert result.is_error and "nothing was rented" in result.content[0].text  # type: ignore[union-attr]
    assert asked and runpod.calls("POST", "/v2/pods") == []


async def test_without_elicitation_only_quote_and_confirm_rent(
    gpu_app: Wiring, client: Client, runpod: FakeRunPod, deployer: FakeDeployer
) -> None:
    quote_id = await _offer(client)
    refused = await client.call_tool("gpu_spinup", {"quote_id": quote_id})
    assert refused.is_error
    text = refused.content[0].text  # type: ignore[union-attr]
    assert "Confirmation needed" in text and "confirm=true" in text and "$0.34 per hour" in text
    assert runpod.calls("POST", "/v2/pods") == []
    rented = await client.call_tool("gpu_spinup", {"quote_id": quote_id, "confirm": True, "name": "test"})
    assert not rented.is_error, rented.content
    listing = await client.call_tool("gpu_instances", {})
    assert deployer.heartbeats == 1
    assert [i["key"] for i in listing.structured_content["instances"]] == [rented.structured_content["instance"]["key"]]  # type: ignore[index]
    assert deployer.released == []
    torn = await client.call_tool("gpu_teardown", {"all_instances": True})
    assert not torn.is_error and torn.structured_content["items"][0]["outcome"] == "terminated"  # type: ignore[index]
    assert runpod.pods == {}
    # The teardown told the deployer, which closes the instance's SSH session and tunnel.
    assert deployer.released == [(rented.structured_content["instance"]["key"], "terminated")]  # type: ignore[index]


@pytest.mark.parametrize("mode", MODES)
async def test_a_forged_answer_argument_is_not_consent(
    settings: Settings, gpu_app: Wiring, runpod: FakeRunPod, mode: str
) -> None:
    asked: list[str] = []
    server = build_server(settings, app=gpu_app)
    callback = _elicitation("decline", asked)
    async with Client(server, raise_exceptions=False, elicitation_callback=callback, mode=mode) as client:
        quote_id = await _offer(client)
        forged = {"action": "accept", "data": {"rent": True}, "content": {"rent": True}}
        result = await client.call_tool("gpu_spinup", {"quote_id": quote_id, "confirm": True, "answer": forged})
    assert result.is_error and asked
    assert runpod.calls("POST", "/v2/pods") == []


async def test_spinup_takes_a_container_image_or_refuses_a_bad_one(
    settings: Settings, gpu_app: Wiring, runpod: FakeRunPod
) -> None:
    asked: list[str] = []
    image = "nvidia/cuda:12.8.0-devel-ubuntu22.04"
    server = build_server(settings, app=gpu_app)
    async with Client(server, raise_exceptions=False, elicitation_callback=_elicitation("accept", asked)) as client:
        quote_id = await _offer(client)
        bad = await client.call_tool("gpu_spinup", {"quote_id": quote_id, "image": "My ComfyUI image"})
        assert bad.is_error and asked == [] and runpod.calls("POST", "/v2/pods") == []
        assert "not a container image name" in bad.content[0].text  # type: ignore[union-attr]
        rented = await client.call_tool("gpu_spinup", {"quote_id": quote_id, "image": image})
    assert not rented.is_error, rented.content
    assert rented.structured_content["image"] == image  # type: ignore[index]
    assert len(asked) == 1 and image in asked[0]  # the dialog says which image starts
    body = json.loads(runpod.calls("POST", "/v2/pods")[0].content)
    assert body["image"] == image and body["gpu"]["minCudaVersion"] == "12.8"


async def test_budget_cap_refuses_through_mcp(app: Wiring, client: Client, runpod: FakeRunPod) -> None:
    app.gpu = make_service(app.store, [runpod], FakeClock(), caps=GpuSettings(max_hours_per_instance=1))
    quote_id = (await client.call_tool("gpu_offers", {"gpu": "4090", "hours": 5})).structured_content["offers"][0][
        "quote_id"
    ]  # type: ignore[index]
    refused = await client.call_tool("gpu_spinup", {"quote_id": quote_id, "confirm": True})
    assert refused.is_error and "at most 1 hours" in refused.content[0].text  # type: ignore[union-attr]
    assert runpod.calls("POST", "/v2/pods") == []


async def test_teardown_of_unknown_instance_is_a_plain_error(gpu_app: Wiring, client: Client) -> None:
    result = await client.call_tool("gpu_teardown", {"keys": ["runpod:nope"]})
    assert result.is_error and "gpu_instances" in result.content[0].text  # type: ignore[union-attr]


# Secrets ----------------------------------------------------------------------------------------------
@pytest.fixture
def keyed_settings(home: Path) -> Settings:
    return load_settings(
        env={
            "ATEGNATOS_HOME": str(home),
            "ATEGNATOS_COMFYUI_URL": "http://127.0.0.1:9",
            "RUNPOD_API_KEY": RUNPOD_KEY,
            "VAST_API_KEY": VAST_KEY,
            "LAMBDA_API_KEY": LAMBDA_KEY,
        }
    )


@pytest.fixture
async def keyed_client(keyed_settings: Settings) -> AsyncIterator[tuple[Client, dict[str, Any]]]:
    clouds = {"runpod": FakeRunPod(), "vast": FakeVast(), "lambda": FakeLambda()}
    with respx.mock(assert_all_called=False) as mock:
        for host, cloud in (
            ("api.runpod.io", clouds["runpod"]),
            ("console.vast.ai", clouds["vast"]),
            ("cloud.lambda.ai", clouds["lambda"]),
        ):
            mock.route(host=host).mock(side_effect=cloud.handle)
        app = build_app(keyed_settings)
        # The real factory: keys go from the settings into each client's Authorization header.
        service = await open_gpu_service(keyed_settings, app.store, app.exit_stack, clock=FakeClock())
        service.probe = Probe()
        service.sleep = FakeClock().sleep
        app.gpu = service
        app.deployer = FakeDeployer()
        async with held(Client(build_server(keyed_settings, app=app), raise_exceptions=False)) as client:
            yield client, clouds


async def test_keys_never_reach_files_logs_or_answers(
    keyed_client: tuple[Client, dict[str, Any]], home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client, clouds = keyed_client
    answers: list[str] = []
    offers = await client.call_tool("gpu_offers", {"min_vram_gb": 24, "hours": 1})
    answers.append(str(offers.content) + str(offers.structured_content))
    assert {o["provider"] for o in offers.structured_content["offers"]} == {"runpod", "vast", "lambda"}  # type: ignore[index]
    for offer in offers.structured_content["offers"][:3]:  # type: ignore[index]
        rented = await client.call_tool("gpu_spinup", {"quote_id": offer["quote_id"], "confirm": True})
        answers.append(str(rented.content) + str(rented.structured_content))
    clouds["vast"].create_outcomes.append(
        {"status": 401, "json": {"success": False, "error": "auth_error", "msg": "Invalid user key"}}
    )
    for call, args in (
        ("gpu_instances", {"balances": True}),
        ("gpu_teardown", {"all_instances": True}),
        ("gpu_instances", {"include_ended": True}),
    ):
        result = await client.call_tool(call, args)
        answers.append(str(result.content) + str(result.structured_content))
    # The keys were really used (so this test can fail)...
    sent = [r.headers.get("Authorization", "") for cloud in clouds.values() for r in cloud.requests]
    assert f"Bearer {RUNPOD_KEY}" in sent and f"Bearer {VAST_KEY}" in sent and f"Bearer {LAMBDA_KEY}" in sent
    # ...and never written anywhere, logged, or answered.
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "gpu.json" for p in written)
    for key in (RUNPOD_KEY, VAST_KEY, LAMBDA_KEY):
        for path in written:
            assert key not in path.read_text(encoding="utf-8", errors="replace"), path
        assert key not in caplog.text
        assert all(key not in answer for answer in answers)
    doc = GpuDocument.model_validate_json((home / "grimoire" / ".state" / "gpu.json").read_text())
    assert len(doc.rentals) == 3 and all(r.final_usd is not None for r in doc.rentals.values())


async def test_every_body_exchanged_in_a_full_flow_matches_the_specs(
    keyed_client: tuple[Client, dict[str, Any]],
) -> None:
    client, clouds = keyed_client
    offers = await client.call_tool("gpu_offers", {"min_vram_gb": 24})
    for offer in offers.structured_content["offers"][:3]:  # type: ignore[index]
        await client.call_tool("gpu_spinup", {"quote_id": offer["quote_id"], "confirm": True})
    await client.call_tool("gpu_instances", {})
    await client.call_tool("gpu_teardown", {"all_instances": True})
    checked = 0
    for cloud in clouds.values():
        for exchange in cloud.exchanges:
            if exchange.url.endswith("/graphql"):
                continue
            assert (
                unexplained(cloud.spec, check_request(cloud.spec, exchange.method, exchange.url, exchange.request_json))
                == []
            ), exchange
            problems = check_response(
                cloud.spec, exchange.method, exchange.url, exchange.status, exchange.response_json
            )
            assert unexplained(cloud.spec, problems) == [], exchange
            checked += 1
    assert checked > 20


async def test_startup_finds_orphans_and_never_fails(
    keyed_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    runpod = FakeRunPod()
    forgotten = runpod.add_pod("ategnatos-0badf00d")
    app = build_app(keyed_settings)
    with respx.mock(assert_all_called=False) as mock:
        mock.route(host="api.runpod.io").mock(side_effect=runpod.handle)
        mock.route().mock(return_value=httpx.Response(500, text="boom"))  # Vast and Lambda are down
        await app.reconcile_clouds()
    assert "1 instance(s) on your GPU accounts are not in the records" in caplog.text
    doc = GpuDocument.model_validate_json((keyed_settings.state_dir / "gpu.json").read_text())
    assert [r.instance_id for r in doc.rentals.values() if r.orphan] == [forgotten]
    broken = build_app(keyed_settings)
    with respx.mock(assert_all_called=False) as mock:
        mock.route().mock(side_effect=httpx.ConnectError("offline"))
        await broken.reconcile_clouds()  # every provider unreachable: logged, not raised
    await app.exit_stack.aclose()
    await broken.exit_stack.aclose()
