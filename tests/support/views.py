"""How each family of MCP clients hands a tool's answer to the model, and reading the next step from it.

Structured-first clients (Claude Code, VS Code) give the model ``JSON.stringify(structuredContent)`` plus the
non-text blocks (pictures, resource links) whenever the answer carries structured content, and drop every text
block. Content-first clients (Claude Desktop, the MCP Inspector) give the text blocks and the pictures and leave
the JSON aside. An error carries no structured content, so both read its text.

A golden-path test walks a workflow with ONE of these views: every argument of the next call is read from what
that view showed (``Seen``), never from the other view or from the code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from mcp import Client
from mcp.types import CallToolResult

T = TypeVar("T")

__all__ = ["FAMILIES", "Family", "Seen", "ViewWalker", "both_views_complete", "seen_by"]

Family = Literal["structured", "content"]
FAMILIES: tuple[Family, ...] = ("structured", "content")


@dataclass
class Seen:
    """One answer as one family of clients shows it to the model."""

    family: Family
    tool: str
    error: bool
    text: str  # everything the model reads, in order, pictures written as [picture N: mime]
    data: dict[str, Any] | None = None  # the parsed JSON, for the structured view of a success
    pictures: int = 0
    links: list[str] = field(default_factory=list)

    def find(self, pattern: str, group: int = 1) -> str:
        """The first match of ``pattern`` in what the model read (the test fails when it is not there)."""
        match = re.search(pattern, self.text)
        assert match is not None, f"{self.family} view of {self.tool} does not show /{pattern}/:\n{self.text}"
        return match.group(group)

    def json_after(self, label: str) -> Any:
        """A JSON value written in the text right after ``label`` (the content view's way of handing arguments)."""
        start = self.text.find(label)
        assert start >= 0, f"{self.family} view of {self.tool} has no '{label}':\n{self.text}"
        value, _ = json.JSONDecoder().raw_decode(self.text[start + len(label) :].lstrip())
        return value

    def says(self, *phrases: str) -> bool:
        return all(phrase in self.text for phrase in phrases)


def seen_by(family: Family, tool: str, result: CallToolResult) -> Seen:
    """What a client of ``family`` hands the model for this answer."""
    structured = result.structured_content if family == "structured" and not result.is_error else None
    parts: list[str] = []
    if structured is not None:
        # Claude Code: JSON.stringify(structuredContent), then the non-text blocks; text blocks are dropped.
        parts.append(json.dumps(structured, ensure_ascii=False))
    pictures = 0
    links: list[str] = []
    for block in result.content:
        if block.type == "text":
            if structured is None:
                parts.append(block.text)
        elif block.type == "image":
            pictures += 1
            parts.append(f"[picture {pictures}: {block.mime_type}]")
        elif block.type == "resource_link":
            links.append(str(block.uri))
            parts.append(f"[link {block.uri}]")
    return Seen(
        family=family,
        tool=tool,
        error=bool(result.is_error),
        text="\n".join(parts),
        data=structured,
        pictures=pictures,
        links=links,
    )


def both_views_complete(result: CallToolResult, tool: str) -> None:
    """A success answer says the same summary and next step in both views, and names its pictures in both."""
    data = result.structured_content
    assert data is not None, f"{tool}: a success answer without structured content"
    texts = [block.text for block in result.content if block.type == "text"]
    assert list(data)[:2] == ["summary", "next_step"], f"{tool}: the JSON does not start with summary, next_step"
    assert data["summary"] and texts and texts[0].startswith(data["summary"]), f"{tool}: summaries differ"
    if data["next_step"]:
        assert texts[0].endswith(f"Next step: {data['next_step']}"), f"{tool}: the text lacks the next step"
    labels = [text for text in texts[1:] if text.startswith("Picture ")]
    pictures = [block for block in result.content if block.type == "image"]
    assert len(labels) == len(pictures) == len(data.get("pictures", [])), f"{tool}: pictures not named in both"
    assert labels == data.get("pictures", []), f"{tool}: pictures named differently in the two views"


class ViewWalker:
    """Calls tools like a client of one family: each answer is kept as that family shows it to the model."""

    def __init__(self, client: Client, family: Family) -> None:
        self.client = client
        self.family: Family = family
        self.calls: list[str] = []

    async def call(self, tool: str, args: dict[str, Any], *, error: bool = False) -> Seen:
        result = await self.client.call_tool(tool, args)
        self.calls.append(tool)
        seen = seen_by(self.family, tool, result)
        assert seen.error is error, f"{tool} {'succeeded' if not error else 'failed'} unexpectedly:\n{seen.text}"
        if not error:
            both_views_complete(result, tool)
        return seen

    def pick(self, seen: Seen, structured: Callable[[dict[str, Any]], T], content: Callable[[Seen], T]) -> T:
        """The next call's argument, read the way this family's model would read it."""
        if self.family == "structured" and seen.data is not None:
            return structured(seen.data)
        return content(seen)
