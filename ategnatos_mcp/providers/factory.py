"""Build the real GpuService from settings: one httpx client per provider with a key, SSH through ``remote``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import datetime

import httpx
from pydantic import SecretStr

from ategnatos_mcp.errors import AtegnatosError
from ategnatos_mcp.providers.clouds.base import AnswerLimits, GpuProvider
from ategnatos_mcp.providers.clouds.lambdalabs import LambdaProvider
from ategnatos_mcp.providers.clouds.local import LocalProvider
from ategnatos_mcp.providers.clouds.runpod import RunPodProvider
from ategnatos_mcp.providers.clouds.vastai import VastProvider
from ategnatos_mcp.providers.rental.service import GpuService
from ategnatos_mcp.remote import HostKeyChangedError, RemoteHost, SSHConnector
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.state import GrimoireStore

__all__ = ["build_providers", "open_gpu_service", "runpod_rest_url", "vast_list_url"]

logger = logging.getLogger("ategnatos_mcp.providers")

_RETIRED_RUNPOD_V1 = "https://rest.runpod.io/v1"
_RUNPOD_V2 = "https://api.runpod.io/v2"
_TIMEOUT = httpx.Timeout(20.0, connect=10.0)


def runpod_rest_url(configured: str) -> str:
    """REST v1 was retired on 2026-11-15; a configuration still pointing there is moved to v2."""
    url = configured.rstrip("/")
    return _RUNPOD_V2 if url == _RETIRED_RUNPOD_V1 else url


def vast_list_url(base: str) -> str:
    """The paginated instance list lives under /api/v1 while everything else is /api/v0."""
    root = base.rstrip("/")
    if root.endswith("/api/v0"):
        root = root[: -len("/api/v0")] + "/api/v1"
    return root + "/instances/"


def _client(stack: AsyncExitStack, base_url: str, key: SecretStr) -> httpx.AsyncClient:
    http = httpx.AsyncClient(
        base_url=base_url.rstrip("/") + "/",
        headers={"Authorization": f"Bearer {key.get_secret_value()}", "Accept": "application/json"},
        timeout=_TIMEOUT,
    )
    stack.push_async_callback(http.aclose)
    return http


def build_providers(settings: Settings, stack: AsyncExitStack) -> tuple[dict[str, GpuProvider], list[str]]:
    """Providers whose keys are set (plus this machine), and the names of those without a key."""
    providers: dict[str, GpuProvider] = {}
    missing: list[str] = []
    limits = AnswerLimits(
        seconds=settings.gpu.provider_answer_seconds, max_bytes=int(settings.gpu.provider_answer_max_mb * 1_048_576)
    )
    if settings.runpod_api_key is not None:
        http = _client(stack, runpod_rest_url(settings.runpod_api_url), settings.runpod_api_key)
        providers["runpod"] = RunPodProvider(http, graphql_url=settings.runpod_graphql_url, limits=limits)
    else:
        missing.append("RunPod")
    if settings.vast_api_key is not None:
        http = _client(stack, settings.vast_api_url, settings.vast_api_key)
        providers["vast"] = VastProvider(http, list_url=vast_list_url(settings.vast_api_url), limits=limits)
    else:
        missing.append("Vast.ai")
    if settings.lambda_api_key is not None:
        http = _client(stack, settings.lambda_api_url, settings.lambda_api_key)
        providers["lambda"] = LambdaProvider(http, limits=limits)
    else:
        missing.append("Lambda")
    providers["local"] = LocalProvider()
    return providers, missing


async def open_gpu_service(
    settings: Settings,
    store: GrimoireStore,
    stack: AsyncExitStack,
    *,
    clock: Callable[[], datetime],
    connector: SSHConnector | None = None,
) -> GpuService:
    """The service the gpu tools use; clients close with ``stack``. ``connector`` is shared with remote_deploy."""
    connector = connector or SSHConnector.from_settings(settings)

    async def public_key() -> str:
        return (await connector.key()).public_key

    async def probe(host: str, port: int, user: str, identity: str) -> bool:
        # A real SSH login (not just an open port) that also pins the host key on first contact.
        try:
            async with connector.session(RemoteHost(host=host, port=port, username=user, name=identity)) as ssh:
                await ssh.run("true", timeout=20)
        except HostKeyChangedError:
            raise  # a different host answering is a security problem to report, never "not ready yet"
        except AtegnatosError as exc:
            logger.info("ssh to %s not ready: %s", identity, exc.message)
            return False
        return True

    providers, missing = build_providers(settings, stack)
    return GpuService(
        settings.gpu, store, providers, clock=clock, public_key=public_key, probe=probe, missing_keys=missing
    )
