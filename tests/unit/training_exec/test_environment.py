"""Gate 3's probe run for real on this machine (GPU parts faked by the fake install), then judged."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from ategnatos_mcp.training.execution.environment import _judge, _Probe, needed_disk_gb, probe_script
from ategnatos_mcp.training.execution.hosts import LocalHost
from tests.support.fake_install import make_fake_install
from tests.support.training import make_config


async def _probe(host: LocalHost, dataset: Path, backend_dir: str, script: str = "sdxl_train_network.py") -> _Probe:
    args = {
        "backend": "kohya",
        "backend_dir": backend_dir,
        "script": script,
        "dataset_dir": str(dataset),
        "disk_path": str(dataset / "nope"),
    }
    done = await host.run(f"{host.python} -c {shlex.quote(probe_script())} {shlex.quote(json.dumps(args))}")
    assert done.exit_status == 0, done.stderr
    return _Probe.model_validate_json(done.stdout)


async def test_a_ready_host_passes_with_its_facts(local: LocalHost, install, dataset: Path) -> None:  # type: ignore[no-untyped-def]
    probe = await _probe(local, dataset, install.backend_dirs["kohya"])
    assert probe.backend_found and probe.dataset_images == 8 and probe.cuda_available
    problems, warnings, facts = _judge(make_config(dataset, images=8), probe, need_disk=0.1)
    assert problems == [] and warnings == []
    assert facts["gpu"] == "NVIDIA GeForce RTX 4090, 24.0 GB, 23.0 GB free"
    assert facts["torch"] == "2.6.0+cu124 (CUDA 12.4)"


async def test_too_little_free_graphics_memory_is_a_problem_with_a_way_out(tmp_path: Path, dataset: Path) -> None:
    busy = make_fake_install(tmp_path / "busy", free_mib=2048)
    probe = await _probe(LocalHost(tmp_path / "runs", env=busy.env), dataset, busy.backend_dirs["kohya"])
    problems, _warnings, _facts = _judge(make_config(dataset, images=8), probe, need_disk=0.1)
    assert len(problems) == 1 and problems[0].startswith("The GPU has 2.0 GB free")
    assert "memory savers" in problems[0]


async def test_a_machine_without_torch_or_gpu_gets_plain_problems(tmp_path: Path, dataset: Path) -> None:
    bare = LocalHost(tmp_path / "runs", env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ""})
    probe = await _probe(bare, dataset, str(tmp_path / "no-kohya"))
    problems, _warnings, _facts = _judge(make_config(dataset, images=8), probe, need_disk=10_000)
    text = " ".join(problems)
    assert "PyTorch does not load there" in text
    assert "No NVIDIA GPU answered nvidia-smi" in text
    assert "of disk is free" in text
    assert not probe.backend_found


def test_disk_need_grows_with_saves_and_rank(dataset: Path) -> None:
    small = needed_disk_gb(make_config(dataset, network_rank=8, network_alpha=8), 0.5)
    large = needed_disk_gb(make_config(dataset, network_rank=64, network_alpha=32, epochs=10), 0.5)
    assert 5.5 < small < large
