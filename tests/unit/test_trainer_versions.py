"""remote_deploy installs each trainer at the commit its option catalogue was read from (the catalogue headers,
copied verbatim from the shared training reference whose README names the same commits)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ategnatos_mcp.providers import DeployTarget, Rental, deploy_plan
from ategnatos_mcp.providers.setup.trainers import TrainerVersion
from ategnatos_mcp.training.backends.catalogue import catalogue_version

# shared/training/README.md, "Sources"
COMMITS = {
    "kohya": ("48d368fa557731ad0488c07304dfeba8c07910eb", "https://github.com/kohya-ss/sd-scripts.git"),
    "simpletuner": ("bc8e6ab7738ce457a2ed8eb2d26cadd91c6442cb", "https://github.com/bghira/SimpleTuner.git"),
    "ai-toolkit": ("27a03a91f23eb1b757d5ec2e80ee3e129cfcc350", "https://github.com/ostris/ai-toolkit.git"),
}


@pytest.mark.parametrize("backend", sorted(COMMITS))
def test_the_deploy_plan_pins_the_catalogued_commit(backend: DeployTarget) -> None:
    commit, repo = COMMITS[backend]
    rental = Rental(provider="runpod", instance_id="pod1", started_at=datetime.now(UTC))
    version = TrainerVersion.model_validate(catalogue_version(backend))

    plan = deploy_plan(backend, rental, idle_minutes=30, max_hours=2, now=datetime.now(UTC), trainer_version=version)

    assert plan.trainer is not None
    assert plan.trainer.version.commit == commit and plan.trainer.recipe.repo == repo
    assert [s.name for s in plan.steps] == ["watchdog"]  # the rest depends on the GPU found there
    if backend == "simpletuner":
        assert plan.trainer.version.note == "version 4.8.0"


def test_a_trainer_without_its_version_is_a_programming_error() -> None:
    rental = Rental(provider="runpod", instance_id="pod1", started_at=datetime.now(UTC))
    with pytest.raises(ValueError, match="needs the version"):
        deploy_plan("kohya", rental, idle_minutes=0, max_hours=0, now=datetime.now(UTC))
