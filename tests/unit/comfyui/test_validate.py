"""Validation against the recorded /object_info, and ComfyUI's recorded node_errors mapped to the same shape."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from ategnatos_mcp.comfyui.models import PromptRejection
from ategnatos_mcp.comfyui.validate import describe_problems, flagged_nodes, problems_from_rejection, validate_workflow

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "comfyui"


@pytest.fixture(scope="module")
def object_info() -> dict[str, Any]:
    with gzip.open(FIX / "get_object_info_full.json.gz", "rt", encoding="utf-8") as fh:
        return json.load(fh)["response"]["body"]


def wf(name: str) -> dict[str, Any]:
    return json.loads((FIX / "workflows" / f"{name}.json").read_text(encoding="utf-8"))


def recorded_rejection(case: str) -> PromptRejection:
    cases = json.loads((FIX / "post_prompt_validation_errors.json").read_text(encoding="utf-8"))["cases"]
    return PromptRejection.model_validate(cases[case]["response"]["body"])


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("error_a_unknown_class_type", {("2", "unknown_node", None)}),
        ("error_b_missing_required_input", {("1", "missing_input", "width")}),
        ("error_c_invalid_value_not_in_list", {("1", "not_in_list", "ckpt_name")}),
        ("error_d_link_to_missing_node", {("2", "bad_link", "image")}),
        ("error_g_value_below_min", {("1", "too_small", "width")}),
        ("error_h_value_above_max", {("1", "too_big", "width")}),
        ("error_i_invalid_input_type", {("1", "wrong_type", "width")}),
        ("error_j_link_output_index_out_of_range", {("2", "bad_link", "image")}),
        ("error_k_return_type_mismatch", {("2", "wrong_type", "images")}),
        ("error_l_no_output_node", {("", "no_output", None)}),
        # a loop too: ComfyUI names only the type mismatch, found before it would go round the loop
        ("error_o_link_wrong_type_into_int", {("1", "wrong_type", "width"), ("1", "loop", None)}),
        ("error_q_self_cycle", {("2", "loop", None)}),  # ComfyUI answers 400 without naming a node
    ],
)
def test_recorded_bad_workflows_are_caught_before_submitting(
    object_info: dict[str, Any], case: str, expected: set[tuple[str, str, str | None]]
) -> None:
    problems = validate_workflow(wf(case), object_info)
    assert {(p.node_id, p.kind, p.input_name) for p in problems} == expected


@pytest.mark.parametrize("case", ["error_i2_numeric_string_coerced", "error_p_float_for_int", "txt2img_sd15"])
def test_workflows_comfyui_accepts_pass(object_info: dict[str, Any], case: str) -> None:
    assert validate_workflow(wf(case), object_info) == []


def test_every_problem_is_reported_at_once_with_closest_names(object_info: dict[str, Any]) -> None:
    graph = wf("txt2img_sd15")
    graph["4"]["inputs"]["ckpt_name"] = "random_sd15.safetensors"
    graph["3"]["inputs"]["sampler_name"] = "Euler"
    graph["3"]["inputs"]["steps"] = 0
    graph["8"]["inputs"]["samples"] = ["42", 0]
    graph["12"] = {"class_type": "KSampler2", "inputs": {}}
    problems = validate_workflow(graph, object_info)
    assert {(p.node_id, p.kind) for p in problems} == {
        ("4", "not_in_list"),
        ("3", "not_in_list"),
        ("3", "too_small"),
        ("8", "bad_link"),
        ("12", "unknown_node"),
    }
    by_node = {(p.node_id, p.kind): p for p in problems}
    assert by_node[("4", "not_in_list")].suggestions[0] == "mcp_random_sd15_layout.safetensors"
    assert by_node[("3", "not_in_list")].suggestions[0] == "euler"
    assert "KSampler" in by_node[("12", "unknown_node")].suggestions
    text = describe_problems(problems)
    assert text.count("\n") == 4 and "Closest available: mcp_random_sd15_layout.safetensors" in text


def test_uploaded_image_inputs_can_be_skipped_and_subfolder_names_pass(object_info: dict[str, Any]) -> None:
    graph = wf("load_uploaded_image")
    [load] = [k for k, v in graph.items() if v["class_type"] == "LoadImage"]
    graph[load]["inputs"]["image"] = "not-uploaded-yet.png"
    assert validate_workflow(graph, object_info, skip={(load, "image")}) == []
    graph[load]["inputs"]["image"] = "mcp_sub/mcp_upload_alpha.png"
    assert validate_workflow(graph, object_info) == []


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("b_missing_required_input", [("1", "missing_input", "width")]),
        ("c_invalid_value_not_in_list", [("1", "not_in_list", "ckpt_name")]),
        ("d_link_to_missing_node", [("2", "bad_link", "images")]),
        ("g_value_below_min", [("1", "too_small", "width")]),
        ("k_return_type_mismatch", [("2", "wrong_type", "images")]),
        ("a_unknown_class_type", [("", "invalid_prompt", None)]),
        ("f_empty_prompt", [("", "prompt_no_outputs", None)]),
    ],
)
def test_comfyui_node_errors_map_to_the_same_problems(case: str, expected: list[tuple[str, str, str | None]]) -> None:
    problems = problems_from_rejection(recorded_rejection(case))
    assert [(p.node_id, p.kind, p.input_name) for p in problems] == expected
    assert all(p.message for p in problems)


def test_recorded_not_in_list_answer_gets_closest_names() -> None:
    [problem] = problems_from_rejection(recorded_rejection("c_invalid_value_not_in_list"))
    assert problem.suggestions == ["mcp_random_sd15_layout.safetensors"]
    assert "checkpoint 'nope.safetensors' is not available" in problem.message


def test_paid_api_and_code_running_nodes_are_flagged(object_info: dict[str, Any]) -> None:
    info = {**object_info, "RunPythonCode": {"python_module": "custom_nodes.evil", "input": {}, "output": []}}
    graph = {
        "1": {"class_type": "OpenAIDalle3"},
        "2": {"class_type": "RunPythonCode"},
        "3": {"class_type": "VAEDecode"},
    }
    flags = flagged_nodes(graph, info)
    assert len(flags) == 2
    assert flags[0].startswith("OpenAIDalle3") and "paid" in flags[0]
    assert flags[1].startswith("RunPythonCode") and "arbitrary code" in flags[1]


def test_no_stock_node_outside_the_api_nodes_is_flagged(object_info: dict[str, Any]) -> None:
    graph = {name: {"class_type": name} for name, info in object_info.items() if not info.get("api_node")}
    assert flagged_nodes(graph, object_info) == []


def test_a_loop_through_several_nodes_is_named_once_and_a_long_chain_is_no_loop(object_info: dict[str, Any]) -> None:
    graph = wf("basic_empty_invert_save")
    graph["1"] = {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}}
    [loop] = validate_workflow(graph, object_info)
    assert (loop.node_id, loop.kind) == ("1", "loop") and "Nodes 1 -> 2 -> 1 form a loop" in loop.message
    chain: dict[str, Any] = {
        str(i): {"class_type": "ImageInvert", "inputs": {"image": [str(i + 1), 0]}} for i in range(5000)
    }
    chain["5000"] = {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}}
    chain["save"] = {"class_type": "SaveImage", "inputs": {"images": ["0", 0], "filename_prefix": "x"}}
    assert validate_workflow(chain, object_info) == []  # 5,000 nodes deep: checked without recursion
