"""A wrong ComfyUI address, or a hostile one, on real loopback sockets: plain answers, bounded size and time.

Each endpoint here is a real HTTP server on 127.0.0.1 (``hostile_http``) answering what no ComfyUI does: other
JSON, a web page, a 404 page, bytes that are not HTTP, a redirect to itself, a body far too large, one byte at a
time. ``comfyui_status`` and ``studio_detect`` must say "not ComfyUI" (or why the answer was cut) for that
server, with the next step, and still report the other servers; the client must stop reading at its caps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from ategnatos_mcp.comfyui.bounded import ReadLimits
from ategnatos_mcp.comfyui.client import ComfyUIClient
from ategnatos_mcp.comfyui.failures import NotComfyUI
from ategnatos_mcp.comfyui.models import OutputFile
from ategnatos_mcp.errors import UpstreamError
from ategnatos_mcp.server import build_app, build_server
from ategnatos_mcp.settings import load_settings
from tests.support.fake_comfyui import serve_fake
from tests.support.hostile_http import Reply, serve_hostile

pytestmark = pytest.mark.integration

NOT_COMFYUI: dict[str, Callable[[str], Reply]] = {
    "other JSON": lambda path: Reply.json({"status": "ok", "service": "grafana", "items": [1, 2, 3]}),
    "a JSON list": lambda path: Reply.json([1, 2, 3]),
    "JSON of the wrong types": lambda path: Reply.json({"system": [], "devices": "gpu"}),
    "a web page": lambda path: Reply.html("<html><body><h1>Welcome to nginx!</h1></body></html>"),
    "a 404 page": lambda path: Reply.html("<h1>404 Not Found</h1>", status=404),
    "bytes that are not HTTP": lambda path: Reply(raw=b"\x16\x03\x01\x00\xff garbage\r\n\xfe\r\n\r\n"),
    "a redirect to itself": lambda path: Reply(status=302, headers={"Location": path}),
}


@asynccontextmanager
async def studio(home: Path, urls: list[str], **env: str) -> AsyncIterator[Client]:
    settings = load_settings(env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": ",".join(urls), **env})
    async with Client(build_server(settings, app=build_app(settings)), raise_exceptions=False) as client:
        yield client


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


@pytest.mark.parametrize("kind", sorted(NOT_COMFYUI))
async def test_something_else_at_the_address_is_called_not_comfyui_while_the_real_one_answers(
    kind: str, home: Path
) -> None:
    async with serve_hostile(NOT_COMFYUI[kind]) as other, serve_fake() as fake:
        async with studio(home, [other.url, fake.url]) as client:
            with anyio.fail_after(10):
                status = await client.call_tool("comfyui_status", {})
                detected = await client.call_tool("studio_detect", {})
    assert not status.is_error, _text(status)
    wrong, right = status.structured_content["servers"]
    assert (wrong["url"], wrong["reachable"], wrong["not_comfyui"]) == (other.url, False, True)
    assert "not ComfyUI" in wrong["error"] and "Check the address and the port" in wrong["error"]
    assert right["reachable"] and right["version"] == "0.3.64"
    assert f"{other.url}: not ComfyUI." in _text(status) and f"{fake.url}: up, ComfyUI 0.3.64" in _text(status)
    assert not detected.is_error, _text(detected)
    servers = detected.structured_content["environment"]["comfyui"]
    assert [s["reachable"] for s in servers] == [False, True]
    assert "not ComfyUI" in servers[0]["error"] and "Check the address and the port" in _text(detected)


async def test_a_redirect_to_another_address_names_that_address_and_is_never_followed() -> None:
    async with serve_fake() as fake:
        asked: list[str] = []

        def moved(path: str) -> Reply:
            asked.append(path)
            return Reply(status=301, headers={"Location": fake.url + path})

        async with serve_hostile(moved) as old, httpx.AsyncClient(follow_redirects=True) as http:
            with pytest.raises(NotComfyUI) as caught:
                await ComfyUIClient(old.url, http).system_stats()
    assert asked == ["/system_stats"]
    assert f"If ComfyUI moved to {fake.url}, put that in ATEGNATOS_COMFYUI_URL" in str(caught.value)


async def test_an_answer_announced_larger_than_the_cap_is_not_read() -> None:
    body = b'{"queue_running": [], "queue_pending": [], "padding": "' + b"x" * 4000 + b'"}'
    async with serve_hostile(lambda path: Reply(body=body)) as server, httpx.AsyncClient() as http:
        client = ComfyUIClient(server.url, http, limits=ReadLimits(answer_bytes=1024))
        with pytest.raises(UpstreamError) as caught:
            await client.queue()
    assert "far larger answer to GET /queue than expected (over 1,024 bytes)" in caught.value.message
    assert "max_answer_bytes" in caught.value.hint


async def test_an_endless_answer_is_cut_at_the_cap_without_reading_the_rest() -> None:
    chunk = b"[" + b"0," * 32_767 + b"0]"  # 64 KiB; sent 1,600 times = 100 MB, with no length announced
    reply = Reply(body=chunk, repeat=1600, length=-1)
    async with serve_hostile(lambda path: reply) as server, httpx.AsyncClient() as http:
        client = ComfyUIClient(server.url, http, limits=ReadLimits(answer_bytes=256_000))
        with anyio.fail_after(10), pytest.raises(UpstreamError) as caught:
            await client.models("loras")
    assert "far larger answer to GET /models/loras" in caught.value.message
    # What the server managed to push into the socket buffers before we hung up, not the 100 MB.
    assert server.bytes_sent < 30_000_000


async def test_a_download_above_its_cap_is_refused_and_a_catalogue_has_its_own_cap() -> None:
    def answer(path: str) -> Reply:
        if path.startswith("/view"):
            return Reply(body=b"\x89PNG" + b"\x00" * 20_000, content_type="image/png")
        return Reply.json({f"Node{i}": {"input": {}, "output": []} for i in range(200)})

    limits = ReadLimits(answer_bytes=1024, object_info_bytes=100_000, download_bytes=10_000)
    async with serve_hostile(answer) as server, httpx.AsyncClient() as http:
        client = ComfyUIClient(server.url, http, limits=limits)
        assert len(await client.object_info()) == 200  # ~8 KB: above the JSON cap, within the catalogue's
        with pytest.raises(UpstreamError) as caught:
            await client.view(OutputFile(filename="big.png"))
    assert "over 10,000 bytes" in caught.value.message and "max_download_bytes" in caught.value.hint


async def test_a_trickling_answer_is_cut_at_the_request_deadline() -> None:
    body = b'{"queue_running": [], "queue_pending": []}'
    async with serve_hostile(lambda path: Reply(body=body, trickle=0.05)) as server, httpx.AsyncClient() as http:
        with anyio.fail_after(5), pytest.raises(UpstreamError) as caught:
            await ComfyUIClient(server.url, http, timeout=0.4).queue()
    assert caught.value.retryable
    assert "did not finish answering GET /queue within 0.4 s" in caught.value.message
    assert server.bytes_sent < len(body)  # every read was quick; only the total deadline stops this


async def test_status_with_a_trickling_server_answers_within_its_deadline_and_reports_the_others(home: Path) -> None:
    stats = b'{"system": {"comfyui_version": "0.3.64"}, "devices": []}'
    async with serve_hostile(lambda path: Reply(body=stats, trickle=0.1)) as slow, serve_fake() as fake:
        async with studio(home, [slow.url, fake.url], ATEGNATOS_COMFYUI__STATUS_TIMEOUT_SECONDS="0.5") as client:
            with anyio.fail_after(5):
                status = await client.call_tool("comfyui_status", {})
    assert not status.is_error, _text(status)
    wrong, right = status.structured_content["servers"]
    assert not wrong["reachable"] and "did not finish" in wrong["error"] and "0.5 s" in wrong["error"]
    assert right["reachable"]
    assert slow.bytes_sent < len(stats)


async def test_a_huge_answer_through_the_tools_is_a_plain_error_and_the_server_goes_on(home: Path) -> None:
    chunk = b"x" * 65536
    async with serve_hostile(lambda path: Reply(body=chunk, repeat=1000, length=-1)) as big:
        async with studio(home, [big.url], ATEGNATOS_COMFYUI__MAX_ANSWER_BYTES="100000") as client:
            with anyio.fail_after(10):
                status = await client.call_tool("comfyui_status", {})
                again = await client.call_tool("workflow_manage", {"action": "list"})
    assert not status.is_error, _text(status)
    [server] = status.structured_content["servers"]
    assert not server["reachable"] and "far larger answer" in server["error"]
    assert big.bytes_sent < 30_000_000
    assert not again.is_error


async def test_submitting_to_an_address_that_is_not_comfyui_says_so_and_names_the_next_step(home: Path) -> None:
    params = {"prompt": "a red fox", "checkpoint": "x.safetensors"}
    async with serve_hostile(NOT_COMFYUI["a web page"]) as other:
        async with studio(home, [other.url]) as client:
            alone = await client.call_tool("comfyui_submit", {"template": "txt2img-sdxl", "params": params})
        async with studio(home, [other.url, "http://127.0.0.1:9"]) as client:
            both = await client.call_tool("comfyui_submit", {"template": "txt2img-sdxl", "params": params})
    assert alone.is_error and f"Something answers at {other.url}, but it is not ComfyUI" in _text(alone)
    assert "Check the address and the port" in _text(alone)
    assert both.is_error and "No ComfyUI is answering:" in _text(both)
    assert f"- Something answers at {other.url}, but it is not ComfyUI" in _text(both)
    assert "- ComfyUI at http://127.0.0.1:9 is not reachable (nothing answered at that address)" in _text(both)
