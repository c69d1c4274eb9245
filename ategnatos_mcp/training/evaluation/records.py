"""The sheet's layout (title, row and column labels, which picture in which cell) and ``eval.md``."""

from __future__ import annotations

from pathlib import Path

from ategnatos_mcp.training.evaluation.models import EvalAnswer, EvalCell, EvalImage, EvalRecord, EvalSpec, SheetCell

__all__ = ["column_label", "eval_answer", "render_eval_md", "row_labels", "sheet_cells"]


def column_label(weight: float) -> str:
    return "no LoRA (weight 0)" if weight == 0 else f"weight {weight:g}"


def row_labels(spec: EvalSpec) -> list[tuple[int, int, str]]:
    """(save index, prompt index, label) per row: the saves, repeated per prompt when there are several."""
    several = len(spec.prompts) > 1
    return [
        (s, p, save.label + (f" / prompt {p + 1}" if several else ""))
        for p in range(len(spec.prompts))
        for s, save in enumerate(spec.saves)
    ]


def _cell(image: EvalImage | None) -> SheetCell:
    if image is None:
        return SheetCell(note="not asked")
    if image.path:
        return SheetCell(image=Path(image.path))
    return SheetCell(note=image.error or "not made yet")


def sheet_cells(
    name: str, spec: EvalSpec, images: list[EvalImage]
) -> tuple[str, list[str], list[str], list[list[SheetCell]]]:
    """Title, row labels, column labels and ``cells[row][column]`` (the weight-0 picture repeats in every row)."""
    by_key = {(i.save, i.prompt, i.weight): i for i in images}
    rows = row_labels(spec)
    cells = [[_cell(by_key.get((None if w == 0 else s, p, w))) for w in spec.weights] for s, p, _label in rows]
    prompts = (
        spec.prompts[0] if len(spec.prompts) == 1 else "; ".join(f"{n}) {t}" for n, t in enumerate(spec.prompts, 1))
    )
    base = ", ".join(spec.models.values())
    title = f"{name}: rows are saves, columns LoRA weights. Seed {spec.seed}, base model {base}. Prompt: {prompts}"
    return title, [label for _s, _p, label in rows], [column_label(w) for w in spec.weights], cells


def render_eval_md(name: str, record: EvalRecord) -> str:
    """The run's evaluation record: the sheet, the grid with each picture, room for the artist's verdicts."""
    spec = record.spec
    lines = [f"# {name}: evaluation", ""]
    if spec is None:
        return "\n".join([*lines, "Nothing evaluated yet.", ""])
    lines += [
        f"Contact sheet: {record.sheet or '(not made yet)'}",
        "",
        f"- ComfyUI: {record.server}",
        f"- Base model: {', '.join(f'{k} {v}' for k, v in spec.models.items())}",
        f"- Seed {spec.seed}; " + "; ".join(f"prompt {n}: {t}" for n, t in enumerate(spec.prompts, 1)),
        "",
        "## Grid (write your verdict under it: too weak / good / overcooked)",
        "",
        "| save | " + " | ".join(column_label(w) for w in spec.weights) + " |",
        "|---|" + "---|" * len(spec.weights),
    ]
    by_key = {(i.save, i.prompt, i.weight): i for i in record.images}
    for s, p, label in row_labels(spec):
        row = []
        for w in spec.weights:
            image = by_key.get((None if w == 0 else s, p, w))
            row.append(Path(image.path).name if image and image.path else (image.error or "-") if image else "-")
        lines.append(f"| {label} | " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
    if record.kept:
        lines += ["", "## Kept", ""]
        lines += [
            f"- {k.name} (epoch {k.provenance.epoch}, weight {k.provenance.weight:g}): {k.provenance.verdict or 'no verdict'}"
            f" -> {k.path}"
            for k in record.kept
        ]
    lines += ["", "## Verdicts", ""]
    return "\n".join(lines) + "\n"


def eval_answer(record: EvalRecord, working_on: str | None, notes: list[str]) -> EvalAnswer:
    """The tool's answer from the record: small (the cells name picture files; the sheet is one image)."""
    spec = record.spec
    assert spec is not None
    labels = [s.label for s in spec.saves]
    cells = [
        EvalCell(
            row=labels[i.save] if i.save is not None else "base model (no LoRA)",
            weight=i.weight,
            prompt=i.prompt + 1,
            image=i.path,
            error=i.error,
        )
        for i in record.images
    ]
    done = sum(1 for i in record.images if i.path or i.error)
    if record.state == "done":
        rows = ", ".join(labels)
        next_step = (
            f"Look at the sheet: rows are the saves ({rows}), columns the LoRA weights (0 = the base model "
            "alone). Pick the save and weight where the LoRA shows clearly without artefacts, then keep it: "
            "train_evaluate with action='keep', epoch=<the row's epoch>, weight=<the column>, verdict=<why>."
        )
        if any(i.error for i in record.images):
            next_step += (
                " Pictures that failed are drawn again when you call train_evaluate again with the same arguments."
            )
    elif record.state == "failed":
        next_step = "Fix what the message says, then call train_evaluate again (pictures already made are kept)."
    else:
        now = working_on or record.state
        next_step = (
            f"Still working ({now}). Call train_evaluate again with the same arguments to follow it; nothing is "
            "made twice."
        )
    return EvalAnswer(
        name=record.name,
        state=record.state,
        server=record.server,
        models=spec.models,
        saves=labels,
        weights=spec.weights,
        prompts=spec.prompts,
        seed=spec.seed,
        images_done=done,
        images_total=len(record.images),
        sheet=record.sheet,
        cells=cells,
        notes=[*notes, *([record.message] if record.message else [])],
        next_step=next_step,
    )
