"""Where ComfyUI reads LoRA files from (its ``models/loras``), and putting the run's saves there.

A shelf is this machine's folder (a local ComfyUI) or a folder on a rented instance (its ComfyUI, reached over
SSH). Every file lands under ``ategnatos/<run>/`` there, so the artist's own LoRAs are never touched, and is
checked by sha256 against the save it came from: an identical copy is left alone, a file is never half-written
(a temp file renamed once complete), and nothing is sent twice.
"""

from __future__ import annotations

import hashlib
import posixpath
import shlex
from pathlib import Path
from typing import Protocol

import anyio.to_thread

from ategnatos_mcp.errors import RemoteCommandError
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.remote import SSHSession, upload
from ategnatos_mcp.remote.transfer import remote_sha256
from ategnatos_mcp.state.atomic import copy_file_atomic, remove_leftover_temp_files
from ategnatos_mcp.training.execution.hosts import TrainingHost

__all__ = ["LocalShelf", "LoraShelf", "RemoteShelf", "file_sha256", "host_sha256"]

_SHA = "if command -v sha256sum >/dev/null 2>&1; then sha256sum -- {path}; else shasum -a 256 {path}; fi 2>/dev/null"


class LoraShelf(Protocol):
    """ComfyUI's LoRA folder, wherever it is."""

    where: str
    """In plain words, e.g. '/home/me/ComfyUI/models/loras' or 'models/loras of the ComfyUI on runpod:abc'."""

    def shares_disk_with(self, host_identity: str) -> bool:
        """Whether the training host ``host_identity`` is the machine this folder is on (no transfer needed)."""
        ...

    async def holds(self, name: str, sha256: str) -> bool:
        """Whether ``name`` is already there with exactly this content."""
        ...

    async def put_file(self, local: Path, name: str, progress: Progress | None) -> None:
        """Copy a file of this machine there as ``name``."""
        ...

    async def copy_within(self, source: str, name: str) -> None:
        """Copy ``source`` (a path on the same machine as the shelf) there as ``name``."""
        ...


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


async def host_sha256(host: TrainingHost, path: str) -> str | None:
    """sha256 of a file on the training host (None when it is not there)."""
    done = await host.run(_SHA.format(path=shlex.quote(path)), timeout=600)
    digest = done.stdout.split(" ", 1)[0].strip()
    return digest if len(digest) == 64 else None


def _copy(source: Path, target: Path) -> None:
    if target.parent.is_dir():
        remove_leftover_temp_files(target.parent, recursive=False)  # a copy into this folder a kill cut short
    copy_file_atomic(source, target)


class LocalShelf:
    """The ``models/loras`` folder of a ComfyUI on this machine."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.where = str(folder)

    def shares_disk_with(self, host_identity: str) -> bool:
        return host_identity == "local"

    def _path(self, name: str) -> Path:
        return self.folder.joinpath(*name.split("/"))

    async def holds(self, name: str, sha256: str) -> bool:
        path = self._path(name)
        return path.is_file() and await anyio.to_thread.run_sync(file_sha256, path) == sha256

    async def put_file(self, local: Path, name: str, progress: Progress | None) -> None:
        await anyio.to_thread.run_sync(_copy, local, self._path(name))

    async def copy_within(self, source: str, name: str) -> None:
        await anyio.to_thread.run_sync(_copy, Path(source), self._path(name))


class RemoteShelf:
    """The ``models/loras`` folder of the ComfyUI on a rented instance, over the SSH session that deployed it."""

    def __init__(self, session: SSHSession, folder: str, *, label: str, identities: set[str]) -> None:
        self.session = session
        self.folder = folder.rstrip("/")
        self.identities = identities
        self.where = f"models/loras of the ComfyUI on {label}"

    def shares_disk_with(self, host_identity: str) -> bool:
        return host_identity in self.identities

    def _path(self, name: str) -> str:
        return f"{self.folder}/{name}"

    async def holds(self, name: str, sha256: str) -> bool:
        path = self._path(name)
        return (await remote_sha256(self.session, [path])).get(path) == sha256

    async def put_file(self, local: Path, name: str, progress: Progress | None) -> None:
        path = self._path(name)
        await self.session.run(f"mkdir -p {shlex.quote(posixpath.dirname(path))}", timeout=60)
        await upload(self.session, local, path, progress)  # resumable, sha256-verified

    async def copy_within(self, source: str, name: str) -> None:
        path = shlex.quote(self._path(name))
        folder = shlex.quote(posixpath.dirname(self._path(name)))
        command = f"mkdir -p {folder} && cp -- {shlex.quote(source)} {path}.part && mv -- {path}.part {path}"
        try:
            await self.session.run(command, timeout=1800)
        except RemoteCommandError as exc:
            raise RemoteCommandError(
                f"Copying {posixpath.basename(source)} into ComfyUI's LoRA folder on the instance failed: "
                f"{exc.stderr_tail.strip()[-200:] or exc.message}",
                command=command,
                exit_status=exc.exit_status,
                stderr_tail=exc.stderr_tail,
                hint="Check the instance's free disk (train_validate_environment shows it), then evaluate again.",
            ) from exc
