"""``grimoire/gpu.md``: the spend ledger as a page an artist can read. Written by Ategnatos only."""

from __future__ import annotations

from datetime import datetime

from ategnatos_mcp.providers.models import GpuDocument, InstanceStatus
from ategnatos_mcp.state import View

__all__ = ["GPU_VIEW", "render_gpu", "teardown_reminder"]

_LEDGER_LINES = 60


def teardown_reminder(doc: GpuDocument, key: str, now: datetime) -> str | None:
    """What to say after work finished on rented instance ``key``: it is still billing, and how to stop it."""
    rental = doc.rentals.get(key)
    if rental is None or rental.status is InstanceStatus.TERMINATED:
        return None
    return (
        f"This ran on your rented {rental.gpu or 'GPU'} ({rental.provider}, ${rental.usd_per_hour:.2f}/h, about "
        f"${rental.cost_so_far(now):.2f} so far), which bills until it is torn down. When you are done, "
        f"call gpu_teardown with keys=['{key}']."
    )


def render_gpu(doc: GpuDocument) -> str:
    """Rentals still billing, then the ledger (newest first)."""
    lines = [
        "# GPU rentals and spend",
        "",
        "Written by Ategnatos from `.state/gpu.json`; edits here are not imported.",
        "",
    ]
    live = [r for r in doc.rentals.values() if r.status is not InstanceStatus.TERMINATED]
    lines += ["## Still billing", ""]
    if not live:
        lines += ["Nothing. No instance is running or stopped with a disk.", ""]
    else:
        lines += ["| instance | GPU | status | $/h | since (UTC) | note |", "|---|---|---|---|---|---|"]
        for r in sorted(live, key=lambda r: r.started_at):
            note = (
                "orphan: not rented through Ategnatos"
                if r.orphan
                else ("stopped: its disk still bills" if r.status is InstanceStatus.STOPPED else "")
            )
            lines.append(
                f"| {r.key} | {r.gpu or '?'} | {r.status.value} | {r.usd_per_hour:.2f} | {r.started_at:%Y-%m-%d %H:%M} | {note} |"
            )
        lines.append("")
    lines += ["## Ledger", ""]
    if not doc.ledger:
        lines += ["No rentals yet.", ""]
    else:
        lines += ["| when (UTC) | instance | event | $/h | cost so far | note |", "|---|---|---|---|---|---|"]
        for entry in list(reversed(doc.ledger))[:_LEDGER_LINES]:
            cost = f"{entry.usd:.2f}" if entry.event not in ("rented", "adopted") else ""
            lines.append(
                f"| {entry.at:%Y-%m-%d %H:%M} | {entry.provider}:{entry.instance_id} | {entry.event} "
                f"| {entry.usd_per_hour:.2f} | {cost} | {entry.note} |"
            )
        lines.append("")
    return "\n".join(lines)


def _refuse_edits(text: str, current: GpuDocument) -> GpuDocument:
    raise ValueError("the spend ledger is a record of what was billed, so hand edits are not imported")


GPU_VIEW: View[GpuDocument] = View(filename="gpu.md", render=render_gpu, parse=_refuse_edits)
