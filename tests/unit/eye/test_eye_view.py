"""eye.md read as artists write it (the seed's format, typos, other languages), and written so it reads back."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from inline_snapshot import snapshot

from ategnatos_mcp.eye import EyeProfile, Preference, merge_eye, render_eye
from tests.conftest import FIXTURES

GRIMOIRE = FIXTURES / "grimoire"
NOW = datetime(2026, 12, 5, 1, 16, tzinfo=UTC)


def _entries(profile: EyeProfile) -> list[tuple[str, str, int, str]]:
    return [(e.category, e.level, e.confirmations, e.text) for e in profile.entries]


def _entry(text: str, category: str = "style", level: str = "prefer", **more: object) -> Preference:
    return Preference.model_validate(
        {"id": f"{category}-{len(text)}", "category": category, "text": text, "level": level}
        | {"created_at": NOW, "updated_at": NOW}
        | more
    )


def test_the_seeds_eye_md_is_read_entry_by_entry() -> None:
    merged = merge_eye((GRIMOIRE / "seed_eye.md").read_text(encoding="utf-8"), None, EyeProfile())

    assert _entries(merged.doc) == [
        ("color", "prefer", 5, "Warm palettes preferred (earth tones, amber, terracotta)"),
        ("color", "prefer", 3, "Muted > saturated"),
        ("texture", "prefer", 4, "Painterly, visible brushwork"),
        ("texture", "avoid", 2, "flat vector, glossy 3D"),
        ("composition", "prefer", 1, "Generous negative space"),
        ("anti-preferences", "never", 1, "photorealistic skin rendering"),
        ("anti-preferences", "never", 1, "stock photo aesthetic"),
        ("model-combos", "prefer", 3, "Pony V6 + CFG 7 + mibera-lora@0.7 = consistent good results"),
    ]
    assert (merged.before, merged.after, merged.removed, merged.unread) == (0, 8, [], [])
    assert [e.evidence[0].note for e in merged.doc.entries] == ["read from the artist's own eye.md"] * 8


def test_a_hand_kept_eye_md_with_typos_other_languages_and_unknown_sections_loses_no_line() -> None:
    text = (GRIMOIRE / "eye_hand_kept.md").read_text(encoding="utf-8")
    merged = merge_eye(text, None, EyeProfile())

    assert _entries(merged.doc) == [
        ("color", "prefer", 5, "Warm palettes preferred (earth tones, amber, terracotta)"),
        ("color", "prefer", 3, "Muted > saturated"),  # [confirmd: 3 sesions]
        ("texture", "prefer", 4, "Painterly, visible brushwork"),  # under "## Textrue", [confirmed 4 sessions]
        ("texture", "avoid", 2, "flat vector, glossy 3D"),  # "Avoid:" as the artist typed it
        ("color", "prefer", 2, "Ocre et terre de Sienne"),  # "## Couleurs", [confirmé : 2 séances]
        ("color", "avoid", 1, "néons fluo"),  # "ÉVITER :"
        ("composition", "prefer", 3, "余白を大きく"),  # "## 構図", [確認: 3回]
        ("composition", "never", 1, "中央に配置"),
        ("style", "prefer", 2, "loose ink wash, like Sesshū"),
        ("anti-preferences", "never", 1, "photorealistic skin rendering"),
        ("anti-preferences", "avoid", 1, "stock photo aesthetic"),  # no prefix: avoid, as in that section
        ("model-combos", "prefer", 3, "Pony V6 + CFG 7 + mibera-lora@0.7 = consistent good results"),
    ]
    assert merged.doc.kept_as_written == [
        "## Lighting",
        "- golden hour backlight [confirmed: 2 sessions]",
        "- rim light on hair",
        "Notes to self: try more gouache next month.",
        "- cinematic grain [x3 sessions, loved it]",
    ]
    assert merged.notes == ["The heading 'Textrue' was read as 'Texture'."]
    assert [line.split(" (")[0] for line in merged.unread] == [
        "line 19 '## Lighting'",
        "line 20 '- golden hour backlight [confirmed: 2 sessions]'",
        "line 21 '- rim light on hair'",
        "line 26 'Notes to self: try more gouache next month.'",
        "line 27 '- cinematic grain [x3 sessions, loved it]'",
    ]
    assert "'[x3 sessions, loved it]' is not a tag the eye knows" in merged.unread[-1]


def test_lines_kept_as_written_survive_every_rerender_and_go_when_the_artist_deletes_them() -> None:
    profile = merge_eye((GRIMOIRE / "eye_hand_kept.md").read_text(encoding="utf-8"), None, EyeProfile()).doc
    rendered = render_eye(profile)
    assert rendered.endswith(
        "\n## Kept as written\n<!-- Kept exactly as written: lines Ategnatos could not read. Move a line under a "
        "heading above, in the format shown there, to use it; delete it to drop it. -->\n## Lighting\n"
        "- golden hour backlight [confirmed: 2 sessions]\n- rim light on hair\n"
        "Notes to self: try more gouache next month.\n- cinematic grain [x3 sessions, loved it]\n"
    )
    again = merge_eye(rendered, rendered, profile)
    assert (again.changed, again.removed, again.unread) == (0, [], [])
    assert render_eye(again.doc) == rendered

    # The artist moves one kept line under Style (now an entry) and deletes another.
    edited = (
        rendered.replace("- rim light on hair\n", "")
        .replace("- cinematic grain [x3 sessions, loved it]\n", "")
        .replace("## Subject\n", "## Subject\n- cinematic grain [confirmed: 3 sessions]\n")
    )
    moved = merge_eye(edited, rendered, profile)
    assert "rim light on hair" not in "\n".join(moved.doc.kept_as_written)
    assert ("subject", "prefer", 3, "cinematic grain") in _entries(moved.doc)
    assert moved.doc.kept_as_written == [
        "## Lighting",
        "- golden hour backlight [confirmed: 2 sessions]",
        "Notes to self: try more gouache next month.",
    ]


def test_an_edit_of_an_older_render_keeps_entries_the_profile_gained_since() -> None:
    old = EyeProfile(entries=[_entry("ink outlines"), _entry("muted palette", "color"), _entry("gold leaf")])
    stale_view = render_eye(old)
    now = old.model_copy(deep=True)
    now.entries.append(_entry("paper grain", "texture"))  # acknowledged after the render the artist edits
    now.entries[0].confirmations = 4  # confirmed again since, too

    edited = stale_view.replace("- gold leaf [confirmed: 1 session]\n", "").replace(
        "muted palette [confirmed: 1 session]", "muted palette [confirmed: 6 sessions]"
    )
    merged = merge_eye(edited, stale_view, now)
    assert _entries(merged.doc) == [
        ("style", "prefer", 4, "ink outlines"),  # untouched by the artist: the document's newer count stays
        ("color", "prefer", 6, "muted palette"),  # the artist's change
        ("texture", "prefer", 1, "paper grain"),  # gained after the render: kept
    ]
    assert merged.removed == ["gold leaf"]
    assert [e.action for e in merged.doc.entries[1].evidence] == ["edited"]


def test_a_prefer_entry_that_starts_like_a_level_stays_a_preference() -> None:
    profile = EyeProfile(
        entries=[
            _entry("Avoid: crowds, said the client"),
            _entry("Never: mind the grain", "texture"),
            _entry("NEVER: again", "color", "avoid"),
            _entry("(preferences accumulate here)"),
        ]
    )
    rendered = render_eye(profile)
    assert "- Avoid\\: crowds, said the client [confirmed: 1 session]" in rendered
    assert "- AVOID: NEVER\\: again [confirmed: 1 session]" in rendered
    back = merge_eye(rendered, None, EyeProfile()).doc
    assert sorted((e.level, e.text) for e in back.entries) == sorted((e.level, e.text) for e in profile.entries)


AWKWARD = [
    "|",
    ",",
    ":",
    "：",
    "[",
    "]",
    "(",
    ")",
    "\\",
    "*",
    "_",
    "`",
    "#",
    "<!--",
    "-->",
    ">",
    "&amp;",
    "- ",
    "AVOID:",
    "never:",
    "[confirmed: 2 sessions]",
    "**bold**",
    "色",
    "構図",
    "é",
    "ß",
    "Ж",
    "ا",
    "🎨",
    "x",
    "7",
    " ",
]


def test_entry_texts_of_awkward_characters_round_trip_unchanged() -> None:
    rng = random.Random(20261205)
    for round_ in range(300):
        texts: list[str] = []
        while len(texts) < 4:
            text = " ".join("".join(rng.choice(AWKWARD) for _ in range(rng.randint(1, 6))).split())
            if text and text.casefold() not in {t.casefold() for t in texts}:
                texts.append(text)
        levels = [rng.choice(["prefer", "avoid", "never"]) for _ in texts]
        categories = [rng.choice(["color", "style", "model-combos", "anti-preferences"]) for _ in texts]
        profile = EyeProfile(
            entries=[
                _entry(t, c, lv, id=f"e{i}", confirmations=rng.randint(0, 12), families=["pony"] * (i % 2))
                for i, (t, lv, c) in enumerate(zip(texts, levels, categories, strict=True))
            ],
            kept_as_written=["kept | as [written]: 色 \\"] * (round_ % 2),
        )
        rendered = render_eye(profile)
        back = merge_eye(rendered, None, EyeProfile())
        assert back.unread == [], (texts, rendered)
        assert sorted((e.category, e.level, e.text, e.confirmations, e.families) for e in back.doc.entries) == sorted(
            (e.category, e.level, e.text, e.confirmations, e.families) for e in profile.entries
        ), rendered
        assert back.doc.kept_as_written == profile.kept_as_written
        assert render_eye(back.doc) == rendered


def test_the_seed_profile_renders_in_the_seeds_format() -> None:
    profile = merge_eye((GRIMOIRE / "seed_eye.md").read_text(encoding="utf-8"), None, EyeProfile()).doc
    assert render_eye(profile) == snapshot("""\
# Taste Profile
<!-- Rendered by Ategnatos from grimoire/.state/eye.json. You may edit the bullets by hand: keep one per line
     under its heading, "AVOID: " or "NEVER: " in front for those levels, and the [confirmed: N sessions] tag. -->

## Color
- Warm palettes preferred (earth tones, amber, terracotta) [confirmed: 5 sessions]
- Muted > saturated [confirmed: 3 sessions]

## Texture
- Painterly, visible brushwork [confirmed: 4 sessions]
- AVOID: flat vector, glossy 3D [confirmed: 2 sessions]

## Composition
- Generous negative space [confirmed: 1 session]

## Style
- (preferences accumulate here)

## Subject
- (preferences accumulate here)

## Anti-Preferences
- NEVER: photorealistic skin rendering [confirmed: 1 session]
- NEVER: stock photo aesthetic [confirmed: 1 session]

## Model Combos
- Pony V6 + CFG 7 + mibera-lora@0.7 = consistent good results [confirmed: 3 approvals]
""")
