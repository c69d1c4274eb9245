"""Print how well the training VRAM estimate matches every row of the VRAM reports (markdown table).

Run: .venv/bin/python benchmarks/bench_vram.py
"""

from __future__ import annotations

import sys

from ategnatos_mcp.training.vram_check import check_reports, render_table


def main() -> None:
    sys.stdout.write(render_table(check_reports()))


if __name__ == "__main__":
    main()
