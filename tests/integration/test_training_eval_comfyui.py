"""train_evaluate queues its weight grid on a (protocol-faithful fake) ComfyUI that has the LoRA files."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from ategnatos_mcp.server import build_app, build_server
from ategnatos_mcp.settings import load_settings
from ategnatos_mcp.training.execution import HostRegistry
from tests.fixtures.training_exec.install import make_fake_install
from tests.integration.fake_comfyui import serve_fake
from tests.tools.test_runs_tools import _gates_1_and_2

pytestmark = pytest.mark.integration


async def test_evaluation_grid_is_queued_with_each_lora_at_each_weight(home: Path, tmp_path: Path) -> None:
    async with serve_fake() as fake:
        fake.add_model("checkpoints", "sdxl.safetensors")
        settings = load_settings(env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": fake.url})
        app = build_app(settings)
        install = make_fake_install(tmp_path / "install")

        async def no_ssh():  # type: ignore[no-untyped-def]
            raise AssertionError("local host only")

        app.hosts = HostRegistry(settings.workspace_dir / "training", no_ssh, local_env=install.env)
        async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
            await _gates_1_and_2(client, home)
            for tool, args in (
                ("train_validate_environment", {"backend_dir": install.backend_dirs["kohya"]}),
                ("train_dry_run", {"wait_seconds": 60}),
                ("launch_training", {}),
                ("training_status", {"wait_seconds": 60}),
            ):
                result = await client.call_tool(tool, {"name": "ink", **args})
                assert not result.is_error, (tool, result.content)
            files = [Path(c["file"]).name for c in result.structured_content["checkpoints"]]  # type: ignore[index]
            for name in files:  # the artist copied the LoRA files into ComfyUI's models/loras
                fake.add_model("loras", name)
            grid = await client.call_tool(
                "train_evaluate",
                {"name": "ink", "weights": [0.5, 1.0], "prompts": ["ink_style, a cat"], "submit": True},
            )
    assert not grid.is_error, grid.content
    answer = grid.structured_content["grid"]  # type: ignore[index]
    assert len(answer["submitted"]) == len(answer["jobs"]) == 2 * len(files)
    text = grid.content[0].text  # type: ignore[union-attr]
    assert f"Queued {len(files) * 2} of {len(files) * 2} on ComfyUI; follow them with comfyui_job" in text
    assert all(job_id in text for job_id in answer["submitted"])
    assert "Queue each job" not in text and not any(n.startswith("Copy the LoRA files") for n in answer["notes"])
    queued = [
        (node["inputs"]["lora_name"], node["inputs"]["strength_model"])
        for prompt in fake.prompts
        for node in prompt.values()
        if node.get("class_type") == "LoraLoader"
    ]
    assert queued == [(name, weight) for name in files for weight in (0.5, 1.0)]
    seeds = {
        node["inputs"]["seed"] for p in fake.prompts for node in p.values() if node.get("class_type") == "KSampler"
    }
    assert len(seeds) == 1
