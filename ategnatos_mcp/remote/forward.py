"""A local port forward to a service on the GPU host (ComfyUI), bound to 127.0.0.1 only.

ComfyUI's API has no authentication, so the forward never listens on another interface.
Registering the returned URL with the ComfyUI pool is the caller's job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.remote.session import SSHConnectionError, SSHSession

if TYPE_CHECKING:
    import asyncssh

__all__ = ["LOOPBACK", "PortForward", "forward_port"]

LOOPBACK = "127.0.0.1"


@dataclass
class PortForward:
    """An open forward: ``url`` reaches ``remote_host:remote_port`` on the GPU host. Close it when done."""

    local_port: int
    remote_host: str
    remote_port: int
    session: SSHSession
    _listener: asyncssh.SSHListener | None = field(default=None, repr=False)
    _conn: asyncssh.SSHClientConnection | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.local_port}"

    @property
    def open(self) -> bool:
        return self._listener is not None and self._conn is not None and not self._conn.is_closed()

    async def reopen(self) -> None:
        """Re-establish the forward on the same local port after the connection dropped (URL unchanged)."""
        await self.close()
        self._conn = await self.session.connection()
        self._listener = await _listen(self._conn, self.local_port, self.remote_host, self.remote_port)

    async def keep_open(
        self,
        *,
        retry_seconds: float = 30.0,
        on_reopen: Callable[[PortForward], Awaitable[None]] | None = None,
    ) -> None:
        """Reopen the forward whenever the SSH connection drops, until cancelled or the session is closed.

        Start it in a task group; ``on_reopen`` hears about each reopening (e.g. to tell the ComfyUI pool).

        Raises:
            SSHConnectionError: the host refused our key (retrying cannot help).
        """
        while not self.session.closed:
            try:
                if not self.open:
                    await self.reopen()
                    if on_reopen is not None:
                        await on_reopen(self)
                assert self._conn is not None
                await self._conn.wait_closed()
            except SSHConnectionError as exc:
                if self.session.closed:
                    return
                if not exc.retryable:
                    raise
                await anyio.sleep(retry_seconds)

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
            with anyio.move_on_after(5):
                await listener.wait_closed()


async def forward_port(
    session: SSHSession, remote_port: int = 8188, *, remote_host: str = LOOPBACK, local_port: int = 0
) -> PortForward:
    """Forward ``127.0.0.1:<local_port>`` (0 = any free port) to ``remote_host:remote_port`` as seen by the host.

    Raises:
        SSHConnectionError: the local port is taken or the host refused to forward.
    """
    if not 1 <= remote_port <= 65535 or not 0 <= local_port <= 65535:
        raise InvalidRequestError(f"Port {remote_port}/{local_port} is not a valid port.", hint="Use 1-65535.")
    conn = await session.connection()
    listener = await _listen(conn, local_port, remote_host, remote_port)
    return PortForward(
        local_port=listener.get_port(),
        remote_host=remote_host,
        remote_port=remote_port,
        session=session,
        _listener=listener,
        _conn=conn,
    )


async def _listen(
    conn: asyncssh.SSHClientConnection, local_port: int, remote_host: str, remote_port: int
) -> asyncssh.SSHListener:
    import asyncssh

    try:
        return await conn.forward_local_port(LOOPBACK, local_port, remote_host, remote_port)
    except (OSError, asyncssh.Error) as exc:
        raise SSHConnectionError(
            f"Could not open a tunnel from 127.0.0.1:{local_port or 'any'} to port {remote_port} on the GPU host "
            f"({exc}).",
            hint="Another program may be using that local port: try local_port=0 to pick a free one.",
        ) from exc
