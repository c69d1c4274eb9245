"""Two conversations on one project start a training run, or its dry run, at the same moment: it runs once.

Two servers (two wirings, two MCP clients) on one ATEGNATOS_HOME; the stand-in trainer runs as real detached
processes on this machine (only the GPU is faked). The first server is held just before it starts the supervisor,
after every check it makes, and the second server's call comes exactly then: the window where two processes used
to both see "nothing started yet".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from mcp import Client, StdioServerParameters

from ategnatos_mcp.progress import Progress
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.training.execution import HostRegistry
from ategnatos_mcp.training.execution.hosts import LocalHost
from ategnatos_mcp.training.execution.models import HostSpec
from tests.support.fake_install import FakeInstall, make_fake_install
from tests.support.ink_run import gates_1_and_2, through_gate_3, through_gate_4
from tests.support.two_servers import Gate, HeldHosts, Server, text_of, two_servers

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


async def _no_ssh() -> Any:
    raise AssertionError("these tests train on this computer")


def _hosts(server: Server, fake: FakeInstall) -> HeldHosts:
    hosts = HeldHosts(server.app.settings.workspace_dir / "training", _no_ssh, local_env=fake.env)
    server.app.hosts = hosts
    return hosts


def _runs(home: Path, kind: str) -> list[str]:
    runs = home / "workspace" / "training" / "ink" / "runs"
    return sorted(r.name for r in runs.iterdir() if r.name.startswith(f"{kind}-")) if runs.is_dir() else []


async def _while_held(first: Server, hosts: HeldHosts, call: tuple[str, dict[str, Any]], second: Server) -> list[Any]:
    """``call`` on the first server, held before its supervisor starts; the same call on the second meanwhile."""
    answers: dict[str, Any] = {}

    async def one() -> None:
        answers["first"] = await first.client.call_tool(*call)

    hosts.gate.armed = True
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(one)
            await hosts.gate.reached.wait()
            answers["second"] = await second.client.call_tool(*call)
            hosts.gate.go.set()
    return [answers["first"], answers["second"]]


async def test_two_conversations_launching_at_once_start_one_training_run(
    settings: Settings, home: Path, tmp_path: Path
) -> None:
    fake = make_fake_install(tmp_path / "install")
    async with two_servers(settings) as (first, second):
        held = _hosts(first, fake)
        _hosts(second, fake)
        await through_gate_4(first.client, home, fake, "kohya")
        go = tmp_path / "go"
        fake.env["FAKE_WAIT_FILE"] = str(go)  # the trainer waits before its last step until the test lets it finish
        try:
            started, refused = await _while_held(first, held, ("launch_training", {"name": "ink"}), second)
            assert not started.is_error, text_of(started)
            assert refused.is_error, text_of(refused)
            said = text_of(refused)
            assert "being started right now by another call since" in said and "another conversation" in said, said
            assert "nothing was started twice" in said and "training_status(name='ink')" in said, said
            assert _runs(home, "training") == [started.structured_content["handle"]["run_dir"].rsplit("/", 1)[-1]]

            # Once it runs, the other conversation hears that it runs (and since when), not "start it".
            again = await second.client.call_tool("launch_training", {"name": "ink"})
            assert again.is_error and "still going on this machine, started" in text_of(again), text_of(again)
        finally:
            go.touch()  # the trainer finishes; never one left waiting after the test
        finished = await second.client.call_tool("training_status", {"name": "ink", "wait_seconds": 60})
        assert finished.structured_content["state"] == "succeeded", text_of(finished)  # type: ignore[index]
    assert len(_runs(home, "training")) == 1


async def test_two_conversations_asking_for_the_dry_run_at_once_start_one(
    settings: Settings, home: Path, tmp_path: Path
) -> None:
    fake = make_fake_install(tmp_path / "install")
    async with two_servers(settings) as (first, second):
        held = _hosts(first, fake)
        _hosts(second, fake)
        await through_gate_3(first.client, home, fake)
        call = ("train_dry_run", {"name": "ink", "wait_seconds": 0})
        started, refused = await _while_held(first, held, call, second)

        assert not started.is_error and started.structured_content["state"] in ("running", "passed"), text_of(started)  # type: ignore[index]
        assert refused.is_error, text_of(refused)
        assert "The dry run of 'ink' is being started right now by another call" in text_of(refused)
        assert len(_runs(home, "dry_run")) == 1
        # The other conversation simply follows the same dry run.
        followed = await second.client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
        assert followed.structured_content["passed"] is True, text_of(followed)  # type: ignore[index]
    assert len(_runs(home, "dry_run")) == 1


class _HeldReplace:
    """``os.replace`` that holds the first rename into ``folder`` (in the server's worker thread) until released;
    made in this test process only, never in the server's code."""

    def __init__(self, original: Callable[..., Any], folder: Path) -> None:
        self.original, self.folder = original, str(folder)
        self.reached, self.go = threading.Event(), threading.Event()
        self.armed = True

    def __call__(self, src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
        if self.armed and os.fspath(dst).startswith(self.folder):
            self.armed = False
            self.reached.set()
            assert self.go.wait(30)
        return self.original(src, dst, *args, **kwargs)


async def test_two_conversations_keeping_the_same_save_at_once_both_get_it_once(
    settings: Settings, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = make_fake_install(tmp_path / "install")
    loras = home / "workspace" / "loras" / "ink"
    async with two_servers(settings) as (first, second):
        _hosts(first, fake)
        _hosts(second, fake)
        await through_gate_4(first.client, home, fake, "kohya")
        assert not (await first.client.call_tool("launch_training", {"name": "ink"})).is_error
        status = await second.client.call_tool("training_status", {"name": "ink", "wait_seconds": 60})
        epoch = next(c["epoch"] for c in status.structured_content["checkpoints"] if c["kind"] == "epoch")  # type: ignore[index]
        keep = {"name": "ink", "action": "keep", "epoch": epoch, "weight": 0.8, "wait_seconds": 60}
        held = _HeldReplace(os.replace, loras)
        monkeypatch.setattr(os, "replace", held)
        answers: dict[str, Any] = {}

        async def keep_first() -> None:
            answers["first"] = await first.client.call_tool("train_evaluate", {**keep, "verdict": "crisp lines"})

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(keep_first)
                await anyio.to_thread.run_sync(held.reached.wait)  # its copy is written, not yet in place
                answers["second"] = await second.client.call_tool("train_evaluate", {**keep, "verdict": "crisp lines"})
                held.go.set()

        for answer in answers.values():
            assert not answer.is_error and answer.structured_content["state"] == "done", text_of(answer)  # type: ignore[index]
        kept = answers["first"].structured_content["kept"]  # type: ignore[index]
        assert [p.name for p in loras.iterdir()] == [Path(kept["path"]).name]  # one file, no temp or part left
        assert hashlib.sha256(Path(kept["path"]).read_bytes()).hexdigest() == kept["provenance"]["sha256"]
        inventory = json.loads((home / "grimoire" / ".state" / "studio.json").read_text(encoding="utf-8"))
        assert [lora["name"] for lora in inventory["loras"]] == [kept["name"]]


async def test_two_real_server_processes_launching_at_once_start_one_training_run(
    settings: Settings, home: Path, tmp_path: Path
) -> None:
    """The same as two conversations really have it: two ``ategnatos-mcp serve`` processes over stdio, as mcp.json
    starts them, on one project; both asked to launch at the same moment."""
    fake = make_fake_install(tmp_path / "install")
    async with two_servers(settings) as (first, _second):  # the gates, passed in memory on the same project
        _hosts(first, fake)
        await through_gate_4(first.client, home, fake, "kohya")
    go = tmp_path / "go"  # the trainer waits before its last step until the test lets it finish
    entry = json.loads((ROOT / "mcp.json").read_text(encoding="utf-8"))["mcpServers"]["ategnatos"]
    env = {**entry["env"], **fake.env, "FAKE_WAIT_FILE": str(go)}
    params = StdioServerParameters(
        command=str(ROOT / entry["command"]),
        args=entry["args"],
        env={**env, "ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": "http://127.0.0.1:9"},
        cwd=str(ROOT),
    )
    try:
        async with Client(params) as one, Client(params) as two:
            answers: list[Any] = []

            async def launch(client: Client) -> None:
                answers.append(await client.call_tool("launch_training", {"name": "ink"}))

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(launch, one)
                    tg.start_soon(launch, two)
            assert sorted(a.is_error for a in answers) == [False, True], [text_of(a) for a in answers]
            said = text_of(next(a for a in answers if a.is_error))
            assert "another conversation" in said and "nothing was started twice" in said, said
            go.touch()
            finished = await two.call_tool("training_status", {"name": "ink", "wait_seconds": 60})
            assert finished.structured_content["state"] == "succeeded", text_of(finished)  # type: ignore[index]
    finally:
        go.touch()  # never a stand-in trainer left waiting after the test
    assert len(_runs(home, "training")) == 1


class _SendingHost(LocalHost):
    """A rented host that receives the dataset slowly: each sending is counted and waits at the gate."""

    def __init__(self, runs_root: Path, env: dict[str, str], gate: Gate, sent: list[str]) -> None:
        super().__init__(runs_root, env=env)
        self.gate, self.sent = gate, sent

    async def put_dataset(self, local: Path, remote: str, progress: Progress | None) -> str:
        self.sent.append(remote)
        await self.gate.pass_through()
        return str(local)


class _SendingHosts(HostRegistry):
    def __init__(self, runs_root: Path, env: dict[str, str], gate: Gate, sent: list[str]) -> None:
        super().__init__(runs_root, _no_ssh, local_env=env)
        self.gate, self.sent = gate, sent

    @contextlib.asynccontextmanager
    async def open(self, spec: HostSpec) -> AsyncIterator[Any]:
        yield _SendingHost(self.runs_root, dict(self.local_env), self.gate, self.sent)


async def test_two_conversations_sending_the_dataset_to_one_host_send_it_once(
    settings: Settings, home: Path, tmp_path: Path
) -> None:
    fake = make_fake_install(tmp_path / "install")
    gate, sent = Gate(armed=True), []
    host = "root@127.0.0.1:2222"  # a rented host; only its receiving end is stood in for
    args = {"name": "ink", "host": host, "backend_dir": fake.backend_dirs["kohya"], "upload_dataset": True}
    async with two_servers(settings) as (first, second):
        for server in (first, second):
            server.app.hosts = _SendingHosts(settings.workspace_dir / "training", fake.env, gate, sent)
        await gates_1_and_2(first.client, home)
        with anyio.fail_after(60):
            started = await first.client.call_tool("train_validate_environment", {**args, "wait_seconds": 0})
            assert not started.is_error, text_of(started)
            await gate.reached.wait()  # the first conversation is sending right now
            refused = await second.client.call_tool("train_validate_environment", {**args, "wait_seconds": 0})
            said = text_of(refused)
            assert refused.is_error and "is being sent to 127.0.0.1:2222 right now by another call" in said, said
            assert "nothing was sent twice" in said and "without upload_dataset" in said, said
            gate.go.set()
            done = await first.client.call_tool("train_validate_environment", {**args, "wait_seconds": 30})
        assert done.structured_content["passed"] is True, text_of(done)  # type: ignore[index]
        assert len(sent) == 1, sent
        # Once it arrived, the other conversation checks the host without sending anything again.
        checked = await second.client.call_tool("train_validate_environment", {**args, "upload_dataset": False})
        assert checked.structured_content["passed"] is True, text_of(checked)  # type: ignore[index]
    assert len(sent) == 1, sent
