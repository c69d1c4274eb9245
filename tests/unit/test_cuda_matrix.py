"""Choosing the PyTorch build for a driver and a GPU from the packaged CUDA matrix."""

from __future__ import annotations

import pytest

from ategnatos_mcp.cuda_matrix import cuda_matrix


@pytest.mark.parametrize(
    ("driver", "gpu", "prefer", "label"),
    [
        ("550.54.14", "NVIDIA GeForce RTX 4090", (), "2.6.0+cu124"),  # the newest CUDA line the driver runs
        ("535.183.01", "NVIDIA A100-SXM4-80GB", (), "2.5.1+cu121"),
        ("580.65.06", "NVIDIA H100 80GB HBM3", (), "2.9.1+cu130"),
        ("580.65.06", "NVIDIA H100 80GB HBM3", ("2.6.0",), "2.6.0+cu126"),  # a backend's tested release first
        ("570.124.06", "NVIDIA GeForce RTX 5090", ("2.6.0", "2.8.0"), "2.8.0+cu128"),  # 2.6.0 has no Blackwell build
        ("570.124.06", "NVIDIA GeForce RTX 5090", (), "2.9.1+cu128"),
    ],
)
def test_choose_torch_takes_the_newest_cuda_line_the_driver_and_gpu_both_run(
    driver: str, gpu: str, prefer: tuple[str, ...], label: str
) -> None:
    choice = cuda_matrix().choose_torch(driver, gpu_name=gpu, prefer=prefer)

    assert choice.label == label
    assert choice.command.startswith(f"pip install torch=={choice.torch} torchvision=={choice.torchvision} ")
    assert choice.index_url.endswith("/cu" + choice.cuda.replace(".", ""))


def test_the_compute_capability_wins_over_the_name() -> None:
    matrix = cuda_matrix()

    assert matrix.generation(gpu_name="Some Future Card", compute_cap="12.0").min_cuda == "12.8"  # type: ignore[union-attr]
    assert matrix.generation(gpu_name="NVIDIA GeForce RTX 5090", compute_cap="[N/A]").min_cuda == "12.8"  # type: ignore[union-attr]
    assert matrix.generation(gpu_name="Tesla T4") is None


@pytest.mark.parametrize(
    ("driver", "gpu", "words"),
    [
        ("470.57.02", None, "The GPU driver 470.57.02 is too old for every PyTorch build"),
        ("550.54.14", "NVIDIA GeForce RTX 5090", "needs PyTorch built for CUDA 12.8 or newer, but the driver"),
        ("unknown", None, "could not be read"),
    ],
)
def test_no_fitting_build_is_refused_in_plain_words(driver: str, gpu: str | None, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        cuda_matrix().choose_torch(driver, gpu_name=gpu)


def test_check_torch_accepts_a_build_the_driver_runs_and_names_one_too_old_for_the_gpu() -> None:
    matrix = cuda_matrix()

    fits = matrix.check_torch(
        torch_version="2.5.1+cu121", torch_cuda="12.1", driver="550.54.14", gpu_name="NVIDIA GeForce RTX 4090"
    )
    too_old = matrix.check_torch(
        torch_version="2.6.0+cu124", torch_cuda="12.4", driver="570.124.06", gpu_name="NVIDIA GeForce RTX 5090"
    )

    assert fits == []
    assert len(too_old) == 1 and "has no code for this GPU: install torch 2.9.1+cu128" in too_old[0]
