"""``grimoire/studio.md``: the inventory as tables, in the seed's format.

The Models, LoRAs and Workflows tables may be edited by hand and are imported back (``merge_studio``);
Environment and Active Instances are written by Ategnatos: lines the artist adds there are kept as written.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ategnatos_mcp.state import Merge
from ategnatos_mcp.state.markdown import escape, join_list, minus, render_kept
from ategnatos_mcp.studio.models import StudioInventory
from ategnatos_mcp.studio.reading import KINDS, ParsedStudio, Row, read_studio

__all__ = ["STUDIO_VIEW_FILE", "merge_studio", "parse_studio", "render_studio"]

STUDIO_VIEW_FILE = "studio.md"

_MODEL_HEADER = ["Name", "Type", "Base", "Good For", "Location", "Settings"]
_LORA_HEADER = ["Name", "Trigger", "Weight Range", "Base", "Trained On", "Location"]
_WORKFLOW_HEADER = ["Name", "Description", "Location"]
_LISTS = {"model": "models", "lora": "loras", "workflow": "workflows"}

_TEMPLATE = """\
# Studio
<!-- Rendered by Ategnatos from grimoire/.state/studio.json. You may edit the Models, LoRAs and Workflows tables by hand. -->

## Environment
{% if env -%}
- **Primary**: {{ primary }}
- **CUDA**: {{ env.cuda_version or "not detected" }}{% if env.driver_version %} (driver {{ env.driver_version }}){% endif %}
- **ComfyUI**: {{ comfyui }}
- **Disk free**: {{ disk }}
- **Provider keys set**: {{ keys }}
- **Detected**: {{ env.detected_at.strftime("%Y-%m-%d %H:%M UTC") }}
{%- else -%}
- Not detected yet (ask Claude to run studio_detect).
{%- endif %}

## Models
{{ models }}

## LoRAs
{{ loras }}

## Workflows
{{ workflows }}

## Active Instances
{{ instances }}
"""


@cache
def _template() -> Any:
    import jinja2  # lazy: keeps server start-up fast

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    return env.from_string(_TEMPLATE)


class _Raw(str):
    """A cell already escaped (a list of trigger words)."""


def _cell(value: object) -> str:
    if isinstance(value, _Raw):
        return str(value)
    return escape(" ".join(str(value).split()), "|")


def _table(header: list[str], rows: list[list[str]], others: list[dict[str, str]] | None = None) -> str:
    """A table; columns the artist added (``other_columns``) follow ours, in the order first seen."""
    extra = list(dict.fromkeys(key for row in others or [] for key in row))
    lines = [
        "| " + " | ".join(_cell(h) for h in header + extra) + " |",
        "|" + "|".join("---" for _ in header + extra) + "|",
    ]
    for n, row in enumerate(rows):
        cells = [_cell(c) for c in row] + [_cell((others or [])[n].get(key, "")) for key in extra]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _weight(value: float) -> str:
    text = repr(value)  # the shortest text that reads back as the same number
    return text.removesuffix(".0")


def render_studio(inv: StudioInventory) -> str:
    env = inv.environment
    primary = comfyui = disk = keys = ""
    if env is not None:
        primary = ", ".join(f"{g.name} ({g.memory_total_mib // 1024} GB)" for g in env.gpus) or (
            f"no local GPU ({env.gpu_problem})" if env.gpu_problem else "no local GPU"
        )
        comfyui = (
            "; ".join(
                f"{c.url} {'up' + (' v' + c.version if c.version else '') if c.reachable else 'not answering'}"
                for c in env.comfyui
            )
            or "not configured"
        )
        disk = f"{env.disk_free_gb:.0f} GB of {env.disk_total_gb:.0f} GB" if env.disk_free_gb is not None else "unknown"
        keys = ", ".join(name for name, present in env.provider_keys.items() if present) or "none"
    models = _table(
        _MODEL_HEADER,
        [[m.name, m.kind, m.base, m.good_for, m.location, m.settings] for m in inv.models],
        [m.other_columns for m in inv.models],
    )
    loras = _table(
        _LORA_HEADER,
        [
            [
                lo.name,
                _Raw(join_list(lo.trigger_words)),
                f"{_weight(lo.weight_min)}-{_weight(lo.weight_max)}",
                lo.base_model,
                lo.trained_on,
                lo.location,
            ]
            for lo in inv.loras
        ],
        [lo.other_columns for lo in inv.loras],
    )
    workflows = _table(
        _WORKFLOW_HEADER,
        [[w.name, w.description, w.location] for w in inv.workflows],
        [w.other_columns for w in inv.workflows],
    )
    instances = _table(
        ["Provider", "GPU", "Status", "Cost/hr", "Started", "Id"],
        [
            [
                i.provider,
                i.gpu,
                i.status,
                f"${i.usd_per_hour:.2f}",
                i.started_at.strftime("%Y-%m-%d %H:%M") if i.started_at else "",
                i.instance_id,
            ]
            for i in inv.instances
        ],
    )
    return _template().render(
        inv=inv,
        env=env,
        primary=primary,
        comfyui=comfyui,
        disk=disk,
        keys=keys,
        models=models,
        loras=loras,
        workflows=workflows,
        instances=instances,
    ) + render_kept(inv.kept_as_written)


def merge_studio(text: str, base: str | None, current: StudioInventory) -> Merge[StudioInventory]:
    """Apply what the artist changed in the tables between ``base`` (our render; None for their own file) and ``text``.

    Rows are matched by kind and name (case aside). A row the artist removed is removed; one they added or
    changed takes the columns their table has (others keep their values); one they did not touch keeps the
    document's values, and an entry the document gained since ``base`` is kept.
    """
    edited = read_studio(text)
    before = read_studio(base) if base is not None else ParsedStudio()
    result = current.model_copy(deep=True)
    gone = [key for key in before.rows if key not in edited.rows]
    for kind, key in gone:
        entries: list[Any] = getattr(result, _LISTS[kind])
        entries[:] = [e for e in entries if e.name.casefold() != key]
    changed = 0
    for key, row in edited.rows.items():
        shown = before.rows.get(key)
        if shown is None or shown.facts() != row.facts():
            changed += _apply(result, row)
    result.kept_as_written = minus(result.kept_as_written, minus(before.kept, edited.kept))
    result.kept_as_written += minus(edited.kept, before.kept)
    fresh = sorted(_fresh(edited.unread + edited.machine, before.unread + before.machine))
    result.kept_as_written += [raw for _, raw, _ in fresh]
    return Merge(
        doc=result,
        before=len(before.rows),
        after=len(edited.rows),
        removed=[f"{before.rows[key].kind} '{before.rows[key].name}'" for key in gone],
        changed=changed,
        unread=[f"line {n} '{_short(raw)}' ({why})" for n, raw, why in fresh],
        notes=edited.notes,
    )


def parse_studio(text: str, current: StudioInventory) -> StudioInventory:
    """The inventory a hand-edited studio.md describes (compared with the render of ``current``)."""
    return merge_studio(text, render_studio(current), current).doc


def _apply(inv: StudioInventory, row: Row) -> int:
    entries: list[Any] = getattr(inv, _LISTS[row.kind])
    index = next((i for i, e in enumerate(entries) if e.name.casefold() == row.name.casefold()), None)
    old = entries[index].model_dump() if index is not None else {}
    entry = KINDS[row.kind].model_validate({**old, **row.fields, "name": row.name, "other_columns": row.other})
    if index is None:
        entries.append(entry)
        return 1
    if entry == entries[index]:
        return 0
    entries[index] = entry
    return 1


def _fresh(edited: list[tuple[int, str, str]], before: list[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
    new = minus([raw.strip() for _, raw, _ in edited], [raw.strip() for _, raw, _ in before])
    fresh: list[tuple[int, str, str]] = []
    for item in edited:
        if item[1].strip() in new:
            new.remove(item[1].strip())
            fresh.append(item)
    return fresh


def _short(line: str) -> str:
    line = line.strip()
    return line if len(line) <= 70 else line[:67] + "..."
