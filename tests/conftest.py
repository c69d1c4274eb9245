"""Shared fixtures: every test gets its own project home under tmp_path; nothing touches the real one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from ategnatos_mcp.server import build_app, build_server
from ategnatos_mcp.settings import Settings, load_settings
from ategnatos_mcp.wiring import Wiring
from tests.support.held import held
from tests.support.views import both_views_complete

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Never let a developer's real keys or grimoire leak into a test.
    for name in ("RUNPOD_API_KEY", "VAST_API_KEY", "LAMBDA_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ATEGNATOS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))


@pytest.fixture(autouse=True)
def _every_answer_complete_in_both_views(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every success answer any test receives through ``mcp.Client`` carries the same summary and next step in
    its text and its JSON, and names its pictures in both (what Claude Code and Claude Desktop each read)."""
    call_tool = Client.call_tool

    async def checked(self: Client, name: str, arguments: dict[str, Any] | None = None, *args: Any, **kw: Any) -> Any:
        result = await call_tool(self, name, arguments, *args, **kw)
        if not result.is_error:
            both_views_complete(result, name)
        return result

    monkeypatch.setattr(Client, "call_tool", checked)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    (path / "grimoire").mkdir(parents=True, exist_ok=True)
    (path / "workspace").mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    # No ComfyUI on the default port in tests: an unused loopback port answers "refused" at once.
    return load_settings(env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": "http://127.0.0.1:9"})


@pytest.fixture
def app(settings: Settings) -> Wiring:
    return build_app(settings)


@pytest.fixture
async def client(settings: Settings, app: Wiring) -> AsyncIterator[Client]:
    async with held(Client(build_server(settings, app=app), raise_exceptions=False)) as connected:
        yield connected
