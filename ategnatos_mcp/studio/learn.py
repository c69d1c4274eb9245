"""Learning what a reachable ComfyUI has: its checkpoints and LoRAs become studio entries, each with a family
guessed from the file's metadata or name, and the guess said in the entry so the artist can correct it."""

from __future__ import annotations

from typing import Any, Protocol

import anyio
from pydantic import BaseModel

from ategnatos_mcp.families import guess_family
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.studio.models import STUDIO_DOCUMENT, LoraEntry, ModelEntry, StudioInventory

__all__ = ["LearnedModel", "ModelSource", "learn_models"]

# Reading metadata is one small request per file; a huge model folder is learned over several calls.
_MAX_NEW_PER_CALL = 40
_FOLDERS = {"checkpoints": "checkpoint", "loras": "lora"}


class ModelSource(Protocol):
    """Where model files are listed (a ComfyUI pool): per folder, file name -> a server that has it."""

    async def listed_models(self) -> dict[str, dict[str, str]]: ...

    async def model_metadata(self, url: str, folder: str, name: str) -> dict[str, Any] | None: ...


class LearnedModel(BaseModel):
    """A file the studio did not know, now registered, and how its family was guessed."""

    name: str
    kind: str
    family: str | None
    reason: str
    server: str


def _known(inventory: StudioInventory) -> set[str]:
    return {m.name.casefold() for m in inventory.models} | {lora.name.casefold() for lora in inventory.loras}


async def learn_models(store: GrimoireStore, source: ModelSource, *, timeout: float = 5.0) -> list[LearnedModel]:
    """Register the checkpoints and LoRAs ``source`` lists that the studio inventory does not have yet.

    Entries the artist made are never changed; a ComfyUI that does not answer within ``timeout`` teaches nothing.
    """
    learned: list[LearnedModel] = []
    with anyio.move_on_after(timeout):
        listed = await source.listed_models()
        known = _known(await store.read(STUDIO_DOCUMENT, StudioInventory))
        for folder, kind in _FOLDERS.items():
            for name, url in listed.get(folder, {}).items():
                if name.casefold() in known or len(learned) >= _MAX_NEW_PER_CALL:
                    continue
                guess = guess_family(name, await source.model_metadata(url, folder, name))
                learned.append(LearnedModel(name=name, kind=kind, family=guess.family, reason=guess.reason, server=url))
    if not learned:
        return []
    async with store.update(STUDIO_DOCUMENT, StudioInventory) as upd:
        known = _known(upd.doc)
        for item in learned:
            if item.name.casefold() in known:
                continue  # registered by hand meanwhile: the artist's entry wins
            where = (
                f"Listed by ComfyUI at {item.server}. {item.reason} If that is wrong, correct it with studio_register."
            )
            if item.kind == "checkpoint":
                upd.doc.models.append(
                    ModelEntry(
                        name=item.name,
                        kind="checkpoint",
                        base=item.family or "",
                        location=item.server,
                        provenance=where,
                    )  # fmt: skip
                )
            else:
                upd.doc.loras.append(
                    LoraEntry(name=item.name, base_model=item.family or "", location=item.server, trained_on=where)
                )
    return learned
