"""build_server(settings): the MCP server, its lifespan, and every domain's tools, resources and prompts."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, InputRequiredResult
from pydantic import ValidationError

from ategnatos_mcp import __version__
from ategnatos_mcp.context import AppContext
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.tools import (
    art,
    comfyui,
    dataset,
    evaluation,
    export,
    eye,
    gpu,
    remote,
    runs,
    skills,
    studio,
    training,
)
from ategnatos_mcp.tools._common import argument_problems

__all__ = ["DOMAINS", "build_server"]

logger = logging.getLogger("ategnatos_mcp")

# Each module has `register(server, app)` and may have `async def startup(app)` (run in the background).
DOMAINS: tuple[ModuleType, ...] = (
    eye,
    studio,
    comfyui,
    art,
    export,
    dataset,
    training,
    runs,
    evaluation,
    gpu,
    remote,
    skills,
)

INSTRUCTIONS = """Ategnatos is an AI-art studio assistant for artists. It remembers the artist's taste (eye_*),
knows their studio (studio_*), runs ComfyUI (comfyui_*), rents GPUs only with a quote and a yes (gpu_*),
prepares datasets (dataset_*) and trains LoRAs behind four gates (train_*, launch_training).
Speak plainly: the user is an artist, not an ML engineer. Read the eye before making art; only eye_update
writes it. Never rent a GPU or launch training without the user's explicit confirmation."""


def build_app(settings: Settings) -> AppContext:
    store = GrimoireStore(settings.grimoire_dir)
    return AppContext(settings=settings, store=store)


class AtegnatosServer(MCPServer[AppContext]):
    """MCPServer whose argument refusals read like every other refusal of ours (what is wrong, what next)."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[AppContext, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc, UnexpectedToolError) or not isinstance(exc.__cause__, ValidationError):
                raise
            # The cause stays the ValidationError: the SDK logs only the rejected field names then.
            raise ToolError(f"Error executing tool {name}: {argument_problems(name, exc.__cause__)}") from exc.__cause__


def build_server(settings: Settings, *, app: AppContext | None = None) -> MCPServer[AppContext]:
    """Construct the server. ``app`` may be passed in by tests that pre-load fake services."""
    app = app or build_app(settings)

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppContext]) -> AsyncIterator[AppContext]:
        async with app.exit_stack, anyio.create_task_group() as tg:
            app.task_group = tg
            for module in DOMAINS:
                startup = getattr(module, "startup", None)
                if startup is not None:
                    tg.start_soon(startup, app)
            try:
                yield app
            finally:
                tg.cancel_scope.cancel()
                app.task_group = None
        app.services.clear()

    server: MCPServer[AppContext] = AtegnatosServer(
        name="ategnatos",
        title="Ategnatos — AI-art studio",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=lifespan,
        log_level=settings.log_level,
    )
    for module in DOMAINS:
        module.register(server, app)
    return server
