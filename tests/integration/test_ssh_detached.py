"""Detached processes keep running when the SSH connection drops, and a later session re-attaches."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from ategnatos_mcp.errors import NotFoundError, StateError
from ategnatos_mcp.remote import SSHConnectionError, detached_status, read_log, start_detached, stop_detached
from tests.support.ssh_server import ssh_lab

pytestmark = pytest.mark.integration

# Waits for a file the test creates itself: no fixed sleeps, and it ends within the test's fail_after.
WAIT_FOR_GO = 'echo step 1; while [ ! -f go ]; do sleep 0.02; done; echo step 2; echo "$GREETING"'


async def test_detached_process_survives_a_dropped_connection_and_is_reattached(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (server, connector, host):
        remote_home = server.home
        async with connector.session(host) as ssh:
            started = await start_detached(ssh, "trainer", WAIT_FOR_GO, env={"GREETING": "hello from the run"})
            assert started.state == "running" and started.pid
            # An ordinary command still running on the same connection: the drop takes it down.
            plain_started = anyio.Event()
            plain_pid: list[str] = []

            async def on_output(stream: str, text: str) -> None:
                plain_pid.append(text.strip())
                plain_started.set()

            async def plain_command() -> None:
                with pytest.raises(SSHConnectionError):
                    await ssh.run("echo $$; exec sleep 30", on_output=on_output)

            conn = await ssh.connection()
            async with anyio.create_task_group() as tg:
                tg.start_soon(plain_command)
                with anyio.fail_after(5):
                    await plain_started.wait()
                server.cut()
                with anyio.fail_after(5):
                    await conn.wait_closed()

        async with connector.session(host) as ssh:
            status = await detached_status(ssh, "trainer")
            assert status.state == "running"
            assert status.pid == started.pid
            probe = f"[ -r /proc/{plain_pid[0]}/stat ] && sed 's/.*) //' /proc/{plain_pid[0]}/stat | cut -c1"
            with anyio.fail_after(5):
                while (await ssh.run(probe, check=False)).stdout.strip() not in {"", "Z"}:
                    await anyio.sleep(0.01)

            (remote_home / "go").touch()
            with anyio.fail_after(5):
                while (status := await detached_status(ssh, "trainer")).running:
                    await anyio.sleep(0.01)
            assert status.state == "finished" and status.exit_status == 0

            log = await read_log(ssh, "trainer")
            assert log.text == "step 1\nstep 2\nhello from the run\n"
            assert log.next_offset == len(log.text)
            later = await read_log(ssh, "trainer", offset=len("step 1\n"))
            assert later.text == "step 2\nhello from the run\n"
            tail = await read_log(ssh, "trainer", offset=-19)
            assert tail.text == "hello from the run\n" and tail.offset == log.next_offset - 19


async def test_failed_detached_process_reports_its_exit_status(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (_server, connector, host), connector.session(host) as ssh:
        await start_detached(ssh, "broken", "echo CUDA out of memory >&2; exit 3")
        with anyio.fail_after(5):
            while (status := await detached_status(ssh, "broken")).running:
                await anyio.sleep(0.01)
        assert status.state == "failed" and status.exit_status == 3
        assert (await read_log(ssh, "broken")).text == "CUDA out of memory\n"


async def test_stop_ends_the_whole_process_group_and_a_second_start_is_refused_while_running(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (server, connector, host), connector.session(host) as ssh:
        status = await start_detached(ssh, "comfyui", "sleep 30 & echo $! > child.pid; wait")
        assert status.running
        with pytest.raises(StateError):
            await start_detached(ssh, "comfyui", "true")

        stopped = await stop_detached(ssh, "comfyui", grace_seconds=2)
        assert stopped.state == "stopped"
        child = (server.home / "child.pid").read_text().strip()
        # Gone, or a zombie waiting for a PID 1 that does not reap (as in many containers): not running.
        state = await ssh.run(f"[ -r /proc/{child}/stat ] && sed 's/.*) //' /proc/{child}/stat | cut -c1", check=False)
        assert state.stdout.strip() in {"", "Z"}

        replaced = await start_detached(ssh, "comfyui", "echo again", replace=True)
        assert replaced.pid != status.pid


async def test_status_of_an_unknown_process_is_missing(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (_server, connector, host), connector.session(host) as ssh:
        status = await detached_status(ssh, "never-started")
        assert status.state == "missing" and status.pid is None


async def test_log_is_read_in_chunks_without_gaps_or_repeats_and_the_working_folder_is_used(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (server, connector, host), connector.session(host) as ssh:
        (server.home / "work").mkdir()
        await start_detached(ssh, "counter", "pwd; for i in 1 2 3 4 5 6 7 8 9; do echo line $i; done", cwd="work")
        with anyio.fail_after(5):
            while (await detached_status(ssh, "counter")).running:
                await anyio.sleep(0.01)
        pieces: list[str] = []
        offset = 0
        while True:
            chunk = await read_log(ssh, "counter", offset=offset, max_bytes=10)
            if chunk.next_offset == offset:
                break
            pieces.append(chunk.text)
            offset = chunk.next_offset
        expected = str(server.home / "work") + "\n" + "".join(f"line {i}\n" for i in range(1, 10))
        assert "".join(pieces) == expected
        assert all(len(piece) <= 10 for piece in pieces)


async def test_reading_the_log_of_an_unknown_process_is_not_found(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (_server, connector, host), connector.session(host) as ssh:
        with pytest.raises(NotFoundError):
            await read_log(ssh, "nothing")
