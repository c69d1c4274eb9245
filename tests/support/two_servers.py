"""Two conversations on one project: two servers (two wirings, each with its own MCP client) on one ATEGNATOS_HOME.

An in-process lock of one wiring does not see the other, exactly as with two server processes; what keeps them
apart must be on disk. ``HeldHosts`` stops one server's training start at a chosen point (the detached start of
the supervisor, after every check) until the test lets it go, so the other server's call lands in that window
every time instead of by luck.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp import Client

from ategnatos_mcp.server import build_app, build_server
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.training.execution import HostRegistry
from ategnatos_mcp.training.execution.hosts import LocalHost
from ategnatos_mcp.training.execution.models import HostSpec
from ategnatos_mcp.wiring import Wiring

__all__ = ["Gate", "HeldHosts", "Server", "text_of", "two_servers"]


def text_of(result: Any) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


@dataclass
class Gate:
    """Where one call waits: ``reached`` is set when it gets there, it goes on once ``go`` is set."""

    reached: anyio.Event = field(default_factory=anyio.Event)
    go: anyio.Event = field(default_factory=anyio.Event)
    armed: bool = False

    async def pass_through(self) -> None:
        if not self.armed:
            return
        self.armed = False  # only the first call through waits
        self.reached.set()
        with anyio.fail_after(30):
            await self.go.wait()


@dataclass
class _HeldLocalHost(LocalHost):
    gate: Gate = field(default_factory=Gate)

    async def start(self, process: str, argv: list[str], *, cwd: str, log: str) -> None:
        await self.gate.pass_through()  # every check is done; the supervisor is about to start
        await super().start(process, argv, cwd=cwd, log=log)


@dataclass
class HeldHosts(HostRegistry):
    """This machine as a training host, whose next supervisor start waits at ``gate`` when it is armed."""

    gate: Gate = field(default_factory=Gate)

    @contextlib.asynccontextmanager
    async def open(self, spec: HostSpec) -> AsyncIterator[Any]:
        assert spec.kind == "local"
        yield _HeldLocalHost(self.runs_root, env=self.local_env, gate=self.gate)


@dataclass
class Server:
    app: Wiring
    client: Client


@contextlib.asynccontextmanager
async def two_servers(settings: Settings) -> AsyncIterator[tuple[Server, Server]]:
    """Two servers on one project, as two conversations have them; set stand-ins on ``app`` before first use."""
    first, second = build_app(settings), build_app(settings)
    async with (
        Client(build_server(settings, app=first), raise_exceptions=False) as one,
        Client(build_server(settings, app=second), raise_exceptions=False) as two,
    ):
        yield Server(first, one), Server(second, two)
