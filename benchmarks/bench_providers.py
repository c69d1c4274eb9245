"""GPU domain costs: import time of the gpu tools, offers across three clouds, reconcile with many instances.

The clouds are the test fakes (recorded example bodies behind httpx.MockTransport), so this measures our own
parsing, sorting, quoting and grimoire writes, not the network.
Run: .venv/bin/python benchmarks/bench_providers.py [runs]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ategnatos_mcp.providers import OfferQuery  # noqa: E402
from ategnatos_mcp.state import GrimoireStore  # noqa: E402
from tests.support.fake_clouds import FakeClock, FakeLambda, FakeRunPod, FakeVast, make_service  # noqa: E402


def _import_seconds(module: str, runs: int) -> float:
    # The MCP SDK, the settings and the grimoire store load first either way; time only what comes on top.
    code = (
        "import time, mcp.server.mcpserver, ategnatos_mcp.settings, ategnatos_mcp.state; "
        f"t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    )
    samples = [float(subprocess.check_output([sys.executable, "-c", code], cwd=ROOT)) for _ in range(runs)]
    return statistics.median(samples)


async def _offers(runs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        service = make_service(GrimoireStore(Path(tmp)), [FakeRunPod(), FakeVast(), FakeLambda()], FakeClock())
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            result = await service.find_offers(OfferQuery(min_vram_gb=24, hours=2))
            samples.append(time.perf_counter() - started)
            assert result.offers
        return statistics.median(samples)


async def _reconcile(pods: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        runpod = FakeRunPod()
        for index in range(pods):
            runpod.add_pod(f"someone-else-{index}")
        service = make_service(GrimoireStore(Path(tmp)), [runpod], FakeClock())
        started = time.perf_counter()
        first = await service.instances()
        cold = time.perf_counter() - started
        started = time.perf_counter()
        await service.instances()
        warm = time.perf_counter() - started
        assert first.orphans == pods
        return cold, warm


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    for module in ("ategnatos_mcp.providers", "ategnatos_mcp.tools.gpu"):
        print(f"import {module} on top of the MCP SDK: {_import_seconds(module, runs) * 1000:.0f} ms")
    print(f"gpu offers, 3 clouds, quotes saved: {anyio.run(_offers, runs) * 1000:.1f} ms median")
    for pods in (10, 200):
        cold, warm = anyio.run(_reconcile, pods)
        print(f"reconcile {pods} orphan pods: first {cold * 1000:.0f} ms, again {warm * 1000:.0f} ms")


if __name__ == "__main__":
    main()
