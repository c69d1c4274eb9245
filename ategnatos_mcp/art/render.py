"""Markdown views of the art state: spec.md, iterations.md, approved.md and library entries.

The JSON documents are the source of truth; these files are re-rendered on every write.
"""

from __future__ import annotations

from pathlib import Path

from ategnatos_mcp.art.models import ArtAsset, Iteration, LibraryEntry, LoraUse, PromptSettings

__all__ = ["edited_notice", "render_approved", "render_iterations", "render_library_entry", "render_spec"]

_HEADER = "<!-- Rendered by Ategnatos from {source}; change it through the art tools, not by hand. -->\n\n"


def _settings_lines(settings: PromptSettings) -> list[str]:
    lines = [
        f"- Sampler: {settings.sampler} / {settings.scheduler}",
        f"- Steps: {settings.steps}",
        f"- CFG: {settings.cfg:g}",
    ]
    if settings.guidance is not None:
        lines.append(f"- Guidance: {settings.guidance:g}")
    if settings.clip_skip is not None:
        lines.append(f"- Clip skip: {settings.clip_skip}")
    lines.append(f"- Size: {settings.width}x{settings.height}")
    if settings.seed is not None:
        lines.append(f"- Seed: {settings.seed}")
    return lines


def _lora_lines(loras: list[LoraUse]) -> list[str]:
    return [
        f"- LoRA: {lora.name} at {lora.weight:g}"
        + (f" (triggers: {', '.join(lora.trigger_words)})" if lora.trigger_words else "")
        for lora in loras
    ]


def _model_lines(it: Iteration) -> list[str]:
    lines = [f"- Checkpoint: {it.checkpoint}"] if it.checkpoint else []
    if it.workflow:
        lines.append(f"- Workflow: {it.workflow}")
    elif it.template:
        lines.append(f"- Template: {it.template}")
    return lines


def _block(text: str) -> list[str]:
    return ["```text", text or "(empty)", "```"]


def render_spec(doc: ArtAsset) -> str:
    spec = doc.spec
    lines = [f"# {doc.asset} — spec", "", f"Project: {doc.project}", ""]
    lines.append(f"- Purpose: {spec.purpose or '(not given yet)'}")
    if spec.width and spec.height:
        lines.append(f"- Final size: {spec.width}x{spec.height}")
    if spec.formats:
        lines.append(f"- Formats: {', '.join(spec.formats)}")
    if spec.notes:
        lines += ["", spec.notes]
    return _HEADER.format(source=".state/asset.json") + "\n".join(lines) + "\n"


def _iteration_lines(it: Iteration) -> list[str]:
    origin = {
        "built": "built from the request",
        "adjusted": f"adjusted from version {it.based_on}",
        "reverted": f"a copy of version {it.based_on}",
        "logged": "logged as used",
    }[it.origin]
    lines = [f"## Version {it.version}", "", f"{it.created_at:%Y-%m-%d %H:%M} UTC · {it.family} · {origin}", ""]
    if it.intent:
        lines += [f"Intent: {it.intent}", ""]
    lines += ["Prompt:", *_block(it.positive), "", "Negative:", *_block(it.negative), ""]
    lines += _model_lines(it) + _settings_lines(it.settings) + _lora_lines(it.loras)
    if it.applied_feedback:
        lines += ["", "Changes applied:"]
        lines += [f"- {fb.phrase}: {fb.why}" for fb in it.applied_feedback]
    if it.outputs:
        lines += ["", "Outputs:"] + [f"- {path}" for path in it.outputs]
    lines += ["", f"Feedback: {it.feedback or '(none yet)'}", ""]
    return lines


def render_iterations(doc: ArtAsset) -> str:
    lines = [f"# {doc.asset} — iterations", "", f"Project: {doc.project} · {len(doc.iterations)} version(s)", ""]
    if doc.approved_version is not None:
        lines += [f"Approved: version {doc.approved_version}", ""]
    for it in doc.iterations:
        lines += _iteration_lines(it)
    return _HEADER.format(source=".state/asset.json") + "\n".join(lines).rstrip() + "\n"


def render_approved(doc: ArtAsset) -> str:
    it = doc.version(doc.approved_version) if doc.approved_version is not None else None
    lines = [f"# {doc.asset} — approved", ""]
    if it is None:
        lines.append("Nothing approved yet.")
    else:
        lines += [f"Version {it.version} · {it.family}", "", "Prompt:", *_block(it.positive), ""]
        lines += ["Negative:", *_block(it.negative), ""]
        lines += _model_lines(it) + _settings_lines(it.settings) + _lora_lines(it.loras)
        if it.outputs:
            lines += ["", "Outputs:"] + [f"- {path}" for path in it.outputs]
        if doc.approval_notes:
            lines += ["", f"Notes: {doc.approval_notes}"]
    return _HEADER.format(source=".state/asset.json") + "\n".join(lines) + "\n"


def render_library_entry(entry: LibraryEntry) -> str:
    lines = [f"# {entry.name}", "", f"Family: {entry.family}"]
    if entry.tags:
        lines.append(f"Tags: {', '.join(entry.tags)}")
    if entry.source:
        lines.append(f"From: {entry.source}")
    lines += ["", "Prompt:", *_block(entry.positive), "", "Negative:", *_block(entry.negative), ""]
    if entry.settings is not None:
        lines += _settings_lines(entry.settings)
    lines += _lora_lines(entry.loras)
    if entry.notes:
        lines += ["", f"Notes: {entry.notes}"]
    return _HEADER.format(source=".state/art-library.json") + "\n".join(lines) + "\n"


def edited_notice(page: Path, kept: Path, *, hand_kept: bool = False) -> str:
    """What the artist hears when a page of theirs was kept before we rendered it again."""
    if hand_kept:
        return (
            f"{page.name} was already there, not written by Ategnatos; your copy is kept as {kept.name} and "
            f"{page.name} now shows the log. Make changes through the art tools so they stick."
        )
    return (
        f"{page.name} had been edited by hand; your copy is kept as {kept.name} and {page.name} was "
        "rendered fresh from the log. Make changes through the art tools so they stick."
    )
