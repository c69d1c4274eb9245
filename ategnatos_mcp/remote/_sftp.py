"""What uploads, downloads and folder sync share: the resumable send, checksums, progress, error rules."""

from __future__ import annotations

import hashlib
import posixpath
import shlex
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from ategnatos_mcp.errors import InvalidRequestError, UpstreamError
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.remote.session import SSHConnectionError, SSHSession

__all__ = [
    "CHUNK",
    "STALL_SECONDS",
    "Meter",
    "TransferError",
    "after_failure",
    "recover",
    "remote_path",
    "remote_sha256",
    "resumable",
    "send_file",
    "sha256_file",
    "with_resume",
]

CHUNK = 4 * 1024 * 1024  # asyncssh splits one write/read into parallel SFTP requests: latency-tolerant
_PROGRESS_EVERY = 4 * 1024 * 1024
STALL_SECONDS = 60.0


class TransferError(UpstreamError):
    """A transfer could not complete or did not verify."""

    def __init__(self, message: str, *, hint: str) -> None:
        super().__init__(message, service="ssh", hint=hint)


def remote_path(path: str) -> str:
    if path.startswith("~/"):
        path = path[2:]
    if not path or path in {"~", "."} or "\x00" in path or "\n" in path:
        raise InvalidRequestError(f"'{path}' is not a usable remote file path.", hint="Name a file, e.g. 'models/x'.")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


async def remote_sha256(session: SSHSession, paths: list[str]) -> dict[str, str]:
    """sha256 of remote files in one command; missing files are absent from the answer."""
    if not paths:
        return {}
    quoted = " ".join(shlex.quote(p) for p in paths)
    command = (
        f"if command -v sha256sum >/dev/null 2>&1; then sha256sum -- {quoted}; else shasum -a 256 {quoted}; fi"
        " 2>/dev/null; true"
    )
    result = await session.run(command, timeout=600)
    found: dict[str, str] = {}
    for line in result.stdout.splitlines():
        digest, _, name = line.partition("  ")
        if len(digest) == 64:
            found[name.lstrip("*")] = digest
    return found


def resumable(exc: BaseException) -> bool:
    import asyncssh

    if isinstance(exc, asyncssh.SFTPError):
        return isinstance(exc, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection)
    if isinstance(exc, SSHConnectionError):
        return exc.retryable
    return isinstance(exc, ConnectionError | TimeoutError | asyncssh.DisconnectError)


class Meter:
    """Throttled progress over the bytes of one or many files."""

    def __init__(self, progress: Progress | None, total: int, label: str) -> None:
        self.progress, self.total, self.label = progress, total, label
        self.done = 0
        self._last = 0

    async def add(self, count: int, *, force: bool = False) -> None:
        self.done = min(self.done + count, self.total)
        if self.progress is not None and (force or self.done - self._last >= _PROGRESS_EVERY):
            self._last = self.done
            await self.progress(float(self.done), float(self.total), self.label)


def after_failure(exc: BaseException, describe: str, cuts: int, max_resumes: int) -> None:
    """Raise the error to show for ``exc`` unless a reconnect-and-resume may cure it (cut or stall)."""
    import asyncssh

    if isinstance(exc, SSHConnectionError) and not exc.retryable:
        raise exc
    if not resumable(exc):
        local_side = isinstance(exc, OSError) and not isinstance(exc, asyncssh.Error)
        raise TransferError(
            f"{describe} failed: {exc}.",
            hint="Check the file on this computer still exists and is readable, then try again."
            if local_side
            else "Check the GPU host has free disk space (df -h) and the path is writable, then try again.",
        ) from exc
    if cuts > max_resumes:
        raise TransferError(
            f"{describe} was interrupted {cuts} times; the connection is too unstable.",
            hint="Try again later: what arrived is kept and the next attempt continues from there.",
        ) from exc


async def recover(exc: BaseException, session: SSHSession) -> None:
    """Get a working connection after ``exc``: a stall needs a fresh one; after a cut, whichever is live now."""
    if isinstance(exc, TimeoutError):
        await session.reconnect()
    else:
        # Another transfer on this session may already have reconnected: don't drop its new connection.
        await session.connection()


async def with_resume(
    session: SSHSession, attempt: Callable[[], Awaitable[None]], describe: str, max_resumes: int
) -> None:
    """Run ``attempt`` until it completes; after a cut or stall, reconnect and call it again (it resumes)."""
    import asyncssh

    cuts = 0
    while True:
        try:
            await attempt()
            return
        except (OSError, TimeoutError, asyncssh.Error, SSHConnectionError) as exc:
            cuts += 1
            after_failure(exc, describe, cuts, max_resumes)
            await recover(exc, session)


async def send_file(
    session: SSHSession, local: Path, remote: str, size: int, meter: Meter, max_resumes: int, chunk_size: int = CHUNK
) -> tuple[int, list[int]]:
    """Copy ``local`` to ``remote`` via ``remote.part``, resuming after cuts; returns (bytes sent, resume offsets)."""
    import asyncssh

    part = remote + ".part"
    file_start = meter.done
    sent = 0
    resumed: list[int] = []
    first = True

    async def attempt() -> None:
        nonlocal sent, first
        sftp = await session.sftp()
        parent = posixpath.dirname(remote)
        if parent:
            await sftp.makedirs(parent, exist_ok=True)
        try:
            offset = (await sftp.stat(part)).size or 0
        except asyncssh.SFTPNoSuchFile:
            offset = 0
        if offset > size:
            offset = 0
        if not first or offset:
            resumed.append(offset)
        first = False
        meter.done = file_start + offset
        async with await sftp.open(part, "r+b" if offset else "wb") as remote_file:
            async with await anyio.open_file(local, "rb") as local_file:
                await local_file.seek(offset)
                while chunk := await local_file.read(chunk_size):
                    with anyio.fail_after(STALL_SECONDS):
                        await remote_file.write(chunk, offset)
                    offset += len(chunk)
                    sent += len(chunk)
                    await meter.add(len(chunk))
        try:
            await sftp.posix_rename(part, remote)
        except asyncssh.SFTPOpUnsupported:
            if await sftp.exists(remote):
                await sftp.remove(remote)
            await sftp.rename(part, remote)

    await with_resume(session, attempt, f"Sending {local.name}", max_resumes)
    return sent, resumed
