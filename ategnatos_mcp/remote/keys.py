"""Our SSH key: an ed25519 key made on first use, kept outside the grimoire (it is a secret), mode 0600."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ategnatos_mcp.errors import ConfigError
from ategnatos_mcp.remote.models import KeyInfo
from ategnatos_mcp.settings import Settings

if TYPE_CHECKING:
    import asyncssh

__all__ = ["KEY_FILE_NAME", "default_key_dir", "ensure_key", "load_private_key"]

KEY_FILE_NAME = "id_ed25519"
_COMMENT = "ategnatos"


def default_key_dir(settings: Settings) -> Path:
    """``settings.gpu.ssh_key_dir``, else ``~/.config/ategnatos/ssh``."""
    configured = settings.gpu.ssh_key_dir
    return (configured or Path.home() / ".config" / "ategnatos" / "ssh").expanduser()


def _ensure_key_sync(key_dir: Path) -> KeyInfo:
    import asyncssh

    private_path = key_dir / KEY_FILE_NAME
    public_path = key_dir / f"{KEY_FILE_NAME}.pub"
    try:
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if private_path.exists():
            key = asyncssh.read_private_key(private_path)
        else:
            key = asyncssh.generate_private_key("ssh-ed25519", comment=_COMMENT)  # pyright: ignore[reportUnknownMemberType]
            # Create with 0600 from the start: never a moment where the key is readable by others.
            fd = os.open(private_path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key.export_private_key())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(private_path.with_suffix(".tmp"), private_path)
        if private_path.stat().st_mode & 0o077:
            os.chmod(private_path, 0o600)
        public_line = key.export_public_key("openssh").decode("ascii").strip()
        if not public_path.exists() or public_path.read_text(encoding="utf-8").strip() != public_line:
            public_path.write_text(public_line + "\n", encoding="utf-8")
    except (OSError, asyncssh.KeyImportError) as exc:
        raise ConfigError(
            f"The SSH key in {key_dir} could not be read or created ({exc.__class__.__name__}: {exc}).",
            key="gpu.ssh_key_dir",
            hint="Check that the folder is writable, or point gpu.ssh_key_dir in ategnatos.toml at another folder "
            "(a new key will be made there; register it with your GPU provider again).",
        ) from exc
    return KeyInfo(private_key_path=private_path, public_key=public_line, fingerprint=key.get_fingerprint())


async def ensure_key(key_dir: Path) -> KeyInfo:
    """Our key pair in ``key_dir``, generated the first time. The public line is what providers register.

    Raises:
        ConfigError: the folder cannot be written or holds an unreadable key.
    """
    return await anyio.to_thread.run_sync(_ensure_key_sync, key_dir)


def load_private_key(key_dir: Path) -> asyncssh.SSHKey:
    """The private key object for asyncssh (call ``ensure_key`` first)."""
    import asyncssh

    return asyncssh.read_private_key(key_dir / KEY_FILE_NAME)
