"""gpu_spinup's container image: plausible names only, RunPod and Vast.ai only, defaults unchanged, the CUDA its tag
names pinned on the host, and the create bodies still valid against the official specs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.providers import Consent, GpuService, OfferQuery
from ategnatos_mcp.providers.clouds.images import (
    DEFAULT_IMAGE,
    check_image,
    cuda_too_new,
    image_cuda,
    image_for,
    min_cuda_for,
)
from ategnatos_mcp.state import GrimoireStore
from tests.support.cloud_specs import check_request, unexplained
from tests.support.fake_clouds import FakeClock, FakeLambda, FakeRunPod, FakeVast, make_service

YES = Consent(confirmed=True)
CUSTOM = "ghcr.io/ai-dock/comfyui:v2-cuda-12.1.1-base-22.04"

GOOD = [
    DEFAULT_IMAGE,
    "ubuntu",
    "vastai/pytorch",
    "nvidia/cuda:12.8.0-devel-ubuntu22.04",
    "ghcr.io/ai-dock/comfyui:latest",
    "localhost:5000/team/trainer:1",
    "registry.example.org:443/a/b_c/d--e:Tag_1.0",
    "pytorch/pytorch@sha256:" + "ab" * 32,
]
BAD = {
    "Ubuntu 22.04": "spaces",
    "   ": "empty",
    "RunPod/PyTorch:latest": "capital letters",
    "https://hub.docker.com/r/runpod/pytorch": "web address",
    "runpod/pytorch:": "tag after ':' is empty",
    "runpod//pytorch": "empty part",
    "runpod/pytorch:-latest": "tag '-latest'",
    "runpod/pytorch@sha256:xyz": "digest",
    "runpod/py..torch": "single '.'",
    "a" * 256: "longer than 255",
}


@pytest.mark.parametrize("image", GOOD)
def test_plausible_images_pass_as_they_are(image: str) -> None:
    assert check_image(f" {image} ") == image


@pytest.mark.parametrize(("image", "reason"), BAD.items(), ids=list(BAD.values()))
def test_implausible_images_are_refused_in_plain_words(image: str, reason: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        check_image(image)
    assert reason in refused.value.message and "name[:tag]" in (refused.value.hint or "")


def test_cuda_named_by_the_tag() -> None:
    assert image_cuda(DEFAULT_IMAGE) == "12.4"
    assert image_cuda("nvidia/cuda:12.8.0-devel-ubuntu22.04") == "12.8"
    assert image_cuda("pytorch/pytorch:2.4.0-cuda12.1-cudnn9-devel") == "12.1"
    assert image_cuda(CUSTOM) == "12.1"
    assert image_cuda("ubuntu:22.04") is None and image_cuda("vastai/pytorch") is None


def test_only_container_clouds_take_an_image() -> None:
    assert image_for("runpod", "RunPod", "") == DEFAULT_IMAGE
    assert image_for("lambda", "Lambda", None) == DEFAULT_IMAGE  # Lambda ignores it; nothing was asked
    assert image_for("vast", "Vast.ai", CUSTOM) == CUSTOM
    with pytest.raises(InvalidRequestError) as refused:
        image_for("lambda", "Lambda", CUSTOM)
    assert "Lambda does not start a container image" in refused.value.message


@pytest.fixture
def store(tmp_path: Path) -> GrimoireStore:
    return GrimoireStore(tmp_path / "grimoire")


async def _rent(service: GpuService, provider: str, image: str | None) -> str:
    offers = await service.find_offers(OfferQuery(gpu="4090" if provider != "lambda" else None), limit=20)
    quote = next(o for o in offers.offers if o.provider == provider)
    result = await service.spinup(quote.quote_id, YES, image=image)
    return result.image or ""


async def test_runpod_default_image_and_cuda_are_unchanged(store: GrimoireStore) -> None:
    runpod = FakeRunPod()
    assert await _rent(make_service(store, [runpod], FakeClock()), "runpod", None) == DEFAULT_IMAGE
    body = json.loads(runpod.calls("POST", "/v2/pods")[0].content)
    assert body["image"] == DEFAULT_IMAGE and body["gpu"]["minCudaVersion"] == "12.4"


async def test_runpod_starts_the_chosen_image_and_pins_its_cuda(store: GrimoireStore) -> None:
    runpod = FakeRunPod()
    image = "nvidia/cuda:12.8.0-devel-ubuntu22.04"
    assert await _rent(make_service(store, [runpod], FakeClock()), "runpod", image) == image
    body = json.loads(runpod.calls("POST", "/v2/pods")[0].content)
    assert body["image"] == image and body["gpu"]["minCudaVersion"] == "12.8"  # higher than the quote's 12.4
    create = next(e for e in runpod.exchanges if e.method == "POST" and e.url.endswith("/pods"))
    assert unexplained("runpod", check_request("runpod", "POST", create.url, create.request_json)) == []


async def test_an_older_cuda_in_the_tag_does_not_lower_the_pin(store: GrimoireStore) -> None:
    runpod = FakeRunPod()
    await _rent(make_service(store, [runpod], FakeClock()), "runpod", CUSTOM)  # cuda 12.1 < the quote's 12.4
    assert json.loads(runpod.calls("POST", "/v2/pods")[0].content)["gpu"]["minCudaVersion"] == "12.4"


async def test_vast_starts_the_chosen_image_with_a_valid_body(store: GrimoireStore) -> None:
    vast = FakeVast()
    assert await _rent(make_service(store, [vast], FakeClock()), "vast", CUSTOM) == CUSTOM
    body = next(e.request_json for e in vast.exchanges if e.method == "PUT" and "/asks/" in e.url)
    assert body["image"] == CUSTOM
    problems = check_request("vastai", "PUT", next(e.url for e in vast.exchanges if "/asks/" in e.url), body)
    assert unexplained("vastai", problems) == []


@pytest.mark.parametrize("image", ["Ubuntu 22.04", "runpod/pytorch:"])
async def test_a_bad_image_rents_nothing(store: GrimoireStore, image: str) -> None:
    runpod = FakeRunPod()
    with pytest.raises(InvalidRequestError):
        await _rent(make_service(store, [runpod], FakeClock()), "runpod", image)
    assert runpod.calls("POST", "/v2/pods") == [] and runpod.pods == {}


async def test_lambda_refuses_an_image_and_rents_nothing(store: GrimoireStore) -> None:
    lam = FakeLambda()
    service = make_service(store, [lam], FakeClock())
    with pytest.raises(InvalidRequestError) as refused:
        await _rent(service, "lambda", CUSTOM)
    assert "Lambda does not start a container image" in refused.value.message
    assert lam.calls("POST", "launch") == []
    assert await _rent(service, "lambda", None) == ""  # without an image it rents as before (no image reported)


def test_cuda_the_host_cannot_run_and_the_pin_to_ask_for() -> None:
    assert cuda_too_new("nvidia/cuda:12.9.1-devel-ubuntu22.04", 12.8) == "12.9"
    assert cuda_too_new("nvidia/cuda:12.8.0-devel-ubuntu22.04", 12.8) is None
    assert cuda_too_new("ubuntu", 11.8) is None and cuda_too_new(DEFAULT_IMAGE, None) is None
    assert min_cuda_for("12.4", "nvidia/cuda:12.8.0-base") == "12.8" and min_cuda_for("12.4", CUSTOM) == "12.4"


async def test_a_vast_host_too_old_for_the_image_is_refused_before_renting(store: GrimoireStore) -> None:
    vast = FakeVast()  # the recorded RTX 4090 host runs CUDA 12.8 at most
    with pytest.raises(InvalidRequestError) as refused:
        await _rent(make_service(store, [vast], FakeClock()), "vast", "nvidia/cuda:12.9.1-devel-ubuntu22.04")
    assert "needs CUDA 12.9" in refused.value.message and "12.8 at most" in refused.value.message
    assert vast.instances == {} and not any("/asks/" in e.url for e in vast.exchanges)
    assert await _rent(make_service(store, [vast], FakeClock()), "vast", "nvidia/cuda:12.8.0-devel-ubuntu22.04")
