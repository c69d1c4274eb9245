"""The asyncssh client that applies our trust-on-first-use rule. Imported lazily (asyncssh is heavy)."""

from __future__ import annotations

import asyncssh

__all__ = ["PinningClient", "import_key"]


def import_key(text: str) -> asyncssh.SSHKey:
    return asyncssh.import_public_key(text)


class PinningClient(asyncssh.SSHClient):
    """Accepts the pinned key only; with no pin yet, accepts the first key seen (first contact)."""

    def __init__(self, pinned: asyncssh.SSHKey | None) -> None:
        self.pinned = pinned
        self.refused: asyncssh.SSHKey | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        if self.pinned is None:
            return True
        if key == self.pinned:
            return True
        self.refused = key
        return False
