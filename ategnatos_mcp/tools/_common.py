"""Shared adapter helpers: reach the AppContext, map domain errors to tool errors, shape answers."""

from __future__ import annotations

import base64
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel

from ategnatos_mcp.context import AppContext
from ategnatos_mcp.errors import AtegnatosError

__all__ = [
    "ImagePart",
    "NoDialog",
    "app_of",
    "client_has_dialog",
    "guard",
    "guard_resource",
    "progress_reporter",
    "respond",
]

logger = logging.getLogger("ategnatos_mcp.tools")

P = ParamSpec("P")
R = TypeVar("R")


def app_of(ctx: Context[Any, Any]) -> AppContext:
    """The AppContext the lifespan yielded."""
    return ctx.request_context.lifespan_context


def guard(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """The one place domain errors become MCP tool errors (only a ToolError's text reaches the model)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except AtegnatosError as exc:
            raise ToolError(str(exc)) from exc  # the SDK logs it (INFO, no traceback)

    return wrapper


def guard_resource(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """The same mapping for resources: an AtegnatosError becomes a ResourceError the client can read."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except AtegnatosError as exc:
            logger.info("resource %s refused: %s", fn.__name__, exc.message)
            raise ResourceError(str(exc)) from exc

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
    """An image to show the model inline (already downscaled to fit the byte budget)."""

    data: bytes
    mime_type: str = "image/png"


def respond(
    result: BaseModel,
    summary: str,
    *,
    images: Sequence[ImagePart] = (),
    links: Sequence[tuple[str, str, str | None]] = (),
) -> CallToolResult:
    """A result with a short human summary, structured content, inline images and resource links.

    ``links`` are ``(uri, name, mime_type)`` triples.
    """
    content: list[ContentBlock] = [TextContent(type="text", text=summary)]
    content.extend(
        ImageContent(type="image", data=base64.b64encode(img.data).decode("ascii"), mime_type=img.mime_type)
        for img in images
    )
    content.extend(ResourceLink(type="resource_link", uri=uri, name=name, mime_type=mime) for uri, name, mime in links)
    return CallToolResult(content=content, structured_content=result.model_dump(mode="json"))


def progress_reporter(ctx: Context[Any, Any]) -> Callable[[float, float | None, str | None], Awaitable[None]]:
    """A plain callback domain code can call to report progress, without knowing about MCP."""

    async def report(progress: float, total: float | None = None, message: str | None = None) -> None:
        await ctx.report_progress(progress, total, message)

    return report
