"""Detached processes on the host: started under setsid/nohup, they keep running when SSH drops.

Each one has a run folder ``~/.ategnatos/runs/<name>/`` holding ``pid``, ``log`` (stdout and stderr),
``exit`` (its exit status, written when it ends), ``stopped`` (when we stopped it) and ``command``.
Status and logs are read back from those files, so any later session can re-attach.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from ategnatos_mcp.errors import InvalidRequestError, NotFoundError, StateError
from ategnatos_mcp.paths import safe_name
from ategnatos_mcp.remote.models import DetachedState, DetachedStatus, LogChunk
from ategnatos_mcp.remote.session import SSHSession

__all__ = ["RUNS_DIR", "detached_status", "read_log", "run_dir", "start_detached", "stop_detached"]

RUNS_DIR = ".ategnatos/runs"

# A zombie still answers `kill -0`; containers whose PID 1 never reaps (common on GPU clouds) keep them around.
_ALIVE = """alive() { kill -0 "$1" 2>/dev/null || return 1
  [ -r "/proc/$1/stat" ] || return 0
  [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" != Z ]; }
"""


def run_dir(name: str) -> str:
    """The run folder, relative to the remote home."""
    return f"{RUNS_DIR}/{_checked(name)}"


def _checked(name: str) -> str:
    cleaned = safe_name(name, what="process name")
    if " " in cleaned:
        raise InvalidRequestError(f"'{name}' cannot name a remote process.", hint="Use no spaces, e.g. 'comfyui'.")
    return cleaned


def _status_script(folder: str) -> str:
    # One round trip; prints key=value lines. Liveness is read before the exit file: the wrapper writes the
    # exit file and then ends, so "dead and no exit file" can only mean it died unrecorded.
    return (
        _ALIVE
        + f"""cd "$HOME/{folder}" 2>/dev/null || {{ echo state=missing; exit 0; }}
pid=$(cat pid 2>/dev/null)
echo pid=$pid
was_alive=no
[ -n "$pid" ] && alive "$pid" && was_alive=yes
if [ -f exit ]; then echo exit=$(cat exit)
elif [ -f stopped ]; then echo state=stopped
elif [ $was_alive = yes ]; then echo state=running
else echo state=lost; fi
echo log_size=$(wc -c < log 2>/dev/null || echo 0)
"""
    )


async def start_detached(
    session: SSHSession,
    name: str,
    command: str,
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    replace: bool = False,
) -> DetachedStatus:
    """Start ``command`` detached from the SSH session; returns once its pid is recorded.

    Raises:
        StateError: a process with this name is still running (pass ``replace=True`` to stop it first).
        RemoteCommandError: the host could not start it.
    """
    folder = run_dir(name)
    current = await detached_status(session, name)
    if current.running:
        if not replace:
            raise StateError(
                f"'{name}' is already running on the GPU host (pid {current.pid}).",
                document=folder,
                hint="Check on it with detached_status / read_log, stop it first, or start it with replace=True.",
            )
        await stop_detached(session, name)
    exports = "".join(f"export {_env_name(key)}={shlex.quote(value)}; " for key, value in (env or {}).items())
    chdir = f"cd {shlex.quote(cwd)} && " if cwd else ""
    # The inner shell records its own pid (= its process group, thanks to setsid), runs the command in a
    # subshell (so an `exit` in it cannot skip the bookkeeping) with all output in the log, then writes the
    # exit status atomically. Its stdio is detached from the SSH channel
    # so the channel can close at once.
    inner = (
        f'echo $$ > "$RUN/pid"; ( {exports}{chdir}{command}\n) >> "$RUN/log" 2>&1 < /dev/null; '
        'echo $? > "$RUN/exit.tmp" && mv "$RUN/exit.tmp" "$RUN/exit"'
    )
    script = f"""set -e
RUN="$HOME/{folder}"
mkdir -p "$RUN"
rm -f "$RUN/pid" "$RUN/exit" "$RUN/exit.tmp" "$RUN/stopped"
: > "$RUN/log"
printf '%s\\n' {shlex.quote(command)} > "$RUN/command"
export RUN
if command -v setsid >/dev/null 2>&1; then LAUNCH="setsid nohup"; else LAUNCH="nohup"; fi
$LAUNCH /bin/sh -c {shlex.quote(inner)} > /dev/null 2>&1 < /dev/null &
i=0
while [ ! -s "$RUN/pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
[ -s "$RUN/pid" ] || {{ echo "the process did not start within 5 seconds" >&2; exit 1; }}
cat "$RUN/pid"
"""
    await session.run(script, timeout=60)
    return await detached_status(session, name)


def _env_name(key: str) -> str:
    if not key.replace("_", "").isalnum() or key[0].isdigit():
        raise InvalidRequestError(f"'{key}' is not a valid environment variable name.", hint="Use A-Z, 0-9 and _.")
    return key


async def detached_status(session: SSHSession, name: str) -> DetachedStatus:
    """Read the run folder: running, finished, failed, stopped, lost (died unrecorded) or missing."""
    folder = run_dir(name)
    result = await session.run(_status_script(folder), timeout=60)
    values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    exit_status = int(values["exit"]) if values.get("exit", "").strip().lstrip("-").isdigit() else None
    state: DetachedState
    if exit_status is not None:
        state = "finished" if exit_status == 0 else "failed"
    else:
        state = values.get("state", "lost")  # type: ignore[assignment]
    pid_text = values.get("pid", "").strip()
    size_text = values.get("log_size", "0").strip()
    return DetachedStatus(
        name=name,
        state=state,
        pid=int(pid_text) if pid_text.isdigit() else None,
        exit_status=exit_status,
        run_dir=folder,
        log_path=f"{folder}/log",
        log_size=int(size_text) if size_text.isdigit() else 0,
    )


async def read_log(session: SSHSession, name: str, *, offset: int = 0, max_bytes: int = 65536) -> LogChunk:
    """Read the log from ``offset`` (negative: that many bytes from the end); re-attach with ``next_offset``.

    The chunk ends at the log's size when it was read, so a log still being written is never read twice.
    """
    log = f'"$HOME/{run_dir(name)}/log"'
    first = f"start=$((size - {-offset})); [ $start -lt 0 ] && start=0" if offset < 0 else f"start={offset}"
    command = f"""size=$(wc -c < {log}) || exit 1
{first}
[ $start -gt $size ] && start=$size
n=$((size - start)); [ $n -gt {max(max_bytes, 1)} ] && n={max(max_bytes, 1)}
echo "$start $n"
tail -c +$((start + 1)) {log} | head -c $n
"""
    result = await session.run(command, timeout=60, check=False)
    header, _, text = result.stdout.partition("\n")
    if result.exit_status != 0 or len(header.split()) != 2:
        raise NotFoundError(
            f"There is no log for '{name}' on the GPU host.",
            kind="remote process",
            name=name,
            hint="Check the name (detached_status) or start the process first.",
        )
    start, count = (int(part) for part in header.split())
    return LogChunk(text=text, offset=start, next_offset=start + count)


async def stop_detached(session: SSHSession, name: str, *, grace_seconds: float = 10.0) -> DetachedStatus:
    """Stop the process group (TERM, then KILL after ``grace_seconds``) and mark it stopped."""
    status = await detached_status(session, name)
    if status.pid is None or not status.running:
        return status
    folder = f'"$HOME/{run_dir(name)}"'
    steps = max(int(grace_seconds * 10), 1)
    script = (
        _ALIVE
        + f"""touch {folder}/stopped
kill -TERM -{status.pid} 2>/dev/null || kill -TERM {status.pid} 2>/dev/null
i=0
while alive {status.pid} && [ $i -lt {steps} ]; do sleep 0.1; i=$((i+1)); done
kill -KILL -{status.pid} 2>/dev/null || true
"""
    )
    await session.run(script, timeout=grace_seconds + 30)
    return await detached_status(session, name)
