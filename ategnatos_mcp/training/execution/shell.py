"""Shell words for commands run on a training host: a quoted host path, and the names in a host folder."""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath

from ategnatos_mcp.training.execution.hosts import TrainingHost

__all__ = ["listing", "quoted"]


def quoted(path: str) -> str:
    """``path`` (a POSIX path on the host) quoted for a shell command line."""
    return shlex.quote(str(PurePosixPath(path)))


async def listing(host: TrainingHost, folder: str) -> list[str]:
    """The names in ``folder`` on the host; none when it does not exist or cannot be read."""
    out = await host.run(f"ls -1 {quoted(folder)} 2>/dev/null", timeout=30)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.exit_status == 0 else []
