"""The pinned host keys: first contact pins, a different key is refused, an unreadable file fails closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ategnatos_mcp.errors import UpstreamError
from ategnatos_mcp.remote import HostKeyChangedError, HostKeyStore


async def test_first_pin_is_kept_and_the_same_key_pins_again_quietly(tmp_path: Path) -> None:
    store = HostKeyStore(tmp_path / "known_hosts.json")
    assert await store.get("vast:42") is None

    first = await store.pin("vast:42", key="ssh-ed25519 AAAA1", fingerprint="SHA256:one", address="1.2.3.4:41003")
    again = await store.pin("vast:42", key="ssh-ed25519 AAAA1", fingerprint="SHA256:one", address="1.2.3.4:41999")

    assert again == first  # a new port for the same instance does not change its identity
    assert await HostKeyStore(store.path).get("vast:42") == first


async def test_pinning_a_different_key_for_a_known_host_is_refused(tmp_path: Path) -> None:
    store = HostKeyStore(tmp_path / "known_hosts.json")
    await store.pin("vast:42", key="ssh-ed25519 AAAA1", fingerprint="SHA256:one", address="h:1")
    with pytest.raises(HostKeyChangedError) as caught:
        await store.pin("vast:42", key="ssh-ed25519 AAAA2", fingerprint="SHA256:two", address="h:1")
    assert (caught.value.identity, caught.value.expected, caught.value.presented) == (
        "vast:42",
        "SHA256:one",
        "SHA256:two",
    )
    assert caught.value.service == "ssh" and caught.value.hint


async def test_forget_removes_only_that_pin(tmp_path: Path) -> None:
    store = HostKeyStore(tmp_path / "known_hosts.json")
    await store.pin("a", key="k1", fingerprint="f1", address="h:1")
    await store.pin("b", key="k2", fingerprint="f2", address="h:2")
    assert await store.forget("a")
    assert not await store.forget("a")
    assert set(await store.all()) == {"b"}


async def test_an_unreadable_pin_file_refuses_instead_of_trusting_everything(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts.json"
    path.write_text("{broken", encoding="utf-8")
    with pytest.raises(UpstreamError) as caught:
        await HostKeyStore(path).get("a")
    assert not isinstance(caught.value, HostKeyChangedError)
    assert str(path) in caught.value.message
