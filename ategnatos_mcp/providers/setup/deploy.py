"""remote_deploy: idempotent setup of ComfyUI or a training backend on a rented instance, plus the watchdog.

A training backend (kohya sd-scripts, SimpleTuner, ai-toolkit) is installed at the commit its option catalogue
was read from, with the PyTorch build the CUDA matrix picks for the instance's driver (``trainers.py``).

Every step leaves a done-marker on the host (``remote.run_steps``), so a rerun after a dropped connection
continues where it stopped. ComfyUI listens on the host's 127.0.0.1 only and is reached through an SSH port
forward (it has no authentication; never expose it publicly).
"""

from __future__ import annotations

import functools
import shlex
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from datetime import datetime
from typing import Literal

import anyio
import httpx
from pydantic import BaseModel, Field

from ategnatos_mcp.errors import AtegnatosError, BusyError, InvalidRequestError
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.providers.models import InstanceStatus, Rental
from ategnatos_mcp.providers.setup.trainers import (
    TRAINERS,
    TrainerSetup,
    TrainerVersion,
    choose_pytorch,
    read_gpu,
    trainer_steps,
)
from ategnatos_mcp.providers.setup.watchdog import (
    HEARTBEAT_COMMAND,
    VAST_API_URL,
    install_command,
    render_watchdog,
    stop_command_for,
)
from ategnatos_mcp.remote import (
    PortForward,
    RemoteHost,
    SSHConnectionError,
    SSHConnector,
    SSHSession,
    Step,
    detached_status,
    forward_port,
    run_steps,
    start_detached,
)
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.state.claims import Holder

__all__ = [
    "TRAINER_TARGETS",
    "DeployPlan",
    "DeployResult",
    "DeployTarget",
    "Deployer",
    "deploy_plan",
    "setting_up",
]

DeployTarget = Literal["comfyui", "kohya", "simpletuner", "ai-toolkit", "watchdog"]
TRAINER_TARGETS = ("kohya", "simpletuner", "ai-toolkit")

COMFYUI_REPO = "https://github.com/comfyanonymous/ComfyUI.git"


class DeployPlan(BaseModel):
    """What to set up. Repos and ports are fields so tests (and mirrors) can point elsewhere."""

    target: DeployTarget
    steps: list[Step]
    start_comfyui: bool = False
    comfyui_dir: str = Field(default="ComfyUI", description="Relative to the login home (cwd is quoted, so no ~).")
    comfyui_port: int = 8188
    forward: bool = True
    ready_seconds: float = Field(default=120.0, ge=0, description="How long to wait for ComfyUI to answer.")
    watchdog_note: str = ""
    trainer: TrainerSetup | None = Field(
        default=None, description="A training backend to install (its steps depend on the GPU found there)."
    )


class DeployResult(BaseModel):
    """What remote_deploy did on the instance."""

    instance: str
    target: DeployTarget
    ran: list[str] = Field(default_factory=list, description="Steps done now.")
    skipped: list[str] = Field(default_factory=list, description="Steps already done earlier (idempotent rerun).")
    comfyui: str | None = Field(default=None, description="'started' or 'already running'.")
    comfyui_url: str | None = Field(default=None, description="Local URL of the SSH-forwarded ComfyUI.")
    replaced_urls: list[str] = Field(
        default_factory=list, description="Earlier tunnel URLs of this instance that no longer lead to it."
    )
    comfyui_answering: bool = Field(default=False, description="ComfyUI answered through the tunnel.")
    trainer: str | None = Field(default=None, description="The backend installed: which version, where.")
    pytorch: str | None = Field(default=None, description="The PyTorch build installed, and why that one.")
    watchdog: str


def _clone(name: str, repo: str, folder: str) -> Step:
    return Step(
        name=f"{name}-clone",
        description=f"download {name}",
        command=f"git clone --depth 1 {shlex.quote(repo)} {folder}",
        check=f"test -d {folder}/.git",
    )


def _requirements(name: str, folder: str) -> Step:
    return Step(
        name=f"{name}-requirements",
        description=f"install {name}'s Python packages",
        command=f"cd {folder} && python3 -m pip install -q --disable-pip-version-check -r requirements.txt",
        check=f"! test -s {folder}/requirements.txt",  # nothing listed: nothing to install
        timeout_seconds=3600,
    )


def deploy_plan(
    target: DeployTarget,
    rental: Rental,
    *,
    idle_minutes: int,
    max_hours: float,
    now: datetime,
    repo: str | None = None,
    comfyui_port: int = 8188,
    stop_command: str | None = None,
    forward: bool = True,
    vast_api_url: str = VAST_API_URL,
    trainer_version: TrainerVersion | None = None,
) -> DeployPlan:
    """The steps for ``target``; the watchdog always comes first (stop when idle or past ``max_hours``, the
    settings' hard cap per instance, which the server's reconcile enforces too).

    A training backend needs ``trainer_version`` (the commit its option catalogue names); ``repo`` may point at a
    mirror of it.
    """
    deadline = int(rental.started_at.timestamp() + max_hours * 3600) if max_hours > 0 else 0
    script = render_watchdog(
        idle_minutes=idle_minutes,
        deadline_epoch=max(deadline, 0),
        stop_command=stop_command or stop_command_for(rental.provider, rental.instance_id, vast_api_url=vast_api_url),
    )
    steps = [Step(name="watchdog", description="install the idle/time-limit watchdog", command=install_command(script))]
    if target == "comfyui":
        steps += [_clone("comfyui", repo or COMFYUI_REPO, "~/ComfyUI"), _requirements("comfyui", "~/ComfyUI")]
    trainer = None
    if target in TRAINER_TARGETS:
        if trainer_version is None:
            raise ValueError(f"deploying {target} needs the version its option catalogue was read from")
        recipe = TRAINERS[target]
        mirror = repo or trainer_version.repo
        recipe = recipe.model_copy(update={"repo": mirror}) if mirror else recipe
        trainer = TrainerSetup(recipe=recipe, version=trainer_version)
    idle = f"after {idle_minutes} idle minutes" if idle_minutes else "never for idleness (it only warns)"
    limit = f"at {datetime.fromtimestamp(deadline, now.tzinfo):%Y-%m-%d %H:%M %Z}" if deadline else "no time limit"
    return DeployPlan(
        target=target,
        steps=steps,
        start_comfyui=target == "comfyui",
        comfyui_port=comfyui_port,
        forward=forward and target == "comfyui",
        watchdog_note=f"The instance stops itself {idle}; time limit: {limit}.",
        trainer=trainer,
    )


class Deployer:
    """Runs plans over SSH; keeps one session + port forward per instance until that instance ends
    (``release``) or the server stops (``stack`` closes them all)."""

    def __init__(self, connector: SSHConnector, stack: AsyncExitStack) -> None:
        self.connector = connector
        self.forwards: dict[str, PortForward] = {}
        self._sessions: dict[str, SSHSession] = {}
        self._urls: dict[str, set[str]] = {}  # every tunnel URL an instance had (normally one)
        stack.push_async_callback(self.aclose)

    async def _session(self, key: str, host: RemoteHost) -> SSHSession:
        session = self._sessions.get(key)
        if session is not None and not session.closed and _same_endpoint(session.host, host):
            return session
        # First contact, or the endpoint moved (ports change after a restart): start over on the new one
        # (its tunnel comes back on the same local port when it is free, so the pool's URL stays valid).
        await self._drop(key)
        session = self.connector.session(host)
        await session.connection()
        self._sessions[key] = session
        return session

    async def release(self, rental: Rental) -> list[str]:
        """The instance ended: close its tunnel and SSH session; forget its host key once it is terminated.

        Returns the URLs its tunnels had (to take out of the ComfyUI pool); empty when there was none.
        """
        await self._drop(rental.key)
        if rental.status is InstanceStatus.TERMINATED:
            await self.connector.forget_host_key(rental.key)
        return sorted(self._urls.pop(rental.key, set()))

    async def _drop(self, key: str) -> None:
        forward = self.forwards.pop(key, None)
        session = self._sessions.pop(key, None)
        if forward is not None:
            await forward.close()
        if session is not None:
            await session.close()

    async def aclose(self) -> None:
        """Close every tunnel and session (the server is stopping)."""
        for key in [*self.forwards, *self._sessions]:
            await self._drop(key)

    def instance_for(self, url: str) -> str | None:
        """The key of the instance whose tunnel ``url`` is (a ComfyUI server in the pool), if it is one of ours."""
        return next((key for key, urls in self._urls.items() if url in urls), None)

    async def revive(self, url: str) -> bool:
        """Reopen the tunnel ``url`` belongs to after its SSH connection dropped (same local port, so the same URL).

        Returns False when ``url`` is not one of our tunnels, or the instance cannot be reached now.
        """
        key = self.instance_for(url)
        forward = self.forwards.get(key) if key is not None else None
        if forward is None:
            return False
        if forward.open:
            return True
        try:
            await forward.reopen()
        except SSHConnectionError:
            return False
        return True

    def session_for(self, key: str) -> SSHSession | None:
        """The open SSH session to instance ``key`` (e.g. to put files next to its ComfyUI), if this deployer has one."""
        session = self._sessions.get(key)
        return session if session is not None and not session.closed else None

    @property
    def held(self) -> list[str]:
        """Instance keys this deployer holds an SSH session to."""
        return list(self._sessions)

    async def heartbeat(self, live: set[str]) -> list[str]:
        """Tell the ``live`` instances we hold a session to that the server is still here (resets the idle clock)."""
        failed: list[str] = []
        for key, session in list(self._sessions.items()):
            if key not in live:
                continue
            try:
                await session.run(HEARTBEAT_COMMAND, timeout=20)
            except AtegnatosError:
                failed.append(key)
        return failed

    async def deploy(self, rental: Rental, plan: DeployPlan, progress: Progress | None = None) -> DeployResult:
        """Run the plan's steps, start ComfyUI detached if asked, forward its port to this machine.

        Raises:
            InvalidRequestError: the instance has no SSH endpoint yet.
            StepFailedError: a step failed; rerun after fixing it, finished steps are skipped.
        """
        if not rental.ssh_host or not rental.ssh_port:
            raise InvalidRequestError(
                f"{rental.key} has no SSH endpoint yet.", hint="Wait until gpu_instances shows it ready, then retry."
            )
        host = RemoteHost(host=rental.ssh_host, port=rental.ssh_port, username=rental.ssh_user, name=rental.key)
        session = await self._session(rental.key, host)
        report = await run_steps(session, plan.steps, progress)  # the watchdog first, whatever happens next
        result = DeployResult(
            instance=rental.key,
            target=plan.target,
            ran=report.ran,
            skipped=report.skipped,
            watchdog=("Watchdog installed. " if "watchdog" in report.ran else "Watchdog already installed. ")
            + plan.watchdog_note,
        )
        if plan.trainer is not None:
            gpu = await read_gpu(session, rental.key)
            choice = choose_pytorch(gpu, plan.trainer.recipe, rental.key)
            more = await run_steps(session, trainer_steps(plan.trainer, choice), progress)
            result.ran += more.ran
            result.skipped += more.skipped
            result.trainer = plan.trainer.describe()
            result.pytorch = f"PyTorch {choice.label} for the {gpu.name}: {choice.reason}."
        await session.run(HEARTBEAT_COMMAND, timeout=30)
        if plan.start_comfyui:
            status = await detached_status(session, "comfyui")
            if not status.running:
                command = f"python3 main.py --listen 127.0.0.1 --port {plan.comfyui_port}"
                await start_detached(session, "comfyui", command, cwd=plan.comfyui_dir, replace=True)
            result.comfyui = "already running" if status.running else "started"
        if plan.forward:
            before = set(self._urls.get(rental.key, set()))
            forward = await self._forward(rental.key, session, plan.comfyui_port)
            result.comfyui_url = forward.url
            result.replaced_urls = sorted(before - self._urls[rental.key])
            result.comfyui_answering = await _answers(forward.url, plan.ready_seconds)
        return result

    async def _forward(self, key: str, session: SSHSession, port: int) -> PortForward:
        forward = self.forwards.get(key)
        if forward is not None and forward.open:
            return forward
        if forward is not None:
            # Same local port again when it is free, so the URL the ComfyUI pool knows stays valid.
            try:
                await forward.reopen()
                return forward
            except SSHConnectionError:
                await forward.close()
        known = self._urls.setdefault(key, set())
        wanted = min((int(url.rsplit(":", 1)[1]) for url in known), default=0)
        try:
            forward = await forward_port(session, port, local_port=wanted)
        except SSHConnectionError:
            if not wanted:
                raise
            forward = await forward_port(session, port)  # taken meanwhile: any free port
            known.clear()  # the old port is someone else's now (deploy reports it, to leave the ComfyUI pool)
        self.forwards[key] = forward
        known.add(forward.url)
        return forward


def setting_up(store: GrimoireStore, key: str) -> AbstractAsyncContextManager[None]:
    """Set up instance ``key`` from one conversation at a time, across every server on this project (two set-ups
    at once would run the same clone and install steps into the same folders on the host).

    Raises:
        BusyError: another conversation is setting it up right now.
    """
    return store.claim(
        "deploy+" + "".join(c if c.isalnum() else "-" for c in key),
        f"setting up {key}",
        refuse=functools.partial(_setting_up_elsewhere, key),
    )


def _setting_up_elsewhere(key: str, holder: Holder) -> BusyError:
    return BusyError(
        f"{key} is being set up right now from another conversation{holder.since_text}; nothing was started twice.",
        hint=f"Call remote_deploy for {key} again once that has finished: the steps it already did are skipped.",
    )


def _same_endpoint(a: RemoteHost, b: RemoteHost) -> bool:
    return (a.host, a.port, a.username) == (b.host, b.port, b.username)


async def _answers(url: str, within: float) -> bool:
    """Poll ComfyUI's /system_stats through the tunnel; it takes a while to load its nodes after a start."""
    async with httpx.AsyncClient(timeout=5.0) as http:
        with anyio.move_on_after(within):
            while True:
                try:
                    if (await http.get(f"{url}/system_stats")).status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                await anyio.sleep(0.5)
    return False
