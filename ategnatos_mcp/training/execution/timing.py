"""How long a run still needs, and whether it has stopped moving.

Time left comes from the trainer's own progress bar when it gives one (tqdm's estimate), else from its rate and
the steps left, else from the average pace since the supervisor started. A run is *stalled* when its log has not
moved for a while: the supervisor writes ``updated_at`` every second and ``last_output_at`` whenever the trainer
prints, both on the host's clock, so their difference is how long the log has been still (no clock skew between
this computer and a rented host). A run that keeps printing without a new step (stuck saving, sampling, or
repeating a warning) is named too, after a longer wait.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from ategnatos_mcp.training.execution.models import SupervisorStatus, TrainingProgress

__all__ = ["Stall", "TimeLeft", "describe_duration", "find_stall", "time_left"]

_RUNNING = ("starting", "running", "retrying")
# Real steps take seconds: a quiet log is normal for a few of them (a slow step, a save), not for many.
_QUIET_STEPS = 20
# Output without a new step (samples, saves, warnings) is normal for longer than silence is.
_NO_STEP_FACTOR = 3


class TimeLeft(BaseModel):
    """The time a running run still needs."""

    seconds: float
    words: str = Field(description="e.g. 'about 40 minutes'.")
    basis: Literal["trainer", "rate", "average"] = Field(
        description="trainer: the progress bar's own estimate; rate: its speed x the steps left; average: the pace "
        "since the run started."
    )


class Stall(BaseModel):
    """A running run whose log (or step count) has not moved for a while."""

    minutes: float
    step: int
    kind: Literal["silent", "no_step"]
    warning: str


def describe_duration(seconds: float) -> str:
    """'less than a minute', 'about 7 minutes', 'about 2 hours 10 minutes', 'about 3 days 4 hours'."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 60:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        rest = 5 * round(rest / 5)
        if rest == 60:
            hours, rest = hours + 1, 0
        return f"about {hours} hour{'s' if hours != 1 else ''}" + (f" {rest} minutes" if rest else "")
    days, hours = divmod(hours, 24)
    return f"about {days} days" + (f" {hours} hour{'s' if hours != 1 else ''}" if hours else "")


def _quiet_for(seconds: float) -> str:
    return f"{int(seconds)} seconds" if seconds < 60 else describe_duration(seconds).removeprefix("about ")


def _stamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _seconds_between(start: str | None, end: str | None) -> float | None:
    first, last = _stamp(start), _stamp(end)
    if first is None or last is None:
        return None
    return max(0.0, (last - first).total_seconds())


def time_left(status: SupervisorStatus, progress: TrainingProgress) -> TimeLeft | None:
    """The time a running run still needs; None when it is not running or nothing tells yet."""
    if status.state not in _RUNNING:
        return None
    step = max(status.step, progress.step)
    total = status.total_steps or progress.total_steps
    if not total or step <= 0:
        return None
    left = max(0, total - step)
    same_bar = progress.step == step and progress.total_steps == total
    if same_bar and progress.eta_seconds is not None:
        seconds, basis = progress.eta_seconds, "trainer"
    elif progress.seconds_per_step is not None:
        seconds, basis = left * progress.seconds_per_step, "rate"
    else:
        spent = _seconds_between(status.started_at, status.updated_at)
        if not spent:
            return None
        seconds, basis = left * spent / step, "average"
    return TimeLeft(seconds=round(seconds, 1), words=describe_duration(seconds), basis=basis)  # type: ignore[arg-type]


def find_stall(
    status: SupervisorStatus, progress: TrainingProgress, *, threshold_seconds: float, name: str
) -> Stall | None:
    """A warning with what to do when a running run has not moved for ``threshold_seconds`` (or 20 of its steps,
    whichever is longer); None when it is moving, finished, or the supervisor does not record it."""
    if status.state not in _RUNNING:
        return None
    if "last_output_at" not in status.model_fields_set:
        return None  # a supervisor started before it kept these times
    threshold = max(threshold_seconds, _QUIET_STEPS * (progress.seconds_per_step or 0.0))
    silent = _seconds_between(status.last_output_at or status.started_at, status.updated_at)
    no_step = _seconds_between(status.last_step_at, status.updated_at) if status.step else None
    where = f"step {status.step} of {status.total_steps}" if status.total_steps else "before its first step"
    todo = (
        f"Look at its last lines (training_status name='{name}' log_lines=30). If they do not move within a few "
        f"more minutes, stop it with launch_training(name='{name}', action='stop') and continue it with "
        f"launch_training(name='{name}', resume=true), which picks up from its last save."
    )
    if silent is not None and silent >= threshold:
        minutes = silent / 60
        return Stall(
            minutes=round(minutes, 1),
            step=status.step,
            kind="silent",
            warning=f"No progress for {_quiet_for(silent)}: the trainer has printed "
            f"nothing since {where}. It may be stuck (a hung data loader, a full disk, a GPU that stopped "
            f"answering). {todo} A rented GPU bills while it waits.",
        )
    if no_step is not None and no_step >= _NO_STEP_FACTOR * threshold:
        return Stall(
            minutes=round(no_step / 60, 1),
            step=status.step,
            kind="no_step",
            warning=f"No new step for {_quiet_for(no_step)} although the trainer is "
            f"still printing (at {where}): it may be caught saving, making samples or repeating a warning. {todo}",
        )
    return None
