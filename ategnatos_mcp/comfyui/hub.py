"""EventHub: one websocket per ComfyUI server for all of our jobs on it, events routed by prompt id.

ComfyUI sends a job's events to the sockets of the client id it was submitted with. Giving every job of
a pool the server's one client id means one socket per server instead of one per job: no handshake
and no close per job, and ComfyUI broadcasts each queue change to one socket of ours, not to one per
job. Our prompt ids are chosen before POST /prompt, so a job subscribes before it is queued and misses
nothing. When the socket closes, every subscription ends; each job then asks ``/history`` what it missed
and subscribes again, which opens a new socket (one, whoever asks first). Events without a prompt id
(ComfyUI's greeting on reconnect that names the running node) are dropped: that catch-up covers them.

Picture frames of the older kind (type 1) name no prompt. ComfyUI runs one prompt at a time and sends
its frames only to the socket of the client that queued it, so such a frame belongs to the prompt whose
``executing`` we saw last on this socket; it is routed there (and dropped when no prompt of ours runs).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from ategnatos_mcp.comfyui.client import ComfyUIClient
from ategnatos_mcp.comfyui.models import WsEvent

__all__ = ["EventHub"]

logger = logging.getLogger(__name__)


class EventHub:
    """The shared live connection to one ComfyUI. ``subscribe(prompt_id)`` yields that job's events."""

    def __init__(self, client: ComfyUIClient, task_group: TaskGroup, *, client_id: str | None = None) -> None:
        self.client = client
        self.client_id = client_id or f"ategnatos-{uuid.uuid4().hex[:12]}"
        self._tg = task_group
        self._lock = anyio.Lock()
        self._open = False
        self._subscribers: dict[str, MemoryObjectSendStream[WsEvent]] = {}
        self._running: str | None = None  # our prompt whose node runs now, for frames that name no prompt

    @asynccontextmanager
    async def subscribe(self, prompt_id: str) -> AsyncIterator[AsyncIterator[WsEvent]]:
        """The events of ``prompt_id`` until the socket closes. Raises ``UpstreamError`` if it cannot open."""
        await self._ensure_open()
        send, receive = anyio.create_memory_object_stream[WsEvent](max_buffer_size=math.inf)
        self._subscribers[prompt_id] = send
        try:
            async with receive:
                yield receive
        finally:
            if self._subscribers.get(prompt_id) is send:
                del self._subscribers[prompt_id]
            send.close()

    async def _ensure_open(self) -> None:
        async with self._lock:
            if self._open:
                return
            stack = AsyncExitStack()
            events = await stack.enter_async_context(self.client.events(self.client_id))
            self._open = True
            self._tg.start_soon(self._pump, events, stack)

    async def _pump(self, events: AsyncIterator[WsEvent], stack: AsyncExitStack) -> None:
        """Background task: route each event to its job; on close, end every subscription."""
        try:
            async for event in events:
                prompt_id = self._route(event)
                if prompt_id is None:
                    continue
                target = self._subscribers.get(prompt_id)
                if target is not None:
                    try:
                        target.send_nowait(event)
                    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                        pass  # the job stopped listening between lookup and send
        except Exception:  # never into the server's task group; the jobs fall back to /history
            logger.exception("reading ComfyUI events from %s failed", self.client.url)
        finally:
            self._open = False
            self._running = None
            for send in list(self._subscribers.values()):
                send.close()
            self._subscribers.clear()
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.client.timeout):
                await stack.aclose()

    def _route(self, event: WsEvent) -> str | None:
        """The prompt an event belongs to, keeping track of which of our prompts is running."""
        if event.type == "executing" and event.prompt_id:
            self._running = event.prompt_id if event.data.get("node") is not None else None
        elif event.image is not None and event.image.prompt_id is None:
            return self._running  # a type 1 frame: the running prompt's (see the module docstring)
        return event.prompt_id
