"""AppContext: what every tool can reach. Built once per server; the lifespan opens and closes it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup

from ategnatos_mcp.settings import Settings
from ategnatos_mcp.state import GrimoireStore

__all__ = ["AppContext", "utc_now"]

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AppContext:
    """Settings, the grimoire store, a clock, and lazily opened services (clients, pools, watchers).

    A service is built on first use by ``service(key, factory)``; the factory may push cleanup onto
    ``exit_stack``, which the lifespan closes. Tests may put ready-made fakes into ``services``.
    """

    settings: Settings
    store: GrimoireStore
    clock: Callable[[], datetime] = utc_now
    services: dict[str, Any] = field(default_factory=dict)
    exit_stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    task_group: TaskGroup | None = None
    session_id: str = field(default_factory=lambda: utc_now().strftime("%Y%m%dT%H%M%S"))
    _service_lock: anyio.Lock = field(default_factory=anyio.Lock)

    async def service(self, key: str, factory: Callable[[AppContext], Awaitable[T]]) -> T:
        """The service stored under ``key``, built by ``factory(self)`` the first time it is asked for."""
        if key in self.services:
            return self.services[key]
        async with self._service_lock:
            if key not in self.services:
                self.services[key] = await factory(self)
        return self.services[key]
