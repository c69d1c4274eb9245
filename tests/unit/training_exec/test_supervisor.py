"""The supervisor driven with the stand-in trainer: real detached processes, real files, real log formats."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from ategnatos_mcp.training.execution.hosts import LocalHost
from ategnatos_mcp.training.execution.runner import (
    read_log_tail,
    read_status,
    render_for_host,
    start_run,
    stop_run,
    wait_for_run,
)
from ategnatos_mcp.training.execution.supervisor_edits import edit_json, edit_toml, edit_yaml, next_rung
from tests.support.fake_install import FakeInstall
from tests.support.training import make_config

NOW = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)


async def _run(
    local: LocalHost,
    install: FakeInstall,
    dataset: Path,
    backend: str = "kohya",
    hang_seconds: float = 1.0,
    **kw: object,
):
    env = {k: str(v) for k, v in kw.pop("env", {}).items()}  # type: ignore[union-attr]
    cfg = make_config(dataset, **kw)  # type: ignore[arg-type]
    handle = await start_run(
        local,
        kind="training",
        cfg=cfg,
        backend=backend,
        backend_dir=install.backend_dirs.get(backend, ""),
        dataset_dir=str(dataset),
        now=NOW,
        hang_seconds=hang_seconds,
        env=env,
    )
    return cfg, handle


async def _finish(local: LocalHost, handle):  # type: ignore[no-untyped-def]
    with anyio.fail_after(30):
        status = await wait_for_run(local, handle, 30)
    assert status.finished, status
    return status


@pytest.mark.parametrize("backend", ["kohya", "simpletuner", "ai-toolkit"])
async def test_oom_ladder_halves_the_batch_and_keeps_the_effective_batch(
    local: LocalHost, install: FakeInstall, dataset: Path, backend: str
) -> None:
    cfg, handle = await _run(local, install, dataset, backend, batch_size=8, env={"FAKE_OOM_ABOVE": 2})
    status = await _finish(local, handle)
    assert status.state == "succeeded", status.message
    ladder = [(a["batch_size"], a["gradient_accumulation"], a["error_signature"]) for a in status.attempts]
    assert ladder == [(8, 1, "oom_allocator"), (4, 2, "oom_allocator"), (2, 4, None)]
    assert status.batch_size is not None and status.gradient_accumulation is not None
    assert status.batch_size * status.gradient_accumulation == 8
    assert status.last_checkpoint and Path(status.last_checkpoint).exists()
    # the run's own copy of the config now holds the batch that fit; the planned files are untouched
    config_dir = Path(handle.run_dir) / "config"
    if backend == "kohya":
        assert tomllib.loads((config_dir / "ink-dataset.toml").read_text())["datasets"][0]["batch_size"] == 2
        assert tomllib.loads((config_dir / "ink.toml").read_text())["gradient_accumulation_steps"] == 4
    elif backend == "simpletuner":
        data = json.loads((config_dir / "simpletuner" / "config.json").read_text())
        assert (data["train_batch_size"], data["gradient_accumulation_steps"]) == (2, 4)
    else:
        import yaml

        train = yaml.safe_load((config_dir / "ink.yaml").read_text())["config"]["process"][0]["train"]
        assert (train["batch_size"], train["gradient_accumulation_steps"]) == (2, 4)


async def test_gives_up_after_three_halvings_and_every_saver_with_a_plain_message(
    local: LocalHost, install: FakeInstall, dataset: Path
) -> None:
    _cfg, handle = await _run(local, install, dataset, batch_size=8, env={"FAKE_OOM_ABOVE": 0})
    status = await _finish(local, handle)
    assert status.state == "failed" and status.memory_exhausted
    # the plan already had every saver on but the 8-bit base model: that one is the last rung
    assert [(a["batch_size"], a["savers"]) for a in status.attempts] == [
        (8, []), (4, []), (2, []), (1, []), (1, ["the base model loaded in 8 bits"]),
    ]  # fmt: skip
    assert status.message == (
        "Out of graphics memory even at batch size 1, with every memory saver this trainer offers switched on "
        "(the base model loaded in 8 bits)."
    )
    assert status.error_signature == "oom_allocator"


async def test_a_job_that_hangs_after_an_oom_is_killed_and_retried(
    local: LocalHost, install: FakeInstall, dataset: Path
) -> None:
    # Silence after an OOM for 0.3 s counts as a hang here (a real launch waits 15 minutes).
    _cfg, handle = await _run(
        local,
        install,
        dataset,
        batch_size=2,
        hang_seconds=0.3,
        env={"FAKE_OOM_ABOVE": 0, "FAKE_HANG_AFTER_OOM": 1},
    )
    status = await _finish(local, handle)
    assert status.state == "failed"
    assert [(a["batch_size"], a["hung"]) for a in status.attempts] == [(2, True), (1, True), (1, True)]


async def test_oom_while_loading_skips_the_smaller_batch_for_the_savers_that_lower_loading(
    local: LocalHost, install: FakeInstall, dataset: Path
) -> None:
    _cfg, handle = await _run(
        local, install, dataset, batch_size=4, gradient_checkpointing=False, env={"FAKE_OOM_AT_LOAD": 1}
    )
    status = await _finish(local, handle)
    assert status.state == "failed" and len(status.attempts) == 2  # batch 4, then with the 8-bit base model
    assert status.attempts[1]["batch_size"] == 4
    assert status.savers == ["gradient checkpointing", "the base model loaded in 8 bits"]
    assert status.message.startswith("Out of graphics memory while loading the model, before the first step")


_ALL_OFF = {
    "batch_size": 2,
    "gradient_checkpointing": False,
    "cache_latents": False,
    "cache_text_encoder": False,
    "optimizer": "prodigy",
    "learning_rate": 1.0,
}
# The stand-in card only fits once the base model is loaded in 8 bits, in each backend's own words.
_FITS_WITH_FP8 = {
    "kohya": "fp8_base=true",
    "ai-toolkit": "quantize=true,qtype=qfloat8",
    "simpletuner": "base_model_precision=int8-quanto",
}
_LADDER = {
    "kohya": [
        "gradient checkpointing",
        "cached image latents",
        "cached text-encoder outputs",
        "the 8-bit AdamW optimizer",
        "the base model loaded in 8 bits",
    ],
    "ai-toolkit": [
        "gradient checkpointing",
        "cached image latents",
        "the 8-bit AdamW optimizer",
        "the base model loaded in 8 bits",
    ],
    "simpletuner": ["gradient checkpointing", "the 8-bit AdamW optimizer", "the base model loaded in 8 bits"],
}


@pytest.mark.parametrize("backend", ["kohya", "simpletuner", "ai-toolkit"])
async def test_after_batch_1_the_ladder_switches_the_backends_memory_savers_on_one_at_a_time(
    local: LocalHost, install: FakeInstall, dataset: Path, backend: str
) -> None:
    cfg, handle = await _run(
        local, install, dataset, backend, env={"FAKE_OOM_UNLESS": _FITS_WITH_FP8[backend]}, **_ALL_OFF
    )
    status = await _finish(local, handle)
    assert status.state == "succeeded", status.message
    ladder = _LADDER[backend]
    expected = [(2, 1, [])] + [(1, 2, ladder[:n]) for n in range(len(ladder) + 1)]
    assert [(a["batch_size"], a["gradient_accumulation"], a["savers"]) for a in status.attempts] == expected
    assert status.savers == ladder and status.rung == len(ladder)
    assert status.saver_overrides == {
        "gradient_checkpointing": True,
        **({"cache_latents": True} if backend != "simpletuner" else {}),
        **({"cache_text_encoder": True} if backend == "kohya" else {}),
        "optimizer": "adamw8bit",
        "learning_rate": 1e-4,
        "lr_scheduler": "constant",
        "base_precision": "fp8",
    }
    config_dir = Path(handle.run_dir) / "config"
    if backend == "kohya":  # the run's own copy holds every saver and the batch that fit
        args = tomllib.loads((config_dir / "ink.toml").read_text())
        assert args["gradient_checkpointing"] and args["cache_latents"] and args["fp8_base"]
        assert args["cache_text_encoder_outputs"] and args["optimizer_type"] == "AdamW8bit"
        assert "optimizer_args" not in args and args["gradient_accumulation_steps"] == 2
        assert tomllib.loads((config_dir / "ink-dataset.toml").read_text())["datasets"][0]["batch_size"] == 1
    elif backend == "simpletuner":
        data = json.loads((config_dir / "simpletuner" / "config.json").read_text())
        assert (data["base_model_precision"], data["optimizer"]) == ("int8-quanto", "bnb-adamw8bit")
        assert (data["train_batch_size"], data["gradient_accumulation_steps"], data["gradient_checkpointing"]) == (
            1, 2, True,
        )  # fmt: skip
    else:
        import yaml

        process = yaml.safe_load((config_dir / "ink.yaml").read_text())["config"]["process"][0]
        assert process["model"]["quantize"] is True and process["train"]["optimizer"] == "adamw8bit"
        assert "optimizer_params" not in process["train"] and process["train"]["gradient_checkpointing"] is True
        assert process["datasets"][0]["cache_latents_to_disk"] is True and process["train"]["batch_size"] == 1
    planned = render_for_host(
        cfg, backend, dataset_dir=str(dataset), run_dir="/plan", output_dir="/plan/out", dry_run=False
    )
    assert not any("fp8_base = true" in text for text in planned.files.values())  # the plan itself is untouched


async def test_stop_ends_the_trainer_and_records_stopped(
    local: LocalHost, install: FakeInstall, dataset: Path, tmp_path: Path
) -> None:
    go = tmp_path / "never-created"
    _cfg, handle = await _run(local, install, dataset, env={"FAKE_WAIT_FILE": go})
    with anyio.fail_after(10):
        while (status := await read_status(local, handle)).step < 1:
            await anyio.sleep(0.02)
    child = status.child_pid
    assert child is not None
    with anyio.fail_after(30):
        stopped = await stop_run(local, handle)
    assert stopped.state == "stopped"
    assert not await local.alive("trainer", child)


async def test_status_survives_the_parent_going_away(
    local: LocalHost, install: FakeInstall, dataset: Path, tmp_path: Path
) -> None:
    """The process that starts the supervisor exits at once; the run goes on and finishes on its own."""
    go = tmp_path / "go"
    _cfg, handle = await _run(local, install, dataset, env={"FAKE_WAIT_FILE": go})
    status = await read_status(local, handle)
    # LocalHost.start runs `setsid nohup ... &` in a shell that has already exited: the supervisor's parent is gone.
    parent = Path(f"/proc/{status.pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
    assert int(parent) != subprocess.os.getpid()  # type: ignore[attr-defined]
    go.touch()
    final = await _finish(local, handle)
    assert final.state == "succeeded" and final.step == final.total_steps
    log = await read_log_tail(local, handle)
    assert "model saved." in log


def test_next_rung_keeps_the_effective_batch() -> None:
    assert next_rung(8, 1) == (4, 2)
    assert next_rung(3, 2) == (1, 6)
    assert next_rung(1, 4) == (1, 4)


def test_config_edits_touch_only_the_known_keys() -> None:
    toml = 'output_name = "batch_size = 9"\ngradient_accumulation_steps = 1\n[x]\ntrain_batch_size = 8 # note\n'
    assert edit_toml(toml, ["train_batch_size"], "gradient_accumulation_steps", 4, 2) == (
        'output_name = "batch_size = 9"\ngradient_accumulation_steps = 2\n[x]\ntrain_batch_size = 4 # note\n'
    )
    assert edit_toml("[[datasets]]\nbatch_size = 8\n", ["batch_size"], "gradient_accumulation_steps", 4, 2) == (
        "gradient_accumulation_steps = 2\n[[datasets]]\nbatch_size = 4\n"
    )
    yaml_text = "    train:\n      batch_size: 8\n      steps: 10\n    datasets:\n    - batch_size: 8\n"
    assert edit_yaml(yaml_text, ["batch_size"], "gradient_accumulation_steps", 4, 2) == (
        "    train:\n      batch_size: 4\n      gradient_accumulation_steps: 2\n      steps: 10\n"
        "    datasets:\n    - batch_size: 4\n"
    )
    assert json.loads(
        edit_json('[{"id": "a", "train_batch_size": 8}, {"id": "t"}]', ["train_batch_size"], None, 4, 2)
    ) == [
        {"id": "a", "train_batch_size": 4},
        {"id": "t"},
    ]


def test_supervisor_script_uses_only_the_standard_library(tmp_path: Path) -> None:
    from ategnatos_mcp.training.execution.runner import supervisor_source

    for module in ("supervisor_script", "supervisor_edits"):  # as the runner copies them to the host
        (tmp_path / module.replace("_script", "")).with_suffix(".py").write_text(supervisor_source(module))
    code = (
        "import sys; sys.modules['pydantic'] = None; sys.modules['ategnatos_mcp'] = None\n"
        f"sys.path.insert(0, {str(tmp_path)!r}); import supervisor; assert supervisor.apply_edits"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], text=True, capture_output=True)
    assert done.returncode == 0, done.stderr
    import ast

    for module in ("supervisor_script", "supervisor_edits"):
        ast.parse(supervisor_source(module), feature_version=(3, 8))  # GPU images often ship an older python3


async def test_a_supervisor_that_breaks_takes_the_trainer_down_with_it(
    local: LocalHost, install: FakeInstall, dataset: Path, tmp_path: Path
) -> None:
    _cfg, handle = await _run(local, install, dataset, env={"FAKE_WAIT_FILE": tmp_path / "never"})
    with anyio.fail_after(10):
        while (status := await read_status(local, handle)).step < 1:
            await anyio.sleep(0.02)
    assert status.child_pid is not None and await local.alive("trainer", status.child_pid)
    Path(handle.run_dir).rename(f"{handle.run_dir}.moved")  # its status file can no longer be written
    with anyio.fail_after(15):
        while await local.alive("trainer", status.child_pid) or await local.alive("supervisor", status.pid):
            await anyio.sleep(0.05)


async def test_the_supervisor_beats_the_instance_watchdog_while_the_trainer_prints(
    install: FakeInstall, dataset: Path, tmp_path: Path
) -> None:
    beat = tmp_path / "watchdog" / "heartbeat"
    host = LocalHost(tmp_path / "runs", env=install.env, heartbeat_command=f"mkdir -p {beat.parent} && touch {beat}")
    _cfg, handle = await _run(host, install, dataset)
    status = await _finish(host, handle)
    assert status.state == "succeeded" and beat.is_file()


@pytest.mark.parametrize(
    ("backend", "logged"),
    [
        ("kohya", "batch size per device / バッチサイズ: 2"),
        ("simpletuner", "Instantaneous batch size per device = 2"),
        ("ai-toolkit", None),  # its log does not print the batch: the edited YAML shows it
    ],
)
async def test_a_run_can_start_at_the_rung_an_earlier_ladder_reached(
    local: LocalHost, install: FakeInstall, dataset: Path, backend: str, logged: str | None
) -> None:
    cfg = make_config(dataset, batch_size=8)
    handle = await start_run(
        local,
        kind="training",
        cfg=cfg,
        backend=backend,
        backend_dir=install.backend_dirs.get(backend, ""),
        dataset_dir=str(dataset),
        now=NOW,
        env={"FAKE_OOM_ABOVE": "2"},
        batch=(2, 4),
    )
    assert (handle.batch_size, handle.gradient_accumulation) == (2, 4)
    status = await _finish(local, handle)
    assert status.state == "succeeded", status.message
    assert [(a["batch_size"], a["gradient_accumulation"]) for a in status.attempts] == [(2, 4)]  # no OOM first
    config = "\n".join(p.read_text() for p in Path(handle.run_dir, "config").rglob("*") if p.is_file())
    if logged is not None:
        assert logged in await read_log_tail(local, handle)
    else:
        assert "batch_size: 2" in config and "gradient_accumulation_steps: 4" in config
