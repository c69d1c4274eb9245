"""SSH sessions against a real SSH server on 127.0.0.1 running real shell commands."""

from __future__ import annotations

from pathlib import Path

import anyio
import asyncssh
import pytest

from ategnatos_mcp.errors import RemoteCommandError
from ategnatos_mcp.remote import HostKeyChangedError, RemoteHost, SSHConnectionError, SSHConnector
from tests.support.ssh_server import SSHTestServer, ssh_lab

pytestmark = pytest.mark.integration


async def test_command_output_is_streamed_and_returned(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (_server, connector, host), connector.session(host) as ssh:
        seen: list[tuple[str, str]] = []

        async def on_output(stream: str, text: str) -> None:
            seen.append((stream, text))

        result = await ssh.run("echo hello; echo oops >&2; pwd", on_output=on_output)
        assert result.exit_status == 0
        assert result.stdout.splitlines() == ["hello", str(tmp_path / "remote-home")]
        assert result.stderr == "oops\n"
        assert "".join(text for stream, text in seen if stream == "stdout") == result.stdout
        assert ("stderr", "oops\n") in seen


async def test_failing_command_raises_with_exit_status_and_stderr_tail(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (_server, connector, host), connector.session(host) as ssh:
        with pytest.raises(RemoteCommandError) as caught:
            await ssh.run("echo starting; echo 'disk full' >&2; exit 7")
        assert caught.value.exit_status == 7
        assert caught.value.stderr_tail == "disk full\n"
        assert 'It said: "disk full"' in caught.value.message
        assert caught.value.hint

        unchecked = await ssh.run("exit 3", check=False)
        assert unchecked.exit_status == 3 and not unchecked.ok


async def test_command_that_outlives_its_timeout_is_stopped(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (_server, connector, host), connector.session(host) as ssh:
        with pytest.raises(RemoteCommandError) as caught:
            await ssh.run("sleep 30", timeout=0.5)
        assert caught.value.exit_status is None


async def test_session_reconnects_after_the_server_drops_the_connection(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (server, connector, host), connector.session(host) as ssh:
        conn = await ssh.connection()
        server.cut()
        with anyio.fail_after(5):
            await conn.wait_closed()
        assert not ssh.connected
        result = await ssh.run("echo back")
        assert result.stdout == "back\n"
        assert ssh.reconnects == 1
        assert server.connection_count == 2


async def test_host_key_is_pinned_on_first_contact_and_a_changed_key_is_refused(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path, name="runpod:pod-1") as (server, connector, host):
        async with connector.session(host) as ssh:
            await ssh.run("true")
        pinned = await connector.host_keys.get("runpod:pod-1")
        assert pinned is not None
        assert pinned.fingerprint == server.host_key.get_fingerprint()

        # Same identity, a server with another host key: refused before any command runs.
        impostor_home = tmp_path / "impostor"
        key = await connector.key()
        async with SSHTestServer(impostor_home, asyncssh.generate_private_key("ssh-ed25519"), key.public_key) as other:
            moved = host.model_copy(update={"port": other.port})
            with pytest.raises(HostKeyChangedError) as caught:
                async with connector.session(moved) as ssh:
                    await ssh.run("touch ran-anyway")
            assert caught.value.identity == "runpod:pod-1"
            assert caught.value.expected == pinned.fingerprint
            assert caught.value.presented == other.host_key.get_fingerprint()
            assert not (impostor_home / "ran-anyway").exists()

            # After the user confirms the instance was replaced, forgetting the pin lets it connect again.
            assert await connector.forget_host_key(moved)
            async with connector.session(moved) as ssh:
                assert (await ssh.run("echo ok")).stdout == "ok\n"


async def test_unknown_client_key_is_refused_without_retry(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (_server, _connector, host):
        stranger = SSHConnector(tmp_path / "other-keys", connect_timeout=5, reconnect_delays=(0,))
        with pytest.raises(SSHConnectionError) as caught:
            async with stranger.session(host):
                pass
        assert not caught.value.retryable


async def test_unreachable_host_gives_a_plain_connection_error(tmp_path: Path) -> None:
    connector = SSHConnector(tmp_path / "keys", connect_timeout=2, reconnect_delays=())
    with pytest.raises(SSHConnectionError) as caught:
        async with connector.session(RemoteHost(host="127.0.0.1", port=9)):
            pass
    assert caught.value.retryable
    assert "127.0.0.1:9" in caught.value.message


async def test_a_closed_session_refuses_further_use(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (server, connector, host):
        async with connector.session(host) as ssh:
            await ssh.run("true")
        assert ssh.closed and not ssh.connected
        with pytest.raises(SSHConnectionError) as caught:
            await ssh.run("true")
        assert not caught.value.retryable
        assert server.connection_count == 1


async def test_an_error_in_the_output_callback_reaches_the_caller_unwrapped(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (_server, connector, host), connector.session(host) as ssh:

        async def on_output(stream: str, text: str) -> None:
            raise LookupError("client went away")

        with anyio.fail_after(5), pytest.raises(LookupError):
            await ssh.run("echo one; sleep 30", on_output=on_output)
        assert (await ssh.run("echo still usable")).stdout == "still usable\n"


async def test_a_host_that_now_offers_another_kind_of_key_is_refused_too(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path, name="vast:7") as (_server, connector, host):
        async with connector.session(host) as ssh:
            await ssh.run("true")
        key = await connector.key()
        ecdsa = asyncssh.generate_private_key("ecdsa-sha2-nistp256")
        async with SSHTestServer(tmp_path / "replaced", ecdsa, key.public_key) as replaced:
            with pytest.raises(HostKeyChangedError) as caught:
                async with connector.session(host.model_copy(update={"port": replaced.port})):
                    pass
        assert caught.value.identity == "vast:7"
        assert caught.value.presented == "a different kind of key"  # the pinned kind is no longer offered
