"""MCP adapter for dataset preparation (gate 1): dataset_audit, dataset_dedupe, dataset_captions, dataset_structure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from ategnatos_mcp.dataset import (
    AuditOptions,
    AuditResult,
    CaptionReview,
    CaptionSummary,
    CaptionWrite,
    CaptionWriteResult,
    Concept,
    ConceptSpec,
    DedupeResult,
    Protected,
    StructureResult,
    audit_next_step,
    audit_problem_list,
    audit_summary,
    caption_guide,
    picture_labels,
    quarantine_summary,
    render_report,
)
from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.paths import confine, dataset_folder, safe_name
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.tools._common import ImagePart, app_of, guard, progress_reporter, respond
from ategnatos_mcp.tools._definitions import add_tool
from ategnatos_mcp.wiring import Wiring

__all__ = ["register"]

PathArg = Annotated[
    str,
    Field(description="Dataset folder in the project, or its name in workspace/datasets/."),
]
WaitArg = Annotated[
    float | None,
    Field(ge=0, le=600, description="Wait at most this long (reading goes on in the background)."),
]


def _still_reading(done: int, total: int) -> str:
    return (
        f"Still reading the images: {done} of {total} done. Nothing is lost: reading goes on in the background and "
        "unchanged images are never read twice. Call the same tool again in a minute to continue."
    )


PREVIEW_BUDGET = 60_000
_AGAIN = "Call again with the same arguments in a moment: reading goes on in the background."


def _folder(app: Wiring, raw: str) -> Path:
    settings = app.settings
    return dataset_folder(raw, home=settings.home, roots=settings.roots, datasets_dir=settings.datasets_dir)


@guard
async def dataset_audit(
    ctx: Context[Wiring],
    path: PathArg,
    training_name: Annotated[
        str | None,
        Field(description="The LoRA it is for: records gate 1 and its dataset report."),
    ] = None,
    resolution: Annotated[
        int, Field(ge=256, le=4096, description="Training resolution (1024 for SDXL/Flux, 512 for SD1.5).")
    ] = 1024,
    trigger_word: Annotated[str | None, Field(description="The trigger word captions should start with.")] = None,
    detail: Annotated[int, Field(ge=0, le=500, description="How many file problems to list (all are counted).")] = 25,
    quarantine_unreadable: Annotated[
        bool,
        Field(description="Move unreadable files (and captions) to quarantine first (undo: dataset_dedupe)."),
    ] = False,
    wait_seconds: WaitArg = None,
) -> Annotated[CallToolResult, AuditResult]:
    """Check a training dataset (gate 1) and say GO or NO-GO, in plain language.

    Reads every image once (format, colour mode, size, damage), counts captions, trigger words and duplicates,
    and recommends fixes; flat or kohya `{repeats}_{name}` folders. Changes nothing unless quarantine_unreadable."""
    app = app_of(ctx)
    root = _folder(app, path)
    name = safe_name(training_name, what="LoRA name") if training_name else None
    service = await app.dataset_service()
    options = AuditOptions(
        resolution=resolution,
        trigger_word=trigger_word,
        threshold=service.threshold,
        problems_shown=detail,
        quarantine_unreadable=quarantine_unreadable,
    )
    result = await service.audit(root, options, progress_reporter(ctx), wait_seconds=wait_seconds)
    if not result.complete:
        return respond(result, _still_reading(result.images_read, result.images), next_step=_AGAIN)
    if name:
        report = render_report(result, name=name, when=app.clock())
        written = await app.dataset_audited(
            name, root, fingerprint=result.fingerprint, go=result.go, reasons=result.reasons, report=report
        )
        result.report_path = str(written)
    summary = audit_summary(result)
    if result.quarantine is not None and result.quarantine.moved:
        summary = (
            f"Moved {len(result.quarantine.moved)} unreadable file(s) and their captions to quarantine batch "
            f"{result.quarantine.batch} (undo: dataset_dedupe action='undo').\n" + summary
        )
    if result.report_path:
        summary += f"\nReport: {result.report_path}"
    step = audit_next_step(result, path=path, training_name=name)
    return respond(result, summary, details=audit_problem_list(result), next_step=step)


@guard
async def dataset_dedupe(
    ctx: Context[Wiring],
    path: PathArg,
    action: Annotated[
        Literal["report", "quarantine", "undo"],
        Field(
            description="report (changes nothing); quarantine (the extra copies of every group, or exactly `files`, with captions); undo (`files`, else the last batch)."
        ),
    ] = "report",
    files: Annotated[
        list[str] | None,
        Field(
            description="quarantine: exactly these files (dataset paths); undo: exactly these.",
            max_length=10_000,
        ),
    ] = None,
    mirror: Annotated[bool, Field(description="Also match mirrored (horizontally flipped) copies.")] = False,
    threshold: Annotated[
        int | None,
        Field(ge=0, le=32, description="Hash distance for candidates (0-32); copies are proven anyway."),
    ] = None,
    batch: Annotated[str | None, Field(description="For undo: the quarantine batch id (default: the latest).")] = None,
    start: Annotated[
        int, Field(ge=0, description="Report: the first group to list (next_start of the last answer).")
    ] = 0,
    detail: Annotated[
        int,
        Field(ge=1, le=100_000, description="Groups (and look-alike pairs) to list; 12 get pictures."),
    ] = 12,
    wait_seconds: WaitArg = None,
) -> Annotated[CallToolResult, DedupeResult]:
    """Find duplicate images and prove them: exact, re-saved, resized, cropped, colour-shifted or
    squashed copies (mirrored with mirror=true). Pictures that only look alike (one artist's series) are never
    duplicates: they are listed apart.

    Each group comes with a picture of its files side by side and the file to keep, with why. Nothing is deleted:
    quarantine moves only proven copies (or the files named) aside, undo restores them byte for byte."""
    app = app_of(ctx)
    root = _folder(app, path)
    service = await app.dataset_service()
    if action == "undo" or (action == "quarantine" and files):
        moved = await (service.undo(root, batch, files) if action == "undo" else service.set_aside(root, files or []))
        result = DedupeResult(dataset=str(root), threshold=service.threshold, quarantine=moved)
        summary, step = quarantine_summary(moved)
        return respond(result, summary, next_step=step)
    result, pictures = await service.dedupe(
        root,
        threshold=threshold,
        mirror=mirror,
        quarantine=action == "quarantine",
        start=start,
        shown=detail,
        progress=progress_reporter(ctx),
        wait_seconds=wait_seconds,
    )
    if not result.complete:
        return respond(result, _still_reading(result.images_read, result.images_checked), next_step=_AGAIN)
    images = [
        ImagePart(data=d, mime_type="image/jpeg", label=label)
        for d, label in zip(pictures, picture_labels(result), strict=True)
    ]
    return respond(result, result.summary, details=result.details, next_step=result.next_step, images=images)


CAPTION_GUIDE_URI = "ategnatos://dataset/caption-guide"


class CaptionsResult(BaseModel):
    """What dataset_captions did: one of review, write or summary is set."""

    mode: Literal["review", "write", "summary"]
    review: CaptionReview | None = None
    write: CaptionWriteResult | None = None
    tag_summary: CaptionSummary | None = None


@guard
async def dataset_captions(
    ctx: Context[Wiring],
    path: PathArg,
    mode: Annotated[
        Literal["review", "write", "summary"],
        Field(description="review (pictures + captions), write (save captions) or summary (tag counts)."),
    ] = "review",
    start: Annotated[
        int,
        Field(
            ge=0,
            description="Review: where to begin (next_start of the last batch).",
        ),
    ] = 0,
    count: Annotated[int, Field(ge=1, le=8, description="Review: images per batch (at most 8).")] = 8,
    only_missing: Annotated[bool, Field(description="Review: only images without a caption.")] = False,
    trigger_word: Annotated[str | None, Field(description="Write: put this word first in every caption.")] = None,
    captions: Annotated[
        list[CaptionWrite] | None, Field(description="Write: the captions, as {path, caption} with paths from review.")
    ] = None,
    include_guide: Annotated[
        bool,
        Field(description="Review: send the captioning guide again (it comes with start=0)."),
    ] = False,
) -> Annotated[CallToolResult, CaptionsResult]:
    """Caption training images with your own eyes: review shows the pictures and their captions (the
    first batch brings a style-aware guide), write saves one clean caption line per image, summary counts tags."""
    app = app_of(ctx)
    root = _folder(app, path)
    service = await app.dataset_service()
    if mode == "review":
        review, previews = await service.review(
            root,
            start=start,
            count=count,
            only_missing=only_missing,
            trigger_word=trigger_word,
            budget=PREVIEW_BUDGET,
            include_guide=include_guide,
        )
        if not review.items and start >= review.total > 0:
            head = [f"start={start} is past the last image: the folder has {review.total}. Begin again with start=0."]
        elif only_missing:
            head = [f"{len(review.items)} of the {review.total} image(s) still without a caption."]
        else:
            head = [f"Images {review.start + 1}-{review.start + len(review.items)} of {review.total}."]
        if review.left_out:
            head.append(
                f"{len(review.left_out)} linked file(s) point outside the project and are not shown: "
                f"{', '.join(review.left_out[:5])}. Copy them into the dataset folder to caption them."
            )
        shown = [item for item in review.items if not item.note]  # the pictures, in this order
        numbers = {item.path: n for n, item in enumerate(shown, 1)}
        lines = [
            f"- {i.path}: {i.caption or '(no caption)'}"
            + (f" [picture {numbers[i.path]}]" if i.path in numbers else "")
            + (f" — {i.note}" if i.note else "")
            for i in review.items
        ]
        if review.guide_note is not None:
            review.guide_note += f" It is also at {CAPTION_GUIDE_URI}."
        lines.append(("\n" + review.guide) if review.guide is not None else str(review.guide_note))
        step = "Look at each picture and write its caption: dataset_captions mode='write' with captions=[{path, caption}, ...]"
        step += f"; then the next batch with start={review.next_start}." if review.next_start is not None else "."
        images = [
            ImagePart(data=d, mime_type="image/jpeg", label=item.path) for d, item in zip(previews, shown, strict=False)
        ]
        result = CaptionsResult(mode="review", review=review)
        return respond(result, "\n".join(head), details="\n".join(lines), next_step=step, images=images)
    if mode == "write":
        if not captions:
            raise InvalidRequestError("No captions to write.", hint="Pass captions=[{path, caption}, ...].")
        written = await service.write(root, captions, trigger_word)
        text = [f"Saved {len(written.written)} caption(s); refused {len(written.refused)}."]
        text += [f"- refused {p.path}: {p.message}" for p in written.refused]
        text += [f"- {w}" for w in written.warnings]
        step = (
            "Correct the refused ones and write them again."
            if written.refused
            else "Review the next batch (dataset_captions mode='review'), or check the dataset with dataset_audit."
        )
        return respond(CaptionsResult(mode="write", write=written), "\n".join(text), next_step=step)
    summary = await service.summary(root, trigger_word)
    st = summary.stats
    text = [
        f"Of all image files: {st.captioned} captioned, {st.missing} missing, {len(st.empty)} empty; "
        f"{summary.tag_count} distinct tags; "
        f"median about {summary.median_tokens} tokens.",
        "Top tags: " + ", ".join(f"{t.tag} ({t.count})" for t in st.top_tags[:10]),
    ]
    if summary.rare_tags:
        text.append("Used once: " + ", ".join(summary.rare_tags[:15]))
    step = "Make rare or inconsistent words consistent by writing those captions again (mode='write')."
    if st.missing or st.empty:
        step = "Caption the rest: dataset_captions mode='review' with only_missing=true, then mode='write'."
    return respond(CaptionsResult(mode="summary", tag_summary=summary), "\n".join(text), next_step=step)


@guard
async def dataset_structure(
    ctx: Context[Wiring],
    path: PathArg,
    name: Annotated[str, Field(description="Concept name for the folder, e.g. the trigger word or 'style'.")],
    output: Annotated[
        str | None, Field(description="Where to build the kohya layout (default: '<path>-kohya' next to it).")
    ] = None,
    repeats: Annotated[int | None, Field(ge=1, le=1000, description="Repeats; leave empty to compute them.")] = None,
    preset: Annotated[
        Literal["quick", "standard", "thorough"] | None,
        Field(description="train_plan preset whose repeats to use (default standard)."),
    ] = None,
    family: Annotated[
        str | None, Field(description="Model family the LoRA is for (FLUX.1 and SD3.5 use fewer repeats).")
    ] = None,
    target_steps: Annotated[
        int | None, Field(ge=1, le=1_000_000, description="Instead of a preset: steps to aim for (with epochs).")
    ] = None,
    epochs: Annotated[int | None, Field(ge=1, le=1000, description="Planned epochs, used with target_steps.")] = None,
    extra_concepts: Annotated[
        list[ConceptSpec] | None,
        Field(
            description="More folders as {path, name, repeats}; name regularisation images 'reg' so train_plan treats them as such."
        ),
    ] = None,
) -> Annotated[CallToolResult, StructureResult]:
    """Lay flat image folders out as kohya `{repeats}_{name}` folders (images + captions), hard-linked
    or copied; the source is never changed and a rerun changes nothing. Repeats follow train_plan's preset unless
    target_steps/epochs are given."""
    app = app_of(ctx)
    source = _folder(app, path)
    out_raw = output or str(source.parent / f"{source.name}-kohya")
    out = confine(out_raw, home=app.settings.home, roots=app.settings.roots, kind="new")
    concepts = [Concept(source=source, name=safe_name(name, what="concept name"), repeats=repeats)]
    concepts += [
        Concept(source=_folder(app, c.path), name=safe_name(c.name, what="concept name"), repeats=c.repeats)
        for c in extra_concepts or []
    ]
    service = await app.dataset_service()
    protected = _protected(app.settings)
    if target_steps is None and epochs is None:
        level = preset or "standard"
        rule = app.training_repeats(level, family)
        result = await service.structure(out, concepts, protected=protected, repeats_for=rule)
        result.notes.insert(0, f"Repeats follow train_plan's {level} preset, so the plan keeps them.")
    else:
        result = await service.structure(
            out, concepts, target_steps=target_steps or 1500, epochs=epochs or 10, protected=protected
        )
    text = [f"Kohya layout in {result.output}:"]
    text += [
        f"- {folder}: {n} images x {result.repeats[folder]} repeats = {n * result.repeats[folder]} image views per "
        "epoch"
        for folder, n in result.concepts.items()
    ]
    text.append(f"{result.linked} linked, {result.copied} copied, {result.unchanged} already in place.")
    text += result.notes
    step = (
        f"Check it with dataset_audit path='{result.output}' (and the run's training_name), then plan with "
        f"train_plan dataset_path='{result.output}'."
    )
    return respond(result, "\n".join(text), next_step=step)


def _protected(s: Settings) -> list[Protected]:
    """Folders a kohya layout never goes in, in the words the refusal uses."""
    return [
        Protected(s.grimoire_dir, "the grimoire, where Ategnatos keeps its records", with_subfolders=True),
        Protected(s.cache_dir, "Ategnatos' cache folder", with_subfolders=True),
        Protected(s.workspace_dir, "the workspace folder itself"),
        Protected(s.datasets_dir, "the folder holding all your datasets"),
        Protected(s.outputs_dir, "the folder of generated images"),
        Protected(s.exports_dir, "the folder of exported assets"),
        Protected(s.configs_dir, "the folder of training configs"),
        *(Protected(root, "one of your project folders itself") for root in s.extra_roots),
    ]


def register(server: MCPServer[Wiring], app: Wiring) -> None:
    """Register the dataset tools."""
    add_tool(server, dataset_audit, name="dataset_audit", title="Check a dataset (gate 1)", idempotent=True)
    add_tool(
        server, dataset_dedupe, name="dataset_dedupe", title="Find duplicates; quarantine or restore", destructive=True
    )
    add_tool(server, dataset_captions, name="dataset_captions", title="Review and write captions", destructive=True)
    add_tool(
        server, dataset_structure, name="dataset_structure", title="Lay a dataset out for the trainer", idempotent=True
    )
    server.resource(
        CAPTION_GUIDE_URI,
        name="caption-guide",
        title="Captioning guide",
        description="The style-aware captioning guide dataset_captions sends with the first review batch.",
        mime_type="text/markdown",
    )(caption_guide)
