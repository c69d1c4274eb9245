"""Resume points and sample images on an SSH host: listed over the real loopback SSH server, samples fetched."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from ategnatos_mcp.remote import SSHConnector
from ategnatos_mcp.training.execution import HostRegistry, HostSpec, RunHandle
from ategnatos_mcp.training.execution.resume import find_resume_point, leftover_saves, saves_after, set_aside_saves
from ategnatos_mcp.training.execution.samples import collect_samples
from tests.support.ssh_server import ssh_lab
from tests.support.training import make_config

pytestmark = pytest.mark.integration


def _handle(spec: HostSpec, output: Path, backend: str) -> RunHandle:
    return RunHandle(
        kind="training",
        host=spec,
        backend=backend,
        config_hash="abc",
        run_dir=str(output.parent / "runs" / "training-1"),
        output_dir=str(output),
        process_name="train-ink",
        job_name="ink",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


async def test_resume_points_and_fresh_start_on_an_ssh_host(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "dataset")
    async with ssh_lab(tmp_path) as (server, connector, remote):

        async def the_connector() -> SSHConnector:
            return connector

        spec = HostSpec(kind="ssh", host=remote.host, port=remote.port, username=remote.username, name=remote.name)
        output = server.home / "ategnatos" / "training" / "ink" / "output"
        async with HostRegistry(tmp_path / "local-runs", the_connector).open(spec) as host:
            assert await find_resume_point(host, _handle(spec, output, "kohya"), cfg) is None  # no folder yet
            output.mkdir(parents=True)
            (output / "ink-000002.safetensors").write_bytes(b"lora")  # a LoRA file alone cannot be resumed
            assert await find_resume_point(host, _handle(spec, output, "kohya"), cfg) is None
            for epoch, step in ((1, 8), (2, 16)):
                state = output / f"ink-{epoch:06d}-state"
                state.mkdir()
                (state / "train_state.json").write_text(json.dumps({"current_epoch": epoch, "current_step": step}))
            point = await find_resume_point(host, _handle(spec, output, "kohya"), cfg)
            assert point is not None and point.step == 16  # read from train_state.json over SSH
            assert point.args == [f"--resume={output}/ink-000002-state"]

            for step in (5, 100, 10):
                (output / f"checkpoint-{step}").mkdir()
            point = await find_resume_point(host, _handle(spec, output, "simpletuner"), cfg)
            assert point is not None and point.step == 100 and point.source == f"{output}/checkpoint-100"

            (output / "ink").mkdir()
            for step in (250, 500):
                (output / "ink" / f"ink_{step:09d}.safetensors").write_bytes(b"lora")
            point = await find_resume_point(host, _handle(spec, output, "ai-toolkit"), cfg)
            assert point is not None and point.step == 500

            (output / "dryrun").mkdir()
            before = sorted(p.name for p in output.iterdir() if p.name != "dryrun")
            moved = await set_aside_saves(host, str(output.parent), datetime(2026, 11, 29, 18, 0, tzinfo=UTC))
            assert moved is not None and moved == f"{output.parent}/earlier-saves/20261129-180000"
            assert sorted(p.name for p in Path(moved).iterdir()) == before
            assert [p.name for p in output.iterdir()] == ["dryrun"]
            for backend in ("kohya", "simpletuner", "ai-toolkit"):
                assert await find_resume_point(host, _handle(spec, output, backend), cfg) is None
            assert await set_aside_saves(host, str(output.parent), datetime(2026, 11, 29, tzinfo=UTC)) is None


async def test_new_sample_images_are_fetched_once_from_an_ssh_host(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (server, connector, remote):

        async def the_connector() -> SSHConnector:
            return connector

        spec = HostSpec(kind="ssh", host=remote.host, port=remote.port, username=remote.username, name=remote.name)
        output = server.home / "ategnatos" / "training" / "ink" / "output"
        folder = output / "sample"
        folder.mkdir(parents=True)
        for epoch in (1, 2, 3):
            Image.new("RGB", (64, 48), (epoch * 60, 10, 10)).save(
                folder / f"ink_e{epoch:06d}_00_20261129180{epoch}00.png"
            )
        handle = _handle(spec, output, "kohya")
        local = tmp_path / "fetched"
        async with HostRegistry(tmp_path / "local-runs", the_connector).open(spec) as host:
            first, seen = await collect_samples(
                host, handle, output_name="ink", prompts=["ink_style, a cat"], steps_per_epoch=8, local_dir=local,
                fetch_limit=2,
            )  # fmt: skip
            assert (first.total, first.new, first.waiting) == (3, 3, 1)
            assert [s.epoch for s in first.samples] == [3, 2, 1] and first.samples[0].step == 24
            assert seen == [f"ink_e{e:06d}_00_20261129180{e}00.png" for e in (3, 2)]  # newest first, two per call
            for sample in first.samples[:2]:
                assert sample.local_path is not None
                assert Path(sample.local_path).read_bytes() == Path(sample.file).read_bytes()
            assert first.samples[2].local_path is None and first.samples[2].new

            second, more = await collect_samples(
                host, handle.model_copy(update={"samples_seen": seen}), output_name="ink", prompts=[],
                steps_per_epoch=8, local_dir=local, fetch_limit=2,
            )  # fmt: skip
            assert (second.new, second.waiting, more) == (1, 0, [f"ink_e{1:06d}_00_20261129180100.png"])
            assert [s.new for s in second.samples] == [False, False, True]
            assert all(s.local_path and Path(s.local_path).is_file() for s in second.samples)


async def test_saves_a_resume_would_write_again_are_moved_aside_on_an_ssh_host(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "dataset")
    async with ssh_lab(tmp_path) as (server, connector, remote):

        async def the_connector() -> SSHConnector:
            return connector

        spec = HostSpec(kind="ssh", host=remote.host, port=remote.port, username=remote.username, name=remote.name)
        base = server.home / "ategnatos" / "training" / "ink"
        output = base / "output"
        state = output / "ink-000001-state"
        state.mkdir(parents=True)
        (state / "train_state.json").write_text(json.dumps({"current_epoch": 1, "current_step": 4}))
        saves = {"ink-000001.safetensors": b"epoch 1", "ink-000002.safetensors": b"epoch 2 (its state was lost)"}
        for name, data in saves.items():
            (output / name).write_bytes(data)
        (output / "dryrun").mkdir()
        async with HostRegistry(tmp_path / "local-runs", the_connector).open(spec) as host:
            assert sorted(await leftover_saves(host, str(base))) == sorted([*saves, state.name])
            handle = _handle(spec, output, "kohya")
            point = await find_resume_point(host, handle, cfg)
            assert point is not None and point.epoch == 1
            later = await saves_after(host, handle, cfg, point)
            assert later == ["ink-000002.safetensors"]
            moved = await set_aside_saves(host, str(base), datetime(2026, 11, 29, tzinfo=UTC), entries=later)
        assert moved is not None and (Path(moved) / "ink-000002.safetensors").read_bytes() == saves[later[0]]
        assert (output / "ink-000001.safetensors").read_bytes() == saves["ink-000001.safetensors"]
        assert not (output / "ink-000002.safetensors").exists()
