"""A quarantine (or undo) run in its own process that stops after N file moves and waits to be killed.

    python quarantine_child.py quarantine|undo DATASET N FILE...

Prints "paused" once the N-th move is done (before the next one), then blocks on stdin: the test SIGKILLs it
there, the way a crash or a closed laptop cuts a real run short.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from ategnatos_mcp.dataset.quarantine import quarantine_files, undo_quarantine


def main() -> None:
    action, root, stop_after, files = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    real_rename = os.rename
    done = [0]

    def rename(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if done[0] == stop_after:
            print("paused", flush=True)
            sys.stdin.read()  # until killed
        real_rename(src, dst)
        done[0] += 1

    os.rename = rename  # type: ignore[assignment]  # this process only exists to be killed mid-move
    if action == "quarantine":
        quarantine_files(root, dict.fromkeys(files, "test"), when=datetime(2026, 3, 4, tzinfo=UTC))
    else:
        undo_quarantine(root)
    print("finished", flush=True)


if __name__ == "__main__":
    main()
