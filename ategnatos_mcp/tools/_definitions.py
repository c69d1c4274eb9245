"""How our tools are described to a client: titles and hints, lean input schemas, and the answer keys.

Claude Code puts every tool's name, description and input schema into the model's context on each turn, and reads
``title`` and the annotations (``readOnlyHint`` tools run in parallel without asking; the others count as writes).
So definitions are kept lean here, once, instead of hand-trimming thirty signatures: pydantic's per-property
``title`` (the field name again) is dropped, an optional argument is published as its type alone (omitting it
means "not given"; the server still accepts an explicit null), an empty default (``""``, ``false``, ``[]``) and
the generic size guards are not spelt out, and docstrings lose their indentation.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import Callable
from typing import Annotated, Any, cast

from mcp.server.mcpserver import MCPServer
from mcp.types import Tool, ToolAnnotations
from pydantic import BaseModel, Field, create_model

__all__ = ["DEFINITIONS_BUDGET", "add_tool", "definition_bytes", "lean_tool"]

# What every tool costs the model on every turn (name + description + input schema, compact JSON), all tools together.
DEFINITIONS_BUDGET = 40_000

_NULL = {"type": "null"}


def add_tool(
    server: MCPServer[Any],
    fn: Callable[..., Any],
    *,
    name: str,
    title: str,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
    open_world: bool = False,
) -> None:
    """Register ``fn`` as tool ``name`` with a title and every hint set explicitly (never left to client defaults).

    ``destructive`` and ``idempotent`` only mean something for tools that write; a read-only tool is neither.
    """
    annotations = ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=False if read_only else destructive,
        idempotent_hint=True if read_only else idempotent,
        open_world_hint=open_world,
    )
    description = inspect.cleandoc(fn.__doc__ or "")
    server.add_tool(_answering(fn), name=name, title=title, description=description, annotations=annotations)


def _answering(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its declared result model widened by the answer keys ``respond`` puts first.

    The SDK checks a structured answer against the declared model, and some of ours forbid unknown fields.
    """
    signature = inspect.signature(fn, eval_str=True)
    declared = signature.return_annotation
    if typing.get_origin(declared) is not Annotated:
        return fn
    base, model, *rest = typing.get_args(declared)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return fn
    widened = Annotated[base, _answer_model(model), *rest]

    @functools.wraps(fn)
    async def tool(*args: Any, **kwargs: Any) -> Any:
        return await fn(*args, **kwargs)

    tool.__signature__ = signature.replace(return_annotation=widened)  # type: ignore[attr-defined]
    tool.__annotations__ = {**typing.get_type_hints(fn, include_extras=True), "return": widened}
    return tool


@functools.cache
def _answer_model(model: type[BaseModel]) -> type[BaseModel]:
    return create_model(
        model.__name__,
        __base__=model,
        __module__=model.__module__,
        summary=(str, Field(description=_ANSWER_SCHEMA["summary"]["description"])),
        next_step=(str, Field(default="", description=_ANSWER_SCHEMA["next_step"]["description"])),
        pictures=(list[str], Field(default_factory=list, description=_ANSWER_SCHEMA["pictures"]["description"])),
    )


def lean_tool(tool: Tool) -> Tool:
    """The tool as published: compact input schema; output schema announcing the answer keys every answer has."""
    update: dict[str, Any] = {"input_schema": _compact(tool.input_schema)}
    if tool.output_schema is not None:
        update["output_schema"] = _with_answer_keys(tool.output_schema)
    return tool.model_copy(update=update)


def _compact(node: Any) -> Any:
    if isinstance(node, list):
        return [_compact(item) for item in cast("list[Any]", node)]
    if not isinstance(node, dict):
        return node
    source = cast("dict[str, Any]", node)
    out: dict[str, Any] = {}
    for key, value in source.items():
        if key == "$defs" and isinstance(value, dict):
            # a nested model's own docstring repeats what the argument's description says; unknown keys are refused
            # by the server anyway
            out[key] = {
                name: {k: v for k, v in _compact(schema).items() if k not in ("description", "additionalProperties")}
                for name, schema in cast("dict[str, Any]", value).items()
            }
        elif key == "properties" and isinstance(value, dict):
            # property names are data here, never schema keywords: compact each schema, keep every name
            out[key] = {prop: _compact(schema) for prop, schema in cast("dict[str, Any]", value).items()}
        elif key == "title" and isinstance(value, str):
            continue
        else:
            out[key] = _compact(value)
    # The generic guards against pasted novels (200-character names, 4,000-character notes, 64 items) stay on the
    # server, which refuses by name what passes them; a tight limit (e.g. 40 characters) is published.
    if isinstance(out.get("maxLength"), int) and out["maxLength"] >= 200:
        del out["maxLength"]
    if isinstance(out.get("maxItems"), int) and out["maxItems"] >= 64:
        del out["maxItems"]
    if "default" in out and (out["default"] is False or out["default"] in ("", [], {})):  # what a client assumes
        del out["default"]
    any_of = out.get("anyOf")
    if isinstance(any_of, list) and _NULL in any_of and "default" in out and out["default"] is None:
        options = [option for option in cast("list[Any]", any_of) if option != _NULL]
        del out["default"]
        if len(options) == 1:
            del out["anyOf"]
            out = {**options[0], **out}
        else:
            out["anyOf"] = options
    return out


_ANSWER_SCHEMA: dict[str, Any] = {
    "summary": {"type": "string", "description": "What happened, in plain words (the text view says the same)."},
    "next_step": {"type": "string", "description": "What to do next, word for word as the text says it; may be empty."},
    "pictures": {
        "type": "array",
        "items": {"type": "string"},
        "description": "The pictures of this answer, in order, each named as the text before it names it.",
    },
}


def _with_answer_keys(schema: dict[str, Any]) -> dict[str, Any]:
    properties = cast("dict[str, Any]", schema.get("properties", {}))
    required = [key for key in cast("list[str]", schema.get("required", [])) if key not in _ANSWER_SCHEMA]
    return {
        **schema,
        "properties": {**_ANSWER_SCHEMA, **{k: v for k, v in properties.items() if k not in _ANSWER_SCHEMA}},
        "required": ["summary", "next_step", *required],
    }


def definition_bytes(tool: Tool) -> int:
    """A tool's share of the model's context: its name, description and input schema as compact JSON."""
    definition = {"name": tool.name, "description": tool.description or "", "inputSchema": tool.input_schema}
    return len(json.dumps(definition, ensure_ascii=False, separators=(",", ":")).encode())
