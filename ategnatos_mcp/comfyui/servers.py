"""ServerSet: the pool's ComfyUI servers, their health, node catalogues, and which one gets the next job.

Routing: each job goes to the healthy server with the shortest queue that passes validation (has the
nodes and models the workflow needs). A server that fails to answer is marked down and skipped for
``down_retry_seconds`` (tried anyway when every server is down). A server whose HTTP API answers but whose
websocket will not open is marked "live down" instead: it still gets jobs, followed by polling.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from anyio.abc import TaskGroup

from ategnatos_mcp.comfyui.bounded import ReadLimits
from ategnatos_mcp.comfyui.client import ComfyUIClient
from ategnatos_mcp.comfyui.failures import start_hint
from ategnatos_mcp.comfyui.hub import EventHub
from ategnatos_mcp.comfyui.models import ServerStatus, ValidationProblem
from ategnatos_mcp.comfyui.probe import probe_client
from ategnatos_mcp.comfyui.validate import WorkflowInvalid, describe_problems, validate_workflow
from ategnatos_mcp.errors import InvalidRequestError, UpstreamError
from ategnatos_mcp.settings import ComfyUISettings

__all__ = ["PoolServer", "ServerSet"]

logger = logging.getLogger(__name__)

_OBJECT_INFO_TTL = 300.0


@dataclass
class PoolServer:
    """One ComfyUI of the pool: its client, its shared event socket, and what the pool knows about it."""

    client: ComfyUIClient
    hub: EventHub
    down_until: float = 0.0
    object_info: dict[str, Any] | None = None
    object_info_at: float = 0.0
    in_flight: int = 0
    assigned: int = 0
    live_down_until: float = 0.0  # the websocket would not open: poll until then instead of trying again
    lock: anyio.Lock = field(default_factory=anyio.Lock)


class ServerSet:
    """The servers by URL; ``choose`` picks one for a workflow, ``status`` probes them all."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        settings: ComfyUISettings,
        task_group: TaskGroup,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._settings = settings
        self._tg = task_group
        self._clock = clock
        self._servers: dict[str, PoolServer] = {}

    def add(self, url: str) -> None:
        """Add a ComfyUI endpoint (no-op when it is already there)."""
        key = url.rstrip("/")
        if key not in self._servers:
            client = ComfyUIClient(
                key,
                self._http,
                timeout=self._settings.request_timeout_seconds,
                upload_timeout=self._settings.upload_timeout_seconds,
                ws_open_timeout=self._settings.ws_open_timeout_seconds,
                limits=ReadLimits(
                    answer_bytes=self._settings.max_answer_bytes,
                    object_info_bytes=self._settings.max_object_info_bytes,
                    download_bytes=self._settings.max_download_bytes,
                ),
            )
            self._servers[key] = PoolServer(client, EventHub(client, self._tg))

    def remove(self, url: str) -> bool:
        """Stop routing to an endpoint; True when it was there."""
        return self._servers.pop(url.rstrip("/"), None) is not None

    @property
    def urls(self) -> list[str]:
        return list(self._servers)

    def get(self, url: str) -> PoolServer | None:
        return self._servers.get(url)

    def ordered(self) -> list[PoolServer]:
        """Servers not marked down first."""
        now = self._clock()
        return sorted(self._servers.values(), key=lambda s: s.down_until > now)

    def mark_down(self, server: PoolServer) -> None:
        server.down_until = self._clock() + self._settings.down_retry_seconds
        server.object_info = None

    def mark_live_down(self, server: PoolServer) -> None:
        """Its websocket would not open: follow its jobs by polling, and do not try the socket for a while."""
        server.live_down_until = self._clock() + self._settings.down_retry_seconds

    def live_allowed(self, server: PoolServer) -> bool:
        return server.live_down_until <= self._clock()

    async def status(self) -> list[ServerStatus]:
        """Every server's reachability, version, queue and models."""
        results: dict[str, ServerStatus] = {}

        async def one(url: str, server: PoolServer) -> None:
            probe = await probe_client(server.client, deadline=self._settings.status_timeout_seconds)
            if probe.reachable:
                server.down_until = 0.0
            else:
                self.mark_down(server)
            results[url] = ServerStatus(
                **probe.model_dump(), marked_down=server.down_until > self._clock(), jobs_in_flight=server.in_flight
            )

        async with anyio.create_task_group() as tg:
            for url, server in self._servers.items():
                tg.start_soon(one, url, server)
        return [results[url] for url in self._servers]

    async def object_info(self, server: PoolServer, *, refresh: bool = False) -> dict[str, Any]:
        """The server's node catalogue, cached for a few minutes (refreshed when a check fails)."""
        async with server.lock:
            stale = self._clock() - server.object_info_at > _OBJECT_INFO_TTL
            if server.object_info is None or refresh or stale:
                server.object_info = await server.client.object_info()
                server.object_info_at = self._clock()
            return server.object_info

    async def _assess(
        self, server: PoolServer, workflow: dict[str, Any], skip: set[tuple[str, str]], *, alone: bool = False
    ) -> tuple[list[ValidationProblem], int] | UpstreamError:
        """(problems, queue size) for one server, or why it does not answer."""
        try:
            info = await self.object_info(server)
            problems = validate_workflow(workflow, info, skip=skip)
            if problems and any(p.kind in ("not_in_list", "unknown_node") for p in problems):
                # Models or custom nodes may have been added since we cached the catalogue.
                info = await self.object_info(server, refresh=True)
                problems = validate_workflow(workflow, info, skip=skip)
            # With a single candidate there is nothing to compare: skip the queue round trip.
            size = 0 if alone else (await server.client.queue()).size
        except UpstreamError as exc:
            logger.info("ComfyUI %s unavailable: %s", server.client.url, exc.message)
            self.mark_down(server)
            return exc
        server.down_until = 0.0
        return problems, size

    async def choose(self, workflow: dict[str, Any], skip: set[tuple[str, str]]) -> PoolServer:
        """The server for this workflow, counted as having one more job in flight.

        Raises:
            WorkflowInvalid: no answering server can run it (the problems of the closest one).
            UpstreamError: no server answers.
        """
        now = self._clock()
        candidates = [s for s in self._servers.values() if s.down_until <= now] or list(self._servers.values())
        if not candidates:
            raise InvalidRequestError(
                "No ComfyUI server is configured.",
                hint="Set ATEGNATOS_COMFYUI_URL or [comfyui] urls in ategnatos.toml.",
            )
        assessed: dict[str, tuple[list[ValidationProblem], int] | UpstreamError] = {}

        async def one(server: PoolServer) -> None:
            assessed[server.client.url] = await self._assess(server, workflow, skip, alone=len(candidates) == 1)

        if len(candidates) == 1:
            await one(candidates[0])
        else:
            async with anyio.create_task_group() as tg:
                for server in candidates:
                    tg.start_soon(one, server)
        answering = [(s, a) for s in candidates if not isinstance(a := assessed[s.client.url], UpstreamError)]
        if not answering:
            failures = [a for a in assessed.values() if isinstance(a, UpstreamError)]
            if len(failures) == 1:
                raise failures[0]  # its own words: down, busy, or something else at that address
            raise UpstreamError(
                "No ComfyUI is answering:\n" + "\n".join(f"- {f.message}" for f in failures),
                service="comfyui",
                hint=start_hint(candidates[0].client.url) + " (comfyui_status says what each address answers.)",
                retryable=True,
            )
        fit = [(s, a) for s, a in answering if not a[0]]
        if not fit:
            server, (problems, _) = min(answering, key=lambda p: len(p[1][0]))
            raise WorkflowInvalid(
                f"The workflow cannot run on ComfyUI at {server.client.url}:\n{describe_problems(problems)}",
                problems=problems,
                server=server.client.url,
                hint="Fix these (use the closest names listed), then submit again. Nothing was queued.",
            )
        # Shortest queue first (ours may be ahead of what the server reported); on a tie, the server given
        # the fewest jobs so far. Counted before any await, so concurrent submits spread out too.
        server, _ = min(fit, key=lambda p: (max(p[1][1], p[0].in_flight), p[0].in_flight, p[0].assigned))
        server.assigned += 1
        server.in_flight += 1
        return server
