"""When an instance ends, its SSH session and ComfyUI tunnel close and the pool stops using it.

A real SSH server on 127.0.0.1 stands in for the GPU host (a tiny HTTP server behind it for ComfyUI); RunPod is
the recorded fake. The rental goes through the MCP tools; the tunnel is opened by the real Deployer and added to
the real ComfyUI pool as remote_deploy does. Then teardown, or a reconcile that finds the pod gone or past its
hour cap, must close the forwarded port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mcp import Client

from ategnatos_mcp.providers import Deployer, DeployPlan, GpuService
from ategnatos_mcp.remote import SSHConnector
from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import GpuSettings, Settings
from ategnatos_mcp.wiring import Wiring
from tests.support.fake_clouds import FakeClock, FakeDeployer, FakeRunPod, make_service
from tests.support.fake_comfyui import serve_fake
from tests.support.hostile_http import tiny_http_server
from tests.support.ssh_server import SSHTestServer, ssh_lab

pytestmark = pytest.mark.integration


@dataclass
class Rig:
    client: Client
    app: Wiring
    runpod: FakeRunPod
    clock: FakeClock
    service: GpuService
    deployer: Deployer
    connector: SSHConnector
    server: SSHTestServer
    key: str
    pod_id: str
    url: str
    comfy_port: int


async def _answers(url: str) -> bool:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
        try:
            return (await http.get(f"{url}/system_stats")).status_code == 200
        except httpx.TransportError:
            return False


@asynccontextmanager
async def rented_and_tunnelled(
    tmp_path: Path,
    settings: Settings,
    app: Wiring,
    caps: GpuSettings | None = None,
    backend: Callable[[], AbstractAsyncContextManager[int]] = tiny_http_server,
) -> AsyncIterator[Rig]:
    """``backend`` serves the instance's ComfyUI port on 127.0.0.1 (a stub answering /system_stats by default)."""
    runpod, clock = FakeRunPod(), FakeClock()
    async with backend() as comfy_port, ssh_lab(tmp_path) as (server, connector, _host):
        service = make_service(app.store, [runpod], clock, caps=caps)
        # The spin-up installs the watchdog through a stand-in: the real one would stop "the instance" (this box).
        app.gpu, app.ssh, app.deployer = service, connector, FakeDeployer()
        async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
            offers = await client.call_tool("gpu_offers", {"gpu": "4090", "hours": 1})
            quote_id = offers.structured_content["offers"][0]["quote_id"]  # type: ignore[index]
            rented = await client.call_tool("gpu_spinup", {"quote_id": quote_id, "confirm": True})
            assert not rented.is_error, rented.content
            key = rented.structured_content["instance"]["key"]  # type: ignore[index]
            pod_id = key.split(":", 1)[1]
            # The pod's SSH endpoint is the loopback server (RunPod reports host/port under ssh.direct).
            runpod.pods[pod_id]["ssh"]["direct"].update(host="127.0.0.1", port=server.port)
            deployer = Deployer(connector, app.exit_stack)
            app.deployer = deployer
            rental = await service.refreshed(key)
            plan = DeployPlan(target="comfyui", steps=[], comfyui_port=comfy_port, forward=True, ready_seconds=5)
            deployed = await deployer.deploy(rental, plan)
            assert deployed.comfyui_answering and deployed.comfyui_url is not None
            pool = await app.comfyui_pool()
            pool.add_server(deployed.comfyui_url)  # what remote_deploy does with the tunnel
            assert await _answers(deployed.comfyui_url)
            assert deployer.held == [key] and await connector.host_keys.get(key) is not None
            yield Rig(
                client,
                app,
                runpod,
                clock,
                service,
                deployer,
                connector,
                server,
                key,
                pod_id,
                deployed.comfyui_url,
                comfy_port,
            )


async def _assert_released(rig: Rig) -> None:
    assert not await _answers(rig.url), "the forwarded port still answers"
    assert rig.deployer.held == [] and rig.deployer.forwards == {}
    assert rig.url not in (await rig.app.comfyui_pool()).urls


async def test_teardown_closes_the_tunnel_and_the_session(tmp_path: Path, settings: Settings, app: Wiring) -> None:
    async with rented_and_tunnelled(tmp_path, settings, app) as rig:
        torn = await rig.client.call_tool("gpu_teardown", {"keys": [rig.key]})
        assert not torn.is_error and torn.structured_content["items"][0]["outcome"] == "terminated"  # type: ignore[index]
        await _assert_released(rig)
        # Terminated for good: its pinned host key is forgotten too.
        assert await rig.connector.host_keys.get(rig.key) is None


async def test_a_pod_gone_at_the_provider_is_released_by_the_next_listing(
    tmp_path: Path, settings: Settings, app: Wiring
) -> None:
    async with rented_and_tunnelled(tmp_path, settings, app) as rig:
        del rig.runpod.pods[rig.pod_id]  # ended outside Ategnatos (console, zero balance)
        listing = await rig.client.call_tool("gpu_instances", {})
        assert not listing.is_error and "no longer listed" in str(listing.structured_content)
        await _assert_released(rig)


async def test_a_pod_stopped_at_the_hour_cap_is_released_but_its_host_key_kept(
    tmp_path: Path, settings: Settings, app: Wiring
) -> None:
    async with rented_and_tunnelled(tmp_path, settings, app, caps=GpuSettings(max_hours_per_instance=1)) as rig:
        rig.clock.advance(2 * 3600)
        listing = await rig.client.call_tool("gpu_instances", {})
        assert "past your cap" in str(listing.structured_content)
        await _assert_released(rig)
        # Stopped keeps the disk (and the host): the pin stays so a changed host would still be noticed.
        assert await rig.connector.host_keys.get(rig.key) is not None


async def test_the_tunnel_keeps_its_url_after_a_drop_or_a_moved_endpoint(
    tmp_path: Path, settings: Settings, app: Wiring
) -> None:
    async with rented_and_tunnelled(tmp_path, settings, app) as rig:
        plan = DeployPlan(target="comfyui", steps=[], comfyui_port=rig.comfy_port, forward=True, ready_seconds=5)
        # The SSH connection drops: a rerun reopens the tunnel on the same local port.
        rig.server.cut()
        again = await rig.deployer.deploy(await rig.service.refreshed(rig.key), plan)
        assert again.comfyui_url == rig.url and again.comfyui_answering
        # The endpoint moved (here: the same server under another host name): a new session, same tunnel URL.
        logins = rig.server.connection_count
        rig.runpod.pods[rig.pod_id]["ssh"]["direct"]["host"] = "localhost"
        moved = await rig.deployer.deploy(await rig.service.refreshed(rig.key), plan)
        assert moved.comfyui_url == rig.url and moved.comfyui_answering
        assert rig.server.connection_count == logins + 1 and rig.deployer.held == [rig.key]
        torn = await rig.client.call_tool("gpu_teardown", {"keys": [rig.key]})
        assert not torn.is_error
        await _assert_released(rig)


@asynccontextmanager
async def _fake_comfyui() -> AsyncIterator[int]:
    async with serve_fake(node_seconds=0.01) as fake:
        yield fake.port


async def test_a_picture_made_on_a_rented_instance_ends_with_a_teardown_reminder(
    tmp_path: Path, settings: Settings, app: Wiring
) -> None:
    async with rented_and_tunnelled(tmp_path, settings, app, backend=_fake_comfyui) as rig:
        params = {"prompt": "a lighthouse at dusk", "checkpoint": "mcp_random_sd15_layout.safetensors", "steps": 4}
        made = await rig.client.call_tool(
            "comfyui_submit", {"template": "txt2img-sdxl", "params": params, "wait_seconds": 20}
        )
        assert not made.is_error, made.content
        assert made.structured_content["server"] == rig.url  # type: ignore[index]  # through the tunnel
        text = made.content[0].text  # type: ignore[union-attr]
        assert "bills until it is torn down" in text and f"gpu_teardown with keys=['{rig.key}']" in text

        torn = await rig.client.call_tool("gpu_teardown", {"keys": [rig.key]})
        assert not torn.is_error
        job = await rig.client.call_tool("comfyui_job", {"job_id": made.structured_content["job_id"]})  # type: ignore[index]
        assert "gpu_teardown" not in job.content[0].text  # type: ignore[union-attr]  # nothing left to tear down


async def test_a_tunnel_that_must_move_to_another_port_reports_the_old_url(
    tmp_path: Path, settings: Settings, app: Wiring
) -> None:
    import socket

    async with rented_and_tunnelled(tmp_path, settings, app) as rig:
        plan = DeployPlan(target="comfyui", steps=[], comfyui_port=rig.comfy_port, forward=True, ready_seconds=5)
        rig.server.cut()
        await rig.deployer.forwards[rig.key].close()  # the tunnel is gone with the connection
        old_port = int(rig.url.rsplit(":", 1)[1])
        with socket.socket() as squatter:  # meanwhile another program took the old local port
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the old tunnel's connections linger
            squatter.bind(("127.0.0.1", old_port))
            squatter.listen()
            moved = await rig.deployer.deploy(await rig.service.refreshed(rig.key), plan)
        assert moved.comfyui_url is not None and moved.comfyui_url != rig.url and moved.comfyui_answering
        assert moved.replaced_urls == [rig.url]
        assert rig.deployer.instance_for(moved.comfyui_url) == rig.key and rig.deployer.instance_for(rig.url) is None
