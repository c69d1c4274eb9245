"""The watchdog script really runs under /bin/sh: idle → stop, time limit → stop, fresh heartbeat → keep going."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    assert "runpodctl stop pod" in stop_command_for("runpod") and "shutdown" in stop_command_for("lambda")
    assert stop_command_for("runpod").endswith("kill -TERM 1") and stop_command_for("local") == "true"
    assert "/instances/$id/" in stop_command_for("vast", "28765433") and "id=28765433;" in stop_command_for(
        "vast", "28765433"
    )
    script = render_watchdog(idle_minutes=5, deadline_epoch=0, stop_command="kill -TERM 1")
    command = install_command(script)
    assert "setsid nohup sh" in command and "watchdog.pid" in command
    with pytest.raises(ValueError):
        render_watchdog(idle_minutes=-1, deadline_epoch=0, stop_command="true")


# Self-stop through the provider's own API ------------------------------------------------------------------------
# The script runs for real under /bin/sh; only `kill` is replaced (by a shell function) so PID 1 of this machine is
# never signalled, and RunPod's runpodctl (absent here) by a recorder. Vast's call goes through the real curl (and
# the python3 fallback) to an HTTP server on 127.0.0.1.


def _stop_once(tmp_path: Path, stop_command: str, env: dict[str, str]) -> Path:
    # Make sure this machine's sh lets a function stand in for `kill` (POSIX: functions before regular builtins).
    probe = subprocess.run(["sh", "-c", "kill() { echo stand-in; }; kill -0 1"], capture_output=True, text=True)
    assert probe.stdout.strip() == "stand-in", "refusing to run: sh would signal PID 1 for real"
    folder = tmp_path / "wd"
    folder.mkdir(exist_ok=True)
    script = tmp_path / "watchdog.sh"
    script.write_text(render_watchdog(idle_minutes=0, deadline_epoch=1, stop_command=stop_command), encoding="utf-8")
    fake_kill = 'kill() { printf "%s\\n" "$*" >> "$ATEGNATOS_WATCHDOG_DIR/kills"; }; . "$0"'
    full_env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ATEGNATOS_WATCHDOG_DIR": str(folder),
        "ATEGNATOS_WATCHDOG_STOP_GRACE": "0",
        **env,
    }
    result = subprocess.run(
        ["sh", "-c", fake_kill, str(script), "--once"], env=full_env, capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 1, result.stderr  # the time limit passed: it stopped
    return folder


def _recorder(bin_dir: Path, name: str) -> Path:
    bin_dir.mkdir(exist_ok=True)
    record = bin_dir / f"{name}.calls"
    tool = bin_dir / name
    tool.write_text(f'#!/bin/sh\necho "$* key=$RUNPOD_API_KEY" >> "{record}"\n', encoding="utf-8")
    tool.chmod(0o755)
    return record


def test_runpod_asks_runpod_to_stop_its_own_pod_then_ends_pid_1(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    calls = _recorder(bin_dir, "runpodctl")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "RUNPOD_POD_ID": "pod0001xyz", "RUNPOD_API_KEY": "pod-scoped"}
    folder = _stop_once(tmp_path, stop_command_for("runpod", "pod0001xyz"), env)
    assert calls.read_text().splitlines() == ["stop pod pod0001xyz key=pod-scoped"]
    assert "asked RunPod to stop pod pod0001xyz" in (folder / "watchdog.log").read_text()
    assert (folder / "kills").read_text().splitlines() == ["-TERM 1"]  # the last resort after the grace period


def test_runpod_without_runpodctl_falls_back_to_ending_pid_1(tmp_path: Path) -> None:
    folder = _stop_once(tmp_path, stop_command_for("runpod"), {"RUNPOD_POD_ID": "pod0001xyz"})
    assert "asked RunPod" not in (folder / "watchdog.log").read_text()
    assert (folder / "kills").read_text().splitlines() == ["-TERM 1"]


@pytest.fixture
def vast_api() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            seen.append({"path": self.path, "auth": self.headers.get("Authorization", ""), "body": body})
            payload = b'{"success": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v0", seen
    finally:
        server.shutdown()
        server.server_close()


def _no_curl_path(tmp_path: Path) -> str:
    """A PATH with the shell tools the script uses and python3, but no curl."""
    bin_dir = tmp_path / "nocurl"
    bin_dir.mkdir()
    for tool in ("sh", "date", "mkdir", "touch", "tr", "sed", "head", "sleep", "sort", "tail", "cat"):
        found = shutil.which(tool, path="/usr/bin:/bin")
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    (bin_dir / "python3").symlink_to(sys.executable)
    return str(bin_dir)


@pytest.mark.parametrize("client", ["curl", "python3"])
def test_vast_stops_its_own_instance_with_the_container_key(
    tmp_path: Path, vast_api: tuple[str, list[dict[str, str]]], client: str
) -> None:
    url, seen = vast_api
    if client == "curl" and shutil.which("curl") is None:
        pytest.skip("no curl on this machine")
    env = {"CONTAINER_API_KEY": "instance-only-key"}
    if client == "python3":
        env["PATH"] = _no_curl_path(tmp_path)
    folder = _stop_once(tmp_path, stop_command_for("vast", "28765433", vast_api_url=url), env)
    assert seen == [
        {"path": "/api/v0/instances/28765433/", "auth": "Bearer instance-only-key", "body": '{"state":"stopped"}'}
    ]
    assert "asked Vast.ai to stop instance 28765433" in (folder / "watchdog.log").read_text()
    assert (folder / "kills").read_text().splitlines() == ["-TERM 1"]


def test_vast_without_its_key_only_ends_pid_1(tmp_path: Path, vast_api: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = vast_api
    folder = _stop_once(tmp_path, stop_command_for("vast", "28765433", vast_api_url=url), {})
    assert seen == [] and (folder / "kills").read_text().splitlines() == ["-TERM 1"]
