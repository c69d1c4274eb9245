"""The studio inventory document (grimoire/studio.md) has one owner: this module. Every domain reads and changes the
inventory through these functions, never through the store directly, so the rules of the document (names, merging
of hand edits, notices owed to the artist) live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.studio.inventory import EntryKind, RegisterAction, register_entry
from ategnatos_mcp.studio.models import STUDIO_DOCUMENT, Environment, InstanceEntry, StudioInventory

__all__ = [
    "StudioChange",
    "accept_studio_edit",
    "mirror_instances",
    "read_studio",
    "record_environment",
    "register_in_studio",
]


@dataclass
class StudioChange:
    """What a change did, and the notices about the document the artist should hear (hand edits read, kept...)."""

    message: str
    inventory: StudioInventory
    entry: Any = None
    notices: list[str] = field(default_factory=list[str])

    @property
    def counts(self) -> dict[str, int]:
        inv = self.inventory
        return {"models": len(inv.models), "loras": len(inv.loras), "workflows": len(inv.workflows)}


async def read_studio(store: GrimoireStore) -> StudioInventory:
    """The inventory as it stands (a hand edit of studio.md included; reading never writes)."""
    return await store.read(STUDIO_DOCUMENT, StudioInventory)


async def register_in_studio(
    store: GrimoireStore, kind: EntryKind, action: RegisterAction, name: str, fields: dict[str, Any]
) -> StudioChange:
    """Add, update or remove one checkpoint, LoRA or workflow entry."""
    async with store.update(STUDIO_DOCUMENT, StudioInventory) as upd:
        message, entry = register_entry(upd.doc, kind, action, name, fields)
        upd.relayed = True  # the notices go into the caller's answer
        return StudioChange(message, upd.doc.model_copy(deep=True), entry, list(upd.notices))


async def record_environment(store: GrimoireStore, env: Environment) -> StudioChange:
    """Keep what detection found (GPU, driver, disk, ComfyUI servers, which keys are set)."""
    async with store.update(STUDIO_DOCUMENT, StudioInventory) as upd:
        upd.doc.environment = env
        upd.relayed = True
        return StudioChange(
            "Recorded this machine's environment.", upd.doc.model_copy(deep=True), None, list(upd.notices)
        )


async def mirror_instances(store: GrimoireStore, instances: list[InstanceEntry]) -> None:
    """The live rentals, as the GPU ledger knows them, replace the inventory's list of instances."""
    async with store.update(STUDIO_DOCUMENT, StudioInventory) as upd:
        upd.doc.instances = instances


async def accept_studio_edit(store: GrimoireStore) -> StudioChange:
    """Apply a hand edit of studio.md that was held back (it removed most entries at once), as the artist confirmed."""
    inventory, notices = await store.accept_held_edit(STUDIO_DOCUMENT, StudioInventory)
    return StudioChange(notices[-1], inventory, None, notices[:-1])
