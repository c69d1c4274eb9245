"""The remote/ layer against a real OpenSSH sshd on 127.0.0.1 (skipped where sshd is not installed).

The other SSH tests use asyncssh's own server; this one checks the same promises against the server GPU hosts
really run: host key pinned on first contact and a changed key refused, commands with exit status and output,
sha256-verified upload and download over sshd's SFTP, a detached process that survives the connection dropping
(sshd hangs up on the session's processes), and the loopback port forward. sshd runs as this user with its own
config, host key and authorized key in tmp_path; HOME is pointed into tmp_path and every file path is absolute,
so nothing is written to the real home.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from anyio.abc import Process

from ategnatos_mcp.errors import RemoteCommandError
from ategnatos_mcp.remote import (
    HostKeyChangedError,
    RemoteHost,
    SSHConnector,
    detached_status,
    download,
    forward_port,
    start_detached,
    upload,
)
from tests.support.held import held
from tests.support.hostile_http import tiny_http_server

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
PRIVSEP = Path("/run/sshd")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(SSHD is None, reason="OpenSSH's sshd is not installed"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _host_key(path: Path) -> Path:
    path.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30)
    return path


@asynccontextmanager
async def sshd(tmp_path: Path, port: int, host_key: Path, authorized: str) -> AsyncIterator[Process]:
    if not PRIVSEP.is_dir():
        if os.geteuid() != 0:
            pytest.skip("sshd needs /run/sshd, which only root can create")
        PRIVSEP.mkdir(mode=0o755, parents=True)
    keys = tmp_path / "authorized_keys"
    keys.write_text(authorized + "\n", encoding="utf-8")
    keys.chmod(0o600)
    home = tmp_path / "remote-home"
    home.mkdir(exist_ok=True)
    config = tmp_path / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {tmp_path / 'sshd.pid'}",
                f"AuthorizedKeysFile {keys}",
                "StrictModes no",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "AllowTcpForwarding local",
                "X11Forwarding no",
                "Subsystem sftp internal-sftp",
                f"SetEnv HOME={home}",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    assert SSHD is not None
    process = await anyio.open_process([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    assert process.stderr is not None
    log: list[str] = []
    listening = anyio.Event()

    async def drain() -> None:
        assert process.stderr is not None
        async for chunk in process.stderr:
            log.append(chunk.decode(errors="replace"))
            if "Server listening" in "".join(log):
                listening.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            with anyio.fail_after(10):
                await listening.wait()
            yield process
            tg.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.terminate()
        with anyio.move_on_after(5):
            await process.wait()


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[tuple[SSHConnector, RemoteHost, Path, int]]:
    connector = SSHConnector(tmp_path / "ssh-keys", connect_timeout=5, reconnect_delays=(0, 0, 0))
    key = await connector.key()
    port = _free_port()
    host = RemoteHost(host="127.0.0.1", port=port, username=getpass.getuser(), name="openssh-gpu")
    async with held(sshd(tmp_path, port, _host_key(tmp_path / "host_key"), key.public_key)):
        yield connector, host, tmp_path / "remote-home", port


async def test_commands_output_and_exit_status(lab: tuple[SSHConnector, RemoteHost, Path, int]) -> None:
    connector, host, home, _port = lab
    async with connector.session(host) as ssh:
        result = await ssh.run('echo "home is $HOME"; echo oops >&2')
        assert result.stdout.strip() == f"home is {home}" and result.stderr.strip() == "oops"
        with pytest.raises(RemoteCommandError) as failed:
            await ssh.run("echo 'no such model' >&2; exit 3")
        assert failed.value.exit_status == 3 and "no such model" in failed.value.message
    assert await connector.host_keys.get(host.identity) is not None  # pinned on first contact


async def test_verified_upload_and_download_over_sshd_sftp(
    lab: tuple[SSHConnector, RemoteHost, Path, int], tmp_path: Path
) -> None:
    connector, host, home, _port = lab
    local = tmp_path / "lora.safetensors"
    local.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    remote = f"{home}/models/loras/lora.safetensors"
    async with connector.session(host) as ssh:
        sent = await upload(ssh, local, remote)
        assert (home / "models" / "loras" / "lora.safetensors").read_bytes() == local.read_bytes()
        back = tmp_path / "back" / "lora.safetensors"
        fetched = await download(ssh, remote, back)
    assert back.read_bytes() == local.read_bytes()
    assert sent.sha256 == fetched.sha256


async def test_detached_process_survives_a_dropped_connection(lab: tuple[SSHConnector, RemoteHost, Path, int]) -> None:
    connector, host, home, _port = lab
    go = home / "go"
    async with connector.session(host) as ssh:
        started = await start_detached(ssh, "trainer", f'while [ ! -f "{go}" ]; do sleep 0.05; done; echo done')
        assert started.running
        (await ssh.connection()).abort()  # the connection drops; sshd hangs up on the session's processes
    async with connector.session(host) as ssh:
        assert (await detached_status(ssh, "trainer")).running
        go.touch()
        with anyio.fail_after(10):
            while (status := await detached_status(ssh, "trainer")).running:
                await anyio.sleep(0.05)
    assert status.state == "finished" and status.exit_status == 0


async def test_port_forward_reaches_a_loopback_service(lab: tuple[SSHConnector, RemoteHost, Path, int]) -> None:
    connector, host, _home, _port = lab
    async with tiny_http_server() as service_port, connector.session(host) as ssh:
        forward = await forward_port(ssh, service_port)
        try:
            async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
                answer = await http.get(f"{forward.url}/system_stats")
            assert answer.json()["path"] == "/system_stats"
        finally:
            await forward.close()


async def test_a_changed_host_key_is_refused(tmp_path: Path) -> None:
    connector = SSHConnector(tmp_path / "ssh-keys", connect_timeout=5, reconnect_delays=(0, 0, 0))
    key = await connector.key()
    port = _free_port()
    host = RemoteHost(host="127.0.0.1", port=port, username=getpass.getuser(), name="openssh-gpu")
    async with sshd(tmp_path, port, _host_key(tmp_path / "first_key"), key.public_key):
        async with connector.session(host) as ssh:
            await ssh.run("true")
    # Same address, another machine answering (a reused IP/port after the instance was replaced).
    async with sshd(tmp_path, port, _host_key(tmp_path / "second_key"), key.public_key):
        with pytest.raises(HostKeyChangedError):
            async with connector.session(host) as ssh:
                await ssh.run("true")
