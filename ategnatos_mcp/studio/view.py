"""``grimoire/studio.md``: the inventory as tables, in the seed's format.

The Models and LoRAs tables may be edited by hand and are imported back; Environment, Workflows
and Active Instances are written by Ategnatos (edits there are replaced by the next detection).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ategnatos_mcp.studio.models import LoraEntry, ModelEntry, StudioInventory

__all__ = ["STUDIO_VIEW_FILE", "parse_studio", "render_studio"]

STUDIO_VIEW_FILE = "studio.md"

_MODEL_HEADER = ["Name", "Type", "Base", "Good For", "Location", "Settings"]
_LORA_HEADER = ["Name", "Trigger", "Weight Range", "Base", "Trained On", "Location"]

_TEMPLATE = """\
# Studio
<!-- Rendered by Ategnatos from grimoire/.state/studio.json. You may edit the Models and LoRAs tables by hand. -->

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
{% for wf in inv.workflows -%}
- **{{ wf.name }}**{% if wf.description %}: {{ wf.description }}{% endif %}{% if wf.location %} ({{ wf.location }}){% endif %}
{% else -%}
- (none registered)
{% endfor %}
## Active Instances
{{ instances }}
"""


@cache
def _template() -> Any:
    import jinja2  # lazy: keeps server start-up fast

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    return env.from_string(_TEMPLATE)


def _cell(value: object) -> str:
    return str(value).replace("|", "/").replace("\n", " ").strip()


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return "\n".join(lines)


def _weight(value: float) -> str:
    return f"{value:g}"


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
    models = _table(_MODEL_HEADER, [[m.name, m.kind, m.base, m.good_for, m.location, m.settings] for m in inv.models])
    loras = _table(
        _LORA_HEADER,
        [
            [
                lo.name,
                ", ".join(lo.trigger_words),
                f"{_weight(lo.weight_min)}-{_weight(lo.weight_max)}",
                lo.base_model,
                lo.trained_on,
                lo.location,
            ]
            for lo in inv.loras
        ],
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
        instances=instances,
    )


def _sections(text: str) -> dict[str, list[str]]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "# Studio":
        raise ValueError("the first line must be '# Studio'")
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines[1:]:
        if line.startswith("## "):
            current = sections.setdefault(line[3:].strip().casefold(), [])
        elif current is not None:
            current.append(line)
    return sections


def _rows(lines: list[str], header: list[str], section: str) -> list[list[str]]:
    table = [line.strip() for line in lines if line.strip().startswith("|")]
    if not table:
        return []
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in table]
    if [c.casefold() for c in cells[0]] != [h.casefold() for h in header]:
        raise ValueError(f"the {section} table's header must be: | {' | '.join(header)} |")
    rows = []
    for n, row in enumerate(cells[2:], start=1):
        if len(row) != len(header):
            raise ValueError(f"row {n} of the {section} table has {len(row)} cells; it needs {len(header)}")
        if not row[0]:
            raise ValueError(f"row {n} of the {section} table has no name")
        rows.append(row)
    return rows


def _weights(text: str, name: str) -> tuple[float, float]:
    parts = [p.strip() for p in text.replace("–", "-").split("-") if p.strip()] if text.strip() else ["0.6", "1.0"]
    try:
        low, high = (float(parts[0]), float(parts[-1]))
    except ValueError as exc:
        raise ValueError(f"the weight range of LoRA '{name}' should look like 0.6-0.8") from exc
    return low, high


def parse_studio(text: str, current: StudioInventory) -> StudioInventory:
    """Import the hand-editable tables; keep machine-written sections and extra fields from ``current``.

    Raises:
        ValueError: the text is not in the studio.md format.
    """
    sections = _sections(text)
    result = current.model_copy(deep=True)
    old_models = {m.name.casefold(): m for m in current.models}
    result.models = []
    for name, kind, base, good_for, location, settings in _rows(sections.get("models", []), _MODEL_HEADER, "Models"):
        old = old_models.get(name.casefold())
        fields = {"name": name, "kind": kind or "checkpoint", "base": base, "good_for": good_for}
        fields |= {"location": location, "settings": settings, "provenance": old.provenance if old else ""}
        try:
            result.models.append(ModelEntry.model_validate(fields))
        except ValueError as exc:
            raise ValueError(f"model '{name}': type must be checkpoint, vae, upscaler, controlnet, ...") from exc
    old_loras = {lo.name.casefold(): lo for lo in current.loras}
    result.loras = []
    for name, trigger, weights, base, trained_on, location in _rows(sections.get("loras", []), _LORA_HEADER, "LoRAs"):
        low, high = _weights(weights, name)
        triggers = [t.strip() for t in trigger.split(",") if t.strip()]
        old = old_loras.get(name.casefold())
        result.loras.append(
            LoraEntry(
                name=name,
                trigger_words=triggers,
                weight_min=low,
                weight_max=high,
                base_model=base,
                trained_on=trained_on,
                location=location,
                provenance=old.provenance if old else None,  # not in the table: kept from the state
            )
        )
    return result
