"""Preview prompts when the artist gave none: built from the dataset's own captions, so the trainer makes sample
images every few epochs and ``training_status`` can show the LoRA learning.

Two captions spread over the training images (not the regularisation ones) become the prompts, one line each and
short enough for CLIP's ~75 tokens; the trigger word leads when there is one (as in the captions), and Pony gets
its quality tags in front, as its model card asks for every prompt.
"""

from __future__ import annotations

import re
from pathlib import Path

from ategnatos_mcp.training.config import is_regularisation_folder
from ategnatos_mcp.training.families import Family

__all__ = ["prompts_from_captions", "trigger_word_note"]

_MAX_CHARS = 220
_PONY_QUALITY = "score_9, score_8_up, score_7_up"


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    if len(line) <= _MAX_CHARS:
        return line
    cut = line[:_MAX_CHARS]
    return cut[: cut.rfind(",")] if "," in cut else cut.rsplit(" ", 1)[0]


def prompts_from_captions(
    dataset: Path, captions: list[str], trigger: str | None, family: Family, *, count: int = 2
) -> list[str]:
    """Up to ``count`` prompts from the caption files ``captions`` (paths relative to ``dataset``). Blocking."""
    own = sorted(c for c in captions if not is_regularisation_folder(c.split("/", 1)[0] if "/" in c else ""))
    if not own:
        return []
    picks = sorted({round(i * (len(own) - 1) / max(1, count - 1)) for i in range(count)}) if count > 1 else [0]
    prompts: list[str] = []
    for index in picks:
        try:
            text = _one_line((dataset / own[index]).read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        if not text:
            continue
        if trigger and not re.match(rf"{re.escape(trigger)}\b", text, re.IGNORECASE):
            text = f"{trigger}, {text}"
        if family.key == "pony" and not text.startswith("score_"):
            text = f"{_PONY_QUALITY}, {text}"
        if text not in prompts:
            prompts.append(text)
    return prompts


def trigger_word_note(training_type: str, trigger: str | None) -> str | None:
    """The trigger-word rule, said when a plan departs from it (the captioning guide states the same rule)."""
    if training_type == "style" and trigger:
        return (
            f"A style usually trains without a trigger word: it comes with the LoRA whenever it is loaded, at the "
            f"weight you pick. With '{trigger}' it becomes a switch, so '{trigger}' must start every caption "
            "(dataset_audit with trigger_word checks that)."
        )
    if training_type != "style" and not trigger:
        return (
            f"A {training_type} LoRA needs a trigger word to call it up, first in every caption: plan again with "
            "trigger_word=... (a rare made-up word, e.g. 'zxq_mira')."
        )
    return None
