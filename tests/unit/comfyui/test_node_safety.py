"""Node safety: what /object_info says about a node (module, inputs, category) and the maintained list decide
which nodes need the artist's OK; custom nodes nobody knows are named, not blocked."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from ategnatos_mcp.comfyui.node_safety import flagged_nodes, load_node_facts, unfamiliar_nodes

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "comfyui"


@pytest.fixture(scope="module")
def object_info() -> dict[str, Any]:
    with gzip.open(FIX / "get_object_info_full.json.gz", "rt", encoding="utf-8") as fh:
        return json.load(fh)["response"]["body"]


def _custom(pack: str, *, required: dict[str, Any] | None = None, category: str = "image") -> dict[str, Any]:
    """An /object_info entry shaped as ComfyUI describes an installed custom node."""
    return {
        "input": {"required": required or {"image": ["IMAGE"]}},
        "output": ["IMAGE"],
        "python_module": f"custom_nodes.{pack}",
        "category": category,
        "output_node": False,
    }


def _flags(object_info: dict[str, Any], cls: str, node: dict[str, Any]) -> list[str]:
    return flagged_nodes({"1": {"class_type": cls}}, {**object_info, cls: node})


def test_a_node_taking_code_as_text_is_flagged_whatever_its_name(object_info: dict[str, Any]) -> None:
    node = _custom("handy-tools", required={"image": ["IMAGE"], "code": ["STRING", {"multiline": True}]})
    [flag] = _flags(object_info, "ImageMagic", node)
    assert "ImageMagic" in flag and "handy-tools" in flag and "arbitrary code" in flag and "'code'" in flag


def test_a_node_taking_a_web_address_is_flagged_as_network(object_info: dict[str, Any]) -> None:
    node = _custom("fetchers", required={"url": ["STRING", {}]})
    [flag] = _flags(object_info, "LoadFromSomewhere", node)
    assert "reaches other servers" in flag and "'url'" in flag


@pytest.mark.parametrize(("category", "risk"), [("utils/python", "arbitrary code"), ("llm/chat", "other servers")])
def test_the_category_comfyui_files_a_custom_node_under_counts(
    object_info: dict[str, Any], category: str, risk: str
) -> None:
    [flag] = _flags(object_info, "Helper", _custom("helpers", category=category))
    assert risk in flag and category in flag


def test_packs_and_classes_on_the_maintained_list_are_flagged_with_the_reason(object_info: dict[str, Any]) -> None:
    [pack] = _flags(object_info, "AnyNodeGemini", _custom("AnyNode"))
    assert "write Python and runs it" in pack
    [cls] = _flags(object_info, "Evaluate Integers", _custom("efficiency-nodes-comfyui"))
    assert "Python expression" in cls
    facts = load_node_facts()
    assert all(p.source and p.why for p in facts.packs) and all(c.source for c in facts.classes)


def test_the_bundled_websocket_node_and_core_nodes_pass(object_info: dict[str, Any]) -> None:
    graph = {"1": {"class_type": "SaveImageWebsocket"}, "2": {"class_type": "KSampler"}}
    assert flagged_nodes(graph, object_info) == [] and unfamiliar_nodes(graph, object_info) == []


def test_an_unknown_custom_node_is_named_not_flagged(object_info: dict[str, Any]) -> None:
    info = {**object_info, "ColorMatch": _custom("comfyui-kjnodes"), "Sharpen2": _custom("comfyui-kjnodes")}
    graph = {"1": {"class_type": "ColorMatch"}, "2": {"class_type": "Sharpen2"}, "3": {"class_type": "KSampler"}}
    assert flagged_nodes(graph, info) == []
    [note] = unfamiliar_nodes(graph, info)
    assert note.startswith("ColorMatch, Sharpen2") and "'comfyui-kjnodes'" in note and "trust" in note
