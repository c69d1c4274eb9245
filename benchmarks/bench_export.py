"""Asset export and image_info costs, and whether exporting blocks the event loop.

Prints medians and ratios: a byte budget against a plain encode (the quality search re-encodes a few
times), attention crop against centre crop (the energy map is computed on a 256 px copy), the whole
favicon set against one OG image, and the longest event-loop stall seen while an export runs (the
work runs in a worker thread, so the loop should keep ticking every few milliseconds).
Run: .venv/bin/python benchmarks/bench_export.py [runs]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from PIL import Image, ImageDraw

from ategnatos_mcp.export import AssetExporter, ExportRequest
from ategnatos_mcp.imageinfo import inspect_image


def _source(path: Path) -> Path:
    im = Image.effect_noise((2048, 2048), 12).convert("RGB")
    draw = ImageDraw.Draw(im)
    for i in range(60):
        draw.ellipse((i * 30, i * 25, i * 30 + 200, i * 25 + 160), fill=(40 + i * 3, 120, 200 - i * 2))
    im.save(path)
    return path


async def _median(call, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def _max_loop_stall(call) -> float:
    stalls: list[float] = []
    done = anyio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await anyio.sleep(0.005)
            now = time.perf_counter()
            stalls.append(now - last - 0.005)
            last = now

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await call()
        done.set()
    return max(stalls, default=0.0)


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = _source(Path(tmp) / "source.png")
        exporter = AssetExporter(Path(tmp) / "exports")

        def export(**kwargs):
            return lambda: exporter.export(ExportRequest(source=src, **kwargs))

        plain = await _median(export(spec="og-image"), runs)
        size = (await exporter.export(ExportRequest(source=src, spec="og-image"))).files[0].bytes
        budget = await _median(export(spec="og-image", max_bytes=size * 2 // 3), runs)
        centre = await _median(export(width=800, height=400, format="jpeg", anchor="centre"), runs)
        attention = await _median(export(width=800, height=400, format="jpeg", anchor="attention"), runs)
        favicon = await _median(export(spec="favicon"), runs)
        info = await _median(lambda: inspect_image(src), runs)
        stall = await _max_loop_stall(export(spec="print-a4"))

    print(f"og-image 1200x630 JPEG from 2048 px:     {plain * 1000:7.1f} ms")
    print(f"  with a budget of 2/3 its size:          {budget * 1000:7.1f} ms  ({budget / plain:.1f}x)")
    print(f"fill 800x400 JPEG, centre crop:           {centre * 1000:7.1f} ms")
    print(f"  attention crop:                         {attention * 1000:7.1f} ms  ({attention / centre:.2f}x)")
    print(f"favicon set (6 PNG + .ico):               {favicon * 1000:7.1f} ms  ({favicon / plain:.1f}x og-image)")
    print(f"image_info on the 2048 px PNG:            {info * 1000:7.1f} ms")
    print(f"longest event-loop stall during print-a4: {stall * 1000:7.1f} ms")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 5)
