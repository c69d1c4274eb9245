"""probe_client against recorded answers (MockTransport), and probe_servers against a closed port."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from ategnatos_mcp.comfyui import probe_servers
from ategnatos_mcp.comfyui.client import ComfyUIClient
from ategnatos_mcp.comfyui.probe import probe_client

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "comfyui"


def _recorded(name: str) -> httpx.Response:
    exchange = json.loads((FIX / name).read_text(encoding="utf-8"))["response"]
    return httpx.Response(exchange["status"], json=exchange["body"])


def _handler(request: httpx.Request) -> httpx.Response:
    routes = {
        "/system_stats": "get_system_stats.json",
        "/queue": "get_queue_running_and_pending.json",
        "/models": "get_models.json",
        "/models/checkpoints": "get_models_checkpoints.json",
        "/models/upscale_models": "get_models_upscale_models.json",
    }
    if request.url.path in routes:
        return _recorded(routes[request.url.path])
    if request.url.path.startswith("/models/"):
        return httpx.Response(200, json=[])
    return httpx.Response(404)


async def test_probe_reports_version_queue_and_models_from_recorded_answers() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(_handler)) as http:
        probe = await probe_client(ComfyUIClient("http://comfy.test:8188", http))
    assert probe.reachable and probe.error is None
    assert probe.version == "0.3.64"
    assert (probe.queue_running, probe.queue_pending) == (1, 3)
    assert probe.models["checkpoints"] == ["mcp_random_sd15_layout.safetensors"]
    assert probe.models["upscale_models"] == ["mcp_tiny_compact_x2.safetensors"]
    assert probe.devices == ["cpu"]


async def test_probe_of_a_closed_port_says_how_to_start_comfyui() -> None:
    [probe] = await probe_servers(["http://127.0.0.1:9"], timeout=2)
    assert not probe.reachable
    assert probe.error is not None and "Start ComfyUI" in probe.error and "--port 9" in probe.error


async def test_an_older_comfyui_without_the_models_route_is_still_reachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/models"):
            return httpx.Response(404)
        return _handler(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        probe = await probe_client(ComfyUIClient("http://comfy.test:8188", http))
    assert probe.reachable and probe.models == {}


async def test_something_else_on_the_port_is_reported_as_not_comfyui() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(404))) as http:
        probe = await probe_client(ComfyUIClient("http://comfy.test:8188", http))
    assert not probe.reachable and probe.not_comfyui
    assert probe.error is not None and "not ComfyUI" in probe.error and "Check the address and the port" in probe.error


async def test_a_web_page_on_the_port_is_not_mistaken_for_comfyui() -> None:
    def page(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>router login</html>")

    async with httpx.AsyncClient(transport=httpx.MockTransport(page)) as http:
        probe = await probe_client(ComfyUIClient("http://comfy.test:8188", http))
    assert not probe.reachable and probe.not_comfyui
    assert probe.error is not None and "it sent something instead of ComfyUI's JSON" in probe.error
