"""UI-format import and the saved-workflow library."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from ategnatos_mcp.comfyui.workflows import WorkflowLibrary, is_ui_format, ui_to_api
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "comfyui"


@pytest.fixture(scope="module")
def object_info() -> dict[str, Any]:
    with gzip.open(FIX / "get_object_info_full.json.gz", "rt", encoding="utf-8") as fh:
        return json.load(fh)["response"]["body"]


def _strip_meta(graph: dict[str, Any]) -> dict[str, Any]:
    return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in graph.items()}


def test_ui_export_converts_to_the_api_workflow_comfyui_ran(object_info: dict[str, Any]) -> None:
    ui = json.loads((FIX / "ui_txt2img.json").read_text(encoding="utf-8"))
    expected = json.loads((FIX / "workflows" / "txt2img_sd15.json").read_text(encoding="utf-8"))
    assert is_ui_format(ui) and not is_ui_format(expected)
    assert _strip_meta(ui_to_api(ui, object_info)) == _strip_meta(expected)


def test_a_primitive_node_feeding_a_widget_gives_its_value(object_info: dict[str, Any]) -> None:
    ui = json.loads((FIX / "ui_txt2img.json").read_text(encoding="utf-8"))
    ui["nodes"].append(
        {"id": 30, "type": "PrimitiveNode", "mode": 0, "inputs": [], "widgets_values": [1234, "fixed"], "outputs": []}
    )
    ui["links"].append([30, 30, 0, 3, 4, "INT"])
    [sampler] = [n for n in ui["nodes"] if n["id"] == 3]
    sampler["inputs"].append({"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": 30})
    assert ui_to_api(ui, object_info)["3"]["inputs"]["seed"] == 1234


def test_ui_export_with_missing_custom_nodes_says_which_and_why(object_info: dict[str, Any]) -> None:
    ui = json.loads((FIX / "ui_txt2img.json").read_text(encoding="utf-8"))
    ui["nodes"][0]["type"] = "CheckpointLoader|pysssss"
    ui["nodes"].append({"id": 20, "type": "workflow>my group", "mode": 0, "inputs": [], "outputs": []})
    with pytest.raises(InvalidRequestError) as caught:
        ui_to_api(ui, object_info)
    message = caught.value.message
    assert "Node 4 is 'CheckpointLoader|pysssss'" in message and "not installed" in message
    assert "Node 20 is 'workflow>my group'" in message and "group node" in message


def test_subgraphs_are_refused_with_a_way_out(object_info: dict[str, Any]) -> None:
    ui = json.loads((FIX / "ui_txt2img.json").read_text(encoding="utf-8"))
    ui["definitions"] = {"subgraphs": [{"id": "x"}]}
    with pytest.raises(InvalidRequestError) as caught:
        ui_to_api(ui, object_info)
    assert "Export (API)" in caught.value.hint


async def test_library_saves_lists_gets_and_deletes(tmp_path: Path) -> None:
    library = WorkflowLibrary(tmp_path / "workflows")
    graph = json.loads((FIX / "workflows" / "multi_output.json").read_text(encoding="utf-8"))
    await library.save("multi", graph)
    with pytest.raises(InvalidRequestError):
        await library.save("multi", graph)
    await library.save("multi", graph, overwrite=True)
    [summary] = await library.list()
    assert summary.name == "multi" and summary.nodes == len(graph) and summary.outputs
    assert await library.get("multi") == graph
    await library.delete("multi")
    with pytest.raises(NotFoundError):
        await library.get("multi")
    with pytest.raises(InvalidRequestError):
        await library.save("../escape", graph)
