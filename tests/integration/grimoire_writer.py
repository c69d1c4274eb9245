"""A second OS process writing to the same grimoire (used by the concurrency and crash tests).

``grimoire_writer.py GRIMOIRE PREFIX COUNT [MODE]`` adds COUNT taste entries, printing ``ack N`` after each.
MODE stops the process inside the next write, at a precise point, so the test can SIGKILL it there:

- ``stop-before-view``: the JSON of update COUNT is written; prints ``json-written N`` before rendering eye.md;
- ``stop-before-rename``: the temp file of update COUNT's JSON is written and fsynced; prints ``temp-written``
  with its path before renaming it over eye.json.

The stop is made in this test process only (by wrapping the store's own functions), never in the server.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from ategnatos_mcp.eye import EYE_DOCUMENT, EYE_VIEW, EyeProfile, apply_change
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.state import store as store_module

try:
    from ategnatos_mcp.state import views as views_module
except ImportError:  # a release before the views module (to show a test fails on it)
    views_module = store_module


def _wait_for_the_kill(message: str) -> None:
    print(message, flush=True)
    while True:
        time.sleep(60)


def _arm(mode: str, n: int) -> None:
    if mode == "stop-before-view":
        # Wherever the store writes files from: stop when eye.md is about to be written (its JSON already is).
        for module in (store_module, views_module):
            original = getattr(module, "write_text_atomic", None)
            if original is None:
                continue

            def write_text_atomic(path: Path, text: str, _original: Any = original) -> None:
                if path.name == "eye.md":
                    _wait_for_the_kill(f"json-written {n}")
                _original(path, text)

            module.write_text_atomic = write_text_atomic  # type: ignore[attr-defined]
    elif mode == "stop-before-rename":
        original_replace = os.replace

        def replace(src: Any, dst: Any) -> None:
            if str(dst).endswith("eye.json"):
                _wait_for_the_kill(f"temp-written {src}")
            original_replace(src, dst)

        os.replace = replace  # type: ignore[assignment]


async def main(grimoire: Path, prefix: str, count: int, mode: str) -> None:
    store = GrimoireStore(grimoire)
    store.register_view(EYE_DOCUMENT, EYE_VIEW)
    for n in range(count + (mode != "normal")):
        if n == count:
            _arm(mode, n)
        async with store.update(EYE_DOCUMENT, EyeProfile) as upd:
            apply_change(upd.doc, "add", now=datetime.now(UTC), category="style", text=f"{prefix} {n}")
        print(f"ack {n}", flush=True)


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "normal")
