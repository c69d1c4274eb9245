"""Resumable, verified file transfers over SFTP.

Uploads go to ``<name>.part`` and are renamed once complete; after a cut they resume from the size the
partial file reached. Every transfer ends with a sha256 comparison of both sides. Remote paths are
relative to the remote home unless absolute (a leading ``~/`` is accepted).
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

import anyio

from ategnatos_mcp.progress import Progress
from ategnatos_mcp.remote._sftp import (
    CHUNK,
    STALL_SECONDS,
    Meter,
    TransferError,
    remote_path,
    remote_sha256,
    send_file,
    sha256_file,
    with_resume,
)
from ategnatos_mcp.remote.models import TransferReport
from ategnatos_mcp.remote.session import SSHSession

__all__ = ["CHUNK", "TransferError", "download", "remote_sha256", "upload"]


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
    remote = remote_path(remote)
    try:
        stat = await anyio.to_thread.run_sync(local.stat)
        digest = await anyio.to_thread.run_sync(sha256_file, local)
    except OSError as exc:
        raise TransferError(
            f"{local} cannot be read on this computer ({exc.strerror or exc}).",
            hint="Check the file exists and is readable, then try again.",
        ) from exc
    report = TransferReport(local_path=local, remote_path=remote, size=stat.st_size, sha256=digest, bytes_sent=0)
    if (await remote_sha256(session, [remote])).get(remote) == digest:
        report.skipped = True
    else:
        meter = Meter(progress, stat.st_size, f"uploading {local.name}")
        for fresh_start in (False, True):
            sent, resumed = await send_file(session, local, remote, stat.st_size, meter, max_resumes, chunk_size)
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
    remote = remote_path(remote)
    digest = (await remote_sha256(session, [remote])).get(remote)
    if digest is None:
        raise TransferError(
            f"There is no file '{remote}' on the GPU host.", hint="Check the path (it is relative to the home folder)."
        )
    sftp = await session.sftp()
    attrs = await sftp.stat(remote)
    size = attrs.size or 0
    report = TransferReport(local_path=local, remote_path=remote, size=size, sha256=digest, bytes_sent=0)
    if await anyio.Path(local).is_file() and await anyio.to_thread.run_sync(sha256_file, local) == digest:
        report.skipped = True
        return report
    part = local.with_name(local.name + ".part")
    meter = Meter(progress, size, f"downloading {posixpath.basename(remote)}")
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
                with anyio.fail_after(STALL_SECONDS):
                    chunk: bytes = await source.read(chunk_size, offset)
                if not chunk:
                    break
                await sink.write(chunk)
                offset += len(chunk)
                report.bytes_sent += len(chunk)
                await meter.add(len(chunk))

    for fresh_start in (False, True):
        await with_resume(session, attempt, f"Fetching {remote}", max_resumes)
        if await anyio.to_thread.run_sync(sha256_file, part) == digest:
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
