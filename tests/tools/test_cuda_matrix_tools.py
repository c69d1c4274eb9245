"""The CUDA / PyTorch / driver matrix answers real questions through the MCP tools: gate 3 names a PyTorch
build the host's driver cannot run (with the build to install instead), and studio_detect says which build
suits this machine's driver."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mcp import Client

from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import load_settings
from ategnatos_mcp.training.execution import HostRegistry
from ategnatos_mcp.wiring import Wiring
from tests.support.fake_install import FAKE_NVIDIA_SMI, make_fake_install
from tests.support.ink_run import gates_1_and_2


def _local_host(app: Wiring, env: dict[str, str]) -> None:
    async def no_ssh():  # type: ignore[no-untyped-def]
        raise AssertionError("these tests run on the local host only")

    app.hosts = HostRegistry(app.settings.workspace_dir / "training", no_ssh, local_env=env)


@pytest.mark.parametrize(
    ("driver", "torch", "torch_cuda", "expected"),
    [
        (
            "535.183.01",
            "2.6.0+cu124",
            "12.4",
            "PyTorch 2.6.0+cu124 is built for CUDA 12.4, but the GPU driver 535.183.01 only runs CUDA up to 12.1, "
            "so training would fail or break part-way. Your driver supports CUDA 12.1: install torch 2.5.1+cu121 "
            "(pip install torch==2.5.1 torchvision==0.20.1 torchaudio==2.5.1 --index-url "
            "https://download.pytorch.org/whl/cu121), or use a host with a newer driver.",
        ),
        (
            "550.54.14",
            "2.6.0+cpu",
            None,
            "PyTorch 2.6.0+cpu here is a build without CUDA, so training cannot use the GPU. Your driver supports "
            "CUDA 12.4: install torch 2.6.0+cu124 (pip install torch==2.6.0 torchvision==0.21.0 torchaudio==2.6.0 "
            "--index-url https://download.pytorch.org/whl/cu124).",
        ),
    ],
)
async def test_gate_3_names_a_pytorch_the_driver_cannot_run_and_the_build_to_install(
    client: Client,
    app: Wiring,
    home: Path,
    tmp_path: Path,
    driver: str,
    torch: str,
    torch_cuda: str | None,
    expected: str,
) -> None:
    install = make_fake_install(tmp_path / "install", driver=driver, torch=torch, torch_cuda=torch_cuda)
    _local_host(app, install.env)
    await gates_1_and_2(client, home)

    result = await client.call_tool(
        "train_validate_environment", {"name": "ink", "backend_dir": install.backend_dirs["kohya"]}
    )

    assert not result.is_error, result.content
    check = result.structured_content
    assert check is not None and check["passed"] is False
    assert check["problems"] == [expected]  # the mismatch alone, not also "cannot see a CUDA GPU"
    assert check["facts"]["driver"] == driver
    assert expected in result.content[0].text  # type: ignore[union-attr]
    assert check["gates"]["environment"]["status"] == "failed"


async def test_gate_3_passes_when_pytorch_matches_the_driver(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    install = make_fake_install(tmp_path / "install", driver="570.124.06", torch="2.7.0+cu128", torch_cuda="12.8")
    _local_host(app, install.env)
    await gates_1_and_2(client, home)

    result = await client.call_tool(
        "train_validate_environment", {"name": "ink", "backend_dir": install.backend_dirs["kohya"]}
    )

    assert result.structured_content["passed"] is True, result.content  # type: ignore[index]


async def test_studio_detect_says_which_pytorch_build_suits_the_local_driver(home: Path, tmp_path: Path) -> None:
    shim = tmp_path / "nvidia-smi"
    shim.write_text(
        f'#!/bin/sh\nFAKE_GPU_DRIVER=535.183.01 exec {sys.executable} {FAKE_NVIDIA_SMI} "$@"\n', encoding="utf-8"
    )
    shim.chmod(0o755)
    settings = load_settings(
        env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": "http://127.0.0.1:9"}, nvidia_smi=str(shim)
    )
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("studio_detect", {})

    assert not result.is_error, result.content
    advice = (
        "Your driver 535.183.01 supports CUDA 12.1: for training here install torch 2.5.1+cu121 (pip install "
        "torch==2.5.1 torchvision==0.20.1 torchaudio==2.5.1 --index-url https://download.pytorch.org/whl/cu121)."
    )
    assert advice in result.structured_content["summary"]  # type: ignore[index]
    assert advice in result.content[0].text  # type: ignore[union-attr]
    assert result.structured_content["environment"]["driver_version"] == "535.183.01"  # type: ignore[index]
