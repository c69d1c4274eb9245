"""The dataset report (``grimoire/training/{name}/dataset-report.md``) and the one-paragraph summary."""

from __future__ import annotations

from datetime import datetime

from ategnatos_mcp.dataset.models import AuditResult

__all__ = ["audit_next_step", "audit_problem_list", "audit_summary", "render_report"]

_LAYOUT = {
    "flat": "flat (all images in plain folders)",
    "kohya": "kohya ({repeats}_{name} folders)",
    "mixed": "mixed (some kohya {repeats}_{name} folders, some plain folders)",
}


def audit_summary(result: AuditResult) -> str:
    """A few plain sentences for the artist: the verdict first, then the biggest issues."""
    verdict = "GO: the dataset is ready for training." if result.go else "NO-GO: fix these before training:"
    lines = [
        f"{verdict}",
        *[f"- {r}" for r in result.reasons],
        f"{result.readable} of {result.images} images are usable; layout: {_LAYOUT[result.layout]}.",
        f"Captions of the usable images: {result.captions.captioned} captioned, {result.captions.missing} missing, "
        f"{len(result.captions.empty)} empty.",
    ]
    if result.duplicate_groups:
        lines.append(f"Duplicates: {result.duplicate_groups} picture(s) appear more than once.")
    if result.recommendations:
        lines.append("Recommended:")
        lines.extend(f"- {r}" for r in result.recommendations[:6])
    if result.decoded < result.readable:
        lines.append(f"({result.readable - result.decoded} images were unchanged since the last audit.)")
    return "\n".join(lines)


def audit_problem_list(result: AuditResult) -> str:
    """The problem files the audit lists (``detail`` of them), one per line, with "...and N more" when cut."""
    if not result.problems:
        return ""
    lines = ["Problem files:"]
    lines += [f"- {p.path}: {p.message} ({p.fix})" for p in result.problems]
    hidden = sum(result.problem_counts.values()) - result.problems_shown
    if hidden > 0:
        lines.append(f"...and {hidden} more (a larger `detail` lists them).")
    return "\n".join(lines)


def audit_next_step(result: AuditResult, *, path: str, training_name: str | None) -> str:
    """The one call that moves this dataset forward, named exactly."""
    if result.go:
        if result.layout == "flat":
            return f"Lay it out for the trainer with dataset_structure path='{path}' (then plan with train_plan)."
        run = f" and training_name='{training_name}'" if training_name else ""
        return f"Plan the training with train_plan dataset_path='{path}'{run}."
    if result.readable < result.images:
        return (
            f"Set the unreadable files aside with dataset_audit path='{path}' quarantine_unreadable=true "
            "(undo with dataset_dedupe action='undo'), or replace them."
        )
    if result.captions.missing or result.captions.empty:
        return f"Caption the images: dataset_captions path='{path}' mode='review' only_missing=true, then mode='write'."
    if result.duplicate_groups:
        return f"Look at the duplicates with dataset_dedupe path='{path}' (report first; nothing moves without asking)."
    return "Fix the reasons above, then run dataset_audit again."


def _problems_table(result: AuditResult) -> list[str]:
    if not result.problems:
        return ["No file problems found."]
    rows = ["| file | problem | what to do |", "|---|---|---|"]
    rows.extend(f"| `{p.path}` | {p.message} | {p.fix} |" for p in result.problems)
    hidden = sum(result.problem_counts.values()) - result.problems_shown
    if hidden > 0:
        rows.append(f"\n…and {hidden} more (run the audit with a larger `detail` to list them).")
    return rows


def render_report(result: AuditResult, *, name: str, when: datetime) -> str:
    """The full markdown report for gate 1."""
    c = result.captions
    res = result.resolution
    out = [
        f"# Dataset report: {name}",
        "",
        f"**Verdict: {'GO' if result.go else 'NO-GO'}**  ",
        f"Checked {when:%Y-%m-%d %H:%M} UTC · dataset `{result.dataset}` · fingerprint `{result.fingerprint[:16]}`",
        "",
        "## In plain language",
        "",
    ]
    out += [f"- {r}" for r in result.reasons] or ["- Nothing blocks training."]
    out += ["", "## What we recommend", ""]
    out += [f"- {r}" for r in result.recommendations] or ["- Nothing: the dataset looks good."]
    out += [
        "",
        "## The numbers",
        "",
        f"- Images: {result.images} found, {result.readable} usable",
        f"- Layout: {_LAYOUT[result.layout]}"
        + (f" — {', '.join(f'{k} ({v} repeats)' for k, v in result.concepts.items())}" if result.concepts else ""),
        f"- Formats: {', '.join(f'{k} {v}' for k, v in result.formats.items()) or 'none'}",
        f"- Sizes: shortest side {res.smallest_side_min}-{res.smallest_side_median} px (min-median), "
        f"longest side up to {res.longest_side_max} px",
        f"- Shapes: {res.square} square, {res.portrait} portrait, {res.landscape} landscape, {res.extreme} extreme",
        f"- Captions: {c.captioned} captioned, {c.missing} missing, {len(c.empty)} empty, {len(c.orphans)} without image",
    ]
    if c.trigger_word:
        out.append(
            f"- Trigger word `{c.trigger_word}`: first in {c.with_trigger} captions, missing in {c.without_trigger}"
            + (
                f" (not expected in the {c.regularisation_images} regularisation images)"
                if c.regularisation_images
                else ""
            )
        )
    if c.top_tags:
        out.append("- Most used tags: " + ", ".join(f"{t.tag} ({t.count})" for t in c.top_tags[:10]))
    out.append(f"- Duplicates: {result.duplicate_groups} group(s), {result.duplicate_extras} extra copies")
    out += ["", f"## Training buckets at {result.target_resolution} px", ""]
    out += ["| bucket | images |", "|---|---|"]
    out += [f"| {b.width}x{b.height} | {b.images} |" for b in result.buckets]
    if result.sparse_buckets:
        out.append("")
        out.append("Nearly empty: " + ", ".join(f"{b.width}x{b.height} ({b.images})" for b in result.sparse_buckets))
    out += ["", "## File problems", ""]
    out += _problems_table(result)
    out.append("")
    return "\n".join(out)
