"""SSH to GPU hosts: sessions that reconnect, detached processes, verified transfers, port forwards, steps.

Importing this package is cheap: asyncssh is loaded only when a connection is opened.

Typical use (``remote_deploy``, the watchdog install)::

    connector = SSHConnector.from_settings(settings)          # one per server (e.g. app.service("ssh", ...))
    key = await connector.key()                               # key.public_key -> register with the provider
    host = RemoteHost(host=ip, port=port, username="root", name=f"runpod:{pod_id}")   # name = stable identity
    async with connector.session(host) as ssh:                # host key pinned on first contact, checked after
        await ssh.run("nvidia-smi", timeout=30)               # RemoteCommandError(exit_status, stderr_tail)
        report = await run_steps(ssh, [Step(name="clone-comfyui", command="git clone ...")], progress)
        await upload(ssh, local_file, "models/x.safetensors", progress)   # resumable, sha256-verified
        await sync_folder(ssh, dataset_dir, "datasets/mychar", progress)  # only new/changed files
        await start_detached(ssh, "comfyui", "python main.py --listen 127.0.0.1 --port 8188")
        forward = await forward_port(ssh, 8188)               # forward.url = http://127.0.0.1:<port>
        app.task_group.start_soon(forward.keep_open)          # same URL again after a drop, until closed

Later, from any session: ``detached_status(ssh, "comfyui")`` (running / finished / failed / stopped / lost),
``read_log(ssh, "comfyui", offset=n)`` (carry ``next_offset``), ``stop_detached(ssh, "comfyui")``.
When an instance is terminated: ``await connector.forget_host_key(host)``.

On the host everything lives under ``~/.ategnatos/``: ``runs/<name>/`` (pid, log, exit, stopped, command)
and ``steps/<name>.done`` (fingerprint of the step's command).

Errors (all ``AtegnatosError``): ``SSHConnectionError`` (unreachable, key refused, dropped; ``retryable``
tells which), ``HostKeyChangedError`` (pinned key differs: never treat as "not ready yet"),
``RemoteCommandError`` (exit status, stderr tail), ``StepFailedError`` (a ``RemoteCommandError`` carrying the
``StepReport``), ``TransferError``.
"""

from ategnatos_mcp.remote.detached import detached_status, read_log, start_detached, stop_detached
from ategnatos_mcp.remote.forward import PortForward, forward_port
from ategnatos_mcp.remote.hostkeys import HostKeyChangedError, HostKeyStore
from ategnatos_mcp.remote.keys import default_key_dir, ensure_key
from ategnatos_mcp.remote.models import (
    CommandResult,
    DetachedStatus,
    KeyInfo,
    LogChunk,
    RemoteHost,
    Step,
    StepOutcome,
    StepReport,
    SyncReport,
    TransferReport,
)
from ategnatos_mcp.remote.session import SSHConnectionError, SSHConnector, SSHSession
from ategnatos_mcp.remote.steps import StepFailedError, forget_steps, run_steps
from ategnatos_mcp.remote.sync import sync_folder
from ategnatos_mcp.remote.transfer import TransferError, download, upload

__all__ = [
    # connecting
    "RemoteHost",
    "SSHConnector",
    "SSHSession",
    "KeyInfo",
    "HostKeyStore",
    "default_key_dir",
    "ensure_key",
    "CommandResult",
    # detached processes (survive a dropped connection)
    "DetachedStatus",
    "LogChunk",
    "start_detached",
    "detached_status",
    "read_log",
    "stop_detached",
    # files
    "TransferReport",
    "SyncReport",
    "upload",
    "download",
    "sync_folder",
    # ComfyUI on the host, reached through SSH
    "PortForward",
    "forward_port",
    # idempotent setup
    "Step",
    "StepOutcome",
    "StepReport",
    "run_steps",
    "forget_steps",
    # callbacks and errors
    "SSHConnectionError",
    "HostKeyChangedError",
    "StepFailedError",
    "TransferError",
]
