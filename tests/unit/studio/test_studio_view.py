"""studio.md read as artists write it (the seed's tables, columns their way), and written so it reads back."""

from __future__ import annotations

import random

from ategnatos_mcp.studio import LoraEntry, ModelEntry, StudioInventory, WorkflowEntry, merge_studio, render_studio
from ategnatos_mcp.studio.models import InstanceEntry
from tests.conftest import FIXTURES

GRIMOIRE = FIXTURES / "grimoire"


def test_the_seeds_studio_md_is_read_table_by_table() -> None:
    merged = merge_studio((GRIMOIRE / "seed_studio.md").read_text(encoding="utf-8"), None, StudioInventory())

    assert merged.doc.models == [
        ModelEntry(
            name="Pony V6 XL",
            kind="checkpoint",
            base="SDXL",
            good_for="Stylized, character",
            location="/models/checkpoints/",
            settings="CFG 7, clip_skip 2",
        )
    ]
    assert merged.doc.loras == [  # the seed's table has no Base column: the base stays empty
        LoraEntry(
            name="mibera-style-v2",
            trigger_words=["mibera"],
            weight_min=0.6,
            weight_max=0.8,
            trained_on="Character style",
            location="/models/loras/",
        )
    ]
    # The seed's Environment lines are the artist's own notes: kept exactly, and said.
    assert merged.doc.kept_as_written == [
        "- **Primary**: [Local RTX 4090 / RunPod A100 / Vast.ai / etc.]",
        "- **CUDA**: [version]",
        "- **ComfyUI**: [location, API endpoint if running]",
    ]
    assert len(merged.unread) == 3 and all("is filled in by studio_detect" in line for line in merged.unread)
    assert (merged.before, merged.after) == (0, 2)


def test_a_hand_kept_studio_md_in_french_with_extra_columns_and_broken_rows_loses_no_line() -> None:
    merged = merge_studio((GRIMOIRE / "studio_hand_kept.md").read_text(encoding="utf-8"), None, StudioInventory())
    inv = merged.doc

    assert [(m.name, m.kind, m.provenance, m.settings) for m in inv.models] == [
        ("Pony V6 XL", "checkpoint", "Fair AI Public License", "CFG 7, clip_skip 2"),  # "Licence" column
        ("4x-UltraSharp", "upscaler", "", "tile 512"),  # a row one cell short
    ]
    assert [
        (lo.name, lo.trigger_words, lo.weight_min, lo.weight_max, lo.location, lo.other_columns) for lo in inv.loras
    ] == [
        ("mibera-style-v2", ["mibera"], 0.6, 0.8, "/models/loras/", {"Notes": "best at 0.7"}),
        ("inkwash", ["inkwash style", "sumi"], 0.5, 0.7, "C:\\models\\loras\\inkwash.safetensors", {}),
    ]
    assert inv.kept_as_written == [
        "- **Primary**: Local RTX 4090 (24 GB)",
        "- **CUDA**: 12.4",
        "| Mystery | Lycoris | SDXL | ? | ? | ? | |",
        "| broken | x | strong | ? | ? | |",
        "## Custom nodes",
        "- ComfyUI-Manager",
        "- was-node-suite",
        "| RunPod | A100 | running | $1.89 | 2025-01-10 |",
    ]
    reasons = "\n".join(merged.unread)
    assert "'Lycoris' is not a model type" in reasons
    assert "the weight range 'strong' should look like 0.6-0.8" in reasons
    assert "'Custom nodes' is not a section of studio.md" in reasons

    rendered = render_studio(inv)
    assert "| Name | Trigger | Weight Range | Base | Trained On | Location | Notes |" in rendered
    assert "| mibera-style-v2 | mibera | 0.6-0.8 |  | Character style | /models/loras/ | best at 0.7 |" in rendered
    again = merge_studio(rendered, rendered, inv)
    assert (again.changed, again.removed, again.unread) == (0, [], [])
    assert render_studio(again.doc) == rendered


def test_a_pipe_stays_a_pipe_and_a_trigger_word_with_a_comma_stays_one_word() -> None:
    inv = StudioInventory(
        models=[ModelEntry(name="A|B mix", settings="CFG 7 | steps 30", location="C:\\models\\a|b.safetensors")],
        loras=[LoraEntry(name="greg", trigger_words=["by greg, rutkowski", "a|b", "back\\slash,"])],
    )
    rendered = render_studio(inv)
    assert "| A\\|B mix | checkpoint |" in rendered  # GFM's own escape: a markdown viewer shows A|B mix
    assert "| by greg\\, rutkowski, a\\|b, back\\slash\\, |" in rendered
    back = merge_studio(rendered, None, StudioInventory()).doc
    assert back.models == inv.models
    assert back.loras == inv.loras


AWKWARD = ["|", ",", ":", "[", "]", "\\", "*", "_", "`", "#", "-", "---", "<br>", "&", "色", "é", "Ж", "🎨", "x", "0"]


def _text(rng: random.Random, allow_empty: bool = True) -> str:
    text = " ".join("".join(rng.choice(AWKWARD) for _ in range(rng.randint(0, 5))).split())
    return text if text or allow_empty else "n"


def _unique(rng: random.Random, names: set[str]) -> str:
    while True:
        candidate = _text(rng, allow_empty=False)
        if candidate.casefold() not in names:
            names.add(candidate.casefold())
            return candidate


def test_every_table_field_of_awkward_characters_round_trips_unchanged() -> None:
    rng = random.Random(1205)
    for _ in range(200):
        names: set[str] = set()

        inv = StudioInventory(
            models=[
                ModelEntry(
                    name=_unique(rng, names),
                    kind=rng.choice(["checkpoint", "vae", "text-encoder", "other"]),
                    base=_text(rng),
                    good_for=_text(rng),
                    location=_text(rng),
                    settings=_text(rng),
                    other_columns={"Notes |x": _text(rng, allow_empty=False)},
                )
                for _ in range(2)
            ],
            loras=[
                LoraEntry(
                    name=_unique(rng, names),
                    trigger_words=[_text(rng, allow_empty=False) for _ in range(rng.randint(0, 3))],
                    weight_min=rng.choice([-1.5, 0.1 + 0.2, 1e-05, 0.6]),
                    weight_max=rng.choice([1.0, 2.0, 4.75]),
                    base_model=_text(rng),
                    trained_on=_text(rng),
                    location=_text(rng),
                )
                for _ in range(2)
            ],
            workflows=[WorkflowEntry(name=_unique(rng, names), description=_text(rng), location=_text(rng))],
            instances=[InstanceEntry(provider="runpod", instance_id="p|1", gpu=_text(rng))],
            kept_as_written=["| kept | row |", "## Custom nodes"],
        )
        rendered = render_studio(inv)
        back = merge_studio(rendered, None, StudioInventory())
        assert back.unread == [] or all("Active Instances" in line for line in back.unread), back.unread
        assert (back.doc.models, back.doc.loras, back.doc.workflows) == (inv.models, inv.loras, inv.workflows), rendered
        assert back.doc.kept_as_written[:2] == inv.kept_as_written
        same = merge_studio(rendered, rendered, inv)
        assert render_studio(same.doc) == rendered
