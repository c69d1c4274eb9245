"""GPU cloud endpoints that misbehave on real sockets (issue 16, points 6 and 11).

A loopback HTTP server stands in for the cloud: it trickles its answer a byte at a time, sends a body that never
ends, or never answers at all. The server is built by the real factory from settings (keys and API URLs), and the
tools are called through a real MCP client. Short limits in the settings keep the tests fast; the same code paths
run with the defaults (60 s per answer, 8 MB, 60 s of teardown per provider).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
import respx
from mcp import Client

from ategnatos_mcp.providers import GPU_DOCUMENT, GpuDocument, InstanceStatus, Rental, open_gpu_service
from ategnatos_mcp.server import build_app, build_server
from ategnatos_mcp.settings import Settings, load_settings
from tests.support.fake_clouds import LAMBDA_KEY, RUNPOD_KEY, VAST_KEY, FakeRunPod
from tests.support.hostile_http import Mode, hostile_endpoint

pytestmark = pytest.mark.integration


def _settings(home: Path, url: str, **gpu: str) -> Settings:
    env = {
        "ATEGNATOS_HOME": str(home),
        "ATEGNATOS_COMFYUI_URL": "http://127.0.0.1:9",
        "RUNPOD_API_KEY": RUNPOD_KEY,
        "VAST_API_KEY": VAST_KEY,
        "LAMBDA_API_KEY": LAMBDA_KEY,
        "ATEGNATOS_RUNPOD_API_URL": f"{url}/v2",
        "ATEGNATOS_VAST_API_URL": f"{url}/api/v0",
        "ATEGNATOS_LAMBDA_API_URL": f"{url}/api/v1",
    }
    env.update({f"ATEGNATOS_GPU__{name.upper()}": value for name, value in gpu.items()})
    return load_settings(env=env)


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("trickle", "did not answer in time (Ategnatos waits at most 0.5 seconds for an answer)"),
        ("huge", "sent an answer larger than 1 MB"),
    ],
)
async def test_a_trickling_or_endless_answer_becomes_a_plain_error(home: Path, mode: Mode, words: str) -> None:
    async with hostile_endpoint(mode, interval=0.1) as endpoint:
        settings = _settings(home, endpoint.url, provider_answer_seconds="0.5", provider_answer_max_mb="1")
        app = build_app(settings)
        async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
            with anyio.fail_after(15):  # a hang guard only: without the limits these calls never end
                offers = await client.call_tool("gpu_offers", {"gpu": "4090"})
    await app.exit_stack.aclose()
    assert not offers.is_error, offers.content
    skipped = offers.structured_content["not_searched"]  # type: ignore[index]
    assert {entry.split(" (")[0] for entry in skipped} == {"RunPod", "Vast.ai", "Lambda"}
    assert all(words in entry for entry in skipped), skipped
    searches = [r for r in endpoint.requests if "/catalog/gpus" in r or "/bundles/" in r or "/instance-types" in r]
    assert len(searches) == 3  # one call each: nothing retried a hopeless answer
    if mode == "huge":
        # Reading stopped at the cap: each answer was cut off long before its 64 MB end (socket buffers aside).
        assert endpoint.bytes_sent < len(endpoint.requests) * 16 * 1_048_576


async def test_teardown_against_silent_providers_is_bounded_reports_progress_and_names_the_retry(home: Path) -> None:
    """RunPod answers (the recorded fake); Vast.ai and Lambda accept the connection and never answer."""
    runpod = FakeRunPod()
    async with hostile_endpoint("silent") as silent:
        settings = _settings(home, silent.url, provider_answer_seconds="0.4", teardown_seconds="1")
        settings = settings.model_copy(update={"runpod_api_url": "https://api.runpod.io/v2"})
        app = build_app(settings)
        pod = runpod.add_pod("ategnatos-0001-train")
        async with app.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            for provider, instance_id in (("runpod", pod), ("vast", "28765433"), ("lambda", "0920582c")):
                rental = Rental(
                    provider=provider,  # type: ignore[arg-type]
                    instance_id=instance_id,
                    gpu="RTX4090",
                    usd_per_hour=0.5,
                    status=InstanceStatus.RUNNING,
                    started_at=app.clock(),
                )
                upd.doc.rentals[rental.key] = rental
        reported: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            reported.append((progress, total, message))

        with respx.mock(assert_all_called=False) as mock:
            mock.route(host="api.runpod.io").mock(side_effect=runpod.handle)
            mock.route(host="127.0.0.1").pass_through()
            app.gpu = await open_gpu_service(settings, app.store, app.exit_stack, clock=app.clock)
            async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
                with anyio.fail_after(10):  # a hang guard only
                    torn = await client.call_tool(
                        "gpu_teardown", {"all_instances": True}, progress_callback=on_progress
                    )
                    listing = await client.call_tool("gpu_instances", {})
        await app.exit_stack.aclose()

    assert not torn.is_error, torn.content
    data: dict[str, Any] = torn.structured_content  # type: ignore[assignment]
    outcomes = {item["key"]: item["outcome"] for item in data["items"]}
    assert outcomes == {f"runpod:{pod}": "terminated", "vast:28765433": "unconfirmed", "lambda:0920582c": "unconfirmed"}
    assert data["unconfirmed"] == ["vast:28765433", "lambda:0920582c"]
    retry = 'gpu_teardown with keys=["vast:28765433", "lambda:0920582c"]'
    assert retry in data["next_step"] and retry in torn.content[0].text  # type: ignore[union-attr]
    assert runpod.pods == {}
    # The silent providers were asked (more than once: terminate is retried until the time limit).
    assert sum("DELETE /api/v0/instances/28765433/" in r for r in silent.requests) >= 1
    assert sum("/instance-operations/terminate" in r for r in silent.requests) >= 1
    # Progress reached the client while it worked: the start, RunPod's end, and waiting for the silent two.
    messages = [message or "" for _, _, message in reported]
    assert messages[0].startswith("Tearing down 3 instance(s)")
    assert any(m.startswith(f"runpod:{pod}: terminated") for m in messages)
    assert any("Still waiting for Lambda, Vast.ai" in m for m in messages)
    assert [p for p, _, _ in reported] == sorted({p for p, _, _ in reported})  # strictly growing
    # The listing still shows both as billing, and says plainly that their providers could not be checked.
    assert [i["key"] for i in listing.structured_content["instances"]] == ["vast:28765433", "lambda:0920582c"]  # type: ignore[index]
    notes = listing.structured_content["notes"]  # type: ignore[index]
    assert [n.split(" could not be checked just now")[0] for n in notes] == ["Vast.ai", "Lambda"]
    assert all("did not answer in time" in n for n in notes)
    doc = GpuDocument.model_validate_json((settings.state_dir / "gpu.json").read_text(encoding="utf-8"))
    assert doc.rentals["vast:28765433"].ended_at is None and doc.rentals["lambda:0920582c"].ended_at is None
    assert doc.rentals[f"runpod:{pod}"].status is InstanceStatus.TERMINATED
