"""Built-in API-format workflow templates with declarative parameter bindings.

A template is a JSON file in ``templates/``: the workflow, plus parameters that each name the node
inputs they set (no string replacement), plus where a LoRA stack plugs in (the model and clip outputs
that chained ``LoraLoader`` nodes are inserted after). SD1.5/SDXL templates route the clip output
through a ``CLIPSetLastLayer`` node (parameter ``clip_skip``) before the text encoders, so a LoRA
stack lands between the checkpoint and the clip skip.
"""

from __future__ import annotations

import copy
import math
import secrets
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ategnatos_mcp.comfyui.validate import shown
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError
from ategnatos_mcp.families import find_family

__all__ = [
    "LoraChoice",
    "LoraFacts",
    "RenderedWorkflow",
    "Template",
    "TemplateParameter",
    "get_template",
    "list_templates",
    "render_template",
]

_DIR = Path(__file__).resolve().parent / "templates"
_SEED_MAX = 2**32 - 1


class TemplateParameter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    type: Literal["string", "int", "float", "bool", "seed", "image"]
    description: str
    targets: list[tuple[str, str]] = Field(description="(node id, input name) pairs this value is written to.")
    negate: bool = Field(
        default=False,
        description="Write minus the value: clip_skip 2 is CLIPSetLastLayer's stop_at_clip_layer -2.",
    )
    default: Any = None
    required: bool = False
    min: float | None = None
    max: float | None = None


class LoraHook(BaseModel):
    """Where a LoRA stack plugs in; without ``clip`` the LoRAs touch the diffusion model only (``LoraLoaderModelOnly``,
    as ComfyUI's FLUX examples do: FLUX LoRAs rarely carry text-encoder weights)."""

    model_config = ConfigDict(extra="forbid")

    model: tuple[str, int]
    clip: tuple[str, int] | None = None


class Template(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    family: str = Field(description="The shared catalogue's family id, or 'any'.")
    parameters: list[TemplateParameter]
    workflow: dict[str, Any]
    lora: LoraHook | None = None
    prompt_param: str | None = None
    requires_loras: bool = False

    def parameter(self, name: str) -> TemplateParameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str) -> str:
        if value == "any":
            return value
        found = find_family(value)
        if found is None:
            raise ValueError(f"'{value}' is not a family in the catalogue (ategnatos_mcp/families)")
        return found.id


class LoraChoice(BaseModel):
    """One LoRA of a stack: its file name and weight (default: the inventory's upper weight, else 1.0)."""

    name: str = Field(description="LoRA file name as ComfyUI lists it, e.g. 'mascot_v2.safetensors'.")
    weight: float | None = Field(default=None, ge=-5, le=5, description="Strength, usually 0.4-1.0.")


class LoraFacts(BaseModel):
    """What the studio inventory knows about a LoRA."""

    trigger_words: list[str] = Field(default_factory=list)
    weight_min: float | None = None
    weight_max: float | None = None


class RenderedWorkflow(BaseModel):
    """A filled template ready for the pool, with what was decided on the way."""

    workflow: dict[str, Any]
    params: dict[str, Any]
    seed: int | None = None
    images: dict[str, tuple[str, str, str]] = Field(
        default_factory=dict, description="image parameter -> (node id, input name, path to upload)"
    )
    trigger_words: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


@cache
def _load_all() -> dict[str, Template]:
    templates = [Template.model_validate_json(p.read_text(encoding="utf-8")) for p in sorted(_DIR.glob("*.json"))]
    return {t.name: t for t in templates}


def list_templates() -> list[Template]:
    return list(_load_all().values())


def get_template(name: str) -> Template:
    """The built-in template called ``name``.

    Raises:
        NotFoundError: unknown name (the message lists the real ones).
    """
    found = _load_all().get(name)
    if found is None:
        names = ", ".join(_load_all())
        raise NotFoundError(f"There is no template '{name}'.", kind="template", name=name, hint=f"Use one of: {names}.")
    return found


def _coerce(param: TemplateParameter, value: Any) -> Any:
    try:
        match param.type:
            case "int" | "seed":
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                number: Any = int(value)
            case "float":
                number = float(value)
                if not math.isfinite(number):
                    raise ValueError
            case "bool":
                if not isinstance(value, bool):
                    raise ValueError
                return value
            case _:
                if not isinstance(value, str):
                    raise ValueError
                return value
    except (TypeError, ValueError, OverflowError):
        raise InvalidRequestError(
            f"Parameter '{param.name}' must be {'a whole number' if param.type in ('int', 'seed') else 'a ' + param.type}"
            f", not {shown(value)}.",
            hint=f"{param.name}: {param.description}",
        ) from None
    low, high = (0, _SEED_MAX) if param.type == "seed" else (param.min, param.max)
    if (low is not None and number < low) or (high is not None and number > high):
        raise InvalidRequestError(
            f"Parameter '{param.name}' = {value} is outside {low}..{high}.", hint=f"{param.name}: {param.description}"
        )
    return number


def _next_id(workflow: dict[str, Any]) -> int:
    return max((int(k) for k in workflow if k.isdigit()), default=0) + 1


def _insert_loras(workflow: dict[str, Any], hook: LoraHook, stack: list[tuple[str, float]]) -> None:
    model_src = list(hook.model)
    clip_src = list(hook.clip) if hook.clip is not None else None
    consumers = [
        (node_id, name, value)
        for node_id, node in workflow.items()
        for name, value in node["inputs"].items()
        if value == model_src or (clip_src is not None and value == clip_src)
    ]
    model, clip = model_src, clip_src
    for lora_name, weight in stack:
        node_id = str(_next_id(workflow))
        if clip is None:
            inputs: dict[str, Any] = {"lora_name": lora_name, "strength_model": weight, "model": model}
            workflow[node_id] = {"class_type": "LoraLoaderModelOnly", "inputs": inputs}
        else:
            inputs = {"lora_name": lora_name, "strength_model": weight, "strength_clip": weight}
            workflow[node_id] = {"class_type": "LoraLoader", "inputs": {**inputs, "model": model, "clip": clip}}
            clip = [node_id, 1]
        workflow[node_id]["_meta"] = {"title": f"LoRA {lora_name}"}
        model = [node_id, 0]
    for node_id, name, value in consumers:
        workflow[node_id]["inputs"][name] = model if value == model_src else clip


def render_template(
    template: Template,
    params: dict[str, Any],
    *,
    loras: list[LoraChoice] | None = None,
    lora_facts: dict[str, LoraFacts] | None = None,
) -> RenderedWorkflow:
    """Fill ``template`` with ``params`` (checked and typed), insert the LoRA stack, pick a seed if none was given.

    Raises:
        InvalidRequestError: an unknown or missing parameter, a wrong type, a value out of range.
    """
    unknown = sorted(set(params) - {p.name for p in template.parameters})
    if unknown:
        names = ", ".join(p.name for p in template.parameters)
        raise InvalidRequestError(
            f"Template '{template.name}' has no parameter {', '.join(map(repr, unknown))}.",
            hint=f"Its parameters are: {names}.",
        )
    loras = loras or []
    lora_facts = lora_facts or {}
    if template.requires_loras and not loras:
        raise InvalidRequestError(
            f"Template '{template.name}' tests a LoRA, but none was given.", hint="Pass loras=[{name, weight}]."
        )
    if loras and template.lora is None:
        raise InvalidRequestError(f"Template '{template.name}' does not take LoRAs.", hint="Call again without loras.")
    rendered = RenderedWorkflow(workflow=copy.deepcopy(template.workflow), params={})
    workflow = rendered.workflow  # validation copied the dict: edit the one we return
    for param in template.parameters:
        value = params.get(param.name, param.default)
        if value is None and param.type == "seed":
            value = secrets.randbelow(_SEED_MAX)
        if value is None:
            if param.required:
                raise InvalidRequestError(
                    f"Template '{template.name}' needs '{param.name}'.", hint=f"{param.name}: {param.description}"
                )
            continue
        if param.type == "image":
            if not isinstance(value, str):
                raise InvalidRequestError(f"Parameter '{param.name}' must be a file path.", hint=param.description)
            node_id, input_name = param.targets[0]
            rendered.images[param.name] = (node_id, input_name, value)
            rendered.params[param.name] = value
            continue
        value = _coerce(param, value)
        rendered.params[param.name] = value
        if param.type == "seed":
            rendered.seed = value
        for node_id, input_name in param.targets:
            workflow[node_id]["inputs"][input_name] = -value if param.negate else value
    if loras and template.lora is not None:
        stack = _lora_stack(loras, lora_facts, rendered)
        _insert_loras(workflow, template.lora, stack)
        rendered.params["loras"] = [{"name": n, "weight": w} for n, w in stack]
        _add_trigger_words(template, rendered)
    return rendered


def _lora_stack(
    loras: list[LoraChoice], facts: dict[str, LoraFacts], rendered: RenderedWorkflow
) -> list[tuple[str, float]]:
    stack: list[tuple[str, float]] = []
    for choice in loras:
        fact = facts.get(choice.name) or facts.get(Path(choice.name).stem)
        weight = choice.weight
        if weight is None:
            weight = fact.weight_max if fact and fact.weight_max is not None else 1.0
        if fact is not None:
            low, high = fact.weight_min, fact.weight_max
            if (low is not None and weight < low) or (high is not None and weight > high):
                rendered.warnings.append(
                    f"LoRA {choice.name} at {weight} is outside its usual range {low}-{high}; results may look odd."
                )
            rendered.trigger_words.extend(w for w in fact.trigger_words if w not in rendered.trigger_words)
        stack.append((choice.name, float(weight)))
    return stack


def _add_trigger_words(template: Template, rendered: RenderedWorkflow) -> None:
    param = template.parameter(template.prompt_param or "")
    if param is None or not rendered.trigger_words:
        return
    prompt = str(rendered.params.get(param.name, ""))
    missing = [w for w in rendered.trigger_words if w.lower() not in prompt.lower()]
    if not missing:
        return
    prompt = ", ".join([*missing, prompt]) if prompt else ", ".join(missing)
    rendered.params[param.name] = prompt
    for node_id, input_name in param.targets:
        rendered.workflow[node_id]["inputs"][input_name] = prompt
