"""ComfyUIPool: several ComfyUI servers behind one submit; queues jobs and follows them to their results.

Which server gets a job (health, validation, queue length) is ``servers.ServerSet``'s business; this
module uploads the inputs to that server, queues the job (looking up a submit whose reply was lost before
any retry), follows it (live over the server's websocket, or by polling when the socket will not open
within ``ws_open_timeout_seconds``), and saves its results.
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
from anyio.abc import TaskGroup

from ategnatos_mcp.comfyui.client import PromptRejected
from ategnatos_mcp.comfyui.frames import streaming_nodes
from ategnatos_mcp.comfyui.jobs import JobWatch
from ategnatos_mcp.comfyui.models import JobRecord, PromptAccepted, ServerStatus, UploadedImage
from ategnatos_mcp.comfyui.results import save_outputs
from ategnatos_mcp.comfyui.servers import PoolServer, ServerSet
from ategnatos_mcp.comfyui.validate import (
    WorkflowInvalid,
    describe_problems,
    dropped_output_problems,
    flagged_nodes,
    problems_from_rejection,
    unfamiliar_nodes,
)
from ategnatos_mcp.errors import ConsentError, NotFoundError, UpstreamError
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.settings import ComfyUISettings

__all__ = ["ComfyUIPool", "ImageUpload", "WorkflowInvalid", "open_pool"]

logger = logging.getLogger(__name__)

_KEEP_JOBS = 500
_KEEP_PREVIEWS = 32


@dataclass
class ImageUpload:
    """An input image to upload to the job's server and plug into ``workflow[node_id].inputs[input_name]``."""

    node_id: str
    input_name: str
    filename: str
    data: bytes
    subfolder: str = "ategnatos"


class ComfyUIPool:
    """The ComfyUI servers this studio uses, and the jobs sent to them.

    Use ``submit`` to queue, ``wait``/``job`` to follow, ``cancel`` to stop; ``add_server`` adds an
    endpoint at run time (e.g. a port-forwarded cloud instance).
    """

    def __init__(
        self,
        urls: list[str],
        http: httpx.AsyncClient,
        *,
        settings: ComfyUISettings,
        task_group: TaskGroup,
        outputs_dir: Path,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._tg = task_group
        self._outputs_dir = outputs_dir
        self._clock = clock
        self._servers = ServerSet(http, settings=settings, task_group=task_group, clock=clock)
        self._jobs: dict[str, JobWatch] = {}
        self._workflows: dict[str, dict[str, Any]] = {}
        self._finished_order: dict[str, None] = {}  # insertion-ordered sets of job ids, oldest first
        self._with_previews: dict[str, None] = {}
        for url in urls:
            self.add_server(url)

    # --- servers (health and routing live in ``servers.ServerSet``) --------------------------------------
    def add_server(self, url: str) -> None:
        """Add a ComfyUI endpoint (no-op when it is already in the pool)."""
        self._servers.add(url)

    def remove_server(self, url: str) -> bool:
        """Stop routing jobs to an endpoint (e.g. a torn-down cloud instance). True when it was in the pool.

        Jobs already sent there keep their records and client: following them reports what the server says.
        """
        return self._servers.remove(url)

    @property
    def urls(self) -> list[str]:
        return self._servers.urls

    def servers(self) -> list[PoolServer]:
        """Servers not marked down first."""
        return self._servers.ordered()

    async def status(self) -> list[ServerStatus]:
        """Every server's reachability, version, queue and models."""
        return await self._servers.status()

    async def object_info(self, server: PoolServer, *, refresh: bool = False) -> dict[str, Any]:
        """The server's node catalogue, cached for a few minutes (refreshed when a check fails)."""
        return await self._servers.object_info(server, refresh=refresh)

    # --- jobs ----------------------------------------------------------------------------------------------
    async def submit(
        self,
        workflow: dict[str, Any],
        *,
        uploads: list[ImageUpload] | None = None,
        template: str | None = None,
        params: dict[str, Any] | None = None,
        seed: int | None = None,
        allow_flagged: bool = False,
    ) -> JobRecord:
        """Validate, route, upload inputs, queue; returns at once with the job record (state ``queued``).

        Raises:
            WorkflowInvalid: every problem found, before any GPU time is spent.
            ConsentError: the workflow uses paid-API or code-running nodes and ``allow_flagged`` is false.
            UpstreamError: no server answers.
        """
        workflow = copy.deepcopy(workflow)
        uploads = uploads or []
        skip = {(u.node_id, u.input_name) for u in uploads}
        server = await self._servers.choose(workflow, skip)
        try:
            info = await self.object_info(server)
            flags = flagged_nodes(workflow, info)
            if flags and not allow_flagged:
                raise ConsentError(
                    "This workflow uses nodes that need your explicit OK:\n- " + "\n- ".join(flags),
                    hint="Ask the user; if they agree, submit again with allow_flagged_nodes=true. Nothing was queued.",
                )
            for upload in uploads:
                stored: UploadedImage = await server.client.upload_image(
                    upload.data, upload.filename, subfolder=upload.subfolder
                )
                workflow[upload.node_id]["inputs"][upload.input_name] = stored.reference
            job = await self._queue(server, workflow, template=template, params=params or {}, seed=seed)
        except BaseException:
            server.in_flight -= 1
            raise
        job.record.warnings.extend(unfamiliar_nodes(workflow, info))
        return job.record

    async def _queue(
        self,
        server: PoolServer,
        workflow: dict[str, Any],
        *,
        template: str | None,
        params: dict[str, Any],
        seed: int | None,
    ) -> JobWatch:
        job_id = uuid.uuid4().hex[:12]
        record = JobRecord(
            job_id=job_id,
            server=server.client.url,
            prompt_id=str(uuid.uuid4()),
            client_id=server.hub.client_id,  # one socket per server carries all our jobs' events
            template=template,
            params=params,
            seed=seed,
            nodes_total=len(workflow),
            submitted_at=time.time(),
        )
        watch = await self._live_watch(server, record, workflow) if self._servers.live_allowed(server) else None
        if watch is None:
            watch = self._watch_new(server, record, workflow, live=False)
            record.live_progress = False
            record.warnings.append(
                f"ComfyUI at {server.client.url} would not open its live connection (websocket), so there is no "
                "live progress for this job; Ategnatos checks its queue and history every few seconds instead. "
                "If ComfyUI sits behind a proxy, let it pass websocket upgrades for /ws."
            )
            if watch.stream_nodes:
                record.warnings.append(
                    f"Node(s) {', '.join(sorted(watch.stream_nodes))} (SaveImageWebsocket) send their pictures only "
                    "over that live connection, so this job's pictures from them cannot be saved. Use a SaveImage "
                    "node instead, or fix the connection, and run it again."
                )
            self._tg.start_soon(watch.run)
        try:
            accepted = await self._post(server, workflow, record)
        except BaseException:
            watch.scope.cancel()
            raise
        record.warnings.extend(p.message for p in dropped_output_problems(accepted.node_errors))
        self._jobs[job_id] = watch
        self._workflows[job_id] = workflow
        watch.mark_submitted()
        return watch

    def _watch_new(self, server: PoolServer, record: JobRecord, workflow: dict[str, Any], *, live: bool) -> JobWatch:
        return JobWatch(
            record,
            server.client,
            on_finished=self._finished,
            check_every=self._settings.job_check_seconds,
            subscribe=server.hub.subscribe,
            live=live,
            poll_max=min(2.0, self._settings.job_check_seconds),
            stream_nodes=streaming_nodes(workflow),
        )

    async def _live_watch(self, server: PoolServer, record: JobRecord, workflow: dict[str, Any]) -> JobWatch | None:
        """A watch on the server's websocket, subscribed before the POST; None when the socket will not open."""
        watch = self._watch_new(server, record, workflow, live=True)
        self._tg.start_soon(watch.run)
        # The open has its own short timeout (a socket that accepts and never answers must not hold up the
        # job for a whole request timeout); this is only a backstop around it.
        with anyio.move_on_after(self._settings.ws_open_timeout_seconds + 1):
            await watch.connected.wait()
        if watch.connect_error is None and watch.connected.is_set():
            return watch
        watch.scope.cancel()
        # The HTTP API answered a moment ago (routing asked it), so only the socket is out: poll instead.
        self._servers.mark_live_down(server)
        reason = watch.connect_error.message if watch.connect_error else "it did not open in time"
        logger.info("ComfyUI %s websocket unavailable (%s); following jobs by polling", server.client.url, reason)
        return None

    async def _post(self, server: PoolServer, workflow: dict[str, Any], record: JobRecord) -> Any:
        try:
            return await server.client.submit(workflow, client_id=record.client_id, prompt_id=record.prompt_id)
        except PromptRejected as exc:
            problems = problems_from_rejection(exc.rejection)
            server.object_info = None  # our cached catalogue was out of date
            raise WorkflowInvalid(
                f"ComfyUI at {server.client.url} refused the workflow:\n{describe_problems(problems)}",
                problems=problems,
                server=server.client.url,
                hint="Fix these (use the closest names listed), then submit again. Nothing was queued.",
            ) from exc
        except UpstreamError as exc:
            if not exc.retryable or exc.status is not None:
                raise
            # The reply may have been lost after ComfyUI queued the job: look before submitting again.
            if await self._already_queued(server, record):
                return PromptAccepted(prompt_id=record.prompt_id)
            return await server.client.submit(workflow, client_id=record.client_id, prompt_id=record.prompt_id)

    async def _already_queued(self, server: PoolServer, record: JobRecord) -> bool:
        # By prompt id (ours, chosen before the POST): the client id is shared by all our jobs on the server.
        queue = await server.client.queue()
        if record.prompt_id in queue.running + queue.pending:
            return True
        return await server.client.history(record.prompt_id) is not None

    async def _finished(self, watch: JobWatch) -> None:
        server = self._servers.get(watch.record.server)
        if server is not None:
            server.in_flight = max(0, server.in_flight - 1)
        self._prune(watch.record.job_id)
        if watch.stream_nodes and watch.missed_events:
            watch.record.warnings.append(
                "The live connection to ComfyUI dropped while this job ran; pictures its SaveImageWebsocket "
                "node(s) sent meanwhile were missed (ComfyUI keeps no copy of them). Run the job again if some "
                "are missing, or use a SaveImage node to have ComfyUI keep the files."
            )
        streamed, watch.streamed = watch.streamed, []  # frames are held only until they are saved
        if not watch.record.outputs and not streamed:
            return
        try:
            watch.record.saved, watch.previews = await save_outputs(
                watch.record,
                watch.client,
                self._outputs_dir,
                workflow=self._workflows.get(watch.record.job_id, {}),
                preview_max_side=self._settings.preview_max_side,
                preview_budget_bytes=self._settings.preview_budget_bytes,
                streamed=streamed,
            )
        except (UpstreamError, NotFoundError, OSError) as exc:
            watch.record.warnings.append(f"Could not download the results: {exc}")

    def _prune(self, job_id: str) -> None:
        """Forget the oldest finished jobs beyond a few hundred; keep previews of the newest few only.

        ``_finished_order`` lists finished jobs oldest first, so this costs O(1) per job, not a scan of all.
        """
        self._finished_order[job_id] = None
        while len(self._finished_order) > _KEEP_JOBS:
            old = next(iter(self._finished_order))
            del self._finished_order[old]
            self._jobs.pop(old, None)
            self._workflows.pop(old, None)
            self._with_previews.pop(old, None)
        self._with_previews[job_id] = None
        while len(self._with_previews) > _KEEP_PREVIEWS:
            old = next(iter(self._with_previews))
            del self._with_previews[old]
            if old in self._jobs:
                self._jobs[old].previews = []

    def previews(self, job_id: str) -> list[tuple[bytes, str]]:
        """The job's downscaled previews (within the byte budget), when still kept."""
        return self._watch(job_id).previews

    def _watch(self, job_id: str) -> JobWatch:
        watch = self._jobs.get(job_id)
        if watch is None:
            raise NotFoundError(
                f"There is no job '{job_id}' in this session.",
                kind="job",
                name=job_id,
                hint="Use the job_id that comfyui_submit returned; jobs are kept until the server restarts.",
            )
        return watch

    def job(self, job_id: str) -> JobRecord:
        return self._watch(job_id).record

    def workflow_of(self, job_id: str) -> dict[str, Any]:
        self._watch(job_id)
        return self._workflows[job_id]

    def jobs(self) -> list[JobRecord]:
        return [w.record for w in self._jobs.values()]

    async def wait(self, job_id: str, seconds: float, on_progress: Progress | None = None) -> JobRecord:
        """Wait up to ``seconds`` for the job to finish (results saved), reporting progress meanwhile."""
        watch = self._watch(job_id)
        stop = watch.listen(on_progress) if on_progress else None
        try:
            with anyio.move_on_after(max(0.0, seconds)):
                await watch.done.wait()
        finally:
            if stop:
                stop()
        return watch.record

    async def cancel(self, job_id: str) -> JobRecord:
        """Stop a job: remove it from the queue, or interrupt it when it is running."""
        watch = self._watch(job_id)
        record = watch.record
        if record.state.finished:
            return record
        client = watch.client
        queue = await client.queue()
        if record.prompt_id in queue.pending:
            await client.delete_from_queue([record.prompt_id])
            watch.mark_removed()
        else:
            await client.interrupt(record.prompt_id)
        with anyio.move_on_after(self._settings.request_timeout_seconds):
            await watch.done.wait()
        return record


@asynccontextmanager
async def open_pool(
    urls: list[str], *, settings: ComfyUISettings, outputs_dir: Path, http: httpx.AsyncClient | None = None
) -> AsyncIterator[ComfyUIPool]:
    """A pool with its own task group and HTTP client, for use outside the MCP server (scripts, benchmarks)."""
    async with anyio.create_task_group() as tg:
        own = http is None
        client = http or httpx.AsyncClient()
        try:
            yield ComfyUIPool(urls, client, settings=settings, task_group=tg, outputs_dir=outputs_dir)
        finally:
            tg.cancel_scope.cancel()
            if own:
                with anyio.CancelScope(shield=True):
                    await client.aclose()
