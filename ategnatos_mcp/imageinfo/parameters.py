"""Generation parameters embedded by image tools: ComfyUI's API graph and A1111's ``parameters`` text."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ategnatos_mcp.imageinfo.models import GenerationParameters

__all__ = ["decode_user_comment", "parse_a1111", "parse_comfyui"]

# A1111 writes "Key: value, Key: "quoted, value", ..." on the last line (modules/infotext_utils.py).
_A1111_PAIR = re.compile(r'\s*([\w][\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_A1111_KEYS = {
    "Seed": "seed",
    "Steps": "steps",
    "CFG scale": "cfg",
    "Sampler": "sampler",
    "Schedule type": "scheduler",
    "Model": "model",
}
_TEXT_INPUTS = ("text", "text_g", "text_l", "prompt", "clip_l", "t5xxl")
_MAX_TRACE_DEPTH = 12


def parse_a1111(text: str) -> GenerationParameters | None:
    """Parse A1111/Forge infotext: prompt lines, ``Negative prompt:`` lines, then one settings line."""
    lines = text.strip().splitlines()
    if not lines:
        return None
    settings_line = lines[-1] if len(_A1111_PAIR.findall(lines[-1])) >= 3 else ""
    body = lines[:-1] if settings_line else lines
    positive: list[str] = []
    negative: list[str] = []
    target = positive
    for line in body:
        if line.startswith("Negative prompt:"):
            target = negative
            line = line.removeprefix("Negative prompt:").strip()
        target.append(line)
    settings: dict[str, str] = {}
    for key, value in _A1111_PAIR.findall(settings_line):
        if value.startswith('"') and value.endswith('"'):
            value = json.loads(value) if _is_json_string(value) else value[1:-1]
        settings[key.strip()] = value.strip()
    if not settings and not negative:
        return None
    params = GenerationParameters(
        source="a1111",
        positive_prompt="\n".join(positive).strip() or None,
        negative_prompt="\n".join(negative).strip() or None,
    )
    _apply_a1111_settings(params, settings)
    return params


def _is_json_string(value: str) -> bool:
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def _apply_a1111_settings(params: GenerationParameters, settings: dict[str, str]) -> None:
    rest = dict(settings)
    for key, field in _A1111_KEYS.items():
        if key in rest:
            setattr(params, field, _convert(field, rest.pop(key)))
    size = rest.pop("Size", "")
    if match := re.fullmatch(r"(\d+)x(\d+)", size):
        params.width, params.height = int(match[1]), int(match[2])
    if "Lora hashes" in rest:
        params.loras = [part.split(":")[0].strip() for part in rest["Lora hashes"].split(",") if part.strip()]
    params.settings = rest


def _convert(field: str, value: str) -> Any:
    try:
        if field in {"seed", "steps"}:
            return int(value)
        if field == "cfg":
            return float(value)
    except ValueError:
        return None
    return value


def parse_comfyui(prompt_text: str, *, has_workflow: bool) -> GenerationParameters | None:
    """Read prompts and sampler settings from ComfyUI's API-format graph (the PNG ``prompt`` chunk)."""
    try:
        graph = json.loads(prompt_text)
    except ValueError:
        return None
    if not isinstance(graph, dict) or not graph:
        return None
    nodes: dict[str, dict[str, Any]] = {
        str(k): v for k, v in graph.items() if isinstance(v, dict) and isinstance(v.get("inputs"), dict)
    }
    params = GenerationParameters(source="comfyui", has_workflow=has_workflow, node_count=len(nodes))
    sampler = next((n for _, n in sorted(nodes.items(), key=_node_order) if _is_sampler(n)), None)
    if sampler is not None:
        _apply_sampler(params, nodes, sampler)
    for _, node in sorted(nodes.items(), key=_node_order):
        inputs = node["inputs"]
        name = inputs.get("ckpt_name") or inputs.get("unet_name")
        if params.model is None and isinstance(name, str):
            params.model = name
        if isinstance(inputs.get("lora_name"), str):
            strength = inputs.get("strength_model", inputs.get("strength"))
            params.loras.append(f"{inputs['lora_name']}@{strength}" if strength is not None else inputs["lora_name"])
    return params


def _node_order(item: tuple[str, Mapping[str, Any]]) -> tuple[int, str]:
    key = item[0]
    return (int(key), key) if key.isdigit() else (10**9, key)


def _is_sampler(node: Mapping[str, Any]) -> bool:
    inputs = node["inputs"]
    return _is_link(inputs.get("positive")) or _is_link(inputs.get("negative")) or "sampler_name" in inputs


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str | int)


def _apply_sampler(params: GenerationParameters, nodes: dict[str, dict[str, Any]], sampler: dict[str, Any]) -> None:
    inputs = sampler["inputs"]
    params.positive_prompt = _trace_text(nodes, inputs.get("positive"))
    params.negative_prompt = _trace_text(nodes, inputs.get("negative"))
    seed = inputs.get("seed", inputs.get("noise_seed"))
    params.seed = seed if isinstance(seed, int) else None
    params.steps = inputs.get("steps") if isinstance(inputs.get("steps"), int) else None
    cfg = inputs.get("cfg")
    params.cfg = float(cfg) if isinstance(cfg, int | float) else None
    params.sampler = inputs.get("sampler_name") if isinstance(inputs.get("sampler_name"), str) else None
    params.scheduler = inputs.get("scheduler") if isinstance(inputs.get("scheduler"), str) else None
    if isinstance(inputs.get("denoise"), int | float):
        params.settings["denoise"] = str(inputs["denoise"])
    latent = _follow(nodes, inputs.get("latent_image"))
    if latent is not None:
        width, height = latent["inputs"].get("width"), latent["inputs"].get("height")
        if isinstance(width, int) and isinstance(height, int):
            params.width, params.height = width, height


def _follow(nodes: Mapping[str, dict[str, Any]], link: Any) -> dict[str, Any] | None:
    return nodes.get(str(link[0])) if _is_link(link) else None


def _trace_text(nodes: Mapping[str, dict[str, Any]], link: Any) -> str | None:
    """Walk a conditioning link back to the text encoder(s) that produced it."""
    texts: list[str] = []
    frontier = [link]
    seen: set[str] = set()
    for _ in range(_MAX_TRACE_DEPTH):
        next_frontier: list[Any] = []
        for current in frontier:
            node = _follow(nodes, current)
            if node is None or str(current[0]) in seen:
                continue
            seen.add(str(current[0]))
            inputs = node["inputs"]
            found = [inputs[k] for k in _TEXT_INPUTS if isinstance(inputs.get(k), str) and inputs[k].strip()]
            if found:
                texts.extend(dict.fromkeys(found))
            else:
                next_frontier.extend(v for v in inputs.values() if _is_link(v))
        if not next_frontier:
            break
        frontier = next_frontier
    return "\n".join(texts) if texts else None


_UNICODE_PREFIX = b"UNICODE\x00"
_ASCII_PREFIX = b"ASCII\x00\x00\x00"


def decode_user_comment(value: bytes | str) -> str | None:
    """Decode an EXIF UserComment (8-byte charset prefix, then text), as A1111 writes into JPEG/WebP."""
    if isinstance(value, str):
        return value.strip("\x00").strip() or None
    if value.startswith(_UNICODE_PREFIX):
        body = value[len(_UNICODE_PREFIX) :]
        # piexif (used by A1111) writes UTF-16 big-endian; some tools write little-endian.
        candidates = [body.decode("utf-16-be", "replace"), body.decode("utf-16-le", "replace")]
        text = max(candidates, key=lambda s: sum(ch.isascii() and ch.isprintable() for ch in s))
    elif value.startswith(_ASCII_PREFIX) or value.startswith(b"\x00" * 8):
        text = value[8:].decode("latin-1")
    else:
        text = value.decode("utf-8", "replace")
    return text.strip("\x00").strip() or None
