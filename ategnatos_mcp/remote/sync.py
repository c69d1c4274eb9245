"""Folder sync: make a remote folder hold a local folder's files, sending only new or changed ones.

"Changed" is size + modification time: after sending, the remote copy takes the local mtime. Small files go
several at a time (latency, not bandwidth, is what a dataset of captions and images costs); big ones go one by
one through the resumable path. Everything sent is verified by sha256 in one batch at the end.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ategnatos_mcp.progress import Progress
from ategnatos_mcp.remote._sftp import (
    Meter,
    TransferError,
    after_failure,
    recover,
    remote_path,
    remote_sha256,
    send_file,
    sha256_file,
)
from ategnatos_mcp.remote.models import SyncReport
from ategnatos_mcp.remote.session import SSHConnectionError, SSHSession

if TYPE_CHECKING:
    import asyncssh

__all__ = ["PARALLEL_FILES", "SMALL_FILE_BYTES", "sync_folder"]

SMALL_FILE_BYTES = 8 * 1024 * 1024
PARALLEL_FILES = 8


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


async def _run_bounded(
    session: SSHSession, jobs: dict[str, Callable[[], Awaitable[None]]], describe: str, max_resumes: int
) -> None:
    """Run ``jobs`` a few at a time; after a cut, reconnect and run those not finished yet."""
    import asyncssh

    pending = dict(jobs)
    cuts = 0
    limiter = anyio.CapacityLimiter(PARALLEL_FILES)
    while pending:
        failures: list[BaseException] = []

        async def run(key: str, job: Callable[[], Awaitable[None]], failures: list[BaseException]) -> None:
            # Failures are collected, not raised: a task group would wrap them in an ExceptionGroup. The other
            # jobs are not cancelled: asyncssh's own sub-requests would be orphaned; after a cut they fail fast.
            async with limiter:
                if failures:
                    return
                try:
                    await job()
                except (OSError, TimeoutError, asyncssh.Error, SSHConnectionError) as exc:
                    failures.append(exc)
                else:
                    pending.pop(key, None)

        async with anyio.create_task_group() as tg:
            for key, job in list(pending.items()):
                tg.start_soon(run, key, job, failures)
        if failures:
            cuts += 1
            after_failure(failures[0], describe, cuts, max_resumes)
            await recover(failures[0], session)


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

    Hidden files and ``*.part`` are ignored; ``delete_extra`` removes remote files that are not local.

    Raises:
        TransferError: a file could not be sent or did not verify (the next sync sends it again).
    """
    remote_dir = remote_path(remote_dir).rstrip("/")
    local = await anyio.to_thread.run_sync(_local_listing, local_dir)
    remote = await _remote_listing(await session.sftp(), remote_dir)
    changed = sorted(rel for rel, meta in local.items() if remote.get(rel) != meta)
    # Same size, other time: a copy an earlier sync sent but was cut off before stamping (or a file only touched).
    # Same checksum on both sides: stamp it instead of sending it again.
    same_size = [rel for rel in changed if rel in remote and remote[rel][0] == local[rel][0]]
    if same_size:
        already = await _identical(session, local_dir, remote_dir, same_size)
        await _stamp(session, local_dir, remote_dir, already, max_resumes)
        changed = [rel for rel in changed if rel not in set(already)]
    report = SyncReport(local_dir=local_dir, remote_dir=remote_dir, unchanged=len(local) - len(changed))
    meter = Meter(progress, sum(local[rel][0] for rel in changed), f"syncing {local_dir.name}")
    if changed:
        folders = sorted({posixpath.dirname(f"{remote_dir}/{rel}") for rel in changed})
        await session.run("mkdir -p -- " + " ".join(shlex.quote(folder) for folder in folders), timeout=60)

    small = [rel for rel in changed if local[rel][0] <= SMALL_FILE_BYTES]
    sent_bytes: dict[str, int] = {}

    def put(rel: str) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            # Small files are written in place: a cut leaves a short file, which the size check resends.
            data = await anyio.Path(local_dir / rel).read_bytes()
            sftp = await session.sftp()
            async with await sftp.open(f"{remote_dir}/{rel}", "wb") as remote_file:
                await remote_file.write(data, 0)
            sent_bytes[rel] = sent_bytes.get(rel, 0) + len(data)
            await meter.add(len(data))

        return job

    await _run_bounded(session, {rel: put(rel) for rel in small}, f"Syncing {local_dir.name}", max_resumes)
    for rel in changed:
        if rel not in sent_bytes:
            sent, _ = await send_file(
                session, local_dir / rel, f"{remote_dir}/{rel}", local[rel][0], meter, max_resumes
            )
            sent_bytes[rel] = sent
    report.sent = changed
    report.bytes_sent = sum(sent_bytes.values())
    await _verify_and_stamp(session, local_dir, remote_dir, changed, max_resumes)
    if delete_extra:
        extra = sorted(set(remote) - set(local))
        if extra:
            quoted = " ".join(shlex.quote(f"{remote_dir}/{rel}") for rel in extra)
            await session.run(f"rm -f -- {quoted}", timeout=120)
        report.deleted = extra
    await meter.add(0, force=True)
    return report


def _local_digests(local_dir: Path, names: list[str]) -> dict[str, tuple[str, float, float]]:
    found: dict[str, tuple[str, float, float]] = {}
    for rel in names:
        stat = (local_dir / rel).stat()
        found[rel] = (sha256_file(local_dir / rel), stat.st_atime, stat.st_mtime)
    return found


async def _verify_and_stamp(
    session: SSHSession, local_dir: Path, remote_dir: str, sent: list[str], max_resumes: int
) -> None:
    if not sent:
        return
    targets = {rel: f"{remote_dir}/{rel}" for rel in sent}
    remote_digests = await remote_sha256(session, list(targets.values()))
    local = await anyio.to_thread.run_sync(_local_digests, local_dir, sent)
    bad = [rel for rel in sent if remote_digests.get(targets[rel]) != local[rel][0]]
    if bad:
        await session.run("rm -f -- " + " ".join(shlex.quote(targets[rel]) for rel in bad), timeout=120)
        raise TransferError(
            f"{len(bad)} file(s) arrived on the GPU host with a different checksum ({', '.join(bad[:5])}); "
            "they were removed there.",
            hint="Run the sync again; only the files still missing or different will be sent.",
        )

    await _stamp(session, local_dir, remote_dir, sent, max_resumes, local)


async def _identical(session: SSHSession, local_dir: Path, remote_dir: str, names: list[str]) -> list[str]:
    """Those of ``names`` whose remote copy has the local file's sha256."""
    targets = {rel: f"{remote_dir}/{rel}" for rel in names}
    remote_digests = await remote_sha256(session, list(targets.values()))
    local = await anyio.to_thread.run_sync(_local_digests, local_dir, names)
    return [rel for rel in names if remote_digests.get(targets[rel]) == local[rel][0]]


async def _stamp(
    session: SSHSession,
    local_dir: Path,
    remote_dir: str,
    names: list[str],
    max_resumes: int,
    local: dict[str, tuple[str, float, float]] | None = None,
) -> None:
    """Give the remote copies the local files' times, so the next sync sees them as unchanged."""
    if not names:
        return
    times = local if local is not None else await anyio.to_thread.run_sync(_local_times, local_dir, names)

    def stamp(rel: str) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            await (await session.sftp()).utime(f"{remote_dir}/{rel}", (times[rel][1], times[rel][2]))

        return job

    await _run_bounded(session, {rel: stamp(rel) for rel in names}, "Recording file times", max_resumes)


def _local_times(local_dir: Path, names: list[str]) -> dict[str, tuple[str, float, float]]:
    found: dict[str, tuple[str, float, float]] = {}
    for rel in names:
        stat = (local_dir / rel).stat()
        found[rel] = ("", stat.st_atime, stat.st_mtime)
    return found
