"""MCP adapter for evaluating a run: train_evaluate draws the contact sheet, and keeps the LoRA the artist picks."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from ategnatos_mcp.errors import AtegnatosError
from ategnatos_mcp.paths import confine
from ategnatos_mcp.tools._common import ImagePart, app_of, guard, progress_reporter, respond
from ategnatos_mcp.tools._definitions import add_tool
from ategnatos_mcp.tools.runs import NameArg
from ategnatos_mcp.training.evaluation import EvalAnswer, EvalRequest
from ategnatos_mcp.wiring import Wiring

__all__ = ["register"]


@guard
async def train_evaluate(
    ctx: Context[Wiring],
    name: NameArg,
    action: Annotated[
        Literal["sheet", "keep"],
        Field(description="sheet (draw the contact sheet) or keep (bring the picked save home and register it)."),
    ] = "sheet",
    epochs: Annotated[
        list[int] | None,
        Field(description="sheet: saves to compare, by epoch (default: the last three)."),
    ] = None,
    weights: Annotated[
        list[float] | None,
        Field(description="sheet: weights 0-2 (0 = base model alone; default 0, 0.7, 1.0)."),
    ] = None,
    prompts: Annotated[
        list[str] | None, Field(description="sheet: 1-3 test prompts (default: the plan's first sample prompt).")
    ] = None,
    checkpoint: Annotated[
        str | None,
        Field(description="sheet: base model as ComfyUI lists it (default: the run's own; never replaced)."),
    ] = None,
    reference_image: Annotated[
        str | None, Field(description="sheet: an image of the artist's to show beside the grid.")
    ] = None,
    seed: Annotated[
        int | None, Field(ge=0, description="sheet: the seed of every picture (default: the plan's).")
    ] = None,
    epoch: Annotated[int | None, Field(ge=0, description="keep: the epoch of the save the artist picked.")] = None,
    weight: Annotated[
        float | None, Field(gt=0, le=2, description="keep: the weight the artist picked (becomes its default).")
    ] = None,
    verdict: Annotated[str, Field(max_length=500, description="keep: why this one, in the artist's words.")] = "",
    wait_seconds: Annotated[
        float,
        Field(
            ge=0,
            le=240,
            description="Wait this long, then answer with how far it got (it goes on).",
        ),
    ] = 45.0,
) -> Annotated[CallToolResult, EvalAnswer]:
    """Compare a run's saves and keep the best one.

    sheet (default): puts the saves where ComfyUI finds them and draws ONE labelled contact sheet (rows = saves,
    columns = weights; 0 = the base model alone) with the run's base model, one prompt and seed.
    keep (epoch, weight): copies that save to workspace/loras/ (verified) and registers it in the studio for
    art_prompt, with its trigger word, weight and provenance."""
    app = app_of(ctx)
    report = progress_reporter(ctx)
    evaluations = await app.training_evaluations()
    _cfg, handle = await evaluations.training_run(name)  # an unknown run is refused first
    handle_host = handle.host.identity
    if action == "keep":
        try:
            studio = await app.eval_studio(handle_host)
        except AtegnatosError:
            studio = None  # no ComfyUI now: the LoRA still comes home and is registered
        answer = await (await app.lora_keeper()).keep(
            name, epoch=epoch, weight=weight, verdict=verdict, studio=studio, wait_seconds=wait_seconds, report=report
        )
        return respond(answer, _keep_summary(answer))
    reference = None
    if reference_image:
        reference = confine(reference_image, home=app.settings.home, roots=app.settings.roots, kind="file")
    request = EvalRequest(
        epochs=epochs, weights=weights, prompts=prompts, checkpoint=checkpoint, reference_image=reference, seed=seed
    )
    studio = await app.eval_studio(handle_host)
    answer, sheet = await evaluations.evaluate(name, request, studio, wait_seconds=wait_seconds, report=report)
    label = f"contact sheet of '{answer.name}' (rows: saves; columns: weights; full size: {answer.sheet})"
    images = [ImagePart(data=sheet, mime_type="image/jpeg", label=label)] if sheet else []
    return respond(
        answer,
        _sheet_summary(answer),
        images=images,
        links=[(f"ategnatos://training/{answer.name}", answer.name, "text/markdown")],
    )


def _sheet_summary(answer: EvalAnswer) -> str:
    if answer.state == "done":
        head = (
            f"Contact sheet of '{answer.name}' (shown below; full size: {answer.sheet}): rows are the saves "
            f"({', '.join(answer.saves)}), columns the weights {', '.join(f'{w:g}' for w in answer.weights)} "
            f"(0 = base model alone), seed {answer.seed}, base model {', '.join(answer.models.values())}."
        )
    elif answer.state == "failed":
        head = f"The contact sheet of '{answer.name}' could not be made."
    else:
        head = (
            f"Making the contact sheet of '{answer.name}': {answer.images_done} of {answer.images_total} pictures done."
        )
    failed = [c for c in answer.cells if c.error]
    lines = [head, *answer.notes]
    if failed:
        lines.append(
            f"{len(failed)} picture(s) could not be made, e.g. {failed[0].row} at {failed[0].weight:g}: {failed[0].error}"
        )
    return "\n".join(lines)


def _keep_summary(answer: EvalAnswer) -> str:
    if answer.state == "done" and answer.kept is not None:
        p = answer.kept.provenance
        head = (
            f"Kept {answer.kept.name} (epoch {p.epoch}, weight {p.weight:g}) from '{answer.name}': copied to "
            f"{answer.kept.path} (sha256 {p.sha256[:12]}...) and registered in the studio"
            + (f" with trigger word '{p.trigger_word}'." if p.trigger_word else ".")
        )
    elif answer.state == "failed":
        head = f"Could not keep the LoRA of '{answer.name}'."
    else:
        head = f"Bringing the LoRA of '{answer.name}' home."
    return "\n".join([head, *answer.notes])


def register(server: MCPServer[Wiring], app: Wiring) -> None:
    """Register train_evaluate."""
    add_tool(server, train_evaluate, name="train_evaluate", title="Evaluate the saved LoRAs", open_world=True)
