"""The wiring of a running server: one typed object holding every service, and the reactions between domains.

The domains (eye, studio, comfyui, art, export, dataset, training, providers, remote) know nothing of each other's
lifetimes; what ties them is written here, once:

- a rental ends (teardown, boot timeout, gone at the provider, hour cap) -> its SSH session and tunnel close and its
  ComfyUI server leaves the pool;
- a deploy connects ComfyUI on an instance -> the server joins the pool (a tunnel that moved takes its old URL out);
- a rental becomes ready -> the idle watchdog is installed on it;
- an audit for a training run -> gate 1 of that run; a kohya layout -> the training preset's repeats;
- a training plan -> the checkpoints ComfyUI lists (base-model suggestions); an evaluation -> a ComfyUI of the pool
  and its LoRA folder (on this machine, or on a rented instance through its SSH session); an export that must enlarge -> ComfyUI's upscaler;
- a ComfyUI job for an asset -> the asset's history;
- start-up -> views that do not match the state are rendered again, and the clouds are reconciled.

Services are built on first use, so a server starts as fast as a bare one and a tool never pays for a service it
does not use. A test replaces a service by setting its field before the first call, e.g. ``wiring.gpu = fake``.
No domain imports this module; ``tools/`` reach it through ``Context``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
from anyio.abc import TaskGroup

from ategnatos_mcp.art import ArtDirector
from ategnatos_mcp.comfyui import ComfyUIPool, ComfyUIService, JobView
from ategnatos_mcp.dataset import DatasetService
from ategnatos_mcp.errors import AtegnatosError, BusyError, StateError
from ategnatos_mcp.export import AssetExporter, ComfyUIUpscaler
from ategnatos_mcp.eye import EYE_DOCUMENT, EYE_VIEW
from ategnatos_mcp.providers import (
    GPU_DOCUMENT,
    GPU_VIEW,
    Deployer,
    DeployPlan,
    DeployResult,
    GpuDocument,
    GpuService,
    Rental,
    deploy_plan,
    open_gpu_service,
    teardown_reminder,
)
from ategnatos_mcp.providers.setup.deploy import TRAINER_TARGETS, setting_up
from ategnatos_mcp.providers.setup.trainers import TrainerVersion
from ategnatos_mcp.remote import SSHConnector
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.state.atomic import tidy_folder
from ategnatos_mcp.studio import STUDIO_DOCUMENT, STUDIO_VIEW, Environment
from ategnatos_mcp.training import resolve_family
from ategnatos_mcp.training.backends.catalogue import catalogue_version
from ategnatos_mcp.training.evaluation import EvalStudio, Evaluations, Keeper
from ategnatos_mcp.training.execution import HostRegistry, TrainingRuns
from ategnatos_mcp.training.execution.models import ExecutionState
from ategnatos_mcp.training.gates import adopt_old_document_names, record_dataset_gate
from ategnatos_mcp.training.presets import preset_repeats
from ategnatos_mcp.wiring.checkpoints import comfyui_checkpoints
from ategnatos_mcp.wiring.environment import this_machine
from ategnatos_mcp.wiring.evaluation import choose_studio
from ategnatos_mcp.wiring.generations import log_generation

__all__ = ["Wiring", "utc_now"]

logger = logging.getLogger("ategnatos_mcp.wiring")

# Leave room for encoding within a client's ~60 s tool-call limit.
_UPSCALE_WAIT_SECONDS = 35.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def _is_execution_record(text: str) -> bool:
    try:
        ExecutionState.model_validate_json(text)
    except ValueError:
        return False
    return True


@dataclass
class Wiring:
    """Settings, the grimoire store, a clock, and the server's services (each built on first use)."""

    settings: Settings
    store: GrimoireStore
    clock: Callable[[], datetime] = utc_now
    session_id: str = field(default_factory=lambda: utc_now().strftime("%Y%m%dT%H%M%S"))
    exit_stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    task_group: TaskGroup | None = None

    # The services. None until first use; a test may set one beforehand to replace it.
    ssh: SSHConnector | None = None
    comfyui: ComfyUIPool | None = None
    gpu: GpuService | None = None
    deployer: Deployer | None = None
    datasets: DatasetService | None = None
    hosts: HostRegistry | None = None
    runs: TrainingRuns | None = None
    art: ArtDirector | None = None
    evaluations: Evaluations | None = None
    keeper: Keeper | None = None
    trainer_versions: dict[str, TrainerVersion] | None = None  # a test may pin commits of a local mirror

    _locks: dict[str, anyio.Lock] = field(default_factory=dict[str, anyio.Lock], repr=False)
    tidied: anyio.Event = field(init=False, repr=False)  # set once the start-up tidy of the workspace is done

    def __post_init__(self) -> None:
        # The markdown views of documents several domains write (each domain renders its own).
        self.store.register_view(EYE_DOCUMENT, EYE_VIEW)
        self.store.register_view(STUDIO_DOCUMENT, STUDIO_VIEW)
        self.store.register_view(GPU_DOCUMENT, GPU_VIEW)

    def _lock(self, service: str) -> anyio.Lock:
        # One lock per service: building one may need another (the GPU service needs the SSH connector).
        return self._locks.setdefault(service, anyio.Lock())

    def _running(self) -> TaskGroup:
        if self.task_group is None:
            raise StateError("The server is not running (no task group for background work).", document="")
        return self.task_group

    # --- the services --------------------------------------------------------------------------------
    async def ssh_connector(self) -> SSHConnector:
        """The one SSH connector (our key, pinned host keys), shared by readiness checks, deploys and training."""
        if self.ssh is None:
            self.ssh = SSHConnector.from_settings(self.settings)
        return self.ssh

    async def comfyui_pool(self) -> ComfyUIPool:
        """The ComfyUI servers and their jobs; its HTTP client closes with the server."""
        async with self._lock("comfyui"):
            if self.comfyui is None:
                http = httpx.AsyncClient()
                self.exit_stack.push_async_callback(http.aclose)
                cfg = self.settings.comfyui
                self.comfyui = ComfyUIPool(
                    cfg.urls, http, settings=cfg, task_group=self._running(), outputs_dir=self.settings.outputs_dir
                )
        return self.comfyui

    async def comfyui_service(self) -> ComfyUIService:
        return ComfyUIService(await self.comfyui_pool(), self.settings, self.store)

    async def gpu_service(self) -> GpuService:
        """The GPU clouds, quotes, consent, budgets and the ledger."""
        connector = await self.ssh_connector()
        async with self._lock("gpu"):
            if self.gpu is None:
                self.gpu = await open_gpu_service(
                    self.settings, self.store, self.exit_stack, clock=self.clock, connector=connector
                )
        self.gpu.end_listeners["release"] = self.rental_ended  # by name: set again, never twice
        return self.gpu

    async def instance_deployer(self) -> Deployer:
        """Sets up rented instances; an instance's SSH session and tunnel stay open until it ends."""
        connector = await self.ssh_connector()
        async with self._lock("deployer"):
            if self.deployer is None:
                self.deployer = Deployer(connector, self.exit_stack)
        return self.deployer

    async def dataset_service(self) -> DatasetService:
        async with self._lock("datasets"):
            if self.datasets is None:
                cfg = self.settings.dataset
                self.datasets = DatasetService(
                    cache_dir=self.settings.cache_dir,
                    workers=cfg.workers,
                    threshold=cfg.near_duplicate_threshold,
                    clock=self.clock,
                    roots=self.settings.roots,
                    spawn=self._spawn,
                    wait_seconds=cfg.max_wait_seconds,
                )
                self.exit_stack.callback(self.datasets.close)
        return self.datasets

    def _spawn(self, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        # Long reading goes on in the server's task group when a call stops waiting for it.
        self._running().start_soon(job)

    async def training_hosts(self) -> HostRegistry:
        async with self._lock("hosts"):
            if self.hosts is None:
                self.hosts = HostRegistry(self.settings.workspace_dir / "training", self.ssh_connector)
        return self.hosts

    async def training_runs(self) -> TrainingRuns:
        hosts = await self.training_hosts()
        async with self._lock("runs"):
            if self.runs is None:
                self.runs = TrainingRuns(self.store, hosts, self.clock, self.task_group)
        return self.runs

    async def art_director(self) -> ArtDirector:
        async with self._lock("art"):
            if self.art is None:
                self.art = await ArtDirector.open(self.store, self.clock)
        return self.art

    async def training_evaluations(self) -> Evaluations:
        """One per server, so a repeat call of train_evaluate finds the sheet being made."""
        runs = await self.training_runs()
        async with self._lock("evaluations"):
            if self.evaluations is None:
                cfg = self.settings.comfyui
                self.evaluations = Evaluations(
                    self.store,
                    runs,
                    runs.hosts,
                    self.clock,
                    self.task_group,
                    self.settings.workspace_dir,
                    preview_max_side=max(cfg.preview_max_side, 1536),
                    preview_budget_bytes=min(cfg.preview_budget_bytes, 600_000),
                )
        return self.evaluations

    async def lora_keeper(self) -> Keeper:
        found = await self.training_evaluations()
        async with self._lock("keeper"):
            if self.keeper is None:
                self.keeper = Keeper(found)
        return self.keeper

    def trainer_version(self, target: str) -> TrainerVersion | None:
        """The version of a backend remote_deploy installs: the commit its option catalogue was read from."""
        if self.trainer_versions is None:
            self.trainer_versions = {
                name: TrainerVersion.model_validate(catalogue_version(name)) for name in TRAINER_TARGETS
            }
        return self.trainer_versions.get(target)

    def exporter(self, *, upscale: bool) -> AssetExporter:
        """The exporter; with ``upscale`` a source too small for a size is enlarged on ComfyUI."""
        upscaler = None
        if upscale:
            wait = min(_UPSCALE_WAIT_SECONDS, self.settings.comfyui.max_wait_seconds)
            upscaler = ComfyUIUpscaler(self.comfyui_service, wait_seconds=wait)
        return AssetExporter(self.settings.exports_dir, upscaler=upscaler)

    # --- reactions between domains ------------------------------------------------------------------------
    async def rental_ended(self, rental: Rental) -> None:
        """An instance ended: close the SSH session and tunnel held for it, and stop sending ComfyUI jobs there."""
        if self.deployer is None:
            return  # nothing was deployed in this server's life: no session, no tunnel
        urls = await self.deployer.release(rental)
        if urls:
            pool = await self.comfyui_pool()
            for url in urls:
                pool.remove_server(url)

    async def deploy(self, rental: Rental, plan: DeployPlan, progress: Any = None) -> DeployResult:
        """Set up an instance; a ComfyUI reached through its tunnel joins the pool.

        Raises:
            BusyError: another conversation is setting up this instance right now.
        """
        async with setting_up(self.store, rental.key):
            result = await (await self.instance_deployer()).deploy(rental, plan, progress)
        if result.comfyui_url or result.replaced_urls:
            pool = await self.comfyui_pool()
            for url in result.replaced_urls:  # the tunnel had to move to another local port
                pool.remove_server(url)
            if result.comfyui_url:
                pool.add_server(result.comfyui_url)
        return result

    async def rental_ready(self, rental: Rental) -> str:
        """A rental answers SSH: install the idle watchdog on it. Returns what to tell the artist."""
        caps = self.settings.gpu
        plan = deploy_plan(
            "watchdog",
            rental,
            idle_minutes=caps.idle_stop_minutes,
            max_hours=caps.max_hours_per_instance,
            now=self.clock(),
            vast_api_url=self.settings.vast_api_url,
        )
        try:
            async with setting_up(self.store, rental.key):
                done = await (await self.instance_deployer()).deploy(rental, plan)
        except BusyError:
            return "Another conversation is setting this instance up right now; its set-up installs the watchdog first."
        except AtegnatosError as exc:
            logger.warning("watchdog on %s: %s", rental.key, exc.message)
            return f"The watchdog could not be installed ({exc.message}); run remote_deploy with target 'watchdog'."
        return done.watchdog

    def watch_boot(self, key: str) -> None:
        """Keep watching a rental that was still booting when the call returned; install the watchdog when ready."""
        self._running().start_soon(self._watch_boot, key)

    async def _watch_boot(self, key: str) -> None:
        try:
            service = await self.gpu_service()
            rental = await service.wait_ready(key, float(service.caps.boot_timeout_seconds) + 60)
            if rental.ready:
                await self.rental_ready(rental)
        except AtegnatosError as exc:
            logger.warning("instance %s: %s", key, exc.message)
        except Exception:  # background task: never take the server down
            logger.exception("watching %s boot failed", key)

    async def detect_environment(self) -> Environment:
        """This machine's GPU, driver, disk and keys, and each configured ComfyUI server (probed by comfyui)."""
        return await this_machine(self.settings, self.clock())

    async def log_generation(
        self, view: JobView, where: tuple[str, str, int | None] | None, workflow: str | None = None
    ) -> None:
        """A ComfyUI job for an asset goes on the asset's history; a failure to log becomes a note on the job."""
        await log_generation((await self.art_director()).assets, view, where, workflow)

    async def comfyui_checkpoints(self, *, timeout: float = 2.0) -> dict[str, list[str]]:
        """The checkpoint files each reachable ComfyUI lists, for a training plan's base-model suggestions."""
        return await comfyui_checkpoints(self.settings.comfyui.urls, timeout=timeout)

    async def teardown_note(self, comfyui_url: str) -> str | None:
        """Work that ran on a rented instance (through its tunnel) ends with a teardown reminder."""
        key = self.deployer.instance_for(comfyui_url) if self.deployer is not None else None
        if key is None:
            return None
        return teardown_reminder(await self.store.read(GPU_DOCUMENT, GpuDocument), key, self.clock())

    def training_repeats(self, preset: str, family: str | None) -> Callable[[int], int]:
        """A kohya layout follows the training preset: the repeats train_plan would choose for a folder of n images."""
        resolved = resolve_family(family) if family else None
        return lambda images: preset_repeats(preset, resolved, images)  # type: ignore[arg-type]

    async def dataset_audited(
        self, name: str, root: Path, *, fingerprint: str, go: bool, reasons: list[str], report: str
    ) -> Path:
        """An audit for training run ``name`` is its gate 1. Returns where the dataset report was written."""
        await record_dataset_gate(
            self.store,
            name,
            dataset_path=root,
            fingerprint=fingerprint,
            go=go,
            reasons=reasons,
            report_markdown=report,
        )
        return self.settings.grimoire_dir / "training" / name / "dataset-report.md"

    async def eval_studio(self, training_host: str) -> EvalStudio:
        """The ComfyUI that draws an evaluation and its LoRA folder: one on the training host's machine first (no
        file travels), else one whose LoRA folder Ategnatos can reach, else the first that answers."""
        return await choose_studio(await self.comfyui_service(), self.settings, self.deployer, training_host)

    # --- start-up and shut-down -------------------------------------------------------------------------
    def forget_services(self) -> None:
        """After the server stopped: its clients are closed, so the next run builds its services again."""
        self.ssh = self.comfyui = self.gpu = self.deployer = self.datasets = self.hosts = self.runs = self.art = None
        self.evaluations = self.keeper = None

    async def start(self) -> None:
        """Before the first call: older document names adopted, views brought in line with their documents,
        leftovers of killed writes removed."""
        await anyio.to_thread.run_sync(adopt_old_document_names, self.store.state_dir, _is_execution_record)
        await self.store.start()
        self.tidied = anyio.Event()

    async def tidy_workspace(self) -> None:
        """In the background after start-up: temp files killed writes left in the workspace (exports, ComfyUI
        outputs, kept LoRAs, local runs, datasets there) are removed, unless another server's writer holds one.
        ``tidied`` is set when done. Never fails."""
        try:
            await anyio.to_thread.run_sync(tidy_folder, self.settings.workspace_dir)
        finally:
            self.tidied.set()

    async def reconcile_clouds(self) -> None:
        """Reconcile with the providers when keys are set, so orphans show up at once. Never fails."""
        if not any(self.settings.provider_keys_present().values()):
            return
        try:
            result = await (await self.gpu_service()).instances()
        except Exception:  # start-up must never take the server down
            logger.exception("GPU reconcile at start-up failed")
            return
        if result.orphans:
            logger.warning(
                "%d instance(s) on your GPU accounts are not in the records; see gpu_instances", result.orphans
            )
