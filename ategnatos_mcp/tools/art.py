"""MCP adapter for the art-direction loop: art_prompt, art_iterations, art_library."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from ategnatos_mcp.art import (
    Adjustment,
    AssetSpec,
    IterationsAnswer,
    LibraryAnswer,
    LibraryEntry,
    PromptAnswer,
    PromptDraft,
    SubmitSuggestion,
)
from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.paths import confine
from ategnatos_mcp.tools._common import app_of, guard, guard_resource, respond
from ategnatos_mcp.tools._definitions import add_tool
from ategnatos_mcp.wiring import Wiring

__all__ = ["register"]

Project = Annotated[
    str | None, Field(max_length=200, description="Project name, e.g. 'launch page'. Give with `asset` to log.")
]
Asset = Annotated[str | None, Field(max_length=200, description="Asset name inside the project, e.g. 'mascot'.")]
Version = Annotated[int | None, Field(default=None, ge=1, description="Version number; the latest when omitted.")]
Changes = Annotated[
    Adjustment | None,
    Field(
        description="Your reading of feedback the mapping did not know: terms to add/remove/emphasise, negatives, setting deltas, `why`."
    ),
]


def _prompt_words(answer: PromptAnswer, notices: list[str]) -> tuple[str, str]:
    """The prompt itself (summary), then the reasons and the ready comfyui_submit arguments written out (details)."""
    d: PromptDraft = answer.draft
    s = d.settings
    where = f" — {answer.project}/{answer.asset} version {answer.version}" if answer.version else ""
    lines = [f"Prompt for {d.family_name}{where}", f"Positive: {d.positive}", f"Negative: {d.negative or '(none)'}"]
    if answer.family_choice:
        lines.insert(1, f"Family: {answer.family_choice}")
    extra = f", guidance {s.guidance:g}" if s.guidance is not None else ""
    extra += f", clip skip {s.clip_skip}" if s.clip_skip is not None else ""
    lines.append(f"Settings: {s.sampler}/{s.scheduler}, {s.steps} steps, CFG {s.cfg:g}{extra}, {s.width}x{s.height}")
    lines += [f"LoRA: {lora.name} at {lora.weight:g}" for lora in d.loras]
    lines += [f"CONFLICT: {c}" for c in d.conflicts]
    lines += [f"Note: {w}" for w in [*d.warnings, *notices]]
    if d.unrecognized_feedback:
        lines.append(
            f"Not in the feedback mapping: {'; '.join(d.unrecognized_feedback)}. Interpret it and call art_prompt "
            "again in adjust mode with `changes`."
        )
    details = [f"Why {e.choice}: {e.why}" for e in d.explanations]
    if d.available_loras:
        details.append(f"Other LoRAs in the studio that fit {d.family_name}: {', '.join(d.available_loras)}")
    details += _submit_lines(answer.comfyui_submit, answer.submit_note)
    return "\n".join(lines), "\n".join(details)


def _submit_lines(args: SubmitSuggestion | None, note: str) -> list[str]:
    """The next generation's arguments, written out whole for a client that reads only the text."""
    if args is None:
        return [note] if note else []
    written = json.dumps(args.model_dump(mode="json", exclude_none=True), ensure_ascii=False)
    return [f"comfyui_submit arguments: {written}"] + ([note] if note else [])


@guard
async def art_prompt(
    ctx: Context[Any, Any],
    mode: Annotated[Literal["build", "adjust"], Field(description="'build' a new prompt or 'adjust' one.")] = "build",
    intent: Annotated[
        str,
        Field(
            max_length=4000,
            description="build: what the image shows (tags or a sentence).",
        ),
    ] = "",
    family: Annotated[
        str | None,
        Field(
            max_length=200,
            description="Model family: sd15, sdxl, pony, illustrious (NoobAI), flux1, sd35 (names work too).",
        ),
    ] = None,
    checkpoint: Annotated[
        str | None, Field(max_length=200, description="build: a checkpoint from the studio inventory.")
    ] = None,
    aspect_ratio: Annotated[
        str | None,
        Field(max_length=200, description="build: '16:9', '1200x630', square, portrait or landscape."),
    ] = None,
    style_terms: Annotated[
        list[str] | None, Field(max_length=64, description="build: extra style terms to include.")
    ] = None,
    negative_terms: Annotated[
        list[str] | None, Field(max_length=64, description="build: extra things to keep out.")
    ] = None,
    loras: Annotated[
        list[str] | None,
        Field(max_length=64, description="build: LoRAs from the studio inventory, as 'name' or 'name:0.8'."),
    ] = None,
    subject: Annotated[
        str | None, Field(max_length=200, description="build: the subject kind, for subject-specific taste.")
    ] = None,
    seed: Annotated[int | None, Field(description="build: a fixed seed, if wanted.")] = None,
    safe_for_work: Annotated[
        bool, Field(description="build: add the family's safe-for-work tags (Pony, Illustrious).")
    ] = True,
    project: Project = None,
    asset: Asset = None,
    from_version: Version = None,
    feedback: Annotated[
        str, Field(max_length=4000, description="adjust: the artist's words, e.g. 'too busy, a bit warmer'.")
    ] = "",
    changes: Changes = None,
    positive: Annotated[
        str | None,
        Field(max_length=8000, description="adjust without a project: the prompt (with `family`)."),
    ] = None,
    negative: Annotated[str, Field(max_length=8000, description="adjust without a project: its negative prompt.")] = "",
) -> Annotated[CallToolResult, PromptAnswer]:
    """Build a prompt in the syntax a model family wants, or adjust one from the artist's feedback.

    build: uses the eye (taste), the studio's models and LoRAs and similar library prompts; returns the prompt,
    negative, settings and one sourced sentence per choice. A NEVER word takes only its phrase out of the request
    (named in `conflicts`: ask the artist). With project + asset it is logged as the next version.
    `comfyui_submit` holds complete comfyui_submit arguments: pass them as they are.
    adjust: applies feedback ('too dark', 'warmer', 'less busy'...) to a logged version or to `positive`;
    phrases it does not know come back in `unrecognized_feedback`: interpret them and pass `changes`."""
    app = app_of(ctx)
    director = await app.art_director()
    if mode == "build":
        answer, notices = await director.build(
            intent,
            family=family,
            checkpoint=checkpoint,
            aspect=aspect_ratio,
            style_terms=style_terms or [],
            negative_terms=negative_terms or [],
            loras=loras or [],
            subject=subject,
            seed=seed,
            project=project,
            asset=asset,
            safe_for_work=safe_for_work,
            models=await app.comfyui_service(),
        )
    else:
        answer, notices = await director.adjust(
            feedback=feedback,
            changes=changes,
            project=project,
            asset=asset,
            from_version=from_version,
            family=family,
            positive=positive,
            negative=negative,
        )
    summary, details = _prompt_words(answer, notices)
    return respond(answer, summary, details=details)


def _iterations_summary(answer: IterationsAnswer) -> tuple[str, str]:
    head = f"{answer.project}/{answer.asset}: {answer.version_count} version(s)"
    if answer.approved_version is not None:
        head += f", approved: version {answer.approved_version}"
    lines = [head]
    if answer.action == "history" and answer.detail is None:
        lines += [
            f"v{v.version} ({v.origin}{f' of v{v.based_on}' if v.based_on else ''}): {v.positive}"
            + (f" — feedback: {v.feedback}" if v.feedback else "")
            for v in answer.versions[-10:]
        ]
        if answer.version_count > 10:
            lines.append(f"(showing the last 10; all {answer.version_count} are in the structured result)")
    if answer.detail is not None:
        d = answer.detail
        lines += [f"Version {d.version}: {d.positive}", f"Negative: {d.negative or '(none)'}"]
        if d.settings.seed is not None:
            lines.append(f"Seed: {d.settings.seed}")
    summary = "\n".join(lines)
    lines: list[str] = []
    if answer.eye_suggestions:
        lines.append("Possible taste updates (ask the artist, then use eye_update):")
        lines += [
            f"- {s.action} {s.category}: {s.text}{f' [{s.entry_id}]' if s.entry_id else ''} ({s.reason})"
            for s in answer.eye_suggestions
        ]
        notes = list(dict.fromkeys(s.note for s in answer.eye_suggestions if s.note))
        lines += [f"Evidence (eye_update note): {n}" for n in notes]
    if answer.library_entry is not None:
        lines.append(f"Saved to the library as '{answer.library_entry.name}'.")
    lines += [f"Note: {n}" for n in answer.notices]
    lines += _submit_lines(answer.comfyui_submit, answer.submit_note)
    return summary, "\n".join(lines)


def _require(project: str | None, asset: str | None) -> tuple[str, str]:
    if not project or not asset:
        raise InvalidRequestError("Say which project and asset.", hint="Pass `project` and `asset`.")
    return project, asset


@guard
async def art_iterations(
    ctx: Context[Any, Any],
    action: Annotated[
        Literal["log", "history", "revert", "approve", "spec"],
        Field(
            description="log (a version's seed/outputs/feedback), history, revert (`version` again, adjusted by feedback/changes), approve, spec."
        ),
    ],
    project: Project = None,
    asset: Asset = None,
    version: Version = None,
    seed: Annotated[int | None, Field(description="log: the seed the image was made with.")] = None,
    outputs: Annotated[list[str] | None, Field(max_length=64, description="log: output file paths or names.")] = None,
    feedback: Annotated[str, Field(max_length=4000, description="log/revert: what the artist said about it.")] = "",
    changes: Changes = None,
    family: Annotated[
        str | None, Field(max_length=200, description="log of an outside prompt: its model family.")
    ] = None,
    positive: Annotated[
        str | None, Field(max_length=8000, description="log of an outside prompt: the prompt text.")
    ] = None,
    negative: Annotated[str, Field(max_length=8000, description="log of an outside prompt: the negative.")] = "",
    notes: Annotated[
        str, Field(max_length=4000, description="approve: what made it work; spec: anything else it needs.")
    ] = "",
    save_as: Annotated[
        str | None, Field(max_length=200, description="approve: also save to the prompt library under this name.")
    ] = None,
    tags: Annotated[list[str] | None, Field(max_length=64, description="approve with save_as: library tags.")] = None,
    purpose: Annotated[str, Field(max_length=4000, description="spec: what the asset is for.")] = "",
    width: Annotated[int | None, Field(gt=0, description="spec: final width in pixels.")] = None,
    height: Annotated[int | None, Field(gt=0, description="spec: final height in pixels.")] = None,
    formats: Annotated[
        list[str] | None, Field(max_length=64, description="spec: final formats, e.g. ['png', 'webp'].")
    ] = None,
) -> Annotated[CallToolResult, IterationsAnswer]:
    """The history of one asset's versions (grimoire/projects/{project}/assets/{asset}/).

    Each version keeps what it takes to make it again. revert: version N again as a new version, with complete
    `comfyui_submit` arguments ("version 3 but warmer" = revert with feedback 'warmer'). approve: marks it final,
    can file it in the library, and proposes taste updates with their evidence: show them to the artist and record
    the ones they agree to with eye_update (this tool never writes the eye). comfyui_submit logs its own jobs."""
    app = app_of(ctx)
    book = (await app.art_director()).assets
    p, a = _require(project, asset)
    # Output files are only recorded, but they still must lie inside the project's folders.
    kept = [str(confine(raw, home=app.settings.home, roots=app.settings.roots, kind="new")) for raw in outputs or []]
    if action == "history":
        answer = await book.history(p, a, version)
    elif action == "log":
        answer = await book.log_attempt(
            p, a, version=version, seed=seed, outputs=kept, feedback=feedback or None,
            family=family, positive=positive, negative=negative,
        )  # fmt: skip
    elif action == "revert":
        if version is None:
            raise InvalidRequestError("Which version should I go back to?", hint="Pass `version`.")
        answer = await book.revert(p, a, version, feedback=feedback, changes=changes)
    elif action == "approve":
        answer = await book.approve(p, a, version, notes=notes, save_as=save_as, tags=tags or [])
    else:
        spec = AssetSpec(purpose=purpose, width=width, height=height, formats=formats or [], notes=notes)
        answer = await book.set_spec(p, a, spec)
    summary, details = _iterations_summary(answer)
    return respond(answer, summary, details=details)


def _library_summary(answer: LibraryAnswer) -> str:
    if answer.action == "search":
        if not answer.matches:
            return "No saved prompts match. Save approved prompts with art_library action 'save'."
        return "\n".join(f"{m.family}/{m.name} (score {m.score:g}): {m.positive}" for m in answer.matches)
    entry = answer.entry
    if entry is None:
        return "Nothing found."
    lines = [f"{entry.family}/{entry.name} ({answer.path})", f"Positive: {entry.positive}"]
    lines += [f"Negative: {entry.negative}"] if entry.negative else []
    lines += [f"Tags: {', '.join(entry.tags)}"] if entry.tags else []
    lines += [f"Note: {n}" for n in answer.notices]
    return "\n".join(lines)


@guard
async def art_library(
    ctx: Context[Any, Any],
    action: Annotated[Literal["save", "search", "get"], Field(description="save, search or get a prompt.")],
    name: Annotated[
        str | None, Field(max_length=200, description="save/get: the prompt's name in the library.")
    ] = None,
    family: Annotated[
        str | None, Field(max_length=200, description="Model family (save/get: required; search: optional filter).")
    ] = None,
    query: Annotated[str, Field(max_length=4000, description="search: words to look for.")] = "",
    tags: Annotated[
        list[str] | None, Field(max_length=64, description="save: tags to file it under; search: tags it must have.")
    ] = None,
    positive: Annotated[
        str | None, Field(max_length=8000, description="save: the prompt (or give project/asset/version).")
    ] = None,
    negative: Annotated[str, Field(max_length=8000, description="save: its negative prompt.")] = "",
    notes: Annotated[str, Field(max_length=4000, description="save: what it is good for, what to watch out for.")] = "",
    project: Project = None,
    asset: Asset = None,
    version: Version = None,
    overwrite: Annotated[bool, Field(description="save: replace an entry of the same name.")] = False,
) -> Annotated[CallToolResult, LibraryAnswer]:
    """The prompt library (grimoire/library/{family}/{name}.md): prompts that worked, with settings and
    notes. save (from a logged version or `positive`), search (words and tags), get."""
    director = await app_of(ctx).art_director()
    if action == "search":
        answer = await director.library_search(query, tags or [], family)
    elif action == "get":
        if not name or not family:
            raise InvalidRequestError("Say which prompt to get.", hint="Pass `name` and `family`.")
        answer = await director.library_get(family, name)
    else:
        if not name:
            raise InvalidRequestError("A saved prompt needs a name.", hint="Pass `name`, e.g. 'warm mascot'.")
        if project or asset:
            p, a = _require(project, asset)
            answer = await director.library_save_version(
                p, a, version, name=name, tags=tags or [], notes=notes, overwrite=overwrite
            )
        else:
            if not positive or not family:
                raise InvalidRequestError(
                    "To save a prompt, give it and its family, or point at a logged version.",
                    hint="Pass `positive` and `family`, or `project`, `asset` (and `version`).",
                )
            entry = LibraryEntry(
                name=name, family=family, positive=positive, negative=negative, tags=tags or [], notes=notes,
                saved_at=app_of(ctx).clock(),
            )  # fmt: skip
            answer = await director.library_save(entry, overwrite=overwrite)
    steps = {
        "search": "Read one in full with art_library action='get' (family and name), or build on it with art_prompt.",
        "get": "Build on it with art_prompt (same family): the library is consulted there too.",
        "save": "art_prompt consults it from now on when it builds a prompt for this family.",
    }
    return respond(answer, _library_summary(answer), next_step=steps.get(answer.action, ""))


def register(server: MCPServer[Wiring], app: Wiring) -> None:
    """Register the art tools and the model database / feedback mapping as JSON resources."""
    add_tool(server, art_prompt, name="art_prompt", title="Build or adjust an art prompt")
    add_tool(server, art_iterations, name="art_iterations", title="Versions of an asset")
    add_tool(server, art_library, name="art_library", title="Prompts that worked", idempotent=True)

    @guard_resource
    async def model_families() -> str:
        return (await app.art_director()).families_index()

    @guard_resource
    async def model_family(family: str) -> str:
        return (await app.art_director()).family_json(family)

    @guard_resource
    async def feedback_mapping() -> str:
        return (await app.art_director()).feedback_index()

    @guard_resource
    async def feedback_rule(rule: str) -> str:
        return (await app.art_director()).feedback_rule_json(rule)

    for uri, name, description, handler in (
        (
            "ategnatos://art/families",
            "model-families",
            "Index of the model database: each family's id, name, aliases, prompt style and the URI of its entry.",
            model_families,
        ),
        (
            "ategnatos://art/families/{family}",
            "model-family",
            "One model family (id or alias): prompt style, weights, score/quality tags, negatives, settings, "
            "sizes, sources.",
            model_family,
        ),
        (
            "ategnatos://art/feedback",
            "feedback-mapping",
            "Index of the feedback mapping: intensity words and each rule's phrases ('too dark', 'warmer', "
            "'less busy'...) with the URI of the rule.",
            feedback_mapping,
        ),
        (
            "ategnatos://art/feedback/{rule}",
            "feedback-rule",
            "One feedback rule: its phrases and the prompt and setting changes it makes, per prompt style or family.",
            feedback_rule,
        ),
    ):
        server.resource(uri, name=name, description=description, mime_type="application/json")(handler)
