"""SSH sessions to a GPU host: connect with a timeout, keepalive, reconnect; run commands with streamed output."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

from ategnatos_mcp.errors import RemoteCommandError, UpstreamError
from ategnatos_mcp.remote.hostkeys import HOST_KEYS_FILE_NAME, HostKeyChangedError, HostKeyStore
from ategnatos_mcp.remote.keys import default_key_dir, ensure_key, load_private_key
from ategnatos_mcp.remote.models import CommandResult, KeyInfo, OutputCallback, RemoteHost
from ategnatos_mcp.settings import Settings

if TYPE_CHECKING:
    import asyncssh

__all__ = ["SSHConnectionError", "SSHConnector", "SSHSession"]

logger = logging.getLogger(__name__)

_OUTPUT_KEEP = 256 * 1024


class SSHConnectionError(UpstreamError):
    """The host could not be reached, refused our key, or the connection dropped."""

    def __init__(self, message: str, *, hint: str, retryable: bool = True) -> None:
        super().__init__(message, service="ssh", hint=hint, retryable=retryable)


class SSHConnector:
    """Opens SSH sessions with our key and the pinned host keys. Build one per server; pass it down."""

    def __init__(
        self,
        key_dir: Path,
        *,
        host_keys: HostKeyStore | None = None,
        connect_timeout: float = 20.0,
        command_timeout: float = 600.0,
        keepalive_interval: float = 15.0,
        keepalive_count_max: int = 4,
        reconnect_delays: Sequence[float] = (1.0, 3.0, 10.0),
    ) -> None:
        self.key_dir = key_dir
        self.host_keys = host_keys or HostKeyStore(key_dir / HOST_KEYS_FILE_NAME)
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.keepalive_interval = keepalive_interval
        self.keepalive_count_max = keepalive_count_max
        self.reconnect_delays = tuple(reconnect_delays)
        self._loaded_key: asyncssh.SSHKey | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SSHConnector:
        return cls(default_key_dir(settings))

    async def _client_key(self) -> asyncssh.SSHKey:
        if self._loaded_key is None:
            await ensure_key(self.key_dir)
            self._loaded_key = await anyio.to_thread.run_sync(load_private_key, self.key_dir)
        return self._loaded_key

    async def key(self) -> KeyInfo:
        """Our key (made on first use): ``public_key`` is the line to register with a provider."""
        return await ensure_key(self.key_dir)

    def session(self, host: RemoteHost) -> SSHSession:
        """A session to ``host``, not yet connected: ``async with connector.session(host) as ssh: ...``."""
        return SSHSession(self, host)

    async def forget_host_key(self, host: RemoteHost | str) -> bool:
        """Forget a pinned host key (instance terminated or deliberately replaced)."""
        return await self.host_keys.forget(host.identity if isinstance(host, RemoteHost) else host)

    async def open(self, host: RemoteHost) -> asyncssh.SSHClientConnection:
        """One authenticated connection with the host key checked (and pinned on first contact).

        Raises:
            HostKeyChangedError: the host's key differs from the pinned one.
            SSHConnectionError: unreachable, timed out, or our key was refused.
        """
        # start-up: asyncssh (+100 ms after the server's own imports) loads only when a host is contacted
        import asyncssh

        from ategnatos_mcp.remote._pinning import PinningClient, import_key

        client_key = await self._client_key()
        pin = await self.host_keys.get(host.identity)
        pinned_key = import_key(pin.key) if pin else None
        client = PinningClient(pinned_key)
        trusted = [pinned_key] if pinned_key else []

        def known_hosts(
            _host: str, _addr: str, _port: int | None
        ) -> tuple[list[asyncssh.SSHKey], list[str], list[str]]:
            # Never the user's ~/.ssh/known_hosts: our pins only, and none yet means first contact.
            return trusted, [], []

        try:
            with anyio.fail_after(self.connect_timeout + 5):
                conn = await asyncssh.connect(
                    host.host,
                    host.port,
                    username=host.username,
                    client_factory=lambda: client,
                    client_keys=[client_key],
                    known_hosts=known_hosts,
                    config=None,
                    agent_path=None,
                    password_auth=False,
                    kbdint_auth=False,
                    connect_timeout=self.connect_timeout,
                    login_timeout=self.connect_timeout,
                    keepalive_interval=self.keepalive_interval,
                    keepalive_count_max=self.keepalive_count_max,
                )
        except asyncssh.HostKeyNotVerifiable as exc:
            presented = client.refused.get_fingerprint() if client.refused else "another key"
            raise HostKeyChangedError(
                identity=host.identity, expected=pin.fingerprint if pin else "?", presented=presented
            ) from exc
        except asyncssh.KeyExchangeFailed as exc:
            if pin is None:
                raise _unreachable(host, exc) from exc
            # The pinned kind of key is no longer offered: the host was replaced or reconfigured.
            raise HostKeyChangedError(
                identity=host.identity, expected=pin.fingerprint, presented="a different kind of key"
            ) from exc
        except asyncssh.PermissionDenied as exc:
            raise SSHConnectionError(
                f"The GPU host {host.host}:{host.port} refused our SSH key (user '{host.username}').",
                hint="Register our public key with the provider before creating the instance (instances made "
                "before the key was registered don't have it), or check the user name for this provider.",
                retryable=False,
            ) from exc
        except (OSError, TimeoutError, asyncssh.Error) as exc:
            raise _unreachable(host, exc) from exc
        if pin is None:
            server_key = conn.get_server_host_key()
            if server_key is not None:
                try:
                    await self.host_keys.pin(
                        host.identity,
                        key=server_key.export_public_key("openssh").decode("ascii").strip(),
                        fingerprint=server_key.get_fingerprint(),
                        address=f"{host.host}:{host.port}",
                    )
                except BaseException:
                    # Another connection pinned a different key meanwhile (or we were cancelled): drop this one.
                    conn.abort()
                    raise
        return conn


def _unreachable(host: RemoteHost, exc: BaseException) -> SSHConnectionError:
    reason = str(exc) or exc.__class__.__name__
    return SSHConnectionError(
        f"Could not reach the GPU host at {host.host}:{host.port} over SSH ({reason}).",
        hint="A new instance can take several minutes before SSH answers: check it is running (gpu_instances) "
        "and try again; its address may also have changed after a restart.",
    )


class SSHSession:
    """One host, one live connection, reopened when it drops. Use as an async context manager."""

    def __init__(self, connector: SSHConnector, host: RemoteHost) -> None:
        self.connector = connector
        self.host = host
        self.reconnects = 0
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._lock = anyio.Lock()
        self._sftp_lock = anyio.Lock()
        self._sftp_conn: asyncssh.SSHClientConnection | None = None
        self._home: str | None = None
        self._ever_connected = False
        self._closed = False

    async def __aenter__(self) -> SSHSession:
        await self.connection()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        """True once ``close()`` ran: the session refuses further use."""
        return self._closed

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def connection(self) -> asyncssh.SSHClientConnection:
        """The live connection, reconnecting (with the configured delays) if it dropped."""
        async with self._lock:
            if self._closed:
                raise SSHConnectionError(
                    f"The SSH session to {self.host.identity} was closed.",
                    hint="Open a new session (connector.session(host)).",
                    retryable=False,
                )
            if self._conn is not None and not self._conn.is_closed():
                return self._conn
            had_connection = self._ever_connected
            self._conn = None
            self._sftp = None
            last: SSHConnectionError | None = None
            for delay in (0.0, *self.connector.reconnect_delays) if had_connection else (0.0,):
                if delay:
                    await anyio.sleep(delay)
                try:
                    self._conn = await self.connector.open(self.host)
                except SSHConnectionError as exc:
                    if not exc.retryable:
                        raise
                    last = exc
                    continue
                if had_connection:
                    self.reconnects += 1
                    logger.info("Reconnected to %s", self.host.identity)
                self._ever_connected = True
                return self._conn
            assert last is not None
            raise last

    async def reconnect(self) -> asyncssh.SSHClientConnection:
        """Drop the current connection (if any) and open a new one."""
        await self._drop()
        return await self.connection()

    async def _drop(self) -> None:
        conn, self._conn, self._sftp = self._conn, None, None
        if conn is not None:
            conn.abort()

    async def close(self) -> None:
        self._closed = True
        conn, self._conn, self._sftp = self._conn, None, None
        if conn is not None:
            conn.close()
            with anyio.move_on_after(5):
                await conn.wait_closed()

    async def sftp(self) -> asyncssh.SFTPClient:
        """An SFTP client on the live connection (reopened with it)."""
        conn = await self.connection()
        async with self._sftp_lock:
            # One SFTP channel per connection, even when several transfers ask at once.
            if self._sftp is None or self._sftp_conn is not conn:
                self._sftp = await conn.start_sftp_client()
                self._sftp_conn = conn
            return self._sftp

    async def home(self) -> str:
        """The remote user's home folder (absolute)."""
        if self._home is None:
            self._home = (await self.run('printf %s "$HOME"', timeout=30)).stdout
        return self._home

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
        check: bool = True,
        input: str | None = None,
    ) -> CommandResult:
        """Run ``command`` in the remote shell; stream its output to ``on_output`` as it arrives.

        Raises:
            RemoteCommandError: non-zero exit (when ``check``) or the command outlived ``timeout``.
            SSHConnectionError: the connection dropped before the command finished (its outcome is unknown).
        """
        import asyncssh

        conn = await self.connection()
        limit = timeout or self.connector.command_timeout
        out: dict[str, str] = {"stdout": "", "stderr": ""}

        lost: list[BaseException] = []
        failed: list[Exception] = []

        async def pump(stream: asyncssh.SSHReader[str], name: str, scope: anyio.CancelScope) -> None:
            # Failures are kept, not raised: a task group would wrap them in an ExceptionGroup.
            try:
                while chunk := await stream.read(65536):
                    out[name] = (out[name] + chunk)[-_OUTPUT_KEEP:]
                    if on_output is not None:
                        await on_output(name, chunk)
            except (OSError, asyncssh.Error) as exc:
                lost.append(exc)
            except Exception as exc:  # the caller's on_output failed: stop reading, re-raise it as is below
                failed.append(exc)
                scope.cancel()

        try:
            process = await conn.create_process(command, input=input, encoding="utf-8", errors="replace")
        except (OSError, asyncssh.Error) as exc:
            raise self._dropped(command, exc) from exc
        try:
            with anyio.fail_after(limit):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(pump, process.stdout, "stdout", tg.cancel_scope)
                    tg.start_soon(pump, process.stderr, "stderr", tg.cancel_scope)
                if failed:
                    process.close()
                    raise failed[0]
                if not lost:
                    await process.wait_closed()
        except TimeoutError as exc:
            with contextlib.suppress(OSError, asyncssh.Error):
                # Servers that honour the "signal" request stop the command; others drop it with the channel.
                process.send_signal("KILL")
            process.close()
            raise RemoteCommandError(
                f"The command on the GPU host took longer than {limit:.0f} s and was stopped: {_short(command)}",
                command=command,
                exit_status=None,
                stderr_tail=out["stderr"],
                hint="If it needs longer, run it as a detached process (start_detached) and check on it later.",
            ) from exc
        except (OSError, asyncssh.Error) as exc:
            raise self._dropped(command, exc) from exc
        if lost or (process.exit_status is None and process.exit_signal is None and conn.is_closed()):
            raise self._dropped(command, lost[0] if lost else None)
        status = process.exit_status
        result = CommandResult(command=command, exit_status=status, stdout=out["stdout"], stderr=out["stderr"])
        if check and status != 0:
            how = (
                f"was stopped by signal {process.exit_signal[0]}"
                if process.exit_signal
                else f"failed with exit status {status}"
            )
            tail = out["stderr"] or out["stdout"]
            last_line = next((line.strip() for line in reversed(tail.splitlines()) if line.strip()), "")
            said = f' It said: "{_short(last_line, 200)}"' if last_line else ""
            raise RemoteCommandError(
                f"A command on the GPU host {how}: {_short(command)}.{said}",
                command=command,
                exit_status=status,
                stderr_tail=tail,
                hint="Fix the cause the error output names (missing file, full disk, wrong path, no network), then "
                "run it again; setup steps that already finished are not repeated.",
            )
        return result

    def _dropped(self, command: str, exc: BaseException | None) -> SSHConnectionError:
        reason = f" ({exc})" if exc else ""
        return SSHConnectionError(
            f"The SSH connection to {self.host.identity} dropped while running: {_short(command)}{reason}.",
            hint="The command may or may not have finished on the host. Run it again if it is safe to repeat; "
            "long work should run as a detached process, which keeps going when the connection drops.",
        )


def _short(command: str, limit: int = 120) -> str:
    flat = " ".join(command.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
