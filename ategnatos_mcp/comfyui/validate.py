"""Check an API-format workflow against a server's ``/object_info`` before any GPU time is spent.

Every problem is collected (not just the first), each in plain words with the closest existing names.
ComfyUI's own ``node_errors`` answers are mapped to the same ``ValidationProblem`` shape.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable
from typing import Any, cast

from ategnatos_mcp.comfyui.models import NodeErrorDetail, PromptRejection, ValidationProblem
from ategnatos_mcp.comfyui.node_safety import flagged_nodes, unfamiliar_nodes
from ategnatos_mcp.errors import InvalidRequestError

__all__ = [
    "WorkflowInvalid",
    "describe_problems",
    "dropped_output_problems",
    "flagged_nodes",
    "problems_from_rejection",
    "unfamiliar_nodes",
    "shown",
    "validate_workflow",
]

_WHAT = {
    "ckpt_name": "checkpoint",
    "lora_name": "LoRA",
    "model_name": "upscale model",
    "unet_name": "diffusion model",
    "vae_name": "VAE",
    "control_net_name": "ControlNet model",
    "clip_name1": "text encoder",
    "clip_name2": "text encoder",
    "sampler_name": "sampler",
    "scheduler": "scheduler",
    "image": "input image",
}


def shown(value: Any) -> str:
    """A value as the model sent it, in JSON (``null``, not Python's ``None``), quoted, cut to a readable length."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return f"'{text}'" if len(text) <= 120 else f"'{text[:100]}...' ({len(text):,} characters)"


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def _options(spec: list[Any]) -> list[Any] | None:
    if spec and isinstance(spec[0], list):
        return spec[0]
    if spec and spec[0] == "COMBO":
        return list((spec[1] if len(spec) > 1 else {}).get("options", []))
    return None


def _closest(value: Any, choices: Iterable[Any], n: int = 3) -> list[str]:
    names = [str(c) for c in choices]
    text = str(value)
    lowered = {name.lower(): name for name in names}
    hits = difflib.get_close_matches(text.lower(), list(lowered), n=n, cutoff=0.3)
    found = [lowered[h] for h in hits]
    if not found:
        found = [name for name in names if text.lower().split(".")[0][:4] in name.lower()][:n]
    return found


def _input_specs(node_info: dict[str, Any]) -> tuple[dict[str, list[Any]], set[str]]:
    inputs = node_info.get("input") or {}
    specs: dict[str, list[Any]] = {**(inputs.get("optional") or {}), **(inputs.get("required") or {})}
    return specs, set((inputs.get("required") or {}).keys())


class _Checker:
    def __init__(self, workflow: dict[str, Any], info: dict[str, Any], skip: set[tuple[str, str]]) -> None:
        self.workflow, self.info, self.skip = workflow, info, skip
        self.problems: list[ValidationProblem] = []

    def add(self, node_id: str, cls: str, kind: str, message: str, name: str | None = None, **kw: Any) -> None:
        self.problems.append(
            ValidationProblem(node_id=node_id, class_type=cls, input_name=name, kind=kind, message=message, **kw)
        )

    def run(self) -> list[ValidationProblem]:
        if not self.workflow:
            self.add("", "", "empty", "The workflow has no nodes.")
            return self.problems
        has_output = False
        for node_id, node in self.workflow.items():
            cls = node.get("class_type") if isinstance(node, dict) else None
            if not cls or not isinstance(cls, str):
                self.add(node_id, "", "missing_class", f"Node {node_id} does not say what kind of node it is.")
                continue
            inputs = node.get("inputs") or {}
            if not isinstance(inputs, dict):
                self.add(node_id, cls, "bad_inputs", f"Node {node_id} ({cls}) has inputs that are not named values.")
                continue
            if cls not in self.info:
                self.add(
                    node_id,
                    cls,
                    "unknown_node",
                    f"Node {node_id} uses '{cls}', which this ComfyUI does not have (a missing custom node?).",
                    suggestions=_closest(cls, self.info),
                )
                continue
            has_output = has_output or bool(self.info[cls].get("output_node"))
            self.check_node(node_id, cls, cast("dict[str, Any]", inputs))
        if not has_output and not any(p.kind == "unknown_node" for p in self.problems):
            self.add("", "", "no_output", "Nothing in the workflow saves or shows a result (no output node).")
        for loop in _loops(self.workflow):
            first = self.workflow[loop[0]]
            cls = str(first.get("class_type", ""))
            path = " -> ".join([*loop, loop[0]])
            if len(loop) == 1:
                what = f"Node {loop[0]} ({cls}) takes its own result as input, so it can never start"
            else:
                what = f"Nodes {path} form a loop: each waits for the next one's result, so none can start"
            self.add(loop[0], cls, "loop", f"{what}. ComfyUI refuses a workflow with a loop; remove one of the links.")
        return self.problems

    def check_node(self, node_id: str, cls: str, inputs: dict[str, Any]) -> None:
        specs, required = _input_specs(self.info[cls])
        for name in sorted(required - inputs.keys()):
            if (node_id, name) not in self.skip:
                self.add(node_id, cls, "missing_input", f"Node {node_id} ({cls}) needs a value for '{name}'.", name)
        for name, value in inputs.items():
            if name in specs and (node_id, name) not in self.skip:
                self.check_input(node_id, cls, name, specs[name], value)

    def check_input(self, node_id: str, cls: str, name: str, spec: list[Any], value: Any) -> None:
        where = f"Node {node_id} ({cls}) input '{name}'"
        if _is_link(value):
            self.check_link(node_id, cls, name, spec, value)
            return
        options = _options(spec)
        if options is not None:
            if value in options or (name == "image" and isinstance(value, str) and ("/" in value or "[" in value)):
                return
            what = _WHAT.get(name, "value")
            self.add(
                node_id,
                cls,
                "not_in_list",
                f"{where}: {what} {shown(value)} is not available on this ComfyUI.",
                name,
                suggestions=_closest(value, options),
            )
            return
        if spec and spec[0] in ("INT", "FLOAT"):
            self.check_number(node_id, cls, name, spec, value, where)

    def check_number(self, node_id: str, cls: str, name: str, spec: list[Any], value: Any, where: str) -> None:
        cfg = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        try:
            number = float(value)
            if not math.isfinite(number):
                raise ValueError("not a finite number")
        except (TypeError, ValueError, OverflowError):
            self.add(node_id, cls, "wrong_type", f"{where}: {shown(value)} is not a number.", name)
            return
        if "min" in cfg and number < cfg["min"]:
            self.add(node_id, cls, "too_small", f"{where}: {value} is below the minimum {cfg['min']}.", name)
        if "max" in cfg and number > cfg["max"]:
            self.add(node_id, cls, "too_big", f"{where}: {value} is above the maximum {cfg['max']}.", name)

    def check_link(self, node_id: str, cls: str, name: str, spec: list[Any], value: list[Any]) -> None:
        where = f"Node {node_id} ({cls}) input '{name}'"
        source = self.workflow.get(value[0])
        if not isinstance(source, dict):
            self.add(node_id, cls, "bad_link", f"{where} is connected to node {value[0]}, which does not exist.", name)
            return
        source_class = source.get("class_type")
        source_info = self.info.get(source_class) if isinstance(source_class, str) else None
        if source_info is None:
            return  # already reported as unknown_node or missing_class
        outputs = source_info.get("output") or []
        if not 0 <= value[1] < len(outputs):
            self.add(
                node_id,
                cls,
                "bad_link",
                f"{where} uses output #{value[1]} of node {value[0]}, which has only {len(outputs)} outputs.",
                name,
            )
            return
        expected = spec[0] if isinstance(spec[0], str) else "COMBO"
        got = outputs[value[1]]
        if isinstance(got, list) or "*" in (expected, got) or expected == got:
            return
        if set(str(expected).split(",")) & set(str(got).split(",")):
            return
        self.add(
            node_id,
            cls,
            "wrong_type",
            f"{where} expects {expected} but node {value[0]} gives {got}.",
            name,
        )


def _loops(workflow: dict[str, Any]) -> list[list[str]]:
    """Each loop of links (node ids in link order), found once; iterative, so a long chain cannot overflow."""
    edges = {
        node_id: [v[0] for v in (node.get("inputs") or {}).values() if _is_link(v) and v[0] in workflow]
        for node_id, node in workflow.items()
        if isinstance(node, dict) and isinstance(node.get("inputs") or {}, dict)
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    loops: list[list[str]] = []
    for start in edges:
        if state.get(start):
            continue
        path: list[str] = [start]
        pending = [iter(edges[start])]
        state[start] = 1
        while pending:
            following = next(pending[-1], None)
            if following is None:
                state[path.pop()] = 2
                pending.pop()
            elif state.get(following) == 1:
                loops.append(path[path.index(following) :])
            elif not state.get(following) and following in edges:
                state[following] = 1
                path.append(following)
                pending.append(iter(edges[following]))
    return loops


def validate_workflow(
    workflow: dict[str, Any], object_info: dict[str, Any], *, skip: set[tuple[str, str]] | None = None
) -> list[ValidationProblem]:
    """All problems ComfyUI would refuse the workflow for; ``skip`` names (node, input) pairs filled in later."""
    return _Checker(workflow, object_info, skip or set()).run()


_KIND_BY_TYPE = {
    "required_input_missing": "missing_input",
    "value_not_in_list": "not_in_list",
    "value_smaller_than_min": "too_small",
    "value_bigger_than_max": "too_big",
    "invalid_input_type": "wrong_type",
    "return_type_mismatch": "wrong_type",
    "exception_during_inner_validation": "bad_link",
}


def problems_from_rejection(
    rejection: PromptRejection, object_info: dict[str, Any] | None = None
) -> list[ValidationProblem]:
    """ComfyUI's own 400 answer as ``ValidationProblem``s (same wording as our checks)."""
    problems: list[ValidationProblem] = []
    for node_id, node_error in rejection.node_errors.items():
        for err in node_error.errors:
            name = err.extra_info.get("input_name")
            kind = _KIND_BY_TYPE.get(err.type, err.type)
            where = f"Node {node_id} ({node_error.class_type})" + (f" input '{name}'" if name else "")
            suggestions: list[str] = []
            if kind == "not_in_list":
                spec = err.extra_info.get("input_config") or []
                received = err.extra_info.get("received_value")
                suggestions = _closest(received, _options(spec) or [])
                message = f"{where}: {_WHAT.get(name or '', 'value')} '{received}' is not available on this ComfyUI."
            elif kind == "bad_link":
                message = f"{where} is connected to a node or output that does not exist ({err.details})."
            else:
                message = f"{where}: {err.message}" + (f" ({err.details})" if err.details else "")
            problems.append(
                ValidationProblem(
                    node_id=node_id,
                    class_type=node_error.class_type,
                    input_name=name,
                    kind=kind,
                    message=message,
                    suggestions=suggestions,
                )
            )
    if not problems:
        problems.append(
            ValidationProblem(
                node_id="",
                kind=rejection.error.type,
                message=f"ComfyUI: {rejection.error.message}"
                + (f" ({rejection.error.details})" if rejection.error.details else ""),
            )
        )
    return problems


def describe_problems(problems: list[ValidationProblem]) -> str:
    """One plain-language paragraph per problem, numbered."""
    lines = []
    for i, p in enumerate(problems, 1):
        line = f"{i}. {p.message}"
        if p.suggestions:
            line += " Closest available: " + ", ".join(p.suggestions) + "."
        lines.append(line)
    return "\n".join(lines)


class WorkflowInvalid(InvalidRequestError):
    """The workflow cannot run on any configured server; ``problems`` lists every reason."""

    def __init__(self, message: str, *, problems: list[ValidationProblem], server: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.problems = problems
        self.server = server


def dropped_output_problems(node_errors: dict[str, Any]) -> list[ValidationProblem]:
    """A 200 answer may still drop outputs whose branch is invalid; report them as warnings."""
    if not node_errors:
        return []
    rejection = PromptRejection(error=NodeErrorDetail(type="partial"), node_errors=node_errors)
    return [
        p.model_copy(update={"message": p.message + " (that output was skipped)"})
        for p in problems_from_rejection(rejection)
    ]
