"""Resumable, verified transfers and folder sync over a real SFTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ategnatos_mcp.remote import TransferError, download, sync_folder, upload
from ategnatos_mcp.remote.transfer import CHUNK
from tests.support.ssh_server import ssh_lab

pytestmark = pytest.mark.integration

SIZE = 9 * 1024 * 1024 + 123


def _payload(path: Path, size: int = SIZE, seed: int = 1) -> bytes:
    data = hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1)
    data = data[:size]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


async def test_upload_resumes_from_the_partial_file_after_the_server_cuts_the_connection(tmp_path: Path) -> None:
    local = tmp_path / "lora.safetensors"
    data = _payload(local)
    async with ssh_lab(tmp_path) as (server, connector, host), connector.session(host) as ssh:
        server.cut_after_bytes = SIZE // 2
        seen: list[tuple[float, float | None]] = []

        async def progress(done: float, total: float | None, message: str) -> None:
            seen.append((done, total))

        report = await upload(ssh, local, "models/loras/lora.safetensors", progress)

        assert server.cuts == 1
        assert ssh.reconnects == 1
        assert len(report.resumed_from) == 1
        assert SIZE // 4 < report.resumed_from[0] < SIZE  # resumed mid-file, not from zero
        # Only what the host had not yet stored was sent again.
        assert report.bytes_sent - (SIZE - report.resumed_from[0]) <= report.resumed_from[0]
        assert (server.home / "models/loras/lora.safetensors").read_bytes() == data
        assert not (server.home / "models/loras/lora.safetensors.part").exists()
        assert report.sha256 == hashlib.sha256(data).hexdigest()
        assert seen[-1] == (float(SIZE), float(SIZE))

        again = await upload(ssh, local, "~/models/loras/lora.safetensors")
        assert again.skipped and again.bytes_sent == 0


async def test_upload_over_a_stale_partial_file_starts_over_and_verifies(tmp_path: Path) -> None:
    local = tmp_path / "new.bin"
    data = _payload(local, size=200_000, seed=2)
    async with ssh_lab(tmp_path) as (server, connector, host), connector.session(host) as ssh:
        # Left by an interrupted upload of an older version of the file.
        (server.home / "new.bin.part").write_bytes(b"old" * 20_000)
        report = await upload(ssh, local, "new.bin")
        assert report.resumed_from == [60_000] and report.bytes_sent == (200_000 - 60_000) + 200_000
        assert (server.home / "new.bin").read_bytes() == data


async def test_missing_local_file_is_a_transfer_error(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (_server, connector, host), connector.session(host) as ssh:
        with pytest.raises(TransferError) as caught:
            await upload(ssh, tmp_path / "gone.bin", "gone.bin")
        assert "gone.bin" in caught.value.message


async def test_download_resumes_after_a_cut_and_after_an_earlier_partial_file(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (server, connector, host), connector.session(host) as ssh:
        data = _payload(server.home / "output" / "sample.png", size=SIZE)
        target = tmp_path / "local" / "sample.png"
        server.cut_after_read_bytes = SIZE // 2  # inside the second of three reads

        report = await download(ssh, "output/sample.png", target)

        assert server.cuts == 1 and ssh.reconnects == 1
        assert target.read_bytes() == data
        assert report.resumed_from == [CHUNK]  # the first read was complete and kept
        assert report.bytes_sent == len(data)  # nothing fetched twice: the local partial file only grows
        assert not (target.parent / "sample.png.part").exists()

        # A partial file left by an earlier, interrupted call is continued.
        (target.parent / "again.png.part").write_bytes(data[:400_000])
        again = await download(ssh, "output/sample.png", target.parent / "again.png")
        assert again.resumed_from == [400_000] and again.bytes_sent == len(data) - 400_000
        assert (target.parent / "again.png").read_bytes() == data


async def test_download_over_a_foreign_partial_file_starts_over_and_verifies(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (server, connector, host), connector.session(host) as ssh:
        data = _payload(server.home / "other.png", size=300_000)
        target = tmp_path / "other.png"
        (tmp_path / "other.png.part").write_bytes(b"x" * 1000)

        report = await download(ssh, "other.png", target)

        assert target.read_bytes() == data
        assert report.bytes_sent == len(data) - 1000 + len(data)


async def test_missing_remote_file_is_a_transfer_error(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (_server, connector, host), connector.session(host) as ssh:
        with pytest.raises(TransferError) as caught:
            await download(ssh, "nothing/here.bin", tmp_path / "here.bin")
        assert caught.value.hint


async def test_sync_folder_sends_only_new_or_changed_files(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    for index in range(4):
        _payload(dataset / f"img_{index}.png", size=10_000 + index, seed=index)
        (dataset / f"img_{index}.txt").write_text(f"caption {index}", encoding="utf-8")
    _payload(dataset / "nested" / "extra.png", size=5000, seed=9)
    (dataset / ".DS_Store").write_bytes(b"junk")

    async with ssh_lab(tmp_path) as (server, connector, host), connector.session(host) as ssh:
        first = await sync_folder(ssh, dataset, "datasets/mychar")
        assert len(first.sent) == 9 and first.unchanged == 0
        remote = server.home / "datasets" / "mychar"
        assert (remote / "nested" / "extra.png").read_bytes() == (dataset / "nested" / "extra.png").read_bytes()
        assert not (remote / ".DS_Store").exists()

        second = await sync_folder(ssh, dataset, "datasets/mychar")
        assert second.sent == [] and second.unchanged == 9 and second.bytes_sent == 0

        (dataset / "img_1.txt").write_text("caption 1, red scarf", encoding="utf-8")
        (dataset / "img_9.png").write_bytes(b"new image")
        (remote / "stale.txt").write_text("left over", encoding="utf-8")
        stamp = (dataset / "img_1.txt").stat().st_mtime + 5
        os.utime(dataset / "img_1.txt", (stamp, stamp))

        third = await sync_folder(ssh, dataset, "datasets/mychar", delete_extra=True)
        assert third.sent == ["img_1.txt", "img_9.png"]
        assert third.deleted == ["stale.txt"]
        assert (remote / "img_1.txt").read_text(encoding="utf-8") == "caption 1, red scarf"
        assert not (remote / "stale.txt").exists()


async def test_sync_cut_midway_finishes_after_reconnecting_and_verifies_everything(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    for index in range(40):
        _payload(dataset / f"img_{index:02}.png", size=50_000, seed=index)
    big = _payload(dataset / "model" / "base.safetensors", size=SIZE, seed=99)  # takes the resumable path

    async with ssh_lab(tmp_path) as (server, connector, host), connector.session(host) as ssh:
        server.cut_after_bytes = 1_000_000  # while the small files are going up, several at a time
        report = await sync_folder(ssh, dataset, "datasets/cut")

        assert server.cuts == 1 and ssh.reconnects == 1
        assert len(report.sent) == 41
        remote = server.home / "datasets" / "cut"
        for index in range(40):
            assert (remote / f"img_{index:02}.png").read_bytes() == (dataset / f"img_{index:02}.png").read_bytes()
        assert (remote / "model" / "base.safetensors").read_bytes() == big
        assert not list(remote.rglob("*.part"))

        again = await sync_folder(ssh, dataset, "datasets/cut")
        assert again.sent == [] and again.unchanged == 41


async def test_a_sync_cut_off_before_stamping_times_does_not_send_the_files_again(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    for index in range(5):
        _payload(dataset / f"img_{index}.png", size=20_000, seed=index)

    async with ssh_lab(tmp_path) as (server, connector, host), connector.session(host) as ssh:
        await sync_folder(ssh, dataset, "datasets/stamp")
        remote = server.home / "datasets" / "stamp"
        damaged = bytearray((remote / "img_3.png").read_bytes())
        damaged[100] ^= 0xFF  # same size, other content: must be sent again
        (remote / "img_3.png").write_bytes(bytes(damaged))
        for path in remote.iterdir():  # what a server restart between sending and stamping leaves
            os.utime(path, (1_000_000, 1_000_000))

        again = await sync_folder(ssh, dataset, "datasets/stamp")
        assert again.sent == ["img_3.png"] and again.unchanged == 4 and again.bytes_sent == 20_000
        for index in range(5):
            local, copy = dataset / f"img_{index}.png", remote / f"img_{index}.png"
            assert copy.read_bytes() == local.read_bytes()
            assert int(copy.stat().st_mtime) == int(local.stat().st_mtime)
        settled = await sync_folder(ssh, dataset, "datasets/stamp")
        assert settled.sent == [] and settled.unchanged == 5
