"""Which nodes of a workflow need the artist's OK before they run: paid API calls, code execution, network use.

Judged from what ComfyUI says about each node in ``/object_info`` (``api_node``, ``python_module``, inputs,
category) and from ``node_safety.json``, a maintained list of custom node packs and classes known to run code
or reach the network. A custom node Ategnatos has no facts about is named as such, without blocking it.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["NodeFacts", "flagged_nodes", "load_node_facts", "unfamiliar_nodes"]

Risk = Literal["code", "network"]
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# Class or module names that say "this runs code" outright.
_CODE_NAME_WORDS = {"exec", "execute", "eval", "python", "script", "code", "shell", "command", "subprocess", "jupyter"}
_WHAT = {"code": "can run arbitrary code on the ComfyUI machine", "network": "reaches other servers over the network"}


class _Facts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KnownPack(_Facts):
    pack: str
    risk: Risk
    why: str
    source: str


class KnownClass(_Facts):
    class_: str = Field(alias="class")
    risk: Risk
    why: str
    source: str


class TrustedPack(_Facts):
    pack: str
    why: str
    source: str


class NodeFacts(_Facts):
    """The whole ``node_safety.json``."""

    about: str = Field(default="", alias="_about")
    schema_version: int = 1
    core_modules: list[str]
    trusted: list[TrustedPack]
    packs: list[KnownPack]
    classes: list[KnownClass]
    code_inputs: list[str]
    network_inputs: list[str]
    code_categories: list[str]
    network_categories: list[str]


@cache
def load_node_facts() -> NodeFacts:
    """The maintained list shipped with the package (read once)."""
    text = resources.files("ategnatos_mcp.comfyui").joinpath("node_safety.json").read_text(encoding="utf-8")
    return NodeFacts.model_validate(json.loads(text))


def _pack(module: str) -> str | None:
    """The custom node pack a ``python_module`` comes from (None for ComfyUI's own modules)."""
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "custom_nodes":
        return parts[1].removesuffix(".py")
    return None


def _words(*names: str) -> set[str]:
    return {w.lower() for name in names for w in _WORDS.findall(name)}


def _input_names(info: dict[str, Any]) -> dict[str, list[Any]]:
    inputs = info.get("input") or {}
    return {**(inputs.get("optional") or {}), **(inputs.get("required") or {})}


def _from_object_info(cls: str, info: dict[str, Any], facts: NodeFacts) -> tuple[Risk, str] | None:
    """What the node's own description in /object_info gives away (custom nodes only)."""
    strings = {name.lower() for name, spec in _input_names(info).items() if spec and spec[0] == "STRING"}
    if found := sorted(strings & set(facts.code_inputs)):
        return "code", f"it takes {found[0]!r} as text to run"
    if _words(cls, str(info.get("python_module", ""))) & _CODE_NAME_WORDS:
        return "code", "its name says it runs code"
    category = _words(str(info.get("category", "")).replace("/", " "))
    if category & set(facts.code_categories):
        return "code", f"ComfyUI files it under '{info.get('category')}'"
    if found := sorted(strings & set(facts.network_inputs)):
        return "network", f"it takes {found[0]!r} (a web address or key)"
    if category & set(facts.network_categories):
        return "network", f"ComfyUI files it under '{info.get('category')}'"
    return None


def _judge(cls: str, info: dict[str, Any], facts: NodeFacts) -> tuple[Risk, str, str] | None:
    """(risk, why, where from) for a node that needs consent; None for one that does not."""
    for known in facts.classes:
        if known.class_ == cls:
            return known.risk, known.why, known.source
    pack = _pack(str(info.get("python_module", "")))
    if pack is None:
        return None  # ComfyUI itself (its paid API nodes are caught by api_node)
    if pack.casefold() in {t.pack.casefold() for t in facts.trusted}:
        return None
    for known in facts.packs:
        if known.pack.casefold() == pack.casefold():
            return known.risk, known.why, f"the custom node pack '{pack}'"
    found = _from_object_info(cls, info, facts)
    if found is not None:
        return found[0], found[1], f"the custom node pack '{pack}'"
    return None


def _classes(workflow: dict[str, Any]) -> list[str]:
    return sorted({str(n.get("class_type")) for n in workflow.values() if isinstance(n, dict)})


def flagged_nodes(workflow: dict[str, Any], object_info: dict[str, Any]) -> list[str]:
    """Node classes that call paid online APIs, may run arbitrary code or reach the network, each with the reason."""
    facts = load_node_facts()
    flags: list[str] = []
    for cls in _classes(workflow):
        info = object_info.get(cls) or {}
        if info.get("api_node"):
            flags.append(f"{cls} sends your prompt to a paid online service (billed to a Comfy.org account).")
            continue
        judged = _judge(cls, info, facts)
        if judged is not None:
            risk, why, origin = judged
            flags.append(f"{cls} (from {origin}) {_WHAT[risk]}: {why}.")
    return flags


def unfamiliar_nodes(workflow: dict[str, Any], object_info: dict[str, Any]) -> list[str]:
    """Custom nodes Ategnatos has no facts about (neither flagged nor known safe), named for the artist."""
    facts = load_node_facts()
    trusted = {t.pack.casefold() for t in facts.trusted}
    by_pack: dict[str, list[str]] = {}
    for cls in _classes(workflow):
        info = object_info.get(cls) or {}
        pack = _pack(str(info.get("python_module", "")))
        if pack is None or pack.casefold() in trusted or info.get("api_node") or _judge(cls, info, facts):
            continue
        by_pack.setdefault(pack, []).append(cls)
    return [
        f"{', '.join(classes)} come(s) from the custom node pack '{pack}', which Ategnatos has no facts about; "
        "custom nodes run with ComfyUI's full access to files and network, so use packs you trust."
        for pack, classes in sorted(by_pack.items())
    ]
