"""The hand-off to generation: comfyui_submit arguments built from a prompt, against the real templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ategnatos_mcp
from ategnatos_mcp.art import FamilyCatalog, LoraUse, build_prompt
from ategnatos_mcp.art.handoff import handoff_for, handoff_note, suggest_submit

TEMPLATES = Path(ategnatos_mcp.__file__).resolve().parent / "comfyui" / "templates"


def test_every_handoff_names_a_real_template_and_its_parameters(catalog: FamilyCatalog) -> None:
    # A contract with the ComfyUI templates: renaming a parameter there must fail here.
    offered = []
    for family in catalog.families:
        handoff = handoff_for(family)
        if handoff is None:
            continue
        offered.append(family.id)
        template = json.loads((TEMPLATES / f"{handoff.template}.json").read_text(encoding="utf-8"))
        names = {p["name"] for p in template["parameters"]}
        targets = set(handoff.params.values()) | {handoff.checkpoint_param}
        if family.settings.clip_skip is not None:  # handed over as 'clip_skip' unless mapped elsewhere
            targets.add(handoff.params.get("clip_skip", "clip_skip"))
        assert targets <= names, (family.id, targets - names)
    assert "sd35" in offered


def test_pony_prompt_becomes_sdxl_template_arguments(catalog: FamilyCatalog) -> None:
    family = catalog.get("pony")
    draft = build_prompt(family, "fox mascot", aspect="16:9", seed=11)
    draft.loras = [LoraUse(name="inkwash", weight=0.8)]
    suggestion = suggest_submit(family, draft, checkpoint="ponyDiffusionV6XL.safetensors")
    assert suggestion is not None and suggestion.template == "txt2img-sdxl"
    assert suggestion.params == {
        "prompt": draft.positive,
        "negative": draft.negative,
        "width": 1344,
        "height": 768,
        "steps": 25,
        "cfg": 7.0,
        "sampler": "euler_ancestral",
        "scheduler": "normal",
        "seed": 11,
        "clip_skip": 2,
        "checkpoint": "ponyDiffusionV6XL.safetensors",
    }
    assert suggestion.loras == [{"name": "inkwash", "weight": 0.8}]
    assert "clip skip 2" in handoff_note(family)


def test_flux_gets_guidance_and_no_negative(catalog: FamilyCatalog) -> None:
    flux = catalog.get("flux1")
    suggestion = suggest_submit(flux, build_prompt(flux, "A fox"))
    assert suggestion is not None and suggestion.template == "txt2img-flux"
    assert suggestion.params == {"prompt": "A fox", "width": 1024, "height": 1024, "steps": 20, "guidance": 3.5}


def test_sd35_gets_its_own_template_with_real_cfg_and_a_negative(catalog: FamilyCatalog) -> None:
    sd35 = catalog.get("sd35")
    draft = build_prompt(sd35, "A fox reading a map", aspect="3:2", seed=9)
    suggestion = suggest_submit(sd35, draft, checkpoint="sd3.5_large_fp8_scaled.safetensors")
    assert suggestion is not None and suggestion.template == "txt2img-sd35"
    assert suggestion.params == {
        "prompt": "A fox reading a map",
        "negative": draft.negative,
        "width": 1216,
        "height": 832,
        "steps": 28,
        "cfg": 3.5,
        "sampler": "euler",
        "scheduler": "sgm_uniform",
        "seed": 9,
        "checkpoint": "sd3.5_large_fp8_scaled.safetensors",
    }
    assert draft.negative and "clip_skip" not in suggestion.params
    assert "text encoders" in handoff_note(sd35)


@pytest.mark.parametrize("family_id", ["sd15", "sdxl", "illustrious"])
def test_tag_families_share_the_sdxl_graph(catalog: FamilyCatalog, family_id: str) -> None:
    family = catalog.get(family_id)
    suggestion = suggest_submit(family, build_prompt(family, "fox"))
    assert suggestion is not None and suggestion.params["prompt"].endswith("fox")
    assert suggestion.params["clip_skip"] == family.settings.clip_skip == 1
