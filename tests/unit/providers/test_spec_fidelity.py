"""Every example body our fakes are built from validates against the official specs (Vast: known deviations only)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.cloud_specs import EXAMPLES, check_request, check_response, unexplained

# Files whose cases carry no request of their own: the operation they answer.
_OPERATION_OF = {
    ("runpod", "v2_errors"): ("POST", "https://api.runpod.io/v2/pods"),
    ("lambda", "launch_errors"): ("POST", "https://cloud.lambda.ai/api/v1/instance-operations/launch"),
    ("vastai", "create_instance_errors"): ("PUT", "https://console.vast.ai/api/v0/asks/21876543/"),
    ("vastai", "show_instance_failed"): ("GET", "https://console.vast.ai/api/v0/instances/28765432/"),
}
_SPEC_NAME = {"runpod": "runpod", "vastai": "vastai", "lambda": "lambda"}


def _calls() -> list[tuple[str, str, str, str, dict[str, Any] | None, dict[str, Any]]]:
    calls = []
    for folder in ("runpod", "vastai", "lambda"):
        for file in sorted((EXAMPLES / folder).glob("*.json")):
            if file.stem.startswith(("graphql_", "v1_")):
                continue  # GraphQL has no OpenAPI spec; REST v1 is retired and unused
            data = json.loads(file.read_text(encoding="utf-8"))
            for item in [data, *data.get("cases", []), *data.get("error_cases", [])]:
                response = item.get("response") or (
                    {"status": item.get("status", 200), "json": item["json"]} if "json" in item else None
                )
                if response is None:
                    continue
                request = item.get("request") or data.get("request")
                if request is None:
                    method, url = _OPERATION_OF[(folder, file.stem)]
                    request = {"method": method, "url": url}
                calls.append(
                    (
                        folder,
                        f"{file.stem}:{item.get('name', '')}",
                        request["method"],
                        request["url"],
                        request.get("json"),
                        response,
                    )
                )
    return calls


CALLS = _calls()


def test_there_are_examples_for_every_provider() -> None:
    assert {c[0] for c in CALLS} == {"runpod", "vastai", "lambda"}
    assert len(CALLS) > 60


@pytest.mark.parametrize(("folder", "label", "method", "url", "body", "response"), CALLS, ids=[c[1] for c in CALLS])
def test_example_bodies_validate_against_the_official_spec(
    folder: str, label: str, method: str, url: str, body: dict[str, Any] | None, response: dict[str, Any]
) -> None:
    provider = _SPEC_NAME[folder]
    request_problems = unexplained(provider, check_request(provider, method, url, body))
    # A 422 example shows a deliberately invalid request: the spec must reject it too.
    assert bool(request_problems) == (response["status"] == 422 and body is not None)
    problems = check_response(provider, method, url, response["status"], response.get("json"))
    assert unexplained(provider, problems) == []


def test_the_validator_catches_a_drifted_body() -> None:
    pod = json.loads((EXAMPLES / "runpod" / "v2_get_pod_running.json").read_text())["response"]["json"]
    drifted = {**pod, "status": "BOOTING", "cost": "cheap"}
    problems = check_response("runpod", "GET", "https://api.runpod.io/v2/pods/x", 200, drifted)
    assert problems is not None and {p.field for p in problems} >= {"status", "cost"}


def test_vast_deviations_are_only_the_known_ones() -> None:
    offers = json.loads((EXAMPLES / "vastai" / "search_offers.json").read_text())["request"]["json"]
    problems = check_request("vastai", "POST", "https://console.vast.ai/api/v0/bundles/", offers)
    assert problems and unexplained("vastai", problems) == []
    assert unexplained(
        "vastai", check_request("vastai", "POST", "https://console.vast.ai/api/v0/bundles/", {"limit": "x"})
    )
