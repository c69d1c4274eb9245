"""SSH to GPU hosts: sessions that reconnect, detached processes, verified transfers, port forwards, steps.

Importing this package is cheap: asyncssh is loaded only when a connection is opened.

Typical use (``remote_deploy``)::

    connector = SSHConnector.from_settings(settings)          # one per server (app.service("ssh", ...))
    key = await connector.key()                               # key.public_key -> register with the provider
    host = RemoteHost(host=ip, port=port, username="root", name=f"runpod:{pod_id}")
    async with connector.session(host) as ssh:                # host key pinned on first contact
        await ssh.run("nvidia-smi", timeout=30)               # RemoteCommandError on failure
        report = await run_steps(ssh, [Step(name="clone-comfyui", command="git clone ...")], progress)
        await upload(ssh, local_file, "models/x.safetensors", progress)
        status = await start_detached(ssh, "comfyui", "python main.py --listen 127.0.0.1")
        forward = await forward_port(ssh, 8188)               # forward.url -> register with the ComfyUI pool

Errors: ``SSHConnectionError`` (unreachable, key refused, dropped; an ``UpstreamError``),
``HostKeyChangedError`` (pinned key differs; an ``UpstreamError``), ``RemoteCommandError`` (exit status, stderr
tail), ``StepFailedError`` (a ``RemoteCommandError`` carrying the ``StepReport``), ``TransferError``.
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
    Progress,
    RemoteHost,
    Step,
    StepOutcome,
    StepReport,
    SyncReport,
    TransferReport,
)
from ategnatos_mcp.remote.session import SSHConnectionError, SSHConnector, SSHSession
from ategnatos_mcp.remote.steps import StepFailedError, forget_steps, run_steps
from ategnatos_mcp.remote.transfer import TransferError, download, sync_folder, upload

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
    "Progress",
    "SSHConnectionError",
    "HostKeyChangedError",
    "StepFailedError",
    "TransferError",
]
