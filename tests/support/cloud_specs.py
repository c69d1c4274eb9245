"""Validate provider bodies (requests we send, responses our fakes give) against the official OpenAPI specs.

The specs are the trimmed copies in tests/fixtures/providers/specs (see trim_specs.py there).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "providers"
EXAMPLES = FIXTURES / "examples"

# Where the README says the Vast spec is looser or stricter than the real API (the examples follow the real one).
VAST_KNOWN_DEVIATIONS = {
    ("type", "enum"),  # "on-demand" (official client) vs the spec's "ondemand"
    ("order", "minItems"),  # minItems 2 is meant per [field, dir] pair
    ("env", "type"),  # an object of env vars / port flags, the spec says a docker-flags string
    ("ports", "type"),  # a Docker-style object, the spec says an array
    ("extra_env", "type"),  # [key, value] pairs, the spec says strings
    ("error", "enum"),  # insufficient_credit is seen in the field, not in the spec
    ("instances", "type"),  # GET /instances/{id}/ answers {"instances": null} once it is destroyed (README §5)
}


@cache
def spec(provider: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "specs" / f"{provider}.json").read_text(encoding="utf-8"))


@cache
def _registry(provider: str) -> Registry:
    resource = Resource.from_contents(spec(provider), default_specification=DRAFT202012)
    return Registry().with_resource(f"urn:{provider}", resource)


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _resolve(provider: str, node: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
    while "$ref" in node:
        pointer = node["$ref"].lstrip("#")
        node = spec(provider)
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, pointer


def operation(provider: str, method: str, url: str) -> tuple[dict[str, Any], str]:
    path = re.sub(r"^https?://[^/]+", "", url).split("?")[0].rstrip("/")
    for template, ops in spec(provider)["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template.rstrip("/"))) + "$"
        if re.match(pattern, path) and method.lower() in ops:
            return ops[method.lower()], f"/paths/{_escape(template)}/{method.lower()}"
    raise LookupError(f"{method} {url} is not in the {provider} spec")


@dataclass
class Problem:
    where: str
    field: str
    keyword: str
    message: str


def _validate(provider: str, pointer: str, body: Any) -> list[Problem]:
    validator = Draft202012Validator({"$ref": f"urn:{provider}#{pointer}"}, registry=_registry(provider))
    problems = []
    for error in validator.iter_errors(body):
        field = next((str(p) for p in reversed(error.absolute_path) if isinstance(p, str)), "")
        problems.append(Problem(pointer, field, str(error.validator), error.message[:200]))
    return problems


def _schema_pointer(provider: str, holder: dict[str, Any], pointer: str) -> str | None:
    holder, pointer = _resolve(provider, holder, pointer)
    for media, content in (holder.get("content") or {}).items():
        if "json" in media and "schema" in content:
            return f"{pointer}/content/{_escape(media)}/schema"
    return None


def check_response(provider: str, method: str, url: str, status: int, body: Any) -> list[Problem] | None:
    """Problems with a response body; None when the spec documents no JSON schema for that status."""
    op, pointer = operation(provider, method, url)
    responses = op.get("responses", {})
    key = next((k for k in (str(status), f"{str(status)[0]}XX", "default") if k in responses), None)
    if key is None:
        return None
    schema_at = _schema_pointer(provider, responses[key], f"{pointer}/responses/{key}")
    if schema_at is None or body is None:
        return None
    return _validate(provider, schema_at, body)


def check_request(provider: str, method: str, url: str, body: Any) -> list[Problem] | None:
    """Problems with a request body; None when the operation takes none."""
    op, pointer = operation(provider, method, url)
    if "requestBody" not in op or body is None:
        return None
    schema_at = _schema_pointer(provider, op["requestBody"], f"{pointer}/requestBody")
    return None if schema_at is None else _validate(provider, schema_at, body)


def unexplained(provider: str, problems: list[Problem] | None) -> list[Problem]:
    """Problems that are not among the README's known Vast spec deviations."""
    if not problems:
        return []
    if provider != "vastai":
        return problems
    return [p for p in problems if (p.field, p.keyword) not in VAST_KNOWN_DEVIATIONS]


def example(provider_dir: str, name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / provider_dir / f"{name}.json").read_text(encoding="utf-8"))


def case(provider_dir: str, name: str, case_name: str) -> dict[str, Any]:
    data = example(provider_dir, name)
    for item in [*data.get("cases", []), *data.get("error_cases", [])]:
        if item.get("name") == case_name:
            return item
    raise KeyError(case_name)
