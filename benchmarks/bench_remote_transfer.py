"""Upload throughput over SSH/SFTP through a proxy that adds network latency, and the cost of a no-change sync.

Run: ``.venv/bin/python benchmarks/bench_remote_transfer.py``. Prints MB/s for small (one SFTP request at a
time) versus the default large reads/writes, which asyncssh splits into parallel requests, at 0 and 40 ms
round trip; and a 300-file dataset sync (first time, one file or several at a time; then unchanged).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ategnatos_mcp.remote import (  # noqa: E402
    RemoteHost,
    sync,  # noqa: E402
    sync_folder,
    upload,
)
from ategnatos_mcp.remote.transfer import CHUNK  # noqa: E402
from tests.support.ssh_server import ssh_lab  # noqa: E402

MB = 1024 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                writer.close()
                return
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            writer.write(data)
            await writer.drain()

    task = asyncio.ensure_future(deliver())
    while data := await reader.read(256 * 1024):
        queue.put_nowait((time.monotonic() + delay, data))
    queue.put_nowait((0.0, b""))
    await task


async def latency_proxy(target_port: int, one_way_delay: float) -> asyncio.Server:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        with contextlib.suppress(asyncio.CancelledError):  # the benchmark ends with tunnels still open
            await asyncio.gather(
                _pipe(client_reader, server_writer, one_way_delay),
                _pipe(server_reader, client_writer, one_way_delay),
                return_exceptions=True,
            )

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        payload = root / "model.safetensors"
        payload.write_bytes(bytes(range(256)) * (32 * MB // 256))
        async with ssh_lab(root) as (server, connector, _host):
            results: dict[tuple[int, int], float] = {}
            for rtt_ms in (0, 40):
                proxy = await latency_proxy(server.port, rtt_ms / 2000)
                host = RemoteHost(host="127.0.0.1", port=proxy.sockets[0].getsockname()[1], name="bench")
                async with connector.session(host) as ssh:
                    for label, chunk in (("256 KiB, one request at a time", 256 * 1024), ("default", CHUNK)):
                        target = f"up-{rtt_ms}-{chunk}.bin"
                        started = time.perf_counter()
                        await upload(ssh, payload, target, chunk_size=chunk)
                        seconds = time.perf_counter() - started
                        results[(rtt_ms, chunk)] = 32 / seconds
                        print(f"upload 32 MiB, RTT {rtt_ms:>2} ms, {label:<31}: {32 / seconds:7.1f} MB/s")
                proxy.close()
            print(f"ratio default / small at 40 ms RTT: {results[(40, CHUNK)] / results[(40, 256 * 1024)]:.1f}x")

            dataset = root / "dataset"
            dataset.mkdir()
            for index in range(150):
                (dataset / f"img_{index:03}.png").write_bytes(bytes([index]) * 60_000)
                (dataset / f"img_{index:03}.txt").write_text(f"caption {index}", encoding="utf-8")
            firsts: dict[tuple[int, int], float] = {}
            for rtt_ms in (0, 40):
                for parallel in (1, sync.PARALLEL_FILES):
                    proxy = await latency_proxy(server.port, rtt_ms / 2000)
                    port = proxy.sockets[0].getsockname()[1]
                    host = RemoteHost(host="127.0.0.1", port=port, name="bench-sync")
                    sync.PARALLEL_FILES, default = parallel, sync.PARALLEL_FILES
                    async with connector.session(host) as ssh:
                        started = time.perf_counter()
                        first = await sync_folder(ssh, dataset, f"datasets/bench-{rtt_ms}-{parallel}")
                        firsts[(rtt_ms, parallel)] = full = time.perf_counter() - started
                        started = time.perf_counter()
                        again = await sync_folder(ssh, dataset, f"datasets/bench-{rtt_ms}-{parallel}")
                        unchanged = time.perf_counter() - started
                    sync.PARALLEL_FILES = default
                    proxy.close()
                    print(
                        f"sync 300 files, RTT {rtt_ms:>2} ms, {parallel} at a time: first {full:.2f} s "
                        f"({len(first.sent)} sent), again {unchanged:.3f} s ({len(again.sent)} sent)"
                    )
            print(f"ratio 1-at-a-time / default, first sync at 40 ms RTT: {firsts[(40, 1)] / firsts[(40, 8)]:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
