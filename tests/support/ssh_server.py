"""A real SSH server on 127.0.0.1 for the remote/ tests: key auth, real shell commands, SFTP, port forwarding.

Commands run through ``/bin/sh -c`` in ``home`` with ``HOME=home``, like sshd does. As with sshd, a command's
process group gets SIGHUP when its connection goes away, so only properly detached processes survive a drop.
Tests can cut every connection (``cut()``) or have the SFTP side cut the connection once after N bytes written
(``cut_after_bytes``) or read (``cut_after_read_bytes``), or when a command prints ``cut_on_output``.
``env`` is added to every command's environment (e.g. ``PATH`` with stand-ins for ``nvidia-smi`` and ``pip``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from pathlib import Path
from types import TracebackType
from typing import cast

import asyncssh


class _Server(asyncssh.SSHServer):
    def __init__(self, owner: SSHTestServer) -> None:
        self.owner = owner
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.owner.connections.add(conn)
        self.owner.connection_count += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.owner.connections.discard(self.conn)
            for pgid in self.owner.process_groups.pop(self.conn, set()):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGHUP)

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
        return True


class _SFTP(asyncssh.SFTPServer):
    def __init__(self, chan: asyncssh.SSHServerChannel, owner: SSHTestServer) -> None:
        super().__init__(chan)
        self.owner = owner

    def map_path(self, path: bytes) -> bytes:
        # Like sshd's sftp-server: relative paths start in the user's home.
        if not path.startswith(b"/"):
            path = os.fsencode(self.owner.home) + b"/" + path
        return path

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        data = cast(bytes, super().read(file_obj, offset, size))  # the base class answers synchronously
        if self.owner.cut_after_read_bytes is not None:
            self.owner.cut_after_read_bytes -= len(data)
            if self.owner.cut_after_read_bytes <= 0:
                self.owner.cut_after_read_bytes = None
                self.owner.cuts += 1
                self.connection.abort()
        return data

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        written = cast(int, super().write(file_obj, offset, data))
        if self.owner.cut_after_bytes is not None:
            self.owner.cut_after_bytes -= len(data)
            if self.owner.cut_after_bytes <= 0:
                self.owner.cut_after_bytes = None
                self.owner.cuts += 1
                self.connection.abort()
        return written


class SSHTestServer:
    """``async with SSHTestServer(home, host_key, authorized_key_line) as server: server.port``."""

    def __init__(
        self, home: Path, host_key: asyncssh.SSHKey, authorized_key: str, env: dict[str, str] | None = None
    ) -> None:
        self.home = home
        self.env = dict(env or {})
        self.host_key = host_key
        self.authorized_key = authorized_key
        self.port = 0
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.process_groups: dict[asyncssh.SSHServerConnection, set[int]] = {}
        self.connection_count = 0
        self.cut_after_bytes: int | None = None
        self.cut_after_read_bytes: int | None = None
        self.cut_on_output: bytes | None = None
        self.cuts = 0
        self._listener: asyncssh.SSHAcceptor | None = None

    async def __aenter__(self) -> SSHTestServer:
        self.home.mkdir(parents=True, exist_ok=True)
        self._listener = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[self.host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(self.authorized_key + "\n"),
            server_factory=lambda: _Server(self),
            process_factory=self._run_command,
            sftp_factory=lambda chan: _SFTP(chan, self),
            allow_scp=False,
            password_auth=False,
            kbdint_auth=False,
            config=None,
            encoding=None,
        )
        self.port = self._listener.get_port()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cut()
        if self._listener is not None:
            self._listener.close()
            await self._listener.wait_closed()
        self.kill_detached()

    def kill_detached(self) -> None:
        """End every detached process the tests started here, so a failing test leaves nothing running."""
        # The idle watchdog (remote_deploy's first step) runs detached too, under its own process group.
        pid_files = [*self.home.glob(".ategnatos/runs/*/pid"), *self.home.glob(".ategnatos/watchdog/watchdog.pid")]
        for pid_file in pid_files:
            text = pid_file.read_text(encoding="utf-8").strip()
            if text.isdigit():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(text), signal.SIGKILL)

    def cut(self) -> None:
        """Drop every client connection abruptly, as a flaky network would."""
        for conn in list(self.connections):
            conn.abort()

    async def _run_command(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        conn = process.get_extra_info("connection")
        env = {"HOME": str(self.home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **self.env}
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            process.command or "true",
            cwd=self.home,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.process_groups.setdefault(conn, set()).add(proc.pid)
        assert proc.stdin and proc.stdout and proc.stderr
        child_stdin = proc.stdin

        async def feed() -> None:
            with contextlib.suppress(Exception):
                while data := await process.stdin.read(65536):
                    child_stdin.write(data)
                    await child_stdin.drain()
            with contextlib.suppress(Exception):
                child_stdin.close()

        async def pump(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
            with contextlib.suppress(Exception):
                while data := await source.read(65536):
                    if self.cut_on_output is not None and self.cut_on_output in data:
                        self.cut_on_output = None
                        self.cuts += 1
                        self.cut()
                        return
                    sink.write(data)
                    await sink.drain()

        feeder = asyncio.ensure_future(feed())
        await asyncio.gather(pump(proc.stdout, process.stdout), pump(proc.stderr, process.stderr))
        status = await proc.wait()
        feeder.cancel()
        self.process_groups.get(conn, set()).discard(proc.pid)
        with contextlib.suppress(Exception):
            process.exit(status if status >= 0 else 128 - status)


@contextlib.asynccontextmanager
async def ssh_lab(
    tmp_path: Path,
    *,
    host_key: asyncssh.SSHKey | None = None,
    name: str = "test-gpu",
    env: dict[str, str] | None = None,
):
    """A running server, a connector with its own key folder, and the ``RemoteHost`` to reach the server."""
    from ategnatos_mcp.remote import RemoteHost, SSHConnector

    connector = SSHConnector(tmp_path / "ssh-keys", connect_timeout=5, reconnect_delays=(0, 0, 0))
    key = await connector.key()
    async with SSHTestServer(
        tmp_path / "remote-home", host_key or asyncssh.generate_private_key("ssh-ed25519"), key.public_key, env
    ) as server:
        yield server, connector, RemoteHost(host="127.0.0.1", port=server.port, username="artist", name=name)
