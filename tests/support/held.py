"""Async fixtures that keep a connection open across ``yield``, on pytest-asyncio.

pytest-asyncio runs a fixture's setup and its teardown in two different tasks, but anyio (which the MCP client, the
SDK and asyncssh use) requires a task group or cancel scope to be left in the task that entered it
(pytest-dev/pytest-asyncio#1191). ``held(cm)`` enters and leaves ``cm`` inside one task of its own, which lives from
setup to teardown; the test talks to what it yields through the object's own streams, as any other task would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

__all__ = ["held"]

T = TypeVar("T")


@asynccontextmanager
async def held(cm: AbstractAsyncContextManager[T]) -> AsyncIterator[T]:
    """``async with cm as value`` in a task of its own, for as long as this block runs."""
    entered: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    leave = asyncio.Event()

    async def keep() -> None:
        try:
            async with cm as value:
                entered.set_result(value)
                await leave.wait()
        except BaseException as exc:
            if not entered.done():
                entered.set_exception(exc)
                return
            raise

    task = asyncio.get_running_loop().create_task(keep())
    try:
        yield await entered
    finally:
        leave.set()
        await task
