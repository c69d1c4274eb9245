"""MCP adapter for setting up rented instances: remote_deploy (ComfyUI or a trainer, plus the idle watchdog)."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from ategnatos_mcp.providers import DeployResult, DeployTarget, deploy_plan
from ategnatos_mcp.tools._common import app_of, guard, progress_reporter, respond
from ategnatos_mcp.tools._definitions import add_tool
from ategnatos_mcp.wiring import Wiring

__all__ = ["register"]


@guard
async def remote_deploy(
    ctx: Context[Wiring],
    instance: Annotated[str, Field(description="Instance key from gpu_instances, e.g. 'runpod:abc123'.")],
    target: Annotated[
        DeployTarget,
        Field(description="comfyui; a trainer (kohya, simpletuner, ai-toolkit); or watchdog only."),
    ] = "comfyui",
    connect_comfyui: Annotated[
        bool, Field(description="For comfyui: reach it through an SSH tunnel and add it to the pool.")
    ] = True,
) -> Annotated[CallToolResult, DeployResult]:
    """Set up a rented instance: ComfyUI (reached through an SSH tunnel) or a trainer (kohya, SimpleTuner,
    ai-toolkit at the version Ategnatos knows, PyTorch matched to the driver), plus a watchdog that stops it when
    idle or past its hours. Safe to rerun: finished steps are skipped."""
    app = app_of(ctx)
    rental = await (await app.gpu_service()).refreshed(instance)
    caps = app.settings.gpu
    plan = deploy_plan(
        target,
        rental,
        idle_minutes=caps.idle_stop_minutes,
        max_hours=caps.max_hours_per_instance,
        now=app.clock(),
        forward=connect_comfyui,
        vast_api_url=app.settings.vast_api_url,
        trainer_version=app.trainer_version(target),
    )
    result = await app.deploy(rental, plan, progress_reporter(ctx))
    summary, step = _deploy_summary(result)
    return respond(result, summary, next_step=step)


def register(server: MCPServer[Wiring], app: Wiring) -> None:
    """Add remote_deploy (rentals come from tools.gpu)."""
    add_tool(
        server,
        remote_deploy,
        name="remote_deploy",
        title="Set up ComfyUI or a trainer on a GPU",
        idempotent=True,
        open_world=True,
    )


def _deploy_summary(result: DeployResult) -> tuple[str, str]:
    """The summary and the next step of a deploy."""
    done = f"Ran: {', '.join(result.ran)}." if result.ran else "Everything was already set up."
    skipped = f" Already done before: {', '.join(result.skipped)}." if result.skipped else ""
    comfy = f" ComfyUI {result.comfyui}"
    if result.comfyui_url:
        comfy += f", tunnelled to {result.comfyui_url}" + (
            " and answering." if result.comfyui_answering else " (not answering yet)."
        )
    trainer = f" Installed {result.trainer}; {result.pytorch}" if result.trainer else ""
    summary = f"{result.instance}: {done}{skipped}{comfy if result.comfyui else ''}{trainer} {result.watchdog}".strip()
    if result.trainer:
        step = f"Check the instance for the plan (gate 3): train_validate_environment host='{result.instance}'."
    elif result.comfyui_url and not result.comfyui_answering:
        step = "Check comfyui_status in a minute; ComfyUI takes a while to start the first time."
    elif result.comfyui_url:
        step = "Generate with comfyui_submit (it now runs on this instance); tear it down with gpu_teardown when done."
    else:
        step = f"Use the instance (e.g. train_validate_environment with host='{result.instance}'); tear it down with gpu_teardown when done."
    return summary, step
