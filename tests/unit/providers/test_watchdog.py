"""The watchdog script really runs under /bin/sh: idle → stop, time limit → stop, fresh heartbeat → keep going."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from ategnatos_mcp.providers import install_command, render_watchdog, stop_command_for


def _run_once(tmp_path: Path, script: str, *, heartbeat_age: float | None) -> subprocess.CompletedProcess[str]:
    folder = tmp_path / "wd"
    folder.mkdir(exist_ok=True)
    if heartbeat_age is not None:
        beat = folder / "heartbeat"
        beat.touch()
        then = time.time() - heartbeat_age
        os.utime(beat, (then, then))
    path = tmp_path / "watchdog.sh"
    path.write_text(script, encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ATEGNATOS_WATCHDOG_DIR": str(folder)}
    return subprocess.run(["sh", str(path), "--once"], env=env, capture_output=True, text=True, timeout=10, check=False)


STOP = 'touch "$DIR/stop-called"'


def test_fresh_heartbeat_keeps_the_instance(tmp_path: Path) -> None:
    result = _run_once(
        tmp_path, render_watchdog(idle_minutes=60, deadline_epoch=0, stop_command=STOP), heartbeat_age=10
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "wd" / "stop-called").exists()


def test_idle_past_the_limit_stops(tmp_path: Path) -> None:
    script = render_watchdog(idle_minutes=60, deadline_epoch=0, stop_command=STOP)
    result = _run_once(tmp_path, script, heartbeat_age=2 * 3600)
    assert result.returncode == 1
    assert (tmp_path / "wd" / "stop-called").exists()
    assert (tmp_path / "wd" / "stopped").read_text().startswith("idle for")


def test_half_idle_only_warns(tmp_path: Path) -> None:
    result = _run_once(
        tmp_path, render_watchdog(idle_minutes=60, deadline_epoch=0, stop_command=STOP), heartbeat_age=2400
    )
    assert result.returncode == 0 and "warning: idle" in (tmp_path / "wd" / "watchdog.log").read_text()
    assert not (tmp_path / "wd" / "stop-called").exists()


def test_time_limit_stops_even_when_busy(tmp_path: Path) -> None:
    script = render_watchdog(idle_minutes=0, deadline_epoch=int(time.time()) - 5, stop_command=STOP)
    result = _run_once(tmp_path, script, heartbeat_age=0)
    assert result.returncode == 1 and (tmp_path / "wd" / "stopped").read_text().strip() == "time limit reached"


def test_idle_stop_off_never_stops_for_idleness(tmp_path: Path) -> None:
    result = _run_once(
        tmp_path, render_watchdog(idle_minutes=0, deadline_epoch=0, stop_command=STOP), heartbeat_age=10**6
    )
    assert result.returncode == 0 and not (tmp_path / "wd" / "stop-called").exists()


def test_stop_commands_and_install_quoting() -> None:
    assert stop_command_for("runpod") == "kill -TERM 1" and "shutdown" in stop_command_for("lambda")
    script = render_watchdog(idle_minutes=5, deadline_epoch=0, stop_command="kill -TERM 1")
    command = install_command(script)
    assert "setsid nohup sh" in command and "watchdog.pid" in command
    with pytest.raises(ValueError):
        render_watchdog(idle_minutes=-1, deadline_epoch=0, stop_command="true")
