"""The studio learns the checkpoints and LoRAs a ComfyUI lists, with a guessed family it says; the artist's own
entries always win, and a ComfyUI that does not answer teaches nothing instead of holding the prompt up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.studio import STUDIO_DOCUMENT, ModelEntry, StudioInventory, learn_models

URL = "http://127.0.0.1:8188"


class Listing:
    """What ComfyUIService.listed_models / model_metadata answer, from fixed data."""

    def __init__(self, listed: dict[str, list[str]], metadata: dict[str, dict[str, Any]] | None = None) -> None:
        self.listed = {folder: dict.fromkeys(names, URL) for folder, names in listed.items()}
        self.metadata = metadata or {}
        self.asked: list[str] = []

    async def listed_models(self) -> dict[str, dict[str, str]]:
        return self.listed

    async def model_metadata(self, url: str, folder: str, name: str) -> dict[str, Any] | None:
        self.asked.append(name)
        return self.metadata.get(name)


class Silent(Listing):
    async def listed_models(self) -> dict[str, dict[str, str]]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


async def test_listed_files_become_entries_with_the_guess_said(tmp_path: Path) -> None:
    store = GrimoireStore(tmp_path / "grimoire")
    async with store.update(STUDIO_DOCUMENT, StudioInventory) as upd:
        upd.doc.models.append(ModelEntry(name="mine.safetensors", base="sd15", provenance="bought it"))
    source = Listing(
        {"checkpoints": ["mine.safetensors", "flux1-dev-fp8.safetensors"], "loras": ["ink.safetensors"]},
        {"ink.safetensors": {"ss_base_model_version": "sdxl_base_v1-0"}},
    )
    learned = await learn_models(store, source)
    assert [(m.name, m.kind, m.family) for m in learned] == [
        ("flux1-dev-fp8.safetensors", "checkpoint", "flux1"),
        ("ink.safetensors", "lora", "sdxl"),
    ]
    assert "mine.safetensors" not in source.asked  # known files are not even looked at
    inventory = await store.read(STUDIO_DOCUMENT, StudioInventory)
    mine, flux = inventory.models
    assert (mine.base, mine.provenance) == ("sd15", "bought it")
    assert (
        flux.base == "flux1" and "'flux' in the file name" in flux.provenance and "studio_register" in flux.provenance
    )
    assert inventory.loras[0].base_model == "sdxl" and "metadata" in inventory.loras[0].trained_on
    assert await learn_models(store, source) == []  # nothing new the second time


async def test_a_comfyui_that_does_not_answer_teaches_nothing_in_bounded_time(tmp_path: Path) -> None:
    store = GrimoireStore(tmp_path / "grimoire")
    with anyio.fail_after(2):
        assert await learn_models(store, Silent({}), timeout=0.05) == []
    assert (await store.read(STUDIO_DOCUMENT, StudioInventory)).models == []
