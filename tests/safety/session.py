"""The sweep's side of a session: the real server in memory, and one call with the invariant checked after it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp import Client

from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.wiring import Wiring
from tests.safety.artist import Snapshot


def text_of(result: Any) -> str:
    """The text blocks of an answer."""
    return "\n".join(c.text for c in result.content if c.type == "text")


@asynccontextmanager
async def serve(settings: Settings, app: Wiring) -> AsyncIterator[Client]:
    """The real server in memory; tests set stand-ins for the GPU, clouds and SSH on the wiring's fields first."""
    async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
        yield client


async def call(client: Client, project: Snapshot, tool: str, args: dict[str, Any], must_refuse: bool = False) -> Any:
    """One call, its refusal or success as expected, and the invariant right after it (a file may also be away in
    the folder ``launch_training fresh=true`` moves an earlier run's saves into, byte for byte)."""
    result = await client.call_tool(tool, args)
    assert result.is_error is must_refuse, (tool, args, text_of(result))
    assert project.check(moved_to=project.home / "workspace" / "training" / "ink" / "earlier-saves") == [], tool
    return result


Call = tuple[str, dict[str, Any], bool]  # tool, arguments, whether it must be refused


def ok(tool: str, **args: Any) -> Call:
    """A call that must go through."""
    return (tool, args, False)


def refused(tool: str, **args: Any) -> Call:
    """A call that must be refused (and change nothing the artist made)."""
    return (tool, args, True)
