"""Adding, updating and removing inventory entries."""

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import BaseModel, ValidationError

from ategnatos_mcp.errors import InvalidRequestError, NotFoundError
from ategnatos_mcp.families import family_ids, find_family
from ategnatos_mcp.studio.models import LoraEntry, ModelEntry, StudioInventory, WorkflowEntry
from ategnatos_mcp.text import strip_invisible

__all__ = ["EntryKind", "RegisterAction", "register_entry"]

EntryKind = Literal["model", "lora", "workflow"]
RegisterAction = Literal["add", "update", "remove"]

_MODELS: dict[str, type[BaseModel]] = {"model": ModelEntry, "lora": LoraEntry, "workflow": WorkflowEntry}
_LISTS = {"model": "models", "lora": "loras", "workflow": "workflows"}


def register_entry(
    inv: StudioInventory, kind: EntryKind, action: RegisterAction, name: str, fields: dict[str, Any]
) -> tuple[str, BaseModel | None]:
    """Apply one change in place; returns a plain message and the entry afterwards (None when removed).

    Raises:
        InvalidRequestError: unknown fields or values that do not fit the entry.
        NotFoundError: updating or removing an entry that does not exist.
    """
    name = " ".join(strip_invisible(name).split())
    if not name or len(name) > 200:
        raise InvalidRequestError("The entry needs a name (at most 200 characters).", hint="Name the file or LoRA.")
    _check_lengths(fields)
    fields = {key: _one_line(value) for key, value in fields.items()}
    fields, family_note = _canonical_family(fields)
    entries: list[Any] = getattr(inv, _LISTS[kind])
    index = next((i for i, e in enumerate(entries) if e.name.casefold() == name.casefold()), None)
    label = {"model": "model", "lora": "LoRA", "workflow": "workflow"}[kind]
    if action == "remove":
        if index is None:
            raise _missing(label, name, entries)
        entries.pop(index)
        return f"Removed {label} '{name}' from the studio inventory.", None
    if action == "update" and index is None:
        raise _missing(label, name, entries)
    base = entries[index].model_dump() if index is not None else {}
    merged = {**base, **{k: v for k, v in fields.items() if v is not None}, "name": name}
    entry = _validate(_MODELS[kind], merged, label)
    if isinstance(entry, LoraEntry) and entry.weight_min > entry.weight_max:
        raise InvalidRequestError(
            f"The weight range {entry.weight_min}-{entry.weight_max} is upside down.",
            hint="Give weight_min no larger than weight_max, e.g. 0.6 and 0.8.",
        )
    if index is None:
        entries.append(entry)
        return f"Added {label} '{name}' to the studio inventory.{family_note}", entry
    entries[index] = entry
    verb = "Updated" if action == "update" else "Replaced"
    return f"{verb} {label} '{name}'.{family_note}", entry


def _canonical_family(fields: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Store a model's or LoRA's family under the shared catalogue's id ("Pony Diffusion V6 XL" -> "pony").

    A base the catalogue does not know is kept as written, and the message says what that means.
    """
    out = dict(fields)
    for key in ("base", "base_model"):
        value = out.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        found = find_family(value)
        if found is not None:
            out[key] = found.id
            continue
        note = (
            f" Its base '{value}' is not a model family Ategnatos knows, so art_prompt cannot pick its prompt style "
            f"from it; if it is one of {', '.join(family_ids())}, update it with that name."
        )
        return out, note
    return out, ""


_MAX_FIELD = 2000  # a note, a URL or a settings line; not a pasted file (studio.md shows every field)
_MAX_WORD = 200


def _check_lengths(fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        if isinstance(value, str) and len(value) > _MAX_FIELD:
            raise InvalidRequestError(
                f"`{key}` is {len(value):,} characters long; the studio inventory keeps at most {_MAX_FIELD:,}.",
                hint=f"Shorten `{key}` to a line or two, or link to a longer note.",
            )
        if isinstance(value, list) and any(isinstance(v, str) and len(v) > _MAX_WORD for v in value):
            raise InvalidRequestError(
                f"An item of `{key}` is longer than {_MAX_WORD} characters.",
                hint=f"Give `{key}` as short words or phrases.",
            )


def _one_line(value: Any) -> Any:
    """Text fields as one line (a table cell holds one): invisible characters dropped, whitespace collapsed."""
    if isinstance(value, str):
        return " ".join(strip_invisible(value).split())
    if isinstance(value, list):
        items = [_one_line(item) for item in cast("list[Any]", value)]
        return [item for item in items if item != ""]
    return value


def _validate(model: type[BaseModel], data: dict[str, Any], label: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        allowed = ", ".join(model.model_fields)
        raise InvalidRequestError(
            f"The {label} field `{where}` is not usable: {first['msg']}.",
            hint=f"Fields a {label} takes: {allowed}.",
        ) from exc


def _missing(label: str, name: str, entries: list[Any]) -> NotFoundError:
    known = ", ".join(e.name for e in entries[:20]) or "none yet"
    return NotFoundError(
        f"There is no {label} called '{name}' in the studio inventory.",
        kind=label,
        name=name,
        hint=f"Known {label}s: {known}. Use action 'add' to register it.",
    )
