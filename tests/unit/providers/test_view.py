"""grimoire/gpu.md renders the whole ledger; a hand edit is kept aside, never imported into the money record."""

from __future__ import annotations

from pathlib import Path

from inline_snapshot import snapshot

from ategnatos_mcp.providers import GPU_DOCUMENT, GPU_VIEW, Consent, GpuDocument, OfferQuery
from ategnatos_mcp.state import GrimoireStore
from tests.support.fake_clouds import FakeClock, FakeRunPod, make_service


async def _history(tmp_path: Path) -> GrimoireStore:
    store = GrimoireStore(tmp_path / "grimoire")
    store.register_view(GPU_DOCUMENT, GPU_VIEW)
    clock = FakeClock()
    runpod = FakeRunPod()
    runpod.add_pod("someone-elses-notebook")
    service = make_service(store, [runpod], clock)
    for hours in (1, 2):
        quote = (await service.find_offers(OfferQuery(gpu="4090", hours=hours))).offers[0].quote_id
        rented = await service.spinup(quote, Consent(confirmed=True))
        await service.wait_ready(rented.instance.key, 60)
    clock.advance(5400)
    await service.teardown(["runpod:pod0001xyz"])
    await service.instances()
    return store


async def test_gpu_md_renders_live_rentals_and_the_ledger(tmp_path: Path) -> None:
    await _history(tmp_path)
    assert (tmp_path / "grimoire" / "gpu.md").read_text(encoding="utf-8") == snapshot("""\
# GPU rentals and spend

Written by Ategnatos from `.state/gpu.json`; edits here are not imported.

## Still billing

| instance | GPU | status | $/h | since (UTC) | note |
|---|---|---|---|---|---|
| runpod:foreign0 | RTX4090 | running | 0.59 | 2026-11-29 10:00 | orphan: not rented through Ategnatos |
| runpod:pod0002xyz | RTX4090 | running | 0.34 | 2026-11-29 10:00 |  |

## Ledger

| when (UTC) | instance | event | $/h | cost so far | note |
|---|---|---|---|---|---|
| 2026-11-29 10:00 | runpod:foreign0 | adopted | 0.59 |  | orphan |
| 2026-11-29 11:30 | runpod:pod0001xyz | terminated | 0.34 | 0.51 | terminated by request |
| 2026-11-29 10:00 | runpod:pod0002xyz | rented | 0.34 |  | confirmed by the user at $0.34/h |
| 2026-11-29 10:00 | runpod:pod0001xyz | rented | 0.34 |  | confirmed by the user at $0.34/h |
""")


async def test_a_hand_edit_of_gpu_md_is_kept_aside_not_imported(tmp_path: Path) -> None:
    store = await _history(tmp_path)
    view = tmp_path / "grimoire" / "gpu.md"
    view.write_text(view.read_text(encoding="utf-8").replace("0.34", "0.01"), encoding="utf-8")
    async with store.update(GPU_DOCUMENT, GpuDocument) as upd:
        pass
    assert any("could not be read" in notice for notice in upd.notices)
    assert "0.01" not in view.read_text(encoding="utf-8")
    assert len(list(view.parent.glob("gpu.edited-*.md"))) == 1
