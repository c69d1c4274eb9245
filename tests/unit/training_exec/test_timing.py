"""Time left and stalls, from the real progress lines of the three backends and the supervisor's status times."""

from __future__ import annotations

from pathlib import Path

import pytest

from ategnatos_mcp.training.execution.models import SupervisorStatus, TrainingProgress
from ategnatos_mcp.training.execution.monitor import bar_seconds, bar_seconds_per_step, parse_log
from ategnatos_mcp.training.execution.timing import describe_duration, find_stall, time_left

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "training_exec"


def _line(name: str, number: int) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8").splitlines()[number - 1]


@pytest.mark.parametrize(
    ("backend", "sample", "line", "expected"),
    [
        ("kohya", "kohya-sd-scripts.txt", 40, (83.0, 748.0, 1 / 1.20)),  # [01:23<12:28,  1.20it/s
        ("kohya", "kohya-sd-scripts.txt", 47, (1897.0, 17074.0, 9.73)),  # [31:37<4:44:34,  9.73s/it
        ("ai-toolkit", "ai-toolkit.txt", 44, (2070.0, 1242.0, 1.66)),  # [34:30<20:42,  1.66s/it
        ("kohya", "kohya-sd-scripts.txt", 34, (0.0, None, None)),  # [00:00<?, ?it/s]: nothing known yet
    ],
)
def test_the_progress_bar_gives_elapsed_time_left_and_speed(
    backend: str, sample: str, line: int, expected: tuple[float, float | None, float | None]
) -> None:
    progress = parse_log(backend, _line(sample, line), job_name="my_first_flux_lora_v1")
    elapsed, eta, pace = expected
    assert progress.elapsed_seconds == elapsed and progress.eta_seconds == eta
    assert progress.seconds_per_step == (pytest.approx(pace) if pace is not None else None)


def test_tqdm_times_and_rates_read_in_every_shape() -> None:
    assert [bar_seconds(t) for t in ("00:07", "12:28", "4:35:07", "1d, 2:03:04", "?", "", None)] == [
        7.0, 748.0, 16507.0, 93784.0, None, None, None,
    ]  # fmt: skip
    assert bar_seconds_per_step("2.00", "it/s") == 0.5 and bar_seconds_per_step("1.66", "s/it") == 1.66
    assert bar_seconds_per_step("?", "it/s") is None and bar_seconds_per_step("0.00", "it/s") is None


def test_durations_in_plain_words() -> None:
    words = [describe_duration(s) for s in (20, 60, 7 * 60 + 20, 3600, 2 * 3600 + 10 * 60, 3 * 86400 + 4 * 3600)]
    assert words == [
        "less than a minute",
        "about 1 minute",
        "about 7 minutes",
        "about 1 hour",
        "about 2 hours 10 minutes",
        "about 3 days 4 hours",
    ]


def _status(**values: object) -> SupervisorStatus:
    base: dict[str, object] = {"state": "running", "step": 100, "total_steps": 1000}
    return SupervisorStatus.model_validate(base | values)


def test_time_left_falls_back_from_the_bar_to_its_speed_to_the_average_pace() -> None:
    bar = TrainingProgress(backend="kohya", step=100, total_steps=1000, eta_seconds=748.0, seconds_per_step=0.83)
    assert time_left(_status(), bar).basis == "trainer"  # type: ignore[union-attr]
    no_eta = bar.model_copy(update={"eta_seconds": None})
    rate = time_left(_status(), no_eta)
    assert rate is not None and rate.basis == "rate" and rate.seconds == pytest.approx(900 * 0.83)
    older = bar.model_copy(update={"step": 90})  # the status has moved on since the log tail's last frame
    assert time_left(_status(), older).basis == "rate"  # type: ignore[union-attr]
    bare = TrainingProgress(backend="kohya", step=100, total_steps=1000)
    times = {"started_at": "2026-11-29T17:00:00Z", "updated_at": "2026-11-29T17:10:00Z"}
    average = time_left(_status(**times), bare)
    assert average is not None and average.basis == "average" and average.seconds == 5400  # 100 steps took 10 min
    assert average.words == "about 1 hour 30 minutes"
    assert time_left(_status(state="succeeded"), bar) is None and time_left(_status(step=0), bare) is None


def test_a_still_log_is_a_stall_and_a_moving_log_without_steps_is_one_later() -> None:
    quiet = {
        "updated_at": "2026-11-29T17:20:00Z",
        "last_output_at": "2026-11-29T17:04:00Z",
        "last_step_at": "2026-11-29T17:04:00Z",
    }
    fast = TrainingProgress(backend="kohya", seconds_per_step=1.0)
    stall = find_stall(_status(**quiet), fast, threshold_seconds=900, name="ink")
    assert stall is not None and stall.kind == "silent" and stall.minutes == 16.0
    assert stall.warning.startswith("No progress for 16 minutes: the trainer has printed nothing since step 100")
    slow = TrainingProgress(backend="kohya", seconds_per_step=60.0)  # 20 steps of a minute: not yet
    assert find_stall(_status(**quiet), slow, threshold_seconds=900, name="ink") is None
    chatty = quiet | {"last_output_at": "2026-11-29T17:19:59Z", "last_step_at": "2026-11-29T16:30:00Z"}
    loop = find_stall(_status(**chatty), fast, threshold_seconds=900, name="ink")
    assert loop is not None and loop.kind == "no_step" and "still printing" in loop.warning
    assert find_stall(_status(**quiet, state="stopped"), fast, threshold_seconds=900, name="ink") is None
    old = {"started_at": "2026-11-29T10:00:00Z", "updated_at": "2026-11-29T17:20:00Z"}  # no output times kept
    assert find_stall(_status(**old), fast, threshold_seconds=900, name="ink") is None
    starting = old | {"state": "starting", "step": 0, "last_output_at": None}  # a new one, silent since it began
    assert find_stall(_status(**starting), fast, threshold_seconds=900, name="ink").kind == "silent"  # type: ignore[union-attr]
