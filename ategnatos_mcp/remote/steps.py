"""Idempotent named steps: each leaves ``~/.ategnatos/steps/<name>.done`` on the host when it succeeds,
so a rerun after a dropped connection continues where it stopped. The marker holds a fingerprint of the
command: a changed command runs again.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import time
from collections.abc import Sequence
from typing import NoReturn

from ategnatos_mcp.errors import InvalidRequestError, RemoteCommandError
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.remote.models import STEP_NAME_PATTERN, Step, StepOutcome, StepReport
from ategnatos_mcp.remote.session import SSHConnectionError, SSHSession

__all__ = ["STEPS_DIR", "StepFailedError", "forget_steps", "run_steps", "step_fingerprint"]

STEPS_DIR = ".ategnatos/steps"
_STEP_NAME = re.compile(STEP_NAME_PATTERN)
_TAIL = 2000


class StepFailedError(RemoteCommandError):
    """A step failed; ``report`` says which ran, which were skipped and which did not run."""

    def __init__(self, *, step: Step, cause: RemoteCommandError | SSHConnectionError, report: StepReport) -> None:
        done = ", ".join(report.ran + report.skipped) or "none"
        exit_status = cause.exit_status if isinstance(cause, RemoteCommandError) else None
        tail = cause.stderr_tail if isinstance(cause, RemoteCommandError) else cause.message
        last_line = next((line.strip() for line in reversed(tail.splitlines()) if line.strip()), "")
        super().__init__(
            f"Setup step '{step.name}'{f' ({step.description})' if step.description else ''} failed"
            f"{f' with exit status {exit_status}' if exit_status is not None else ''}"
            f"{f': {last_line[:200]}' if last_line else ''}. Steps complete: {done}.",
            command=step.command,
            exit_status=exit_status,
            stderr_tail=tail,
            hint="Fix what the error output names, then run the setup again: finished steps are skipped.",
        )
        self.step = step
        self.report = report


def step_fingerprint(step: Step) -> str:
    return hashlib.sha256(step.command.encode("utf-8")).hexdigest()[:16]


def _marker(step: Step) -> str:
    return f'"$HOME/{STEPS_DIR}/{step.name}.done"'


async def _is_done(session: SSHSession, steps: Sequence[Step]) -> set[str]:
    # One round trip for all markers: print the names whose marker holds the current fingerprint.
    lines = [
        f'[ "$(cat {_marker(step)} 2>/dev/null)" = {shlex.quote(step_fingerprint(step))} ] && echo {step.name}'
        for step in steps
    ]
    result = await session.run("\n".join([*lines, "true"]), timeout=60)
    return set(result.stdout.split())


async def _mark_done(session: SSHSession, step: Step) -> None:
    await session.run(
        f'mkdir -p "$HOME/{STEPS_DIR}" && printf %s {shlex.quote(step_fingerprint(step))} > {_marker(step)}',
        timeout=60,
    )


async def run_steps(
    session: SSHSession, steps: Sequence[Step], progress: Progress | None = None, *, retries_after_drop: int = 1
) -> StepReport:
    """Run ``steps`` in order, skipping those already done on this host; stop at the first failure.

    A step interrupted by a dropped connection is retried (after reconnecting) up to ``retries_after_drop``
    times, so steps must be safe to repeat.

    Raises:
        StepFailedError: a step failed; its ``report`` lists what ran, what was skipped, what did not run.
        SSHConnectionError: the host could not be reached at all.
    """
    names = [step.name for step in steps]
    if len(set(names)) != len(names):
        raise InvalidRequestError(
            f"Setup steps need unique names; these repeat: {sorted({n for n in names if names.count(n) > 1})}.",
            hint="Give every step its own name: the name is how a rerun knows the step is done.",
        )
    done = await _is_done(session, steps)
    report = StepReport()
    total = float(len(steps))
    for index, step in enumerate(steps):
        if progress is not None:
            await progress(float(index), total, f"{step.name}: {step.description or 'running'}")
        if step.name in done:
            report.steps.append(StepOutcome(name=step.name, description=step.description, result="skipped"))
            continue
        outcome = await _run_one(session, step, retries_after_drop, report, steps[index + 1 :])
        report.steps.append(outcome)
    if progress is not None:
        await progress(total, total, "all steps complete")
    return report


async def _run_one(
    session: SSHSession, step: Step, retries: int, report: StepReport, rest: Sequence[Step]
) -> StepOutcome:
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            if step.check is not None:
                probe = await session.run(step.check, timeout=min(step.timeout_seconds, 300), check=False)
                if probe.exit_status == 0:
                    await _mark_done(session, step)
                    return StepOutcome(
                        name=step.name, description=step.description, result="already_in_place", exit_status=0
                    )
            result = await session.run(step.command, timeout=step.timeout_seconds)
            await _mark_done(session, step)
            return StepOutcome(
                name=step.name,
                description=step.description,
                result="done",
                seconds=round(time.monotonic() - started, 3),
                exit_status=result.exit_status,
                output_tail=(result.stdout + result.stderr)[-_TAIL:],
            )
        except SSHConnectionError as exc:
            attempt += 1
            if attempt <= retries and exc.retryable:
                continue
            _fail(step, exc, report, rest, started)
        except RemoteCommandError as exc:
            _fail(step, exc, report, rest, started)


def _fail(
    step: Step,
    exc: RemoteCommandError | SSHConnectionError,
    report: StepReport,
    rest: Sequence[Step],
    started: float,
) -> NoReturn:
    report.steps.append(
        StepOutcome(
            name=step.name,
            description=step.description,
            result="failed",
            seconds=round(time.monotonic() - started, 3),
            exit_status=exc.exit_status if isinstance(exc, RemoteCommandError) else None,
            output_tail=(exc.stderr_tail if isinstance(exc, RemoteCommandError) else exc.message)[-_TAIL:],
        )
    )
    report.steps.extend(StepOutcome(name=s.name, description=s.description, result="not_run") for s in rest)
    raise StepFailedError(step=step, cause=exc, report=report) from exc


async def forget_steps(session: SSHSession, names: Sequence[str] | None = None) -> None:
    """Remove done-markers (all, or the named ones) so those steps run again."""
    if names is None:
        await session.run(f'rm -rf "$HOME/{STEPS_DIR}"', timeout=60)
        return
    for name in names:
        if not _STEP_NAME.fullmatch(name):  # checked before it reaches a shell
            raise InvalidRequestError(f"'{name}' is not a setup step name.", hint="Use the names run_steps reported.")
    quoted = " ".join(f'"$HOME/{STEPS_DIR}/{name}.done"' for name in names)
    await session.run(f"rm -f {quoted}", timeout=60)
