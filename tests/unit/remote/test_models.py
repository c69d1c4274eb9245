"""Names that reach a remote shell are validated before they get there."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.remote import RemoteHost, Step, StepOutcome, StepReport
from ategnatos_mcp.remote.detached import run_dir


@pytest.mark.parametrize("name", ["a;rm -rf ~", "../escape", "", "with space", "x" * 81, "$(id)"])
def test_step_names_that_could_break_a_shell_are_rejected(name: str) -> None:
    with pytest.raises(ValidationError):
        Step(name=name, command="true")


@pytest.mark.parametrize("name", ["../x", ".hidden", "a b", "a;b", ""])
def test_detached_process_names_that_could_escape_are_rejected(name: str) -> None:
    with pytest.raises(InvalidRequestError):
        run_dir(name)


def test_run_folder_is_under_the_ategnatos_folder_in_the_remote_home() -> None:
    assert run_dir("comfyui") == ".ategnatos/runs/comfyui"


def test_host_identity_defaults_to_address_and_prefers_the_stable_name() -> None:
    assert RemoteHost(host="1.2.3.4", port=40145).identity == "1.2.3.4:40145"
    assert RemoteHost(host="1.2.3.4", port=40145, name="runpod:abc").identity == "runpod:abc"


def test_step_report_summarises_what_ran_and_what_was_skipped() -> None:
    report = StepReport(
        steps=[
            StepOutcome(name="a", result="skipped"),
            StepOutcome(name="b", result="already_in_place"),
            StepOutcome(name="c", result="done"),
        ]
    )
    assert report.ok and report.ran == ["c"] and report.skipped == ["a", "b"]
    report.steps.append(StepOutcome(name="d", result="failed"))
    assert not report.ok


def test_importing_the_package_does_not_load_asyncssh() -> None:
    code = "import sys, ategnatos_mcp.remote; print('asyncssh' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
