"""Ategnatos pointed at fake ComfyUI servers: the whole server through a real MCP client (``studio``), or a bare
ComfyUI pool (``pool_for``); and the recorded workflows (``workflow``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client

from ategnatos_mcp.comfyui.pool import ComfyUIPool, open_pool
from ategnatos_mcp.server import build_app, build_server
from ategnatos_mcp.settings import ComfyUISettings, load_settings
from tests.support.fake_comfyui import FIXTURES, FakeComfyUI

SD15 = "mcp_random_sd15_layout.safetensors"  # a checkpoint the fake ComfyUI lists


@asynccontextmanager
async def studio(
    home: Path, *fakes: FakeComfyUI, urls: list[str] | None = None, **env_extra: str
) -> AsyncIterator[Client]:
    """An MCP client of a server in ``home`` whose ComfyUI servers are ``fakes`` (or ``urls``); ``client.app`` is
    its wiring."""
    env = {"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": ",".join(urls or [f.url for f in fakes])}
    env |= env_extra
    settings = load_settings(env=env)
    app = build_app(settings)
    async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def workflow(name: str) -> dict[str, Any]:
    """A recorded ComfyUI workflow (API format) from ``tests/fixtures/comfyui/workflows``."""
    return json.loads((FIXTURES / "workflows" / f"{name}.json").read_text(encoding="utf-8"))


@asynccontextmanager
async def pool_for(urls: list[str], tmp_path: Path, **settings: Any) -> AsyncIterator[ComfyUIPool]:
    """A ComfyUI pool over ``urls`` saving into ``tmp_path / "outputs"``; ``settings`` override ComfyUISettings."""
    cfg = ComfyUISettings(**{"urls": urls, "request_timeout_seconds": 5, "down_retry_seconds": 30, **settings})
    async with open_pool(urls, settings=cfg, outputs_dir=tmp_path / "outputs") as pool:
        yield pool
