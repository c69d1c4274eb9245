"""Config edits for the training supervisor: STANDARD LIBRARY ONLY, copied to the host beside ``supervisor.py``.

On an out-of-memory retry the supervisor halves the batch in its copy of the rendered config files (keeping the
effective batch through gradient accumulation) and, past batch 1, writes the files of the next memory saver. The
files are edited line by line for the keys we render (the host may have no TOML writer or PyYAML).
"""

from __future__ import annotations

import json
import os
import re


def write_text_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _set_line_values(text: str, pattern: str, value: int) -> tuple[str, int]:
    """Replace the integer of every ``key = N`` / ``key: N`` line the pattern matches."""
    regex = re.compile(pattern, re.M)
    return regex.subn(lambda m: m.group(1) + str(value) + m.group(3), text)


def edit_toml(text: str, batch_keys: list, accumulation_key: str | None, batch: int, accumulation: int) -> str:
    for key in batch_keys:
        text, _ = _set_line_values(text, r"^(\s*" + re.escape(key) + r"\s*=\s*)(\d+)(\s*(?:#.*)?)$", batch)
    if accumulation_key:
        text, count = _set_line_values(
            text, r"^(\s*" + re.escape(accumulation_key) + r"\s*=\s*)(\d+)(\s*(?:#.*)?)$", accumulation
        )
        if count == 0:  # top-level keys must come before the first table
            text = f"{accumulation_key} = {accumulation}\n" + text
    return text


def edit_yaml(text: str, batch_keys: list, accumulation_key: str | None, batch: int, accumulation: int) -> str:
    """A careful line edit of known keys (the host may have no PyYAML): ``  batch_size: 4`` lines only."""
    for key in batch_keys:
        text, _ = _set_line_values(text, r"^(\s*-?\s*" + re.escape(key) + r":\s*)(\d+)(\s*(?:#.*)?)$", batch)
    if accumulation_key:
        text, count = _set_line_values(
            text, r"^(\s*" + re.escape(accumulation_key) + r":\s*)(\d+)(\s*(?:#.*)?)$", accumulation
        )
        if count == 0:
            # Put it beside the train block's batch_size (same indentation = same mapping).
            match = re.search(r"^(\s*)batch_size:\s*\d+\s*$", text, re.M)
            if match:
                line = f"{match.group(1)}{accumulation_key}: {accumulation}\n"
                end = match.end() + 1
                text = text[:end] + line + text[end:]
    return text


def _edit_json_value(data: object, batch_keys: list, batch: int) -> None:
    if isinstance(data, dict):
        for key in batch_keys:
            if isinstance(data.get(key), int):
                data[key] = batch
    elif isinstance(data, list):
        for item in data:
            _edit_json_value(item, batch_keys, batch)


def edit_json(text: str, batch_keys: list, accumulation_key: str | None, batch: int, accumulation: int) -> str:
    data = json.loads(text)
    _edit_json_value(data, batch_keys, batch)
    if accumulation_key and isinstance(data, dict):
        data[accumulation_key] = accumulation
    return json.dumps(data, indent=2) + "\n"


EDITORS = {"toml": edit_toml, "yaml": edit_yaml, "json": edit_json}


def apply_edits(edits: list, batch: int, accumulation: int) -> None:
    for edit in edits:
        path = edit["path"]
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        new = EDITORS[edit["format"]](
            text, edit.get("batch_keys", []), edit.get("accumulation_key"), batch, accumulation
        )
        write_text_atomic(path, new)


def next_rung(batch: int, accumulation: int) -> tuple[int, int]:
    """Half the batch, double the accumulation: the effective batch (batch x accumulation) stays the same."""
    new_batch = max(1, batch // 2)
    return new_batch, -(-batch * accumulation // new_batch)
