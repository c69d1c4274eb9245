"""Resumable, verified file transfers over SFTP, and folder sync that sends only what changed.

Uploads go to ``<name>.part`` and are renamed once complete; after a cut they resume from the size the
partial file reached. Every transfer ends with a sha256 comparison of both sides. Remote paths are
relative to the remote home unless absolute (a leading ``~/`` is accepted).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shlex
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ategnatos_mcp.errors import InvalidRequestError, UpstreamError
from ategnatos_mcp.remote.models import Progress, SyncReport, TransferReport
from ategnatos_mcp.remote.session import SSHConnectionError, SSHSession

if TYPE_CHECKING:
    import asyncssh

__all__ = ["TransferError", "download", "remote_sha256", "sync_folder", "upload"]

CHUNK = 4 * 1024 * 1024  # asyncssh splits one write/read into parallel SFTP requests: latency-tolerant
_PROGRESS_EVERY = 4 * 1024 * 1024
_STALL_SECONDS = 60.0


class TransferError(UpstreamError):
    """A transfer could not complete or did not verify."""

    def __init__(self, message: str, *, hint: str) -> None:
        super().__init__(message, service="ssh", hint=hint)


def _remote(path: str) -> str:
    if path.startswith("~/"):
        path = path[2:]
    if not path or path in {"~", "."} or "\x00" in path or "\n" in path:
        raise InvalidRequestError(f"'{path}' is not a usable remote file path.", hint="Name a file, e.g. 'models/x'.")
    return path


def _sha256_sync(path: Path) -> str:
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


def _resumable(exc: BaseException) -> bool:
    import asyncssh

    if isinstance(exc, asyncssh.SFTPError):
        return isinstance(exc, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection)
    if isinstance(exc, SSHConnectionError):
        return exc.retryable
    return isinstance(exc, ConnectionError | TimeoutError | asyncssh.DisconnectError)


class _Meter:
    """Throttled progress over the bytes of one or many files."""

    def __init__(self, progress: Progress | None, total: int, label: str) -> None:
        self.progress, self.total, self.label = progress, total, label
        self.done = 0
        self._last = 0

    async def add(self, count: int, *, force: bool = False) -> None:
        self.done += count
        if self.progress is not None and (force or self.done - self._last >= _PROGRESS_EVERY):
            self._last = self.done
            await self.progress(float(self.done), float(self.total), self.label)


async def _with_resume(
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
            if isinstance(exc, SSHConnectionError) and not exc.retryable:
                raise
            if not _resumable(exc):
                local_side = isinstance(exc, OSError) and not isinstance(exc, asyncssh.Error)
                raise TransferError(
                    f"{describe} failed: {exc}.",
                    hint="Check the file on this computer still exists and is readable, then try again."
                    if local_side
                    else "Check the GPU host has free disk space (df -h) and the path is writable, then try again.",
                ) from exc
            cuts += 1
            if cuts > max_resumes:
                raise TransferError(
                    f"{describe} was interrupted {cuts} times; the connection is too unstable.",
                    hint="Try again later: the partial file is kept and the next attempt resumes from it.",
                ) from exc
            await session.reconnect()


async def _send(
    session: SSHSession, local: Path, remote: str, size: int, meter: _Meter, max_resumes: int, chunk_size: int = CHUNK
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
                    with anyio.fail_after(_STALL_SECONDS):
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

    await _with_resume(session, attempt, f"Sending {local.name}", max_resumes)
    return sent, resumed


async def upload(
    session: SSHSession,
    local: Path,
    remote: str,
    progress: Progress | None = None,
    *,
    max_resumes: int = 5,
    chunk_size: int = CHUNK,
) -> TransferReport:
    """Upload one file, resuming after cuts, verified by sha256. A destination already identical is skipped.

    Raises:
        TransferError: too many cuts, a remote error (disk full, permission), or a checksum that never matches.
    """
    remote = _remote(remote)
    try:
        stat = await anyio.to_thread.run_sync(local.stat)
        digest = await anyio.to_thread.run_sync(_sha256_sync, local)
    except OSError as exc:
        raise TransferError(
            f"{local} cannot be read on this computer ({exc.strerror or exc}).",
            hint="Check the file exists and is readable, then try again.",
        ) from exc
    report = TransferReport(local_path=local, remote_path=remote, size=stat.st_size, sha256=digest, bytes_sent=0)
    if (await remote_sha256(session, [remote])).get(remote) == digest:
        report.skipped = True
    else:
        meter = _Meter(progress, stat.st_size, f"uploading {local.name}")
        for fresh_start in (False, True):
            sent, resumed = await _send(session, local, remote, stat.st_size, meter, max_resumes, chunk_size)
            report.bytes_sent += sent
            report.resumed_from += resumed
            if (await remote_sha256(session, [remote])).get(remote) == digest:
                break
            # A partial file from an older version of the file: start over once from zero.
            await (await session.sftp()).remove(remote)
            meter.done = 0
            if fresh_start:
                raise TransferError(
                    f"{local.name} arrived on the GPU host with a different checksum twice.",
                    hint="The file may be changing while it is sent, or the host's disk is failing: try again.",
                )
        await meter.add(0, force=True)
    await (await session.sftp()).utime(remote, (stat.st_atime, stat.st_mtime))
    return report


async def download(
    session: SSHSession,
    remote: str,
    local: Path,
    progress: Progress | None = None,
    *,
    max_resumes: int = 5,
    chunk_size: int = CHUNK,
) -> TransferReport:
    """Download one file into ``local`` (via ``local.part``), resuming after cuts, verified by sha256.

    Raises:
        TransferError: the remote file is missing, too many cuts, or the checksum does not match.
    """
    remote = _remote(remote)
    digest = (await remote_sha256(session, [remote])).get(remote)
    if digest is None:
        raise TransferError(
            f"There is no file '{remote}' on the GPU host.", hint="Check the path (it is relative to the home folder)."
        )
    sftp = await session.sftp()
    attrs = await sftp.stat(remote)
    size = attrs.size or 0
    report = TransferReport(local_path=local, remote_path=remote, size=size, sha256=digest, bytes_sent=0)
    if await anyio.Path(local).is_file() and await anyio.to_thread.run_sync(_sha256_sync, local) == digest:
        report.skipped = True
        return report
    part = local.with_name(local.name + ".part")
    meter = _Meter(progress, size, f"downloading {posixpath.basename(remote)}")
    first = True

    async def attempt() -> None:
        nonlocal first
        await anyio.Path(local.parent).mkdir(parents=True, exist_ok=True)
        offset = (await anyio.Path(part).stat()).st_size if await anyio.Path(part).exists() else 0
        if offset > size:
            offset = 0
        if not first or offset:
            report.resumed_from.append(offset)
        first = False
        meter.done = offset
        source = await (await session.sftp()).open(remote, "rb")
        async with source, await anyio.open_file(part, "r+b" if offset else "wb") as sink:
            await sink.seek(offset)
            while True:
                with anyio.fail_after(_STALL_SECONDS):
                    chunk: bytes = await source.read(chunk_size, offset)
                if not chunk:
                    break
                await sink.write(chunk)
                offset += len(chunk)
                report.bytes_sent += len(chunk)
                await meter.add(len(chunk))

    for fresh_start in (False, True):
        await _with_resume(session, attempt, f"Fetching {remote}", max_resumes)
        if await anyio.to_thread.run_sync(_sha256_sync, part) == digest:
            break
        # A leftover partial file from another version of the file: start over once from zero.
        await anyio.Path(part).unlink()
        first = True
        if fresh_start:
            raise TransferError(
                f"{remote} arrived with a different checksum than on the GPU host, twice.",
                hint="If the file is still being written on the host, wait until it is finished and download again.",
            )
    await anyio.Path(part).rename(local)
    if attrs.mtime is not None:
        await anyio.to_thread.run_sync(os.utime, local, (attrs.atime or attrs.mtime, attrs.mtime))
    await meter.add(0, force=True)
    return report


def _local_listing(folder: Path) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            path = Path(root) / name
            if name.startswith(".") or name.endswith(".part") or path.is_symlink():
                continue
            stat = path.stat()
            found[path.relative_to(folder).as_posix()] = (stat.st_size, int(stat.st_mtime))
    return found


async def _remote_listing(sftp: asyncssh.SFTPClient, folder: str) -> dict[str, tuple[int, int]]:
    import asyncssh
    from asyncssh.constants import FILEXFER_TYPE_DIRECTORY, FILEXFER_TYPE_REGULAR

    found: dict[str, tuple[int, int]] = {}
    pending = [""]
    while pending:
        sub = pending.pop()
        try:
            entries = [entry async for entry in sftp.scandir(posixpath.join(folder, sub) if sub else folder)]
        except asyncssh.SFTPNoSuchFile:
            continue
        for entry in entries:
            name = entry.filename if isinstance(entry.filename, str) else entry.filename.decode()
            if name in {".", ".."}:
                continue
            rel = posixpath.join(sub, name) if sub else name
            if entry.attrs.type == FILEXFER_TYPE_DIRECTORY:
                pending.append(rel)
            elif entry.attrs.type == FILEXFER_TYPE_REGULAR:
                found[rel] = (entry.attrs.size or 0, int(entry.attrs.mtime or 0))
    return found


async def sync_folder(
    session: SSHSession,
    local_dir: Path,
    remote_dir: str,
    progress: Progress | None = None,
    *,
    delete_extra: bool = False,
    max_resumes: int = 5,
) -> SyncReport:
    """Make ``remote_dir`` hold the files of ``local_dir``, sending only new or changed ones (size + mtime).

    Sent files are verified by sha256 in one batch at the end. Hidden files and ``*.part`` are ignored;
    ``delete_extra`` removes remote files that are not in the local folder.

    Raises:
        TransferError: a file could not be sent or did not verify.
    """
    remote_dir = _remote(remote_dir).rstrip("/")
    local = await anyio.to_thread.run_sync(_local_listing, local_dir)
    sftp = await session.sftp()
    remote = await _remote_listing(sftp, remote_dir)
    changed = sorted(rel for rel, meta in local.items() if remote.get(rel) != meta)
    report = SyncReport(local_dir=local_dir, remote_dir=remote_dir, unchanged=len(local) - len(changed))
    meter = _Meter(progress, sum(local[rel][0] for rel in changed), f"syncing {local_dir.name}")
    for rel in changed:
        target = f"{remote_dir}/{rel}"
        sent, _ = await _send(session, local_dir / rel, target, local[rel][0], meter, max_resumes)
        report.bytes_sent += sent
        report.sent.append(rel)
    await _verify_and_stamp(session, local_dir, remote_dir, report.sent)
    if delete_extra:
        for rel in sorted(set(remote) - set(local)):
            await (await session.sftp()).remove(f"{remote_dir}/{rel}")
            report.deleted.append(rel)
    await meter.add(0, force=True)
    return report


async def _verify_and_stamp(session: SSHSession, local_dir: Path, remote_dir: str, sent: list[str]) -> None:
    if not sent:
        return
    targets = [f"{remote_dir}/{rel}" for rel in sent]
    remote_digests = await remote_sha256(session, targets)
    sftp = await session.sftp()
    for rel, target in zip(sent, targets, strict=True):
        path = local_dir / rel
        if remote_digests.get(target) != await anyio.to_thread.run_sync(_sha256_sync, path):
            await sftp.remove(target)
            raise TransferError(
                f"{rel} arrived on the GPU host with a different checksum; it was removed there.",
                hint="Run the sync again; only the files still missing or different will be sent.",
            )
        stat = await anyio.to_thread.run_sync(path.stat)
        # The remote copy takes the local mtime, so the next sync sees it as unchanged.
        await sftp.utime(target, (stat.st_atime, stat.st_mtime))
