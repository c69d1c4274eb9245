"""A second OS process writing to the same grimoire (used by the concurrency and crash tests)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import anyio

from ategnatos_mcp.eye import EYE_DOCUMENT, EYE_VIEW, EyeProfile, apply_change
from ategnatos_mcp.state import GrimoireStore


async def main(grimoire: Path, prefix: str, count: int) -> None:
    store = GrimoireStore(grimoire)
    store.register_view(EYE_DOCUMENT, EYE_VIEW)
    for n in range(count):
        async with store.update(EYE_DOCUMENT, EyeProfile) as upd:
            apply_change(upd.doc, "add", now=datetime.now(UTC), category="style", text=f"{prefix} {n}")
        print(f"ack {n}", flush=True)


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
