"""Training execution costs: the supervisor's overhead on a chatty trainer, and reading a log for status.

1. The stand-in trainer prints a kohya run of N steps (one tqdm frame per step) directly, then under the
   supervisor (which tees, splits on \\r and \\n, and matches 35 error signatures per line). Ratio = overhead.
2. ``parse_log`` on the 256 KB log tail training_status reads, against reading status.json alone.
Run: .venv/bin/python benchmarks/bench_training_exec.py [steps]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ategnatos_mcp.training import TrainingConfig, resolve_family  # noqa: E402
from ategnatos_mcp.training.execution.hosts import LocalHost  # noqa: E402
from ategnatos_mcp.training.execution.monitor import parse_log  # noqa: E402
from ategnatos_mcp.training.execution.runner import read_log_tail, read_status, start_run, wait_for_run  # noqa: E402
from ategnatos_mcp.training.presets import build_preset  # noqa: E402
from tests.support.fake_install import make_fake_install  # noqa: E402


def _config(dataset: Path, steps: int) -> TrainingConfig:
    values = build_preset("quick", "style", resolve_family("sdxl"), 10, has_trigger=True)
    values.update(
        name="bench",
        family="sdxl",
        base_model="/m.safetensors",
        dataset_path=str(dataset),
        image_count=10,
        trigger_word="ink_style",
        repeats=100,
        epochs=max(1, steps // 1000),
        batch_size=1,
        gradient_accumulation=1,
    )
    return TrainingConfig(**values)


async def main(steps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dataset = root / "data"
        dataset.mkdir()
        for i in range(10):
            (dataset / f"{i}.png").write_bytes(b"png")
        install = make_fake_install(root / "install")
        host = LocalHost(root / "runs", env=install.env)
        cfg = _config(dataset, steps)
        handle = await start_run(
            host, kind="training", cfg=cfg, backend="kohya", backend_dir=install.backend_dirs["kohya"],
            dataset_dir=str(dataset), now=datetime.now(UTC),
        )  # fmt: skip
        started = time.perf_counter()
        status = await wait_for_run(host, handle, 600)
        supervised = time.perf_counter() - started  # from first status write: the trainer's whole run
        assert status.state == "succeeded", status
        config = Path(handle.run_dir) / "config" / "bench.toml"
        env = {**os.environ, **install.env}
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(Path(install.backend_dirs["kohya"]) / "sdxl_train_network.py"), f"--config_file={config}"],
            env=env, stdout=subprocess.DEVNULL, check=True,
        )  # fmt: skip
        direct = time.perf_counter() - started
        print(f"{steps} steps: trainer alone {direct:.2f} s, under the supervisor {supervised:.2f} s, "
              f"ratio {supervised / direct:.2f}")  # fmt: skip

        tail = await read_log_tail(host, handle)
        parse_times, status_times = [], []
        for _ in range(20):
            t0 = time.perf_counter()
            parse_log("kohya", tail)
            parse_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await read_status(host, handle)
            status_times.append(time.perf_counter() - t0)
        p, s = statistics.median(parse_times), statistics.median(status_times)
        print(f"parse_log on the {len(tail) // 1024} KB tail: {p * 1000:.1f} ms; read_status: {s * 1000:.2f} ms; "
              f"ratio {p / s:.1f}")  # fmt: skip


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
