"""This machine's environment as studio_detect and ``doctor`` show it: the studio detects the GPU, driver, disk and
keys, and ComfyUI probes each configured server (studio <- comfyui). Used by the wiring
(``core.Wiring.detect_environment``); imports no wiring itself."""

from __future__ import annotations

from datetime import datetime

from ategnatos_mcp.comfyui import probe_servers
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.studio import ComfyUIServerInfo, Environment, detect_environment, server_info

__all__ = ["this_machine"]


async def _probe_comfyui(urls: list[str]) -> list[ComfyUIServerInfo]:
    return [server_info(probe) for probe in await probe_servers(urls)]


async def this_machine(settings: Settings, now: datetime) -> Environment:
    """The GPU, driver, disk and provider keys of this machine, and each configured ComfyUI server."""
    return await detect_environment(
        now=now,
        disk_path=settings.home,
        provider_keys=settings.provider_keys_present(),
        comfyui_urls=settings.comfyui.urls,
        probe_comfyui=_probe_comfyui,
        nvidia_smi=settings.nvidia_smi,
    )
