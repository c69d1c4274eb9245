"""The fake's POST /prompt validation, shaped like ComfyUI 0.3.64's answers (see post_prompt_validation_errors)."""

from __future__ import annotations

from typing import Any


def _err(kind: str, message: str, details: str = "", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def _options(spec: list[Any]) -> list[Any] | None:
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO" and len(spec) > 1:
        return spec[1].get("options", [])
    return None


def _check_input(name: str, spec: list[Any], value: Any, prompt: dict[str, Any], info: dict[str, Any]) -> list[Any]:
    cfg = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if is_link(value):
        source = prompt.get(value[0])
        if source is None:
            return [
                _err(
                    "exception_during_inner_validation",
                    "Exception when validating inner node",
                    repr(value[0]),
                    input_name=name,
                    input_config=spec,
                    exception_type="KeyError",
                    linked_node=value,
                )
            ]
        outputs = info.get(source.get("class_type"), {}).get("output", [])
        if value[1] >= len(outputs):
            return [
                _err(
                    "exception_during_inner_validation",
                    "Exception when validating inner node",
                    "tuple index out of range",
                    input_name=name,
                    input_config=spec,
                    exception_type="IndexError",
                )
            ]
        expected = spec[0] if isinstance(spec[0], str) else "COMBO"
        got = outputs[value[1]]
        if expected not in ("*", got) and got != "*" and not (expected == "COMBO" and isinstance(got, list)):
            return [
                _err(
                    "return_type_mismatch",
                    "Return type mismatch between linked nodes",
                    f"{name}, received_type({got}) mismatch input_type({expected})",
                    input_name=name,
                    input_config=spec,
                    received_type=got,
                    linked_node=value,
                )
            ]
        return []
    options = _options(spec)
    if options is not None:
        if value not in options and not (name == "image" and isinstance(value, str) and "/" in value):
            shown = str(options)
            return [
                _err(
                    "value_not_in_list",
                    "Value not in list",
                    f"{name}: '{value}' not in {shown}",
                    input_name=name,
                    input_config=spec,
                    received_value=value,
                )
            ]
        return []
    if spec[0] in ("INT", "FLOAT"):
        try:
            number = int(value) if spec[0] == "INT" else float(value)
        except (TypeError, ValueError) as exc:
            return [
                _err(
                    "invalid_input_type",
                    f"Failed to convert an input value to a {spec[0]} value",
                    f"{name}, {value}, {exc}",
                    input_name=name,
                    input_config=spec,
                    received_value=value,
                )
            ]
        if "min" in cfg and number < cfg["min"]:
            return [
                _err(
                    "value_smaller_than_min",
                    f"Value {number} smaller than min of {cfg['min']}",
                    name,
                    input_name=name,
                    input_config=spec,
                    received_value=value,
                )
            ]
        if "max" in cfg and number > cfg["max"]:
            return [
                _err(
                    "value_bigger_than_max",
                    f"Value {number} bigger than max of {cfg['max']}",
                    name,
                    input_name=name,
                    input_config=spec,
                    received_value=value,
                )
            ]
    return []


def validate_prompt(  # noqa: C901 - mirrors ComfyUI's own nested checks
    prompt: dict[str, Any], info: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any], list[str]]:
    """Return (error or None, node_errors, valid output ids) like ComfyUI's validate_prompt."""
    for node_id, node in prompt.items():
        cls = node.get("class_type") if isinstance(node, dict) else None
        if cls is None:
            msg = "Cannot execute because a node is missing the class_type property."
            return _err("invalid_prompt", msg, f"Node ID '#{node_id}'"), {}, []
        if cls not in info:
            msg = f"Cannot execute because node {cls} does not exist."
            return _err("invalid_prompt", msg, f"Node ID '#{node_id}'"), {}, []
    outputs = [nid for nid, node in prompt.items() if info[node["class_type"]].get("output_node")]
    if not outputs:
        return _err("prompt_no_outputs", "Prompt has no outputs"), {}, []
    node_errors: dict[str, Any] = {}
    good: list[str] = []
    for out in outputs:
        failed = False
        seen: set[str] = set()
        stack = [out]
        while stack:
            nid = stack.pop()
            if nid in seen:
                continue
            seen.add(nid)
            node = prompt[nid]
            spec = info[node["class_type"]]["input"]
            errors: list[Any] = [
                _err("required_input_missing", "Required input is missing", name, input_name=name)
                for name in spec.get("required", {})
                if name not in node.get("inputs", {})
            ]
            for section in ("required", "optional"):
                for name, input_spec in spec.get(section, {}).items():
                    if name in node.get("inputs", {}):
                        value = node["inputs"][name]
                        errors.extend(_check_input(name, input_spec, value, prompt, info))
                        if is_link(value) and value[0] in prompt:
                            stack.append(value[0])
            if errors:
                failed = True
                entry = node_errors.setdefault(
                    nid, {"errors": errors, "dependent_outputs": [], "class_type": node["class_type"]}
                )
                entry["dependent_outputs"].append(out)
        if not failed and _in_a_loop(prompt, seen):
            failed = True  # ComfyUI's recursive check fails on a loop without naming a node (q_self_cycle)
        if not failed:
            good.append(out)
    if not good:
        return _err("prompt_outputs_failed_validation", "Prompt outputs failed validation"), node_errors, []
    return None, node_errors, good


def _in_a_loop(prompt: dict[str, Any], nodes: set[str]) -> bool:
    """Whether the links among ``nodes`` (an output's upstream) go round in a circle."""
    links = {n: [v[0] for v in prompt[n].get("inputs", {}).values() if is_link(v) and v[0] in nodes] for n in nodes}
    remaining = dict(links)
    while remaining:
        leaves = [n for n, ups in remaining.items() if not any(u in remaining for u in ups)]
        if not leaves:
            return True
        for n in leaves:
            del remaining[n]
    return False


# --- graph helpers the fake's executor uses ---------------------------------------------------------------
def topological(prompt: dict[str, Any], outputs: list[str]) -> list[str]:
    order: list[str] = []

    def visit(node_id: str) -> None:
        if node_id in order:
            return
        for value in prompt[node_id]["inputs"].values():
            if is_link(value):
                visit(value[0])
        order.append(node_id)

    for out in outputs:
        visit(out)
    return order


def batch_size(prompt: dict[str, Any]) -> int:
    return max([int(v) for n in prompt.values() for k, v in n["inputs"].items() if k == "batch_size"] or [1])


def image_size(prompt: dict[str, Any], node_id: str) -> tuple[int, int, int]:
    """GetImageSize's (width, height, batch) when its image comes straight from a node that sets them."""
    link = prompt[node_id]["inputs"].get("image")
    source = prompt[link[0]]["inputs"] if is_link(link) else {}
    return int(source.get("width", 64)), int(source.get("height", 64)), int(source.get("batch_size", 1))


def value_text(prompt: dict[str, Any], value: Any) -> str:
    if is_link(value) and prompt[value[0]]["class_type"] == "GetImageSize":
        return str(image_size(prompt, value[0])[value[1]])
    return str(value)
