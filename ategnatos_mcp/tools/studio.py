"""MCP adapter for the studio inventory: studio_register, studio_detect, ategnatos://studio."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.studio import (
    EntryKind,
    Environment,
    ModelKind,
    RegisterAction,
    accept_studio_edit,
    describe_environment,
    read_studio,
    record_environment,
    register_in_studio,
    render_studio,
)
from ategnatos_mcp.tools._common import app_of, guard, guard_resource, respond
from ategnatos_mcp.tools._definitions import add_tool
from ategnatos_mcp.wiring import Wiring

__all__ = ["register"]

_STUDIO_NEXT = (
    "art_prompt and train_plan use the inventory as it is now; the artist can read or edit grimoire/studio.md."
)


class RegisterResult(BaseModel):
    message: str
    kind: EntryKind | None
    entry: dict[str, Any] | None
    counts: dict[str, int]
    notices: list[str] = Field(default_factory=list)


class DetectResult(BaseModel):
    environment: Environment
    findings: list[str]
    notices: list[str] = Field(default_factory=list)


@guard
async def studio_register(
    ctx: Context[Wiring],
    action: Annotated[
        RegisterAction | Literal["accept_edit"],
        Field(
            description="add (or replace), update, remove; accept_edit (a held-back hand edit of studio.md, when the artist confirms it)."
        ),
    ],
    kind: Annotated[
        EntryKind | None, Field(description="model (checkpoint, VAE, upscaler...), lora, or workflow.")
    ] = None,
    name: Annotated[str, Field(description="The entry's name, e.g. 'Pony V6 XL' or 'mibera-style-v2'.")] = "",
    model_kind: Annotated[ModelKind | None, Field(description="For models: checkpoint, vae, upscaler, ...")] = None,
    base: Annotated[str | None, Field(description="Model family / base model, e.g. SDXL, Pony, FLUX.1.")] = None,
    trigger_words: Annotated[list[str] | None, Field(description="For LoRAs: words that switch it on.")] = None,
    weight_min: Annotated[float | None, Field(description="For LoRAs: lowest useful weight, e.g. 0.6.")] = None,
    weight_max: Annotated[float | None, Field(description="For LoRAs: highest useful weight, e.g. 0.8.")] = None,
    trained_on: Annotated[str | None, Field(description="For LoRAs: what it was trained on (provenance).")] = None,
    good_for: Annotated[str | None, Field(description="For models: what it is good at.")] = None,
    settings: Annotated[
        str | None, Field(description="For models: settings that work, e.g. 'CFG 7, clip_skip 2'.")
    ] = None,
    location: Annotated[str | None, Field(description="Where the file lives (path or URL).")] = None,
    provenance: Annotated[str | None, Field(description="For models: source, author, licence.")] = None,
    description: Annotated[str | None, Field(description="For workflows: what it does.")] = None,
) -> Annotated[CallToolResult, RegisterResult]:
    """Add, update or remove a checkpoint, LoRA or workflow in the artist's studio inventory (grimoire/studio.md)."""
    app = app_of(ctx)
    if action == "accept_edit":
        accepted = await accept_studio_edit(app.store)
        result = RegisterResult(
            message=accepted.message, kind=kind, entry=None, counts=accepted.counts, notices=accepted.notices
        )
        return respond(result, "\n".join([*accepted.notices, accepted.message]), next_step=_STUDIO_NEXT)
    if kind is None:
        raise InvalidRequestError(
            f"{action} needs the kind of entry.", hint="Pass kind: model (checkpoints, VAEs...), lora or workflow."
        )
    fields: dict[str, Any] = {"location": location}
    if kind == "model":
        fields |= {
            "kind": model_kind,
            "base": base,
            "good_for": good_for,
            "settings": settings,
            "provenance": provenance,
        }
    elif kind == "lora":
        fields |= {"trigger_words": trigger_words, "weight_min": weight_min, "weight_max": weight_max}
        fields |= {"base_model": base, "trained_on": trained_on}
    else:
        fields |= {"description": description}
    change = await register_in_studio(app.store, kind, action, name, fields)
    result = RegisterResult(
        message=change.message,
        kind=kind,
        entry=change.entry.model_dump(mode="json") if change.entry else None,
        counts=change.counts,
        notices=change.notices,
    )
    return respond(result, "\n".join([change.message, *change.notices]), next_step=_STUDIO_NEXT)


@guard
async def studio_detect(ctx: Context[Wiring]) -> Annotated[CallToolResult, DetectResult]:
    """Detect this machine's GPU, driver, CUDA, VRAM and free disk, each configured ComfyUI server, and
    which cloud keys are set (never their values); recorded in the studio inventory."""
    app = app_of(ctx)
    env = await app.detect_environment()
    notices = (await record_environment(app.store, env)).notices
    summary = describe_environment(env)
    result = DetectResult(environment=env, findings=summary, notices=notices)
    return respond(result, "\n".join(summary + notices), next_step=_after_detection(env))


def _after_detection(env: Environment) -> str:
    """What to do with what detection found: start ComfyUI, or rent a GPU when this machine has none."""
    unreachable = [server.url for server in env.comfyui if not server.reachable]
    if unreachable:
        return f"Start ComfyUI or correct its URL ({', '.join(unreachable)}); comfyui_status says how."
    if not env.gpus:
        return (
            "No GPU here: for training or heavy generation, find one to rent with gpu_offers (after the artist agrees)."
        )
    return "Everything needed is here: make art with art_prompt and comfyui_submit, or plan a LoRA with train_plan."


def register(server: MCPServer[Wiring], app: Wiring) -> None:
    """Register the studio's tools and resources."""
    add_tool(server, studio_register, name="studio_register", title="Edit the studio inventory", destructive=True)
    add_tool(
        server,
        studio_detect,
        name="studio_detect",
        title="Detect GPU, ComfyUI and cloud keys",
        read_only=True,
        open_world=True,
    )

    @guard_resource
    async def studio_markdown() -> str:
        return render_studio(await read_studio(app.store))

    @guard_resource
    async def studio_json() -> str:
        return (await read_studio(app.store)).model_dump_json(indent=2)

    server.resource(
        "ategnatos://studio",
        name="studio",
        title="Studio inventory",
        description="The studio as grimoire/studio.md shows it: checkpoints, LoRAs, workflows and machines.",
        mime_type="text/markdown",
    )(studio_markdown)
    server.resource(
        "ategnatos://studio.json",
        name="studio-json",
        title="Studio inventory (JSON)",
        description="The studio inventory as data: every model, LoRA and workflow entry with its fields.",
        mime_type="application/json",
    )(studio_json)
