"""Each provider client parses the recorded bodies into the unified shapes and maps errors by meaning."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.providers import (
    Consent,
    CreateOutcomeUnknownError,
    CreateRequest,
    InstanceStatus,
    LambdaProvider,
    LocalProvider,
    OfferQuery,
    OfferUnavailableError,
    PaymentRequiredError,
    ProviderHttpError,
    RunPodProvider,
    VastProvider,
    runpod_rest_url,
    unify_gpu_name,
    vast_list_url,
)
from ategnatos_mcp.state import GrimoireStore
from tests.support.cloud_specs import case, example
from tests.support.fake_clouds import FakeClock, make_service


def _answer(response: dict[str, Any]) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if "text" in response:
            return httpx.Response(response["status"], text=response["text"])
        return httpx.Response(response["status"], json=response.get("json"), headers=response.get("headers"))

    return httpx.AsyncClient(base_url="https://api.example/", transport=httpx.MockTransport(handler))


def _runpod(response: dict[str, Any]) -> RunPodProvider:
    return RunPodProvider(_answer(response), graphql_url="https://api.runpod.io/graphql")


def _vast(response: dict[str, Any]) -> VastProvider:
    return VastProvider(_answer(response), list_url="https://console.vast.ai/api/v1/instances/")


async def _offer(provider: Any, **query: Any) -> Any:
    return (await provider.offers(OfferQuery(**query)))[0]


async def test_runpod_catalog_gives_priced_offers_with_stock_only() -> None:
    offers = await _runpod(example("runpod", "v2_catalog_gpus")["response"]).offers(OfferQuery())
    refs = {o.offer_ref: o.usd_per_hour for o in offers}
    # A100 has availability NONE: never offered. Both clouds for the others.
    assert refs == {
        "NVIDIA GeForce RTX 4090|SECURE": 0.59,
        "NVIDIA L40S|SECURE": 0.86,
        "NVIDIA GeForce RTX 4090|COMMUNITY": 0.34,
        "NVIDIA L40S|COMMUNITY": 0.79,
    }
    assert {o.gpu for o in offers} == {"RTX4090", "L40S"}


@pytest.mark.parametrize(
    ("name", "status", "ssh"),
    [
        ("v2_get_pod_provisioning", InstanceStatus.STARTING, (None, None)),
        ("v2_get_pod_running", InstanceStatus.RUNNING, ("195.26.233.57", 40145)),
    ],
)
async def test_runpod_pod_status_and_ssh(name: str, status: InstanceStatus, ssh: tuple[Any, Any]) -> None:
    pod = await _runpod(example("runpod", name)["response"]).get("gfj8b292vyg08g")
    assert pod is not None and pod.status is status and (pod.ssh_host, pod.ssh_port) == ssh


async def test_runpod_runtime_ports_are_the_ssh_fallback() -> None:
    body = example("runpod", "v2_get_pod_running")["response"]["json"]
    body["ssh"]["direct"] = None
    pod = await _runpod({"status": 200, "json": body}).get("x")
    assert pod is not None and (pod.ssh_host, pod.ssh_port) == ("195.26.233.57", 40145)


@pytest.mark.parametrize(
    ("case_name", "error"),
    [
        ("no_capacity_or_rule_violation", OfferUnavailableError),
        ("key_lacks_scope", OfferUnavailableError),
        ("insufficient_balance", PaymentRequiredError),
        ("upstream_5xx", CreateOutcomeUnknownError),
        ("schema_violation", ProviderHttpError),
    ],
)
async def test_runpod_create_errors_by_meaning(case_name: str, error: type[Exception]) -> None:
    provider = _runpod(case("runpod", "v2_errors", case_name)["response"])
    offer = (await _runpod(example("runpod", "v2_catalog_gpus")["response"]).offers(OfferQuery(gpu="4090")))[0]
    request = CreateRequest(offer=offer, name="ategnatos-1", tag="1", image="img", ssh_public_key="ssh-ed25519 AAAA x")
    with pytest.raises(error) as raised:
        await provider.create(request)
    assert type(raised.value) is error


async def test_runpod_delete_of_a_gone_pod_is_done_and_balance_reads_graphql() -> None:
    await _runpod(case("runpod", "v2_delete_pod", "already_gone")["response"]).terminate("gfj8b292vyg08g")
    balance = await _runpod(example("runpod", "graphql_myself_balance")["response"]).balance()
    assert balance is not None and balance.usd == pytest.approx(42.1733)
    errors = example("runpod", "graphql_errors")
    first = errors["cases"][0]["response"] if "cases" in errors else errors["response"]
    unknown = await _runpod(first).balance()
    assert unknown is not None and unknown.usd is None


async def test_runpod_rate_limit_carries_retry_after() -> None:
    with pytest.raises(ProviderHttpError) as raised:
        await _runpod(case("runpod", "v2_errors", "rate_limited")["response"]).list()
    assert raised.value.status == 429 and raised.value.retry_after == 12 and raised.value.retryable


@pytest.mark.parametrize(
    ("case_name", "status"),
    [
        ("oci_error", InstanceStatus.FAILED),
        ("host_offline", InstanceStatus.FAILED),
        ("outbid_or_stopped", InstanceStatus.STOPPED),
    ],
)
async def test_vast_never_ready_states(case_name: str, status: InstanceStatus) -> None:
    body = case("vastai", "show_instance_failed", case_name)["json"]
    instance = await _vast({"status": 200, "json": body}).get("28765432")
    assert instance is not None and instance.status is status


async def test_vast_loading_then_running_with_direct_ssh() -> None:
    loading = await _vast(example("vastai", "show_instance_loading")["response"]).get("28765432")
    assert loading is not None and loading.status is InstanceStatus.STARTING and loading.ssh_host is None
    running = await _vast(example("vastai", "show_instance_running")["response"]).get("28765432")
    assert running is not None and (running.ssh_host, running.ssh_port) == ("203.0.113.45", 41003)


async def test_vast_proxy_ssh_is_plus_one_on_jupyter_runtypes() -> None:
    body = example("vastai", "show_instance_running")["response"]["json"]
    body["instances"].update(ports=None, image_runtype="jupyter_proxy")
    instance = await _vast({"status": 200, "json": body}).get("28765432")
    assert instance is not None and (instance.ssh_host, instance.ssh_port) == ("ssh5.vast.ai", 37655)


async def test_vast_offers_normalise_gpu_and_units() -> None:
    offer = await _offer(_vast(example("vastai", "search_offers")["response"]))
    assert (offer.gpu, offer.vram_gb, offer.usd_per_hour, offer.bandwidth_usd_per_gb) == (
        "RTX4090",
        24.0,
        0.3325,
        0.0039,
    )


@pytest.mark.parametrize(
    ("case_name", "error"),
    [
        ("offer_gone_404", OfferUnavailableError),
        ("offer_gone_410", OfferUnavailableError),
        ("insufficient_credit_400", PaymentRequiredError),
        ("rate_limited_429_text", ProviderHttpError),
    ],
)
async def test_vast_create_errors_by_meaning(case_name: str, error: type[Exception]) -> None:
    provider = _vast(case("vastai", "create_instance_errors", case_name)["response"])
    offer = await _offer(_vast(example("vastai", "search_offers")["response"]))
    request = CreateRequest(offer=offer, name="ategnatos-1", tag="1", image="img", ssh_public_key="ssh-ed25519 AAAA x")
    with pytest.raises(error) as raised:
        await provider.create(request)
    assert type(raised.value) is error


async def test_lambda_booting_has_no_ssh_until_active() -> None:
    provider = LambdaProvider(_answer(example("lambda", "get_instance_booting")["response"]))
    booting = await provider.get("0920582c7ff041399e34823a0be62549")
    assert booting is not None and booting.status is InstanceStatus.STARTING and booting.ssh_host is None
    active = await LambdaProvider(_answer(example("lambda", "get_instance_active")["response"])).get("x")
    assert active is not None and (active.ssh_user, active.ssh_host, active.ssh_port) == ("ubuntu", "192.222.54.17", 22)
    assert active.usd_per_hour == 0.75 and active.gpu == "A10"


async def test_lambda_offers_only_where_capacity_exists() -> None:
    offers = await LambdaProvider(_answer(example("lambda", "list_instance_types")["response"])).offers(OfferQuery())
    assert ("gpu_1x_a6000" not in {o.offer_ref.split("|")[0] for o in offers}) and offers
    assert {o.offer_ref for o in offers if o.gpu == "A10"} == {"gpu_1x_a10|us-east-1", "gpu_1x_a10|us-west-1"}


@pytest.mark.parametrize(
    ("case_name", "error"),
    [
        ("insufficient_capacity", OfferUnavailableError),
        ("account_inactive_or_no_payment", PaymentRequiredError),
        ("upstream_provider", CreateOutcomeUnknownError),
    ],
)
async def test_lambda_launch_errors_by_code(case_name: str, error: type[Exception]) -> None:
    offer = (
        await LambdaProvider(_answer(example("lambda", "list_instance_types")["response"])).offers(
            OfferQuery(gpu="A10")
        )
    )[0]
    provider = LambdaProvider(_answer(case("lambda", "launch_errors", case_name)["response"]))
    provider._key_name = "mcp-server"  # skip key registration for this error-mapping check
    request = CreateRequest(offer=offer, name="ategnatos-1", tag="1", image="img", ssh_public_key="ssh-ed25519 AAAA x")
    with pytest.raises(error):
        await provider.create(request)


async def test_lambda_cannot_stop_and_unknown_terminate_is_done() -> None:
    provider = LambdaProvider(_answer(example("lambda", "get_instance_not_found")["response"]))
    await provider.terminate("deadbeef")
    assert await provider.get("deadbeef") is None
    with pytest.raises(InvalidRequestError):
        await provider.stop("x")


def test_unified_gpu_names_and_urls() -> None:
    assert unify_gpu_name("NVIDIA GeForce RTX 4090") == unify_gpu_name("RTX 4090") == "RTX4090"
    assert unify_gpu_name("NVIDIA H100 80GB HBM3") == unify_gpu_name("H100 SXM") == "H100-SXM"
    assert runpod_rest_url("https://rest.runpod.io/v1") == "https://api.runpod.io/v2"
    assert runpod_rest_url("http://127.0.0.1:9/v2/") == "http://127.0.0.1:9/v2"
    assert vast_list_url("https://console.vast.ai/api/v0") == "https://console.vast.ai/api/v1/instances/"


async def test_local_gpu_is_a_free_offer_that_is_never_rented(tmp_path: Any) -> None:
    async def one_4090() -> list[tuple[str, float]]:
        return [("NVIDIA GeForce RTX 4090", 24.0)]

    service = make_service(GrimoireStore(tmp_path), [], FakeClock())
    service.providers["local"] = LocalProvider(detect=one_4090)
    offers = await service.find_offers(OfferQuery(gpu="4090"))
    assert [(o.provider, o.usd_per_hour, o.worst_case_usd) for o in offers.offers] == [("local", 0.0, 0.0)]
    assert await service.find_offers(OfferQuery(gpu="H100")) == offers.model_copy(update={"offers": []})
    with pytest.raises(InvalidRequestError):
        await service.spinup(offers.offers[0].quote_id, Consent(confirmed=True))
