"""A provider (or a proxy in front of it) that echoes our request never puts an API key into an answer or a log
(issue 16, point 7).

The real factory builds the three clients from keyed settings (the keys go into each Authorization header), the
recorded fake clouds answer until the hostile switch is thrown, then every call is answered with an echo of the
request: its headers, its URL with the key as ``api_key=`` and URL-encoded, in each cloud's own error envelope, and
a malformed 200 body that makes the parser fail (whose error message quotes its input).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import respx
from mcp import Client

from ategnatos_mcp.providers import open_gpu_service
from ategnatos_mcp.providers.clouds.redact import client_secrets, redact, redact_bytes
from ategnatos_mcp.server import build_app, build_server
from ategnatos_mcp.settings import Settings, load_settings
from tests.support.fake_clouds import (
    LAMBDA_KEY,
    RUNPOD_KEY,
    VAST_KEY,
    FakeClock,
    FakeCloud,
    FakeDeployer,
    FakeLambda,
    FakeRunPod,
    FakeVast,
    Probe,
)
from tests.support.held import held

KEYS = (RUNPOD_KEY, VAST_KEY, LAMBDA_KEY)


def _echo(request: httpx.Request) -> str:
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    headers = "\n".join(f"{name}: {value}" for name, value in request.headers.items())
    return (
        f"Rejected {request.method} {request.url}?api_key={token}&key={quote(token)} "
        f'headers: {headers} {{"Authorization": "Bearer {token}", "api_key": "{token}"}}'
    )


def _hostile(request: httpx.Request) -> httpx.Response:
    text = _echo(request)
    host = request.url.host
    if request.method == "GET" and request.url.path.endswith(("/catalog/gpus", "/instance-types")):
        # A 200 the parser rejects: pydantic's message quotes the input, so it would carry the echo into a log.
        return httpx.Response(200, json={"gpus": [{"id": 7, "name": {"echo": text}}], "data": {"x": {"echo": text}}})
    if request.method == "POST" and request.url.path.endswith("/bundles/"):
        return httpx.Response(502, text=f"<html><body>proxy error: {text}</body></html>")
    if host == "api.runpod.io":
        return httpx.Response(400, json={"title": "Bad Request", "status": 400, "detail": text})
    if host == "console.vast.ai":
        return httpx.Response(400, json={"success": False, "error": "invalid_args", "msg": text})
    return httpx.Response(400, json={"error": {"code": "global/invalid-parameters", "message": text}})


@dataclass
class Rig:
    client: Client
    clouds: dict[str, FakeCloud]
    hostile: dict[str, bool] = field(default_factory=lambda: {"on": False})


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
async def rig(keyed_settings: Settings) -> AsyncIterator[Rig]:
    clouds: dict[str, FakeCloud] = {
        "api.runpod.io": FakeRunPod(),
        "console.vast.ai": FakeVast(),
        "cloud.lambda.ai": FakeLambda(),
    }
    switch = {"on": False}

    def route(request: httpx.Request) -> httpx.Response:
        return _hostile(request) if switch["on"] else clouds[request.url.host].handle(request)

    with respx.mock(assert_all_called=False) as mock:
        mock.route().mock(side_effect=route)
        app = build_app(keyed_settings)
        service = await open_gpu_service(keyed_settings, app.store, app.exit_stack, clock=FakeClock())
        service.probe = Probe()
        service.sleep = FakeClock().sleep
        app.gpu, app.deployer = service, FakeDeployer()
        async with held(Client(build_server(keyed_settings, app=app), raise_exceptions=False)) as client:
            yield Rig(client, clouds, switch)
        await app.exit_stack.aclose()


def _seen(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content) + str(result.structured_content)


async def test_echoed_keys_never_reach_answers_errors_or_logs(
    rig: Rig, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    client = rig.client
    offers = await client.call_tool("gpu_offers", {"min_vram_gb": 24})
    quotes = {o["provider"]: o["quote_id"] for o in reversed(offers.structured_content["offers"])}  # type: ignore[index]
    assert set(quotes) == {"runpod", "vast", "lambda"}
    rented = [
        await client.call_tool("gpu_spinup", {"quote_id": quotes[p], "confirm": True}) for p in ("runpod", "vast")
    ]
    assert not any(r.is_error for r in rented), [r.content for r in rented]

    rig.hostile["on"] = True  # from here on every provider (or the proxy before it) echoes what it was sent
    answers = [await client.call_tool("gpu_offers", {"min_vram_gb": 24})]
    answers.append(await client.call_tool("gpu_spinup", {"quote_id": quotes["lambda"], "confirm": True}))
    answers.append(await client.call_tool("gpu_instances", {"balances": True}))
    answers.append(await client.call_tool("gpu_teardown", {"all_instances": True}))
    seen = [_seen(answer) for answer in answers]

    # The echoes really came back through (so this test can fail): each cloud's failure is in the answers...
    assert answers[1].is_error and "Lambda rejected the request (HTTP 400)" in seen[1]
    not_searched = " ".join(offers_text for offers_text in answers[0].structured_content["not_searched"])  # type: ignore[index]
    assert "RunPod" in not_searched and "Vast.ai" in not_searched and "Lambda" in not_searched
    # ...and no key, in any spelling, is in an answer, a log record or the process's stderr.
    err = capfd.readouterr().err
    for key in KEYS:
        for form in (key, quote(key)):
            assert all(form not in text for text in seen), form
            assert form not in caplog.text
            assert form not in err
    assert any("[redacted]" in text for text in seen)


def test_one_redaction_for_every_shape() -> None:
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {RUNPOD_KEY}"}, params={"api_key": VAST_KEY})
    secrets = client_secrets(http)
    assert RUNPOD_KEY in secrets and VAST_KEY in secrets
    text = (
        f"sent {RUNPOD_KEY} / {quote(VAST_KEY)}; Authorization: Bearer someone-elses-token-123; "
        "url ?api_key=abcdef123456&key=zzzzzzzz99&token=t0k3nvalue; x-api-key: 42424242abc"
    )
    clean = redact(text, secrets)
    for leaked in (RUNPOD_KEY, VAST_KEY, "someone-elses-token-123", "abcdef123456", "zzzzzzzz99", "t0k3nvalue"):
        assert leaked not in clean
    assert "42424242abc" not in clean
    assert clean.startswith("sent [redacted] / [redacted];")
    body = f'{{"msg": "bad key {LAMBDA_KEY}"}}'.encode()
    assert redact_bytes(body, [LAMBDA_KEY]) == b'{"msg": "bad key [redacted]"}'
    # Ordinary words are left alone.
    for plain in ("The key moment: Basic plan, bearer bonds", "basic information here", "Bearer token missing"):
        assert redact(plain, []) == plain
    assert redact("BEARER sk_live_abc and Authorization: Basic dXNlcjo=", []) == (
        "BEARER [redacted] and Authorization: [redacted]"
    )
