"""The sheet's grid for every family we train: the right template, the run's own base model and text encoders,
LoRA loaders ComfyUI accepts, checked against the recorded /object_info of ComfyUI 0.3.64."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ategnatos_mcp.comfyui.templates import LoraChoice, get_template, render_template
from ategnatos_mcp.comfyui.validate import validate_workflow
from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.training.evaluation.grid import (
    RECIPES,
    choose_saves,
    choose_weights,
    default_prompts,
    job_request,
    plan_images,
    resolve_models,
)
from ategnatos_mcp.training.evaluation.models import EvalSpec
from ategnatos_mcp.training.execution.models import CheckpointInfo
from tests.support.fake_comfyui import FakeComfyUI
from tests.support.training import make_config

FAMILIES: dict[str, tuple[str, dict[str, list[str]], dict[str, str], str]] = {
    # family: (base model in the plan, what ComfyUI has, expected choice, LoRA loader)
    "sd15": (
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        {"checkpoints": ["v1-5-pruned-emaonly.safetensors", "dreamshaper_8.safetensors"]},
        {"checkpoint": "v1-5-pruned-emaonly.safetensors"},
        "LoraLoader",
    ),
    "sdxl": (
        "stabilityai/stable-diffusion-xl-base-1.0",
        {"checkpoints": ["sdxl_turbo.safetensors", "sd_xl_base_1.0_0.9vae.safetensors"]},
        {"checkpoint": "sd_xl_base_1.0_0.9vae.safetensors"},
        "LoraLoader",
    ),
    "pony": (
        "/models/ponyDiffusionV6XL.safetensors",
        {"checkpoints": ["ponyDiffusionV6XL.safetensors"]},
        {"checkpoint": "ponyDiffusionV6XL.safetensors"},
        "LoraLoader",
    ),
    "illustrious": (
        "/data/illustriousXL_v01.safetensors",
        {"checkpoints": ["Illustrious-XL-v0.1.safetensors", "illustriousXL_v01.safetensors"]},
        {"checkpoint": "illustriousXL_v01.safetensors"},
        "LoraLoader",
    ),
    "flux1": (
        "black-forest-labs/FLUX.1-dev",
        {
            "diffusion_models": ["flux1-dev-fp8.safetensors"],
            "text_encoders": ["clip_l.safetensors", "t5xxl_fp8_e4m3fn.safetensors"],
            "vae": ["ae.safetensors"],
        },
        {
            "model": "flux1-dev-fp8.safetensors",
            "clip_l": "clip_l.safetensors",
            "t5": "t5xxl_fp8_e4m3fn.safetensors",
            "vae": "ae.safetensors",
        },
        "LoraLoaderModelOnly",
    ),
    "sd35": (
        "stabilityai/stable-diffusion-3.5-large",
        {
            "checkpoints": ["sd3.5_large.safetensors"],
            "text_encoders": ["clip_g.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors"],
        },
        {
            "checkpoint": "sd3.5_large.safetensors",
            "clip_l": "clip_l.safetensors",
            "clip_g": "clip_g.safetensors",
            "t5": "t5xxl_fp16.safetensors",
        },
        "LoraLoader",
    ),
}

SAVES = [
    CheckpointInfo(file="/out/ink-000001.safetensors", kind="epoch", epoch=1),
    CheckpointInfo(file="/out/ink-000002.safetensors", kind="epoch", epoch=2),
    CheckpointInfo(file="/out/ink-000003.safetensors", kind="epoch", epoch=3),
    CheckpointInfo(file="/out/ink.safetensors", kind="final"),
]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_draws_with_its_own_files_and_a_graph_comfyui_accepts(family: str, tmp_path: Path) -> None:
    base, listing, expected, loader = FAMILIES[family]
    cfg = make_config(tmp_path, family=family, base_model=base)
    recipe = RECIPES[family]
    models = resolve_models(cfg, recipe, listing, None, "http://127.0.0.1:8188")
    assert models == expected
    spec = EvalSpec(
        saves=choose_saves("ink", SAVES, None, 4),
        weights=choose_weights(None),
        prompts=default_prompts(cfg, None),
        seed=cfg.seed,
        template=recipe.template,
        models=models,
        settings={**recipe.settings, "width": cfg.resolution, "height": cfg.resolution},
    )
    images = plan_images(spec)
    assert len(images) == 7 and [i.save for i in images][:1] == [None]

    fake = FakeComfyUI()  # the recorded /object_info, with these model lists
    for folder, names in listing.items():
        for name in names:
            fake.add_model(folder, name)
    for save in spec.saves:
        fake.add_model("loras", save.comfyui_name)
    for image in images:
        template, params, loras = job_request(spec, image, cfg.resolution)
        rendered = render_template(
            get_template(template), params, loras=[LoraChoice(name=n, weight=w) for n, w in loras]
        )
        assert validate_workflow(rendered.workflow, fake.object_info()) == []
        [node] = [n for n in rendered.workflow.values() if n["class_type"] == loader]
        assert node["inputs"]["strength_model"] == image.weight
        sampler = next(n["inputs"] for n in rendered.workflow.values() if n["class_type"] == "KSampler")
        assert sampler["seed"] == cfg.seed and sampler["steps"] == recipe.settings["steps"]
        if family == "pony":
            assert rendered.workflow["20"]["inputs"]["stop_at_clip_layer"] == -2  # Pony wants clip skip 2


def test_a_missing_text_encoder_is_named_with_what_comfyui_has(tmp_path: Path) -> None:
    components = {"clip_l": "clip_l.safetensors", "t5xxl": "t5xxl_fp16.safetensors", "ae": "ae.safetensors"}
    cfg = make_config(tmp_path, family="flux1", base_model="/models/flux1-dev.safetensors", model_components=components)
    listing: dict[str, Any] = {"diffusion_models": ["flux1-dev.safetensors"], "text_encoders": ["clip_l.safetensors"]}
    with pytest.raises(InvalidRequestError) as caught:
        resolve_models(cfg, RECIPES["flux1"], listing, None, "http://gpu:8188")
    message = caught.value.message
    assert (
        "T5-XXL text encoder: 't5xxl_fp16.safetensors' is not in models/text_encoders (it has: clip_l.safetensors)"
        in message
    )
    assert "FLUX.1 VAE (ae): 'ae.safetensors' is not in models/vae (it has: nothing)" in message
    assert "LoRA files are not the problem" in message


def test_weights_saves_and_size_limits_are_refused_in_plain_words(tmp_path: Path) -> None:
    assert choose_weights([1, 0, 0.7, 0.7]) == [0.0, 0.7, 1.0]
    with pytest.raises(InvalidRequestError, match="between 0 and 2"):
        choose_weights([-0.5, 1.0])
    with pytest.raises(InvalidRequestError, match="no save at epoch 9") as caught:
        choose_saves("ink", SAVES, [9], 4)
    assert caught.value.hint == "Saved epochs: 1, 2, 3, 4."
    assert [s.label for s in choose_saves("ink", SAVES, [4, 1], 4)] == ["final (epoch 4)", "epoch 1"]
    with pytest.raises(InvalidRequestError, match="no saved LoRA file"):
        choose_saves("ink", [], None, None)
