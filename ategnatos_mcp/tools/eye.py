"""MCP adapter for the eye (taste profile): eye_update, eye_query, ategnatos://eye."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from ategnatos_mcp.eye import (
    CATEGORIES,
    EYE_DOCUMENT,
    EyeProfile,
    EyeQuery,
    Preference,
    apply_change,
    query_profile,
    render_eye,
)
from ategnatos_mcp.tools._common import app_of, guard, guard_resource, respond
from ategnatos_mcp.tools._definitions import add_tool
from ategnatos_mcp.wiring import Wiring

__all__ = ["register"]

_EYE_NEXT = "The next art_prompt applies it; the artist can read or edit it in grimoire/eye.md."


UpdateAction = Literal["add", "confirm", "weaken", "contradict", "remove", "set_level", "accept_edit"]


class EyeUpdateResult(BaseModel):
    action: UpdateAction
    changed: bool
    message: str
    entry: Preference | None
    total_entries: int
    notices: list[str] = Field(
        default_factory=list[str], description="E.g. hand edits of eye.md imported or kept aside."
    )


class EyeQueryResult(EyeQuery):
    entries: list[Preference] = Field(
        default_factory=list[Preference], description="Full entries with evidence (detail=true)."
    )
    notices: list[str] = Field(default_factory=list[str])


@guard
async def eye_update(
    ctx: Context[Wiring],
    action: Annotated[
        UpdateAction,
        Field(
            description="add, confirm (once a day), weaken, contradict, remove (only when asked), set_level, accept_edit (a held-back hand edit)."
        ),
    ],
    text: Annotated[
        str | None, Field(description="The preference in a short phrase, e.g. 'muted earth tones'. Needed for add.")
    ] = None,
    category: Annotated[str | None, Field(description=f"For add: one of {', '.join(CATEGORIES)}.")] = None,
    entry_id: Annotated[
        str | None, Field(description="Id of the entry to change (from eye_query); or give text.")
    ] = None,
    level: Annotated[
        Literal["prefer", "avoid", "never"] | None,
        Field(description="prefer (default), avoid (a default negative) or never (always excluded)."),
    ] = None,
    terms: Annotated[
        list[str] | None, Field(description="Prompt words for this entry, e.g. ['earth tones', 'amber']. Optional.")
    ] = None,
    families: Annotated[
        list[str] | None, Field(description="Model families it applies to (e.g. ['pony']); empty = all.")
    ] = None,
    note: Annotated[str, Field(description="The evidence: what the artist said or approved, in their words.")] = "",
) -> Annotated[CallToolResult, EyeUpdateResult]:
    """Record the artist's taste: the only tool that writes the taste profile (grimoire/eye.md).

    Use it when the artist states or shows a preference that will hold again, or asks to forget something. Every
    entry keeps its evidence and can be removed."""
    app = app_of(ctx)
    if action == "accept_edit":
        profile, notices = await app.store.accept_held_edit(EYE_DOCUMENT, EyeProfile)
        accepted = EyeUpdateResult(
            action=action, changed=True, message=notices[-1], entry=None, total_entries=len(profile.entries)
        )
        accepted.notices = notices[:-1]
        return respond(accepted, "\n".join(notices), next_step=_EYE_NEXT)
    async with app.store.update(EYE_DOCUMENT, EyeProfile) as upd:
        change = apply_change(
            upd.doc,
            action,
            now=app.clock(),
            entry_id=entry_id,
            category=category,
            text=text,
            level=level,
            terms=terms,
            families=families,
            note=note,
            session=app.session_id,
        )
        upd.discard = not change.changed and not upd.notices
        total = len(upd.doc.entries)
        notices = list(upd.notices)
        upd.relayed = True  # the notices go into this answer
    result = EyeUpdateResult(
        action=action,
        changed=change.changed,
        message=change.message,
        entry=change.entry,
        total_entries=total,
        notices=notices,
    )
    step = _EYE_NEXT if change.changed else ""
    if action == "remove" and change.changed:
        step = "Nothing more: the entry no longer shapes prompts (its evidence went with it)."
    return respond(result, "\n".join([change.message, *notices]), next_step=step)


@guard
async def eye_query(
    ctx: Context[Wiring],
    family: Annotated[str | None, Field(description="Model family the prompt is for, e.g. sdxl, pony, flux.")] = None,
    subject: Annotated[str | None, Field(description="What the image shows, e.g. 'mascot', 'landscape'.")] = None,
    request: Annotated[
        str | None, Field(description="The artist's request in their words; checked against AVOID and NEVER.")
    ] = None,
    detail: Annotated[bool, Field(description="Also return every entry with its evidence.")] = False,
) -> Annotated[CallToolResult, EyeQueryResult]:
    """The taste profile for one piece of work: prompt terms, negative terms, conflicts.

    NEVER entries always go in the negative and are flagged when the request asks for them (tell the artist);
    AVOID entries are default negatives, dropped when the request explicitly asks for them."""
    app = app_of(ctx)
    profile, notices = await app.store.read_with_notices(EYE_DOCUMENT, EyeProfile)
    query = query_profile(profile, family=family, subject=subject, request=request)
    result = EyeQueryResult(**query.model_dump(), entries=profile.entries if detail else [], notices=notices)
    lines = [f"{len(profile.entries)} taste entries; {len(query.used_entries)} apply here."]
    if query.positive_terms:
        lines.append("Add: " + ", ".join(query.positive_terms))
    if query.negative_terms:
        lines.append("Negative: " + ", ".join(query.negative_terms))
    if query.never_conflicts:
        lines.append(
            "CONFLICT — the request asks for something the artist NEVER wants: " + ", ".join(query.never_conflicts)
        )
    if query.avoid_overrides:
        lines.append("The request overrides these AVOID entries: " + ", ".join(query.avoid_overrides))
    if query.combos:
        lines.append("Known good combos: " + "; ".join(query.combos))
    if query.never_conflicts:
        step = "Tell the artist the request asks for something they never want, and ask before going on."
    else:
        step = "Build the prompt with art_prompt: it applies these terms itself."
    return respond(result, "\n".join(lines + notices), next_step=step)


def register(server: MCPServer[Wiring], app: Wiring) -> None:
    """Register the eye's tools and resources."""
    add_tool(server, eye_update, name="eye_update", title="Record the artist's taste", destructive=True)
    add_tool(server, eye_query, name="eye_query", title="Read the taste profile for a piece", read_only=True)

    @guard_resource
    async def eye_markdown() -> str:
        return render_eye(await app.store.read(EYE_DOCUMENT, EyeProfile))

    @guard_resource
    async def eye_json() -> str:
        return (await app.store.read(EYE_DOCUMENT, EyeProfile)).model_dump_json(indent=2)

    server.resource(
        "ategnatos://eye",
        name="eye",
        title="Taste profile",
        description="The artist's taste as grimoire/eye.md shows it: preferences by category, AVOID and NEVER, with evidence.",
        mime_type="text/markdown",
    )(eye_markdown)
    server.resource(
        "ategnatos://eye.json",
        name="eye-json",
        title="Taste profile (JSON)",
        description="The taste profile as data: every entry with id, level, counts, families and evidence.",
        mime_type="application/json",
    )(eye_json)
