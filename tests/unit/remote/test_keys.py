"""Our SSH key: made once, private (0600), outside the grimoire, with a public line providers accept."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from ategnatos_mcp.errors import ConfigError
from ategnatos_mcp.remote import default_key_dir, ensure_key
from ategnatos_mcp.settings import load_settings

# The pattern RunPod's PUT /v2/account/ssh-keys enforces on every entry (../shared/providers/runpod.md, 2.5).
RUNPOD_KEY_PATTERN = re.compile(r"^(ssh|ecdsa|sk)-\S+ \S+( .*)?$")


async def test_key_is_generated_once_with_private_permissions(tmp_path: Path) -> None:
    key_dir = tmp_path / "ssh"
    first = await ensure_key(key_dir)
    second = await ensure_key(key_dir)

    assert first == second
    assert first.public_key.startswith("ssh-ed25519 ") and first.public_key.endswith(" ategnatos")
    assert RUNPOD_KEY_PATTERN.match(first.public_key)
    assert first.fingerprint.startswith("SHA256:")
    assert stat.S_IMODE(first.private_key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert (key_dir / "id_ed25519.pub").read_text(encoding="utf-8") == first.public_key + "\n"


async def test_loose_permissions_on_an_existing_key_are_tightened(tmp_path: Path) -> None:
    info = await ensure_key(tmp_path)
    info.private_key_path.chmod(0o644)
    await ensure_key(tmp_path)
    assert stat.S_IMODE(info.private_key_path.stat().st_mode) == 0o600


async def test_unreadable_key_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    (tmp_path / "id_ed25519").write_text("not a key", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        await ensure_key(tmp_path)
    assert caught.value.key == "gpu.ssh_key_dir"
    assert caught.value.hint


def test_default_key_dir_is_in_the_user_config_folder_not_the_grimoire(tmp_path: Path) -> None:
    settings = load_settings(env={"ATEGNATOS_HOME": str(tmp_path / "project")})
    assert default_key_dir(settings) == Path.home() / ".config" / "ategnatos" / "ssh"
    assert settings.grimoire_dir not in default_key_dir(settings).parents

    chosen = load_settings(env={"ATEGNATOS_HOME": str(tmp_path), "ATEGNATOS_GPU__SSH_KEY_DIR": str(tmp_path / "k")})
    assert default_key_dir(chosen) == tmp_path / "k"
