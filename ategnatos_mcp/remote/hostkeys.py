"""Trust on first use: a host's key is pinned the first time we reach it and refused if it ever changes.

The pins live beside our SSH key (``known_hosts.json``), outside the grimoire, keyed by the host's stable
identity (``RemoteHost.identity``, e.g. the provider's instance id), because cloud ports and IPs change.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path

import anyio
from pydantic import BaseModel, ConfigDict, ValidationError

from ategnatos_mcp.errors import UpstreamError
from ategnatos_mcp.state import write_text_atomic

__all__ = ["HOST_KEYS_FILE_NAME", "HostKeyChangedError", "HostKeyStore", "PinnedKey"]

HOST_KEYS_FILE_NAME = "known_hosts.json"


class PinnedKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    fingerprint: str
    address: str
    pinned_at: datetime


class HostKeyChangedError(UpstreamError):
    """The host showed a different key than the pinned one. Nothing was sent to it."""

    def __init__(self, *, identity: str, expected: str, presented: str) -> None:
        super().__init__(
            f"The GPU host '{identity}' answered with a different identity key than the first time we connected "
            f"(expected {expected}, got {presented}). Either the instance was replaced or reinstalled, or someone "
            "is intercepting the connection. We stopped before sending anything to it.",
            service="ssh",
            hint="If you just recreated this instance, forget its old key (forget_host_key) and connect again. "
            "If not, don't use this host: tear it down and rent another one.",
        )
        self.identity = identity
        self.expected = expected
        self.presented = presented


class HostKeyStore:
    """The pinned host keys in one JSON file. Small; read and written whole."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load_sync(self) -> dict[str, PinnedKey]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {name: PinnedKey.model_validate(entry) for name, entry in raw.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, ValidationError, AttributeError) as exc:
            # Failing closed: an unreadable pin file must not turn into "trust anything".
            raise UpstreamError(
                f"The pinned host keys in {self.path} cannot be read ({exc.__class__.__name__}).",
                service="ssh",
                hint="Move the file away to start pinning afresh (every host is trusted again on its next first "
                "contact), or restore it from a backup.",
            ) from exc

    @contextlib.contextmanager
    def _locked(self) -> Generator[None]:
        # Two servers (Claude Code and Claude Desktop) may pin at once; neither may lose the other's pin.
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.with_name(self.path.name + ".lock"), "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _save_sync(self, pins: dict[str, PinnedKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {name: pin.model_dump(mode="json") for name, pin in sorted(pins.items())}
        write_text_atomic(self.path, json.dumps(data, indent=2) + "\n")

    async def all(self) -> dict[str, PinnedKey]:
        return await anyio.to_thread.run_sync(self._load_sync)

    async def get(self, identity: str) -> PinnedKey | None:
        return (await self.all()).get(identity)

    async def pin(self, identity: str, *, key: str, fingerprint: str, address: str) -> PinnedKey:
        """Record the key for ``identity`` (first contact). An existing different pin is never replaced here."""

        def update() -> PinnedKey:
            with self._locked():
                pins = self._load_sync()
                existing = pins.get(identity)
                if existing is not None:
                    if existing.key != key:
                        raise HostKeyChangedError(
                            identity=identity, expected=existing.fingerprint, presented=fingerprint
                        )
                    return existing
                pinned = PinnedKey(key=key, fingerprint=fingerprint, address=address, pinned_at=datetime.now(UTC))
                pins[identity] = pinned
                self._save_sync(pins)
                return pinned

        return await anyio.to_thread.run_sync(update)

    async def forget(self, identity: str) -> bool:
        """Drop the pin (the instance was terminated or deliberately replaced). True if one was there."""

        def update() -> bool:
            with self._locked():
                pins = self._load_sync()
                if pins.pop(identity, None) is None:
                    return False
                self._save_sync(pins)
                return True

        return await anyio.to_thread.run_sync(update)
