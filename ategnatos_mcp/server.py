"""build_server(settings): the MCP server, its lifespan, and every domain's tools, resources and prompts."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

import anyio
from mcp import MCPError
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.stdio import stdio_server
from mcp.types import INVALID_PARAMS, CallToolResult, GetPromptResult, InputRequiredResult, Tool
from pydantic import ValidationError

from ategnatos_mcp import __version__
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
from ategnatos_mcp.tools._definitions import lean_tool
from ategnatos_mcp.tools._stdio import sift_malformed
from ategnatos_mcp.tools.skills import prompt_problem
from ategnatos_mcp.wiring import Wiring

__all__ = ["DOMAINS", "build_server"]

logger = logging.getLogger("ategnatos_mcp")

# Each module has `register(server, wiring)`: its tools, resources and prompts.
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


def build_app(settings: Settings) -> Wiring:
    return Wiring(settings=settings, store=GrimoireStore(settings.grimoire_dir))


class AtegnatosServer(MCPServer[Wiring]):
    """MCPServer whose refusals read like every other refusal of ours (what is wrong, what next): tool arguments,
    prompt names and arguments, and stdin lines that are not JSON-RPC messages. Its tools are published lean."""

    async def list_tools(self) -> list[Tool]:
        return [lean_tool(tool) for tool in await super().list_tools()]

    async def run_stdio_async(self) -> None:
        async with stdio_server() as (read_stream, write_stream), sift_malformed(read_stream, write_stream) as sifted:
            lowlevel = self._lowlevel_server
            await lowlevel.run(sifted, write_stream, lowlevel.create_initialization_options())

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Wiring, Any] | None = None
    ) -> GetPromptResult | InputRequiredResult:
        # The SDK answers an unknown prompt or argument as an internal error, with a traceback in the log.
        prompts = {prompt.name: prompt for prompt in await self.list_prompts()}
        if (problem := prompt_problem(prompts, name, arguments or {})) is not None:
            raise MCPError(INVALID_PARAMS, problem)
        return await super().get_prompt(name, arguments, context)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Wiring, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc, UnexpectedToolError) or not isinstance(exc.__cause__, ValidationError):
                raise
            # The cause stays the ValidationError: the SDK logs only the rejected field names then.
            raise ToolError(f"Error executing tool {name}: {argument_problems(name, exc.__cause__)}") from exc.__cause__


def build_server(settings: Settings, *, app: Wiring | None = None) -> MCPServer[Wiring]:
    """Construct the server. ``app`` may be passed in by tests that pre-load fake services."""
    app = app or build_app(settings)

    @asynccontextmanager
    async def lifespan(_: MCPServer[Wiring]) -> AsyncIterator[Wiring]:
        await app.start()
        async with app.exit_stack, anyio.create_task_group() as tg:
            app.task_group = tg
            tg.start_soon(app.reconcile_clouds)
            tg.start_soon(app.tidy_workspace)
            try:
                yield app
            finally:
                tg.cancel_scope.cancel()
                app.task_group = None
        app.forget_services()

    server: MCPServer[Wiring] = AtegnatosServer(
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
