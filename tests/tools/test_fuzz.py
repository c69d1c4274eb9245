"""A bounded, seeded fuzz over every tool's input schema: each call gets a plain answer and a refusal changes nothing.

``test_bad_input`` sends hand-picked mistakes; this sends what a confused model or an attacker might: for each
registered tool, ``CALLS_PER_TOOL`` calls built from the tool's own input schema, mixing valid-shaped values
(enum members, in-range numbers, names and paths of the project), boundary values (each limit and one past
it) and hostile ones (1e308, 2**63, "NaN", unicode controls and bidi overrides, 100,000-character strings,
JSON nested 90 deep, path traversal, shell and template syntax, the wrong JSON type). The seed is fixed, so
a failure names a call that can be replayed.

Every answer is checked with the rules test_bad_input uses (tests/support/careless.py: no bare "Error executing
tool", no traceback or exception class name, no raw control characters, a next step in every refusal, no answer of
thousands of characters), plus: a successful answer never repeats a long input whole, and after a refusal the project
folder is byte for byte what it was.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from ategnatos_mcp.comfyui import get_template, list_templates
from ategnatos_mcp.comfyui.templates import TemplateParameter
from ategnatos_mcp.server import build_app, build_server
from ategnatos_mcp.settings import load_settings
from tests.support.careless import (
    DATASET,
    FLAT,
    SCRATCH,
    SNEAKY,
    Case,
    answer_text,
    check_answer,
    prepare,
    project_files,
)
from tests.support.fake_comfyui import FIXTURES, serve_fake

SD15 = "mcp_random_sd15_layout.safetensors"
LORA = "mascot.safetensors"

SEED = int(os.environ.get("ATEGNATOS_FUZZ_SEED", "16"))  # 16: the issue; another seed replays other calls
CALLS_PER_TOOL = 12
LONG = "ink " * 25_000  # 100,000 characters
ECHO_LIMIT = 10_000  # an input string longer than this must not come back whole in a successful answer

# Findings in other areas, reported to the lead with the exact call (see the faults report), not fixed here.
# Remove an entry once its owner fixes it. (tool, argument) whose successful answers still repeat a long input:
KNOWN_ECHOES = {
    ("eye_query", "family"),
    ("eye_query", "subject"),
    ("dataset_audit", "trigger_word"),
    ("dataset_captions", "trigger_word"),
}
# ...and problems of other areas the fuzz finds on some seeds:
KNOWN_PROBLEMS = [
    # art: a refused art_prompt adjust / art_iterations log|spec on a new project leaves its asset's lock file
    re.compile(
        r"^art_(prompt|iterations) call .* refused, yet changed \['grimoire/projects/[^']+/\.state/asset\.lock'\]$"
    ),
    # art: art_iterations spec with only one of width/height refuses without a next step
    re.compile(r"^art_iterations fuzz call \d+: no next step in: Give both width and height"),
]

HOSTILE_STRINGS = [
    "",
    "   ",
    "NaN",
    "-Infinity",
    "1e308",
    "\u202eevil\u202c",
    "a\x00b",
    "\u200d\ufeff\u2066",
    "🎨" * 500,
    LONG,
    "../../../../etc/passwd",
    "/etc/passwd",
    "C:\\Windows\\system32\\config",
    "$(touch /tmp/pwned)",
    "{{7*7}} {% raw %}",
    "%s%n%x",
    "line one\r\nline two",
]
HOSTILE_NUMBERS: list[Any] = [1e308, -1e308, 2**63, -(2**63), 10**30, 0, -1, 1e-308, 0.5]
# Hosts that never reach the network: these tests stay on 127.0.0.1 (a plausible word could be a DNS lookup).
SAFE_HOSTS = ["", "local", "runpod:no-such-pod", "user@127.0.0.1:9", "garbage host", "\u202e", "x" * 300]
PLAUSIBLE = {
    "path": [DATASET, FLAT, SNEAKY, f"{DATASET}/art00.png", "workspace/note.txt", "workspace", "grimoire"],
    "name": ["ink", "keep", "mascot", "inkwash", "new one"],
    "family": ["sdxl", "SDXL", "flux", "pony", "sd15"],
}


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"a": [value]}
    return value


class Fuzzer:
    """Values for one schema, drawn from a seeded generator."""

    def __init__(self, rng: random.Random, defs: dict[str, Any]) -> None:
        self.rng = rng
        self.defs = defs

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in schema:
            return self.defs[schema["$ref"].rsplit("/", 1)[-1]]
        branches = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
        if branches:
            return self.resolve(self.rng.choice(branches))
        return schema

    def value(self, name: str, schema: dict[str, Any], depth: int = 0) -> Any:
        """A value of the right shape (in range, from the project), rarely null."""
        if name == "host":
            return self.rng.choice(SAFE_HOSTS)
        if depth == 0 and self.rng.random() < 0.05:
            return None
        return self.valid(name, self.resolve(schema), depth)

    def spoiled(self, name: str, schema: dict[str, Any]) -> Any:
        """A hostile value of the right type, one past a limit, or a value of the wrong type."""
        if name == "host":
            return self.rng.choice(SAFE_HOSTS)
        resolved = self.resolve(schema)
        roll = self.rng.random()
        if roll < 0.2:
            return self.wrong_type(resolved)
        if roll < 0.35 and resolved.get("type") in ("integer", "number"):
            return self.boundary(resolved)
        return self.hostile(resolved)

    def valid(self, name: str, schema: dict[str, Any], depth: int) -> Any:
        kind = schema.get("type")
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        if kind == "string":
            key = next((k for k in PLAUSIBLE if k in name), None)
            pool = PLAUSIBLE[key] if key else ["ink", "a red fox", "mascot", "x"]
            return self.rng.choice(pool)
        if kind in ("integer", "number"):
            edges = [schema[k] for k in ("minimum", "maximum") if k in schema]
            return self.rng.choice(edges) if edges and self.rng.random() < 0.3 else self.in_range(schema)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "array":
            items = schema.get("items", {})
            return [self.value(name, items, depth + 1) for _ in range(self.rng.randint(0, 3))]
        if kind == "object" and "properties" in schema:
            required = schema.get("required", [])
            chosen = [p for p in schema["properties"] if p in required or self.rng.random() < 0.5]
            return {p: self.value(p, schema["properties"][p], depth + 1) for p in chosen}
        if kind == "object":
            return {self.rng.choice(["prompt", "seed", "1", "steps"]): self.hostile({}) for _ in range(2)}
        return self.hostile({})

    def in_range(self, schema: dict[str, Any]) -> int | float:
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", low + 100)
        number = self.rng.uniform(low, high)
        return round(number) if schema.get("type") == "integer" else number

    def boundary(self, schema: dict[str, Any]) -> int | float:
        """Just past a limit (or on an exclusive one)."""
        step = 1 if schema.get("type") == "integer" else 0.001
        candidates = [schema["minimum"] - step] if "minimum" in schema else []
        candidates += [schema["maximum"] + step] if "maximum" in schema else []
        candidates += [schema["exclusiveMinimum"]] if "exclusiveMinimum" in schema else []
        return self.rng.choice(candidates or [-1, 0, 2**31])

    def hostile(self, schema: dict[str, Any]) -> Any:
        kind = schema.get("type")
        if kind in ("integer", "number"):
            return self.rng.choice(HOSTILE_NUMBERS)
        if kind == "array":
            return self.rng.choice([[LONG], [_nested(40)], ["x"] * 500, [None, 1, "a", {}]])
        if kind == "object":
            return self.rng.choice([_nested(90), {LONG[:300]: 1}, {"\u202e": "\x00"}, {str(i): i for i in range(500)}])
        if self.rng.random() < 0.1:
            return "x" * (schema["maxLength"] + 1) if "maxLength" in schema else LONG
        return self.rng.choice(HOSTILE_STRINGS)

    def wrong_type(self, schema: dict[str, Any]) -> Any:
        kind = schema.get("type")
        options: list[Any] = [{"surprise": [1, 2]}, ["a", "b"], "lots", True, 12.5, _nested(20)]
        wrong = {"object": dict, "array": list, "string": str, "boolean": bool, "number": float, "integer": int}
        keep = wrong.get(kind or "")
        return self.rng.choice([o for o in options if keep is None or not isinstance(o, keep)] or options)

    def call(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Required arguments and some optional ones, all well-shaped except none, one or two spoiled ones."""
        props: dict[str, Any] = schema.get("properties", {})
        required = schema.get("required", [])
        present = [name for name in props if name in required or self.rng.random() < 0.4]
        spoil = set(self.rng.sample(present, min(len(present), self.rng.choice([0, 1, 1, 2]))))
        return {
            name: self.spoiled(name, props[name]) if name in spoil else self.value(name, props[name])
            for name in present
        }


def _long_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if len(value) > ECHO_LIMIT else []
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _long_strings(k) + _long_strings(v)]
    if isinstance(value, list):
        return [s for item in value for s in _long_strings(item)]
    return []


def _echo_problems(tool: str, args: dict[str, Any], result: Any, where: str) -> list[str]:
    if result.is_error:
        return []  # refusals are checked for length by check_answer
    answer = answer_text(result) + json.dumps(result.structured_content or {}, ensure_ascii=False)
    return [
        f"{where}: a successful answer repeats the {len(text):,}-character `{name}` whole"
        for name, value in args.items()
        if (tool, name) not in KNOWN_ECHOES
        for text in _long_strings(value)
        if text in answer or text.strip() in answer
    ]


def _unchanged_after_refusal(before: dict[str, str], after: dict[str, str], where: str) -> list[str]:
    touched = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    changed = [p for p in touched if not SCRATCH.search(p)]
    return [f"{where}: refused, yet changed {changed[:5]}"] if changed else []


def _replayable(args: dict[str, Any]) -> str:
    text = json.dumps(args, ensure_ascii=True, default=str)
    return re.sub(r"(ink ){20,}", lambda m: f"<{len(m[0]):,} characters>", text)[:300]


async def test_seeded_fuzz_of_every_tool_schema_gets_plain_answers_and_refusals_change_nothing(
    client: Client,
    project: Path,
) -> None:
    await prepare(client, [])
    tools = sorted((await client.list_tools()).tools, key=lambda t: t.name)
    rng = random.Random(SEED)
    problems: list[str] = []
    calls = 0
    for tool in tools:
        fuzzer = Fuzzer(rng, tool.input_schema.get("$defs", {}))
        for number in range(CALLS_PER_TOOL):
            args = fuzzer.call(tool.input_schema)
            where = f"{tool.name} call {number} {_replayable(args)}"
            before = project_files(project)
            result = await client.call_tool(tool.name, args)
            calls += 1
            problems += check_answer(tool.name, Case(args, "either", (), label=f"fuzz call {number}"), result)
            problems += _echo_problems(tool.name, args, result, where)
            if result.is_error:
                problems += _unchanged_after_refusal(before, project_files(project), where)
    assert calls == len(tools) * CALLS_PER_TOOL >= 300
    unknown = [p for p in problems if not any(known.search(p) for known in KNOWN_PROBLEMS)]
    assert not unknown, f"{len(unknown)} problems:\n" + "\n".join(unknown)


# --- the ComfyUI tools against a running (fake) ComfyUI: templates, workflows and jobs with fuzzed contents ---

COMFY_CALLS = 120
WORKFLOWS = sorted((FIXTURES / "workflows").glob("*.json"))


def _comfy_call(rng: random.Random, fuzzer: Fuzzer, jobs: list[str]) -> tuple[str, dict[str, Any]]:
    roll = rng.random()
    if roll < 0.45:
        template = get_template(rng.choice([t.name for t in list_templates()]))
        chosen = [p for p in template.parameters if p.required or p.name in _BASE or rng.random() < 0.3]
        params = {p.name: _plausible(rng, p) for p in chosen}
        for name in rng.sample(sorted(params), min(len(params), rng.choice([0, 1, 1, 2]))):
            kind = _JSON_TYPES[next(p.type for p in template.parameters if p.name == name)]
            params[name] = fuzzer.spoiled(name, {"type": kind})
        args = {"template": template.name, "params": params, "wait_seconds": rng.choice([0, 0.2, 2])}
        if template.name == "lora-test" or rng.random() < 0.2:
            args["loras"] = [{"name": rng.choice([LORA, "nope.safetensors", "\u202e"]), "weight": rng.choice([0.8, 5])}]
        return "comfyui_submit", args
    if roll < 0.7:
        workflow = json.loads(rng.choice(WORKFLOWS).read_text(encoding="utf-8"))
        for _ in range(rng.randint(0, 3)):
            node = workflow.setdefault(rng.choice([*workflow, "99"]), {"class_type": "X", "inputs": {}})
            if isinstance(node, dict) and isinstance(node.get("inputs"), dict) and rng.random() < 0.7:
                key = rng.choice([*node["inputs"], "seed", "image"])
                node["inputs"][key] = fuzzer.spoiled(key, {"type": rng.choice(["string", "integer", "array"])})
            elif isinstance(node, dict):
                node["class_type"] = fuzzer.spoiled("class_type", {"type": "string"})
        if rng.random() < 0.3:
            name = rng.choice(["keep", "mine", "\u202e", "x" * 90, "../up", "a b.c"])
            return "workflow_manage", {"action": "save", "name": name, "workflow": workflow, "overwrite": True}
        return "comfyui_submit", {"workflow": workflow, "wait_seconds": rng.choice([0, 0.2, 2])}
    if roll < 0.9 and jobs:
        action = rng.choice(["status", "wait", "results", "cancel"])
        return "comfyui_job", {"job_id": rng.choice(jobs), "action": action, "wait_seconds": rng.choice([0, 0.5])}
    if roll < 0.95:
        return "workflow_manage", {
            "action": rng.choice(["list", "get", "delete"]),
            "name": rng.choice(["keep", "mine"]),
        }
    return "comfyui_status", {}


_JSON_TYPES = {"string": "string", "int": "integer", "float": "number", "bool": "boolean", "seed": "integer"}
_JSON_TYPES["image"] = "string"


_BASE: dict[str, Any] = {
    "prompt": "a red fox",
    "checkpoint": SD15,
    "width": 64,
    "height": 64,
    "steps": 2,
    "batch_size": 1,
    "image": f"{DATASET}/art00.png",
    "control_image": f"{DATASET}/art01.png",
    "upscale_model": "mcp_tiny_compact_x2.safetensors",
}


def _plausible(rng: random.Random, parameter: TemplateParameter) -> Any:
    if parameter.name in _BASE and rng.random() < 0.8:
        return _BASE[parameter.name]
    if parameter.type in ("int", "seed", "float") and parameter.min is not None and parameter.max is not None:
        number = rng.uniform(parameter.min, min(parameter.max, parameter.min + 8))
        return number if parameter.type == "float" else round(number)
    choices: dict[str, list[Any]] = {
        "string": ["a red fox", SD15, "euler", "normal", ""],
        "int": [1, 2, 64],
        "float": [0.5, 1.0, 7.5],
        "bool": [True, False],
        "seed": [0, 7, 2**32],
        "image": [f"{DATASET}/art00.png", "workspace/note.txt", "/etc/passwd", SNEAKY],
    }
    return rng.choice(choices[parameter.type])


async def test_seeded_fuzz_of_the_comfyui_tools_against_a_running_comfyui(home: Path, project: Path) -> None:
    rng = random.Random(SEED)
    fuzzer = Fuzzer(rng, {})
    problems: list[str] = []
    jobs: list[str] = []
    async with serve_fake() as fake:
        fake.add_model("loras", LORA)
        settings = load_settings(env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": fake.url})
        async with Client(build_server(settings, app=build_app(settings)), raise_exceptions=False) as client:
            await prepare(client, [])
            for number in range(COMFY_CALLS):
                tool, args = _comfy_call(rng, fuzzer, jobs)
                where = f"{tool} call {number} {_replayable(args)}"
                before = project_files(project)
                with anyio.fail_after(30):
                    result = await client.call_tool(tool, args)
                problems += check_answer(tool, Case(args, "either", (), label=f"comfyui fuzz call {number}"), result)
                problems += _echo_problems(tool, args, result, where)
                if result.is_error:
                    # Jobs queued by earlier calls save their pictures whenever they finish.
                    after = {p: h for p, h in project_files(project).items() if not p.startswith("workspace/outputs/")}
                    earlier = {p: h for p, h in before.items() if not p.startswith("workspace/outputs/")}
                    problems += _unchanged_after_refusal(earlier, after, where)
                elif tool == "comfyui_submit":
                    jobs.append(result.structured_content["job_id"])
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
    assert len(jobs) >= 3, "too few calls got as far as a queued job to say much"
