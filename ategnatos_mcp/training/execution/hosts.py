"""Where a run executes: this machine (``local``) or an SSH host, behind one small protocol.

The rest of the execution code runs commands, writes and reads files, syncs the dataset and starts,
watches and stops the detached supervisor through ``TrainingHost`` and never asks which kind it has.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import anyio
import anyio.to_thread

from ategnatos_mcp.errors import InvalidRequestError, NotFoundError, StateError
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.providers import GPU_DOCUMENT, HEARTBEAT_COMMAND, GpuDocument
from ategnatos_mcp.remote import (
    RemoteHost,
    SSHConnector,
    SSHSession,
    detached_status,
    download,
    start_detached,
    stop_detached,
    sync_folder,
)
from ategnatos_mcp.state import GrimoireStore, write_text_atomic
from ategnatos_mcp.studio import read_studio
from ategnatos_mcp.training.execution.models import HostSpec

__all__ = ["HostRegistry", "LocalHost", "Output", "SSHTrainingHost", "TrainingHost", "resolve_host"]


@dataclass
class Output:
    """A finished command on the host."""

    exit_status: int | None
    stdout: str
    stderr: str


class TrainingHost(Protocol):
    """What the execution code needs from the machine that trains."""

    spec: HostSpec
    python: str
    heartbeat_command: str | None
    """Run by the supervisor while the trainer prints (keeps a rented instance's idle watchdog at bay)."""

    @property
    def supervisor_python(self) -> str:
        """The Python that runs the (standard-library) supervisor."""
        ...

    async def base_dir(self, name: str) -> str:
        """The folder of run ``name`` on the host (absolute)."""
        ...

    async def expand(self, path: str) -> str:
        """``path`` with a leading ``~`` replaced by the home folder on the host."""
        ...

    async def run(self, command: str, *, timeout: float = 120.0) -> Output: ...

    async def write_text(self, path: str, text: str) -> None: ...

    async def read_text(self, path: str, *, tail_bytes: int | None = None) -> str | None:
        """The file's text (its last ``tail_bytes`` bytes), or None when it does not exist."""
        ...

    async def put_dataset(self, local: Path, remote: str, progress: Progress | None) -> str:
        """Make the dataset available on the host; returns the folder the trainer should read."""
        ...

    async def fetch(self, remote: str, local: Path) -> Path:
        """A file of the host on this machine: ``remote`` itself locally, else copied to ``local`` (resumable)."""
        ...

    async def start(self, process: str, argv: list[str], *, cwd: str, log: str) -> None: ...

    async def alive(self, process: str, pid: int | None) -> bool: ...

    async def stop(self, process: str, pid: int | None) -> None: ...


def _tail(path: Path, tail_bytes: int | None) -> str | None:
    try:
        with path.open("rb") as fh:
            if tail_bytes is not None:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - tail_bytes))
            return fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie has exited


@dataclass
class LocalHost:
    """This machine: plain subprocesses. ``env`` is added to every command (e.g. the backend's venv on PATH)."""

    runs_root: Path
    env: Mapping[str, str] = field(default_factory=dict)
    python: str = "python3"
    spec: HostSpec = field(default_factory=HostSpec)
    heartbeat_command: str | None = None

    @property
    def supervisor_python(self) -> str:
        return sys.executable

    def _env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    async def base_dir(self, name: str) -> str:
        return str(self.runs_root / name)

    async def expand(self, path: str) -> str:
        return str(Path(path).expanduser())

    async def run(self, command: str, *, timeout: float = 120.0) -> Output:
        with anyio.fail_after(timeout):
            done = await anyio.run_process(["/bin/sh", "-c", command], env=self._env(), check=False)
        return Output(done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"))

    async def write_text(self, path: str, text: str) -> None:
        target = Path(path)
        await anyio.to_thread.run_sync(lambda: target.parent.mkdir(parents=True, exist_ok=True))
        await anyio.to_thread.run_sync(write_text_atomic, target, text)

    async def read_text(self, path: str, *, tail_bytes: int | None = None) -> str | None:
        return await anyio.to_thread.run_sync(_tail, Path(path), tail_bytes)

    async def put_dataset(self, local: Path, remote: str, progress: Progress | None) -> str:
        return str(local)  # the trainer reads the project's folder itself

    async def fetch(self, remote: str, local: Path) -> Path:
        return Path(remote)

    async def start(self, process: str, argv: list[str], *, cwd: str, log: str) -> None:
        # setsid + a shell that exits at once: the supervisor is re-parented to init and outlives this server.
        launch = 'if command -v setsid >/dev/null 2>&1; then L="setsid nohup"; else L=nohup; fi; '
        command = f"{launch}cd {shlex.quote(cwd)} && $L {shlex.join(argv)} > {shlex.quote(log)} 2>&1 < /dev/null &"
        result = await self.run(command, timeout=30)
        if result.exit_status != 0:
            raise StateError(f"Could not start {process} on this machine: {result.stderr.strip()[-300:]}")

    async def alive(self, process: str, pid: int | None) -> bool:
        return pid is not None and _pid_alive(pid)

    async def stop(self, process: str, pid: int | None) -> None:
        if pid is not None and _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)  # the supervisor stops the trainer's whole process group


_STOP_GRACE_TENTHS = 200  # the supervisor gives the trainer 5 s to stop, then kills it: 20 s is plenty


@dataclass
class SSHTrainingHost:
    """A GPU host over SSH; the supervisor runs under ``remote.start_detached`` and survives a dropped link."""

    session: SSHSession
    spec: HostSpec
    python: str = "python3"
    env: Mapping[str, str] = field(default_factory=dict)
    heartbeat_command: str | None = HEARTBEAT_COMMAND

    def _exports(self) -> str:
        return "".join(f"export {key}={shlex.quote(value)}; " for key, value in self.env.items())

    @property
    def supervisor_python(self) -> str:
        return self.python

    async def base_dir(self, name: str) -> str:
        return f"{await self.session.home()}/ategnatos/training/{name}"

    async def expand(self, path: str) -> str:
        if path == "~" or path.startswith("~/"):
            return await self.session.home() + path[1:]
        return path

    async def run(self, command: str, *, timeout: float = 120.0) -> Output:
        done = await self.session.run(self._exports() + command, timeout=timeout, check=False)
        return Output(done.exit_status, done.stdout, done.stderr)

    async def write_text(self, path: str, text: str) -> None:
        quoted = shlex.quote(path)
        folder = shlex.quote(str(Path(path).parent))
        await self.session.run(
            f"mkdir -p {folder} && cat > {quoted}.tmp && mv {quoted}.tmp {quoted}", timeout=60, input=text
        )

    async def read_text(self, path: str, *, tail_bytes: int | None = None) -> str | None:
        reader = f"tail -c {int(tail_bytes)}" if tail_bytes is not None else "cat"
        done = await self.session.run(
            f"test -f {shlex.quote(path)} || exit 3; {reader} {shlex.quote(path)}", timeout=60, check=False
        )
        return done.stdout if done.exit_status == 0 else None

    async def put_dataset(self, local: Path, remote: str, progress: Progress | None) -> str:
        await sync_folder(self.session, local, remote, progress)
        return remote

    async def fetch(self, remote: str, local: Path) -> Path:
        await download(self.session, remote, local)  # sha256-verified; an identical local copy is kept as is
        return local

    async def start(self, process: str, argv: list[str], *, cwd: str, log: str) -> None:
        await start_detached(self.session, process, shlex.join(argv), cwd=cwd, env=dict(self.env))

    async def alive(self, process: str, pid: int | None) -> bool:
        return (await detached_status(self.session, process)).running

    async def stop(self, process: str, pid: int | None) -> None:
        if pid is not None:
            # TERM the supervisor alone: it stops the trainer (a process group of its own) and records "stopped".
            # A KILL of the detached group at once would take the supervisor before it recorded anything and miss
            # the trainer, which would go on writing saves on the rented GPU.
            done = await self.session.run(
                f"kill -TERM {int(pid)} 2>/dev/null; i=0; "
                f"while kill -0 {int(pid)} 2>/dev/null && [ $i -lt {_STOP_GRACE_TENTHS} ]; do sleep 0.1; i=$((i+1)); "
                f"done; kill -0 {int(pid)} 2>/dev/null && echo running || echo gone",
                timeout=_STOP_GRACE_TENTHS / 10 + 30,
                check=False,
            )
            if done.stdout.strip().endswith("gone"):
                return
        await stop_detached(self.session, process, grace_seconds=15)  # it did not stop by itself: the last resort


_ADDRESS = re.compile(r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::(?P<port>\d+))?$")


async def resolve_host(store: GrimoireStore, text: str) -> HostSpec:
    """``local``, a studio instance (name or id, from gpu_spinup), or ``user@host:port``.

    Raises:
        NotFoundError: an instance name that is not in the studio, or one without an SSH address yet.
    """
    value = text.strip()
    if value in ("", "local", "localhost", "this machine"):
        return HostSpec()
    inventory = await read_studio(store)
    for inst in inventory.instances:
        if value in (inst.name, inst.instance_id, f"{inst.provider}:{inst.instance_id}"):
            if not inst.ssh_host:
                raise NotFoundError(
                    f"The instance '{value}' has no SSH address yet.",
                    kind="instance",
                    name=value,
                    hint="Wait until it is running (gpu_instances shows its address), then try again.",
                )
            key = f"{inst.provider}:{inst.instance_id}"
            return HostSpec(
                kind="ssh",
                host=inst.ssh_host,
                port=inst.ssh_port or 22,
                username=await _ssh_user(store, key),
                name=key,
            )
    match = _ADDRESS.match(value)
    if match is None or "." not in value and ":" not in value and "@" not in value:
        raise NotFoundError(
            f"'{value}' is neither 'local', an instance in the studio, nor an address like root@1.2.3.4:22.",
            kind="host",
            name=value,
            hint="Use 'local' for this machine, the name gpu_instances shows, or user@host:port.",
        )
    return HostSpec(
        kind="ssh",
        host=match.group("host").strip("[]"),
        port=int(match.group("port") or 22),
        username=match.group("user") or "root",
    )


async def _ssh_user(store: GrimoireStore, key: str) -> str:
    """The login the provider gave the rental (Lambda uses 'ubuntu'), from the GPU ledger."""
    rental = (await store.read(GPU_DOCUMENT, GpuDocument)).rentals.get(key)
    return rental.ssh_user if rental is not None else "root"


@dataclass
class HostRegistry:
    """Opens hosts (one per server, held by the wiring).

    ``local_env`` / ``remote_env`` are added to every command (e.g. PATH to the backend's venv).
    """

    runs_root: Path
    connector: Callable[[], Awaitable[SSHConnector]]
    local_env: Mapping[str, str] = field(default_factory=dict)
    remote_env: Mapping[str, str] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def open(self, spec: HostSpec) -> AsyncIterator[TrainingHost]:
        """A host ready for use; an SSH session is closed when the block ends (the run keeps going)."""
        if spec.kind == "local":
            yield LocalHost(self.runs_root, env=self.local_env)
            return
        if not spec.host:
            raise InvalidRequestError("An SSH host needs an address.", hint="Pass user@host:port or an instance name.")
        remote = RemoteHost(host=spec.host, port=spec.port, username=spec.username, name=spec.name)
        connector = await self.connector()
        async with connector.session(remote) as session:
            yield SSHTrainingHost(session, spec, env=self.remote_env)
