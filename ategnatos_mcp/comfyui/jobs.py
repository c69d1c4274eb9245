"""JobWatch: one queued job followed over the websocket, with ``/history`` as the fallback.

The job's event stream (the pool's shared socket for that server, see ``hub``, or a socket of its own)
opens before POST /prompt so no event is missed. When the socket drops, the watch subscribes again and
asks ``/history`` what it missed; a job that is neither queued nor in the history after a restart is
reported lost. When no socket can be opened at all (a proxy that refuses websocket upgrades), a watch made
with ``live=False`` follows the job by polling ``/history/{prompt_id}`` and ``/queue`` instead: the same
end states and results, but no per-node progress. A watch whose socket drops mid-job and will not reopen
(while the HTTP API may still answer) switches to polling the same way.

Pictures sent as binary frames are results only when they come from a node that sends its images over the
socket instead of saving them (``stream_nodes``: the workflow's ``SaveImageWebsocket`` nodes); they are
kept in ``streamed`` until the results are saved. Frames of any other node (latent previews while a
sampler runs) are not results and are dropped. ComfyUI keeps no copy of streamed pictures, so any sent
while the socket was down are gone (``missed_events`` tells).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

import anyio

from ategnatos_mcp.comfyui.client import ComfyUIClient
from ategnatos_mcp.comfyui.models import HistoryEntry, JobRecord, JobState, OutputFile, WsEvent, WsImage
from ategnatos_mcp.errors import UpstreamError
from ategnatos_mcp.progress import Progress

__all__ = ["JobWatch"]

logger = logging.getLogger(__name__)


_RECONNECT_ATTEMPTS = 5
_REOPEN_ATTEMPTS = 3  # a socket that will not reopen mid-job: then the job is followed by polling
_POLL_FIRST = 0.2  # seconds; polling backs off from here to at most ``poll_max`` (short jobs finish fast)


class JobWatch:
    """The live state of one job; ``done`` is set once it finished and its results were handled."""

    def __init__(
        self,
        record: JobRecord,
        client: ComfyUIClient,
        *,
        on_finished: Callable[[JobWatch], Awaitable[None]],
        check_every: float = 30.0,
        subscribe: Callable[[str], AbstractAsyncContextManager[AsyncIterator[WsEvent]]] | None = None,
        live: bool = True,
        poll_max: float = 2.0,
        stream_nodes: frozenset[str] = frozenset(),
    ):
        self.record = record
        self.live = live  # False: no websocket, follow the job by polling /history and /queue
        self.poll_max = poll_max
        self.client = client
        # The job's events: by default its own socket (client id = the record's); a pool shares one per server.
        self._subscribe = subscribe or (lambda _prompt_id: client.events(record.client_id))
        self.check_every = check_every
        self.done = anyio.Event()
        self.connected = anyio.Event()
        self.connect_error: UpstreamError | None = None
        self.scope = anyio.CancelScope()
        self._listeners: list[Progress] = []
        self._on_finished = on_finished
        self._submitted = anyio.Event()
        self.previews: list[tuple[bytes, str]] = []  # made with the saved files; dropped for old jobs
        self.stream_nodes = stream_nodes
        self.streamed: list[tuple[str, WsImage]] = []  # (node id, picture) received over the socket
        self._node: str | None = None  # the node the socket last said runs (kept after the end, for late frames)
        self._gap = False  # the socket dropped once: some events (outputs) may have been missed
        self._missed = False  # ... and the job was not just waiting in the queue all that time
        self._socket: AsyncExitStack | None = None  # the finished job's socket, closed once ``done`` is set

    @property
    def missed_events(self) -> bool:
        """The job ran (at least partly) while its socket was down: pictures streamed meanwhile were missed."""
        return self._missed

    # --- listeners ------------------------------------------------------------------------------------
    def listen(self, callback: Progress) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    async def _notify(self) -> None:
        r = self.record
        total = max(r.nodes_total, 1)
        fraction = min(1.0, (r.nodes_done + (r.progress or 0.0)) / total)
        message = f"{r.state.value}" + (f", node {r.current_node}" if r.current_node else "")
        if not self.live and not r.state.finished:
            message += " (no live progress)"
        for callback in list(self._listeners):
            try:
                await callback(round(fraction * 100, 1), 100.0, message)
            except Exception:  # a listener (an MCP request) may be gone; the job goes on
                logger.debug("progress listener failed", exc_info=True)

    # --- lifecycle -------------------------------------------------------------------------------------
    def mark_submitted(self) -> None:
        self._submitted.set()

    def mark_removed(self) -> None:
        """The job was taken out of the queue before it started: stop following it."""
        self._finish(JobState.INTERRUPTED, "Removed from the queue before it started.")
        self.scope.cancel()

    async def run(self) -> None:
        """Background task: follow the job to its end, then hand it to ``on_finished``. Never raises: it runs
        in the server's task group, where an exception would stop every other background task."""
        with self.scope:
            try:
                await (self._follow() if self.live else self._poll())
            except UpstreamError as exc:
                if not self._submitted.is_set():
                    self.connect_error = exc
                    self.connected.set()
                else:
                    await self._settle_from_history()
            except Exception:
                logger.exception("following ComfyUI job %s failed", self.record.job_id)
                self._unexpected()
        if not self._submitted.is_set():
            self.connected.set()
            self.done.set()
            return
        if not self.record.state.finished:
            self._finish(JobState.LOST, "We stopped following the job (the server was shutting down).")
        with anyio.CancelScope(shield=True):
            try:
                await self._on_finished(self)
            except Exception:
                logger.exception("saving the results of ComfyUI job %s failed", self.record.job_id)
                self.record.warnings.append(
                    "The results could not be saved; they are still in ComfyUI's output folder."
                )
            await self._notify()
        self.done.set()
        if self._socket is not None:
            # Closed after the waiters are released: the close handshake is not on the job's critical path.
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.client.timeout):
                await self._socket.aclose()
            self._socket = None

    def _unexpected(self) -> None:
        if not self._submitted.is_set():
            self.connect_error = UpstreamError(
                f"Following jobs on ComfyUI at {self.client.url} failed unexpectedly.",
                service="comfyui",
                hint="Try again; if it keeps happening, look at the Ategnatos log.",
            )
            self.connected.set()
        else:
            self._finish(
                JobState.LOST,
                "Ategnatos lost track of the job after an unexpected error; ComfyUI may still finish it "
                "(look in its output folder or history).",
            )

    async def _follow(self) -> None:
        attempts = 0
        reconnecting = False
        while not self.record.state.finished:
            try:
                async with AsyncExitStack() as stack:
                    events = await stack.enter_async_context(self._subscribe(self.record.prompt_id))
                    self.connected.set()
                    attempts = 0
                    await self._submitted.wait()
                    if reconnecting:
                        if not await self._catch_up():
                            self._missed = True  # it started, or even finished, while the socket was down
                        if self.record.state.finished:
                            return
                    if await self._read(events):
                        self._socket = stack.pop_all()  # ``run`` closes it once the results are handed over
                        return
            except UpstreamError:
                if not self._submitted.is_set():
                    raise
                attempts += 1
                if attempts > _REOPEN_ATTEMPTS:
                    await self._fall_back_to_polling()
                    return
                await anyio.sleep(min(0.2 * 2**attempts, 3.0))
            reconnecting = True
            self._gap = True
            self._missed = self._missed or self.record.state is not JobState.QUEUED
            if self.record.state.finished:
                return
            # The socket closed mid-job: what did we miss?
            try:
                await self._catch_up()
            except UpstreamError:
                logger.info("ComfyUI at %s not answering after the socket dropped; retrying", self.client.url)

    async def _fall_back_to_polling(self) -> None:
        self.live = False
        self._missed = True  # no socket from here on: nothing streamed can arrive any more
        self.record.live_progress = False
        self.record.warnings.append(
            f"The live connection (websocket) to ComfyUI at {self.client.url} dropped during this job and would not "
            "reopen, so from then on Ategnatos followed it by checking ComfyUI's queue and history (no live "
            "progress). If ComfyUI sits behind a proxy, let it pass websocket upgrades for /ws."
        )
        logger.info(
            "ComfyUI %s websocket would not reopen; following job %s by polling", self.client.url, self.record.job_id
        )
        await self._notify()
        await self._poll()

    async def _poll(self) -> None:
        """Follow the job without a socket: ask ``/history`` (then ``/queue``) at a backing-off interval."""
        self.connected.set()
        await self._submitted.wait()
        delay, failures = _POLL_FIRST, 0
        while not self.record.state.finished:
            await anyio.sleep(delay)
            delay = min(delay * 2, self.poll_max)
            try:
                await self._poll_once()
            except UpstreamError:
                failures += 1
                if failures > _RECONNECT_ATTEMPTS:
                    raise  # ``run`` settles the job from /history one last time
                continue
            failures = 0

    async def _poll_once(self) -> None:
        r = self.record
        entry = await self.client.history(r.prompt_id)
        if entry is None:
            queue = await self.client.queue()
            if r.prompt_id in queue.running:
                if r.state is JobState.QUEUED:
                    r.state, r.started_at = JobState.RUNNING, time.time()
                    await self._notify()
                return
            if r.prompt_id in queue.pending:
                return
            entry = await self.client.history(r.prompt_id)  # it may have finished between the two questions
        if entry is None:
            self._forgotten()
            return
        self._apply_history(entry)
        if not r.state.finished:  # in the history, so over, but with no end message we know
            self._finish(JobState.FAILED, f"ComfyUI ended the job with status '{entry.status_str or 'unknown'}'.")

    async def _read(self, events: AsyncIterator[WsEvent]) -> bool:
        """Apply events until the job's last one (True) or the socket closes (False), checking now and then
        that ComfyUI still knows the job: someone may clear the queue, and no event would ever say so."""
        failure: UpstreamError | None = None
        last = False
        async with anyio.create_task_group() as tg:

            async def check() -> None:
                waited = False
                while True:
                    await anyio.sleep(self.check_every)
                    try:
                        await self._catch_up()
                    except UpstreamError:
                        continue
                    if self.record.state.finished:
                        if self.stream_nodes and not waited:
                            # ComfyUI writes the history before its socket has sent everything: keep reading
                            # a round longer for streamed pictures still on their way (the final event ends it).
                            waited = True
                            continue
                        tg.cancel_scope.cancel()

            tg.start_soon(check)
            # Nothing may escape this body: a task group would wrap it in an ExceptionGroup.
            try:
                async for event in events:
                    if await self._apply(event):
                        last = True
                        break
            except UpstreamError as exc:
                failure = exc
            finally:
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        return last or self.record.state.finished

    async def _catch_up(self) -> bool:
        """Apply what ``/history`` (else ``/queue``) says about the job; True when it is still waiting to start."""
        if self.record.state.finished:
            return False
        entry = await self.client.history(self.record.prompt_id)
        if entry is not None:
            self._apply_history(entry)
            return False
        queue = await self.client.queue()
        if self.record.prompt_id in queue.pending:
            return True
        if self.record.prompt_id not in queue.running:
            # Neither finished nor waiting: ComfyUI restarted (its queue and history are in memory only).
            entry = await self.client.history(self.record.prompt_id)
            if entry is not None:
                self._apply_history(entry)
            else:
                self._forgotten()
        return False

    async def _settle_from_history(self) -> None:
        try:
            entry = await self.client.history(self.record.prompt_id)
        except UpstreamError:
            entry = None
        if entry is not None:
            self._apply_history(entry)
        elif not self.record.state.finished:
            self._finish(JobState.LOST, f"ComfyUI at {self.client.url} stopped answering while the job ran.")

    # --- events ----------------------------------------------------------------------------------------
    async def _apply(self, event: WsEvent) -> bool:  # noqa: C901 - one branch per event type
        r = self.record
        if event.prompt_id not in (None, r.prompt_id):
            return False
        data = event.data
        match event.type:
            case "image" if event.image is not None:
                self._capture(event.image)
                return False
            case "execution_start":
                r.state, r.started_at = JobState.RUNNING, time.time()
            case "execution_cached":
                r.cached_nodes = [str(n) for n in data.get("nodes", [])]
                r.nodes_done += len(r.cached_nodes)
            case "executing":
                if data.get("node") is None:
                    if event.prompt_id == r.prompt_id and (self._gap or not r.state.finished):
                        entry = await self.client.history(r.prompt_id)
                        if entry is not None:
                            self._apply_history(entry)
                        else:
                            await self._catch_up()
                    return event.prompt_id == r.prompt_id or r.state.finished
                if r.state is JobState.QUEUED:
                    r.state = JobState.RUNNING
                if r.current_node is not None:
                    r.nodes_done += 1
                r.current_node, r.progress = str(data["node"]), None
                self._node = r.current_node
            case "progress":
                if data.get("max"):
                    r.progress = float(data["value"]) / float(data["max"])
            case "executed":
                self._add_output(str(data.get("node")), data.get("output") or {})
            case "execution_success":
                self._finish(JobState.SUCCEEDED)
            case "execution_error":
                self._failed(data)
            case "execution_interrupted":
                self._finish(JobState.INTERRUPTED, "The job was stopped before it finished.")
            case _:
                return False
        await self._notify()
        return False

    def _capture(self, image: WsImage) -> None:
        # Type 4 frames name their node; type 1 frames come from the node now running.
        node = image.node_id or self._node
        if node not in self.stream_nodes and image.display_node_id in self.stream_nodes:
            node = image.display_node_id
        if node in self.stream_nodes:
            self.streamed.append((node, image))

    def _add_output(self, node_id: str, output: dict[str, Any]) -> None:
        files = [
            OutputFile.model_validate(f) for key in ("images", "gifs", "videos", "audio") for f in output.get(key, [])
        ]
        if files:
            self.record.outputs[node_id] = files
        if output.get("text"):
            self.record.texts[node_id] = [str(t) for t in output["text"]]

    def _apply_history(self, entry: HistoryEntry) -> None:
        self.record.outputs = entry.outputs or self.record.outputs
        self.record.texts = entry.texts or self.record.texts
        if entry.message("execution_interrupted") is not None:
            self._finish(JobState.INTERRUPTED, "The job was stopped before it finished.")
        elif (err := entry.message("execution_error")) is not None:
            self._failed(err)
        elif entry.status_str == "success":
            self._finish(JobState.SUCCEEDED)

    def _failed(self, error: dict[str, Any]) -> None:
        """ComfyUI's ``execution_error`` (from the socket or the history) in one line."""
        where = f"{error.get('node_type')} (node {error.get('node_id')})"
        self._finish(JobState.FAILED, f"{where} failed: {str(error.get('exception_message', '')).strip()}")

    def _forgotten(self) -> None:
        self._finish(
            JobState.LOST,
            f"ComfyUI at {self.client.url} no longer knows this job (it restarted, or the job was removed from "
            "its queue).",
        )

    def _finish(self, state: JobState, error: str | None = None) -> None:
        if self.record.state.finished:
            return
        self.record.state = state
        self.record.error = error
        self.record.finished_at = time.time()
        self.record.current_node = None
        if state is JobState.SUCCEEDED:
            self.record.nodes_done = self.record.nodes_total
