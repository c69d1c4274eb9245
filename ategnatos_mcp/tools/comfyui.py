"""MCP adapter for ComfyUI: comfyui_status, comfyui_submit, comfyui_job, workflow_manage, ategnatos://workflows/{name}."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from ategnatos_mcp.comfyui import JobView, LoraChoice, StatusView, WorkflowAnswer, read_workflow
from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.tools._common import ImagePart, app_of, guard, guard_resource, progress_reporter, respond
from ategnatos_mcp.tools._definitions import add_tool
from ategnatos_mcp.wiring import Wiring

__all__ = ["register"]


async def _answer(ctx: Context[Wiring], view: JobView) -> CallToolResult:
    app = app_of(ctx)
    service = await app.comfyui_service()
    previews = await service.previews(view) if view.files else []
    # the previews follow the job's pictures in order, each marked previewed when it fit the byte budget
    shown = [f for f in view.files if f.kind == "image" and f.previewed]
    names = [Path(f.path).name for f in shown] + [f"picture of job {view.job_id}"] * len(previews)
    images = [
        ImagePart(data=data, mime_type=mime, label=name) for (data, mime), name in zip(previews, names, strict=False)
    ]
    links = [(Path(f.path).as_uri(), Path(f.path).name, None) for f in view.files]
    text = view.describe()
    if view.state not in ("queued", "running") and (note := await app.teardown_note(view.server)):
        text += "\n" + note
    return respond(view, text, next_step=_after_job(view), images=images, links=links)


def _after_job(view: JobView) -> str:
    if view.state in ("queued", "running"):
        return f"Follow it: comfyui_job job_id='{view.job_id}' action='wait'."
    if view.state == "succeeded":
        return (
            "Show the artist the pictures; with their reaction, art_prompt mode='adjust' (same project and asset) "
            "makes the next version, art_iterations action='approve' marks the one they choose."
        )
    return "Read the error above with the artist; fix what it names and submit again."


@guard
async def comfyui_status(ctx: Context[Wiring]) -> Annotated[CallToolResult, StatusView]:
    """Each configured ComfyUI server: reachable or not (and how to start it), version, queue, models,
    plus this session's unfinished jobs."""
    view = await (await app_of(ctx).comfyui_service()).status()
    if any(s.reachable for s in view.servers):
        step = "Generate with comfyui_submit (art_prompt prepares complete arguments for it)."
    else:
        step = "Start ComfyUI (or correct its address in ategnatos.toml), then call comfyui_status again."
    return respond(view, view.describe(), next_step=step)


@guard
async def comfyui_submit(
    ctx: Context[Wiring],
    template: Annotated[
        str | None,
        Field(
            description="Built-in template, e.g. txt2img-sdxl, txt2img-flux, img2img-sdxl, upscale-esrgan (workflow_manage list describes all)."
        ),
    ] = None,
    params: Annotated[
        dict[str, Any] | None,
        Field(description="Template parameters, e.g. {'prompt': '...', 'checkpoint': '...', 'seed': 7}."),
    ] = None,
    workflow: Annotated[
        dict[str, Any] | str | None,
        Field(description="Instead of a template: a full API-format workflow object, or the name of a saved one."),
    ] = None,
    loras: Annotated[
        list[LoraChoice] | None,
        Field(description="LoRA stack for templates, e.g. [{'name': 'mascot.safetensors', 'weight': 0.8}]."),
    ] = None,
    images: Annotated[
        dict[str, str] | None,
        Field(
            description="Pictures to upload: template image parameter (or LoadImage node id) -> file path in the project."
        ),
    ] = None,
    wait_seconds: Annotated[
        float, Field(ge=0, le=300, description="How long to wait for the pictures before returning a job handle.")
    ] = 30.0,
    allow_flagged_nodes: Annotated[
        bool, Field(description="Only after the user agreed: run nodes that call paid APIs or run arbitrary code.")
    ] = False,
    project: Annotated[
        str | None,
        Field(max_length=200, description="With `asset`: log the job (seed, model, pictures) on that asset's history."),
    ] = None,
    asset: Annotated[
        str | None, Field(max_length=200, description="The asset inside `project`, e.g. 'mascot'.")
    ] = None,
    version: Annotated[
        int | None,
        Field(ge=1, description="The asset version the prompt is (art_prompt fills it in); omitted: a new version."),
    ] = None,
) -> Annotated[CallToolResult, JobView]:
    """Generate with ComfyUI (a template or a workflow).

    Checks it against the server first (missing models or nodes are named with close matches; nothing queued),
    routes it to the least busy server that has what it needs, streams progress, and returns previews of the
    pictures (full size in workspace/outputs). Still running after wait_seconds: follow it with comfyui_job.
    With project and asset (art_prompt's `comfyui_submit` carries them) the job is logged on the asset."""
    if bool(project) != bool(asset):
        raise InvalidRequestError(
            "Give both a project and an asset to log this generation, or neither.",
            hint="Pass the `comfyui_submit` arguments art_prompt returned as they are.",
        )
    service = await app_of(ctx).comfyui_service()
    view = await service.submit(
        template=template,
        params=params or {},
        workflow=workflow,
        loras=loras or [],
        images=images or {},
        wait_seconds=wait_seconds,
        allow_flagged=allow_flagged_nodes,
        progress=progress_reporter(ctx),
    )
    if project and asset:
        saved = workflow if isinstance(workflow, str) else None
        await app_of(ctx).log_generation(view, (project, asset, version), saved)
        if isinstance(workflow, dict):
            view.asset_log = (view.asset_log or "") + (
                " The workflow was passed inline: save it with workflow_manage so this version can be made again."
            )
    return await _answer(ctx, view)


@guard
async def comfyui_job(
    ctx: Context[Wiring],
    job_id: Annotated[str, Field(description="The job_id comfyui_submit returned.")],
    action: Annotated[
        Literal["status", "wait", "results", "cancel"],
        Field(description="status, wait (up to wait_seconds), results (files + previews) or cancel."),
    ] = "wait",
    wait_seconds: Annotated[float, Field(ge=0, le=300, description="For wait: how long to wait at most.")] = 30.0,
) -> Annotated[CallToolResult, JobView]:
    """Follow a ComfyUI job: look at its state, wait for it (with progress), get its pictures, or cancel it."""
    service = await app_of(ctx).comfyui_service()
    mode = "status" if action == "results" else action
    view = await service.job(job_id, mode, wait_seconds, progress_reporter(ctx))
    await app_of(ctx).log_generation(view, None)
    if action == "status":
        return respond(view, view.describe(), next_step=_after_job(view))
    return await _answer(ctx, view)


@guard
async def workflow_manage(
    ctx: Context[Wiring],
    action: Annotated[
        Literal["list", "get", "save", "delete"],
        Field(description="list (templates + saved), get, save (imports editor exports too), delete."),
    ],
    name: Annotated[str | None, Field(description="Workflow name (file name in grimoire/workflows/).")] = None,
    workflow: Annotated[
        dict[str, Any] | None,
        Field(description="For save: the workflow JSON, API format or a ComfyUI editor (UI) export."),
    ] = None,
    overwrite: Annotated[bool, Field(description="For save: replace an existing workflow of that name.")] = False,
) -> Annotated[CallToolResult, WorkflowAnswer]:
    """Built-in templates and the artist's saved ComfyUI workflows: list, get, save, delete. A saved
    editor (UI) export is converted to API format with the server's node catalogue."""
    answer = await (await app_of(ctx).comfyui_service()).manage_workflow(action, name, workflow, overwrite)
    if action == "list":
        names = [t["name"] for t in answer.templates]
        saved = [w.name for w in answer.workflows]
        text = f"Templates: {', '.join(names)}.\nSaved workflows: {', '.join(saved) or 'none yet'}."
    elif action == "save":
        nodes = answer.saved.nodes if answer.saved else 0
        text = f"Saved '{name}' ({nodes} nodes) to {answer.path}" + (
            " (converted from the editor format; workflow_manage get shows the result)."
            if answer.converted_from_ui
            else "."
        )
    elif action == "delete":
        text = f"Deleted workflow '{name}'."
    else:
        text = f"Workflow '{name}' ({len(answer.workflow or {})} entries)."
    steps = {
        "list": "Run one with comfyui_submit: template='<name>' with its params, or workflow='<saved name>'.",
        "save": f"Run it with comfyui_submit workflow='{name}'.",
        "get": f"Run it with comfyui_submit workflow='{name}' (or template='{name}' for a built-in one).",
        "delete": "",
    }
    return respond(answer, text, next_step=steps[action])


def register(server: MCPServer[Wiring], app: Wiring) -> None:
    """Register the ComfyUI tools and the workflow resource."""
    add_tool(
        server,
        comfyui_status,
        name="comfyui_status",
        title="Check the ComfyUI servers",
        read_only=True,
        open_world=True,
    )
    add_tool(server, comfyui_submit, name="comfyui_submit", title="Generate images on ComfyUI", open_world=True)
    add_tool(
        server,
        comfyui_job,
        name="comfyui_job",
        title="Follow or cancel a ComfyUI job",
        destructive=True,
        idempotent=True,
        open_world=True,
    )
    add_tool(
        server, workflow_manage, name="workflow_manage", title="List, read, save or delete workflows", destructive=True
    )

    @guard_resource
    async def workflow_resource(name: str) -> str:
        return json.dumps(await read_workflow(app.settings, name), indent=2)

    server.resource(
        "ategnatos://workflows/{name}",
        name="workflow",
        title="A saved ComfyUI workflow or built-in template (JSON)",
        description="name is a built-in template or a workflow saved with workflow_manage (which lists them).",
        mime_type="application/json",
    )(workflow_resource)
