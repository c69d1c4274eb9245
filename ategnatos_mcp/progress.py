"""Progress: how long work tells the one waiting for it how far it got.

``await progress(done, total, message)``; ``total`` is None when unknown. At the MCP edge it becomes a progress
notification (``tools/_common.progress_reporter``); domains only ever see this callable.
"""

from collections.abc import Awaitable, Callable

__all__ = ["Progress"]

Progress = Callable[[float, float | None, str | None], Awaitable[None]]
