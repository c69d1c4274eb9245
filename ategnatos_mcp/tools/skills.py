"""MCP adapter for the skills: each SKILL.md as a prompt, reference files as resources, plus a listing."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.prompts import Prompt
from mcp.types import Prompt as PromptInfo

from ategnatos_mcp.errors import AtegnatosError, NotFoundError
from ategnatos_mcp.skills_catalog import Skill, find_skills_root, list_skills, load_skill, read_skill_file
from ategnatos_mcp.text import show_invisible
from ategnatos_mcp.wiring import Wiring

__all__ = ["prompt_problem", "register"]

logger = logging.getLogger("ategnatos_mcp.tools.skills")

SKILL_PROMPTS = ("studio", "art", "train", "eye")


def _prompt_body(name: str) -> Callable[[], Awaitable[str]]:
    async def body() -> str:
        # Read at call time so an edited SKILL.md is served without a restart.
        return load_skill(name).body

    body.__name__ = f"{name}_skill"
    return body


def _shown(text: str) -> str:
    return show_invisible(repr(text) if len(text) <= 80 else f"{text[:60]!r}... ({len(text):,} characters)")


def prompt_problem(prompts: dict[str, PromptInfo], name: str, arguments: dict[str, object]) -> str | None:
    """What is wrong with a prompt request (unknown prompt, unknown or missing arguments), or None."""
    if name not in prompts:
        return (
            f"There is no prompt {_shown(name)}. The prompts are: {', '.join(sorted(prompts)) or 'none'}.\n"
            "Next step: ask for one of those by name."
        )
    declared = prompts[name].arguments or []
    allowed = {arg.name for arg in declared}
    unknown = sorted(set(arguments) - allowed)
    if unknown:
        takes = f"its arguments are {', '.join(sorted(allowed))}" if allowed else "it takes no arguments"
        return (
            f"The prompt '{name}' has no argument {', '.join(_shown(a) for a in unknown[:8])} ({takes}).\n"
            "Next step: ask for it again without " + ("that argument." if len(unknown) == 1 else "those arguments.")
        )
    missing = sorted(arg.name for arg in declared if arg.required and arg.name not in arguments)
    if missing:
        return (
            f"The prompt '{name}' needs {', '.join(missing)}.\nNext step: ask for it again with {', '.join(missing)}."
        )
    return None


def _listing(skills: list[Skill]) -> str:
    return json.dumps(
        {
            "skills": [
                {
                    "name": skill.name,
                    "description": skill.description,
                    "prompt": skill.name,
                    "uri": f"ategnatos://skills/{skill.name}/SKILL.md",
                    "references": [{"name": r.name, "title": r.title, "uri": r.uri} for r in skill.references],
                }
                for skill in skills
            ]
        },
        indent=2,
    )


def register(server: MCPServer[Wiring], app: Wiring) -> None:
    """Register the skill prompts, a listing of skills and reference files, and a template to read each file."""
    try:
        root = find_skills_root()
        skills = list_skills(root)
    except AtegnatosError as exc:
        logger.warning("Skills are not available: %s", exc.message)
        return
    for skill in skills:
        if skill.name in SKILL_PROMPTS:
            server.add_prompt(
                Prompt.from_function(
                    _prompt_body(skill.name), name=skill.name, title=f"/{skill.name}", description=skill.description
                )
            )

    @server.resource(
        "ategnatos://skills",
        name="skills",
        title="Skills and their reference files",
        description="Every skill (also served as a prompt) with the URIs of its reference files.",
        mime_type="application/json",
    )
    def skills_listing() -> str:
        return _listing(list_skills(root))

    @server.resource(
        "ategnatos://skills/{skill}/{file}",
        name="skill-file",
        title="A skill's SKILL.md or reference file",
        description="file is 'SKILL.md' or a name listed by ategnatos://skills.",
    )
    def skill_file(skill: str, file: str) -> str:
        return _read(skill, file, root)


def _read(skill: str, name: str, root: Path) -> str:
    # Resource handlers cannot use @guard: only ResourceError text reaches the client.
    try:
        return read_skill_file(skill, name, root)
    except NotFoundError as exc:
        raise ResourceNotFoundError(str(exc)) from exc
    except AtegnatosError as exc:
        raise ResourceError(str(exc)) from exc
