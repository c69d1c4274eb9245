"""Shared adapter helpers: reach the wiring, map domain errors to tool errors, shape answers."""

from __future__ import annotations

import base64
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, ParamSpec, TypeVar, cast

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, Field, ValidationError

from ategnatos_mcp.errors import AtegnatosError
from ategnatos_mcp.text import show_invisible
from ategnatos_mcp.wiring import Wiring

__all__ = [
    "argument_problems",
    "ImagePart",
    "NoDialog",
    "app_of",
    "client_has_dialog",
    "guard",
    "guard_resource",
    "progress_reporter",
    "respond",
    "ANSWER_KEYS",
    "picture_label",
]

logger = logging.getLogger("ategnatos_mcp.tools")

P = ParamSpec("P")
R = TypeVar("R")


def app_of(ctx: Context[Any, Any]) -> Wiring:
    """The server's wiring (the lifespan yields it)."""
    return ctx.request_context.lifespan_context


def guard(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """The one place domain errors become MCP tool errors (only a ToolError's text reaches the model)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except AtegnatosError as exc:
            # the SDK logs it (INFO, no traceback)
            raise ToolError(show_invisible(_without_long_echoes(str(exc), kwargs.values()))) from exc

    return wrapper


_PLAIN_PROBLEMS = {
    "missing": "is required but was not given",
    "extra_forbidden": "is not an argument of this tool",
}
_MAX_ARGUMENT_PROBLEMS = 8


def argument_problems(tool: str, error: ValidationError) -> str:
    """The SDK's schema check of a tool's arguments in our words: which argument, what is expected, what next.

    (Its own text names the generated ``<tool>Arguments`` model, echoes the rejected values, links pydantic's
    documentation and gives no next step.)
    """
    lines: list[str] = []
    for problem in error.errors(include_url=False, include_input=False)[:_MAX_ARGUMENT_PROBLEMS]:
        where = ".".join(str(part) for part in problem["loc"]) or "the arguments"
        text = _PLAIN_PROBLEMS.get(problem["type"]) or problem["msg"].removeprefix("Value error, ")
        text = re.sub(r"^(?:Input|String|List|Value|Dictionary|Tuple|Set|Number|Integer) should", "should", text)
        lines.append(f"- `{where}` {text}" if text.startswith(("should", "is ")) else f"- `{where}`: {text}")
    more = error.error_count() - len(lines)
    if more > 0:
        lines.append(f"- and {more} more")
    return show_invisible(
        f"The arguments of {tool} need fixing:\n"
        + "\n".join(lines)
        + "\nNext step: correct "
        + ("that argument" if error.error_count() == 1 else "those arguments")
        + " and call again (the tool's description lists every argument and its limits)."
    )


_ECHO_LIMIT = 200  # an argument longer than this is not repeated in full in an error
_LINE_LIMIT = 1000


def _long_strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        if len(value) > _ECHO_LIMIT:
            yield value
            yield value.strip()
    elif isinstance(value, BaseModel):
        yield from _long_strings(value.model_dump())
    elif isinstance(value, dict):
        for key, item in cast("dict[object, object]", value).items():
            yield from _long_strings(key)
            yield from _long_strings(item)
    elif isinstance(value, list | tuple):
        for item in cast("Sequence[object]", value):
            yield from _long_strings(item)


def _without_long_echoes(message: str, arguments: Iterable[object]) -> str:
    """A huge argument (a pasted file, a runaway string) is named by its start and length, not repeated whole."""
    for text in sorted({s for a in arguments for s in _long_strings(a)}, key=len, reverse=True):
        message = message.replace(text, f"{text[:60]}... ({len(text):,} characters)")
    lines = [line if len(line) <= _LINE_LIMIT else f"{line[:600]} ... {line[-300:]}" for line in message.split("\n")]
    return "\n".join(lines)


def guard_resource(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """The same mapping for resources: an AtegnatosError becomes a ResourceError the client can read."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except AtegnatosError as exc:
            logger.info("resource %s refused: %s", fn.__name__, exc.message)
            raise ResourceError(show_invisible(_without_long_echoes(str(exc), kwargs.values()))) from exc

    return wrapper


def client_has_dialog(ctx: Context[Any, Any]) -> bool:
    """Whether the client can show the user a form (MCP elicitation) to confirm spending or training."""
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    # An empty elicitation capability means form mode (older protocol versions); url-only clients cannot ask.
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


class NoDialog(BaseModel):
    """A resolver's answer when the client cannot show a form: the tool then needs an explicit confirmation."""

    no_dialog: bool = True


class ImagePart(BaseModel):
    """An image to show the model inline (already downscaled to fit the byte budget), with what it is."""

    data: bytes
    mime_type: str = "image/png"
    label: str = Field(default="", description="What the picture is: its file name, and what it shows where useful.")


# The keys every structured answer starts with. A result model must not use them for its own fields.
ANSWER_KEYS = ("summary", "next_step", "pictures")


def respond(
    result: BaseModel,
    summary: str,
    *,
    next_step: str = "",
    details: str = "",
    images: Sequence[ImagePart] = (),
    links: Sequence[tuple[str, str, str | None]] = (),
) -> CallToolResult:
    """One answer, complete in both views a client may hand the model.

    Content-first clients (Claude Desktop, the Inspector) show the text blocks and the pictures; structured-first
    clients (Claude Code, VS Code) hand the model only ``JSON.stringify(structuredContent)`` plus the pictures and
    links. So the summary and the next step go into both, word for word: the text is ``summary``, then ``details``
    (what the next call needs, written out: the JSON carries the same as fields), then ``Next step: ...``; the JSON
    starts with ``summary`` and ``next_step``, then the result's fields. Each picture is preceded by a text block
    naming it, and the same names are listed in order under ``pictures``.

    Invisible characters (controls, bidi overrides) are written out so nothing echoed hides text.
    ``links`` are ``(uri, name, mime_type)`` triples.
    """
    body = result.model_dump(mode="json")
    # A domain answer that knows its own next step (a run's status, a prompt's submit) hands it over here.
    own_next = body.pop("next_step", None)
    if isinstance(own_next, str) and not next_step:
        next_step = own_next
    summary = show_invisible(summary.strip())
    next_step = show_invisible(next_step.strip())
    text = "\n\n".join(part for part in (summary, show_invisible(details.strip()), _next_line(next_step)) if part)
    content: list[ContentBlock] = [TextContent(type="text", text=text)]
    labels = [picture_label(number, image.label) for number, image in enumerate(images, 1)]
    for label, image in zip(labels, images, strict=True):
        content.append(TextContent(type="text", text=label))
        content.append(
            ImageContent(type="image", data=base64.b64encode(image.data).decode("ascii"), mime_type=image.mime_type)
        )
    content.extend(ResourceLink(type="resource_link", uri=uri, name=name, mime_type=mime) for uri, name, mime in links)
    clash = set(ANSWER_KEYS) & body.keys()
    if clash:  # a programming error, caught by the tests of every tool
        raise TypeError(f"{type(result).__name__} uses the answer keys {sorted(clash)} for its own fields")
    structured: dict[str, Any] = {"summary": summary, "next_step": next_step, **body}
    if labels:
        structured["pictures"] = labels
    return CallToolResult(content=content, structured_content=structured)


def _next_line(next_step: str) -> str:
    return f"Next step: {next_step}" if next_step else ""


def picture_label(number: int, label: str) -> str:
    """How a picture is named in both views: 'Picture 2: mascot_v3.png (1024x1024)'."""
    return f"Picture {number}: {show_invisible(label) or 'untitled'}"


def progress_reporter(ctx: Context[Any, Any]) -> Callable[[float, float | None, str | None], Awaitable[None]]:
    """A plain callback domain code can call to report progress, without knowing about MCP."""

    async def report(progress: float, total: float | None = None, message: str | None = None) -> None:
        await ctx.report_progress(progress, total, message)

    return report
