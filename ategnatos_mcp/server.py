"""build_server(settings): the MCP server, its lifespan, and every domain's tools, resources and prompts."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType

import anyio
from mcp.server.mcpserver import MCPServer

from ategnatos_mcp import __version__
from ategnatos_mcp.context import AppContext
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.tools import art, comfyui, dataset, export, eye, gpu, runs, skills, studio, training

__all__ = ["DOMAINS", "build_server"]

logger = logging.getLogger("ategnatos_mcp")

# Each module has `register(server, app)` and may have `async def startup(app)` (run in the background).
DOMAINS: tuple[ModuleType, ...] = (eye, studio, comfyui, art, export, dataset, training, runs, gpu, skills)

INSTRUCTIONS = """Ategnatos is an AI-art studio assistant for artists. It remembers the artist's taste (eye_*),
knows their studio (studio_*), runs ComfyUI (comfyui_*), rents GPUs only with a quote and a yes (gpu_*),
prepares datasets (dataset_*) and trains LoRAs behind four gates (train_*, launch_training).
Speak plainly: the user is an artist, not an ML engineer. Read the eye before making art; only eye_update
writes it. Never rent a GPU or launch training without the user's explicit confirmation."""


def build_app(settings: Settings) -> AppContext:
    store = GrimoireStore(settings.grimoire_dir)
    return AppContext(settings=settings, store=store)


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

    server: MCPServer[AppContext] = MCPServer(
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
