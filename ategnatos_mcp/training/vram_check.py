"""How well the VRAM estimate matches every row of the shared VRAM reports (``data/vram_reports.json``)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel

from ategnatos_mcp.training.vram import VramInputs, estimate_vram

__all__ = ["ReportCheck", "check_reports", "load_reports", "render_table"]

Verdict = Literal["match", "miss", "not modelled"]


class ReportCheck(BaseModel):
    """One report row next to the estimate."""

    id: str
    family: str
    kind: str
    reported: str
    estimate_gb: float | None
    range_gb: str
    verdict: Verdict
    in_range: bool | None
    detail: str
    source: str


def load_reports() -> list[dict[str, Any]]:
    """The structured rows of the shared vram-reports.md."""
    text = resources.files("ategnatos_mcp.training").joinpath("data", "vram_reports.json").read_text(encoding="utf-8")
    return json.loads(text)["rows"]


def _inputs(row: dict[str, Any]) -> VramInputs:
    return VramInputs(
        family=row["family"],
        resolution=row["resolution"],
        batch=row["batch"],
        rank=row["rank"],
        base_precision=row.get("base_precision", "bf16"),
        optimizer=row["optimizer"],
        gc=row["gc"],
        cache_latents=row["cache_latents"],
        cache_te=row["cache_te"],
        trains_te=row.get("trains_te", False),
        blocks_to_swap=row.get("blocks_to_swap", 0),
        full_bf16=row.get("full_bf16", False),
    )


def _check(row: dict[str, Any]) -> ReportCheck:
    base = {"id": row["id"], "family": row["family"], "kind": row["kind"], "source": row["source"]}
    if row["kind"] == "not_modelled":
        return ReportCheck(
            **base,
            reported=row["note"],
            estimate_gb=None,
            range_gb="",
            verdict="not modelled",
            in_range=None,
            detail="full fine-tune or a family Ategnatos does not train",
        )
    est = estimate_vram(_inputs(row))
    range_gb = f"{est.low_gb}-{est.high_gb}"
    if row["kind"] == "measured":
        ratio = row["gb"] / est.gb
        in_range = est.low_gb <= row["gb"] <= est.high_gb
        return ReportCheck(
            **base,
            reported=f"{row['gb']} GB",
            estimate_gb=est.gb,
            range_gb=range_gb,
            verdict="match" if in_range else "miss",
            in_range=in_range,
            detail=f"reported/estimate {ratio:.2f}",
        )
    card = row["card_gb"]
    if row["kind"] == "fits":
        ok, in_range = est.gb <= card, est.low_gb <= card
        reported = f"fits {card} GB"
    else:
        ok, in_range = est.gb > card, est.high_gb > card
        reported = f"out of memory on {card} GB"
    return ReportCheck(
        **base,
        reported=reported,
        estimate_gb=est.gb,
        range_gb=range_gb,
        verdict="match" if ok else "miss",
        in_range=in_range,
        detail="central estimate agrees" if ok else "central estimate disagrees",
    )


def check_reports() -> list[ReportCheck]:
    """Every report row compared with the estimate."""
    return [_check(row) for row in load_reports()]


def render_table(checks: list[ReportCheck]) -> str:
    """A markdown table of the comparison, with a one-line summary on top."""
    modelled = [c for c in checks if c.verdict != "not modelled"]
    matches = sum(c.verdict == "match" for c in modelled)
    in_range = sum(bool(c.in_range) for c in modelled)
    lines = [
        f"{matches}/{len(modelled)} modelled rows match on the central estimate, {in_range}/{len(modelled)} within the "
        f"range; {len(checks) - len(modelled)} rows not modelled.",
        "",
        "| row | family | reported | estimate GB | range GB | verdict | in range | detail |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        est = "" if c.estimate_gb is None else f"{c.estimate_gb}"
        rng = "" if c.in_range is None else ("yes" if c.in_range else "no")
        lines.append(
            f"| {c.id} | {c.family} | {c.reported} | {est} | {c.range_gb} | {c.verdict} | {rng} | {c.detail} |"
        )
    return "\n".join(lines) + "\n"
