"""The real stdio server, whose file system stops at one chosen step of a tool call so a test can SIGKILL it there.

    python -m tests.support.paused_server PATTERN SKIP [start]

Every rename, replace and hard link the server makes into its project folder (``ATEGNATOS_HOME``, its cache left
out) is a step. Once a tool call has begun (or from start-up with ``start``), the step whose destination contains
PATTERN, after SKIP such steps went through, does not happen: the server prints ``paused before <step> <path>`` on
stderr and waits to be killed, the way a crash or a closed laptop cuts a real call short. The slowing is made in
this process only (by wrapping ``os`` functions before the server starts), never in the server's code.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any


def _pausing(
    step: Callable[..., Any], name: str, pattern: str, skip: int, armed: threading.Event, homes: tuple[str, ...]
) -> Callable[..., Any]:
    seen = [0]
    lock = threading.Lock()

    def paused_step(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
        target = os.fspath(dst)
        if armed.is_set() and target.startswith(homes) and "/.cache/" not in target and pattern in target:
            with lock:
                seen[0] += 1
                stop = seen[0] == skip + 1
            if stop:
                print(f"paused before {name} {target}", file=sys.stderr, flush=True)
                threading.Event().wait()  # until killed
        return step(src, dst, *args, **kwargs)

    return paused_step


def main() -> int:
    pattern, skip, when = sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "call"
    home = os.environ["ATEGNATOS_HOME"]
    homes = (home + "/", os.path.realpath(home) + "/")
    armed = threading.Event()
    if when == "start":
        armed.set()
    for name in ("rename", "replace", "link"):
        setattr(os, name, _pausing(getattr(os, name), name, pattern, skip, armed, homes))

    from ategnatos_mcp.server import AtegnatosServer

    call_tool = AtegnatosServer.call_tool

    async def armed_call_tool(self: AtegnatosServer, *args: Any, **kwargs: Any) -> Any:
        armed.set()
        return await call_tool(self, *args, **kwargs)

    AtegnatosServer.call_tool = armed_call_tool  # type: ignore[method-assign]

    from ategnatos_mcp.cli import main as serve

    return serve(["serve"])


if __name__ == "__main__":
    sys.exit(main())
