"""Which host a run goes to: 'local', a rented instance from the studio (with the provider's login), an address."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ategnatos_mcp.errors import NotFoundError
from ategnatos_mcp.providers import GPU_DOCUMENT, GpuDocument, Rental
from ategnatos_mcp.providers.rental.ledger import sync_studio
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training.execution import HostSpec, resolve_host


async def _store_with_rental(tmp_path: Path) -> GrimoireStore:
    store = GrimoireStore(tmp_path / "grimoire")
    rental = Rental(
        provider="lambda",
        instance_id="i-42",
        name="ink-trainer",
        started_at=datetime(2026, 11, 29, tzinfo=UTC),
        ssh_host="203.0.113.7",
        ssh_port=22,
        ssh_user="ubuntu",
    )
    async with store.update(GPU_DOCUMENT, GpuDocument) as upd:
        upd.doc.rentals[rental.key] = rental
        doc = upd.doc
    await sync_studio(store, doc)
    return store


async def test_local_and_addresses(tmp_path: Path) -> None:
    store = GrimoireStore(tmp_path / "grimoire")
    assert await resolve_host(store, "local") == HostSpec()
    spec = await resolve_host(store, "artist@10.0.0.9:2222")
    assert (spec.kind, spec.host, spec.port, spec.username, spec.identity) == (
        "ssh",
        "10.0.0.9",
        2222,
        "artist",
        "10.0.0.9:2222",
    )
    assert (await resolve_host(store, "gpu.example.org")).port == 22


async def test_a_rented_instance_by_name_uses_its_provider_login(tmp_path: Path) -> None:
    store = await _store_with_rental(tmp_path)
    spec = await resolve_host(store, "ink-trainer")
    assert spec == HostSpec(kind="ssh", host="203.0.113.7", port=22, username="ubuntu", name="lambda:i-42")
    assert (await resolve_host(store, "i-42")).identity == "lambda:i-42"


async def test_an_unknown_name_says_what_a_host_can_be(tmp_path: Path) -> None:
    store = GrimoireStore(tmp_path / "grimoire")
    with pytest.raises(NotFoundError) as caught:
        await resolve_host(store, "mybox")
    assert "gpu_instances" in (caught.value.hint or "")
