"""Built-in templates: every one is a valid graph; bindings, types, seeds and LoRA stacks."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from ategnatos_mcp.comfyui.templates import LoraChoice, LoraFacts, get_template, list_templates, render_template
from ategnatos_mcp.comfyui.validate import validate_workflow
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "comfyui"
NAMES = [
    "batch-variations",
    "controlnet-sdxl",
    "img2img-flux",
    "img2img-sdxl",
    "lora-test",
    "lora-test-flux",
    "lora-test-sd35",
    "txt2img-flux",
    "txt2img-sd35",
    "txt2img-sdxl",
    "upscale-esrgan",
]


@pytest.fixture(scope="module")
def object_info() -> dict[str, Any]:
    with gzip.open(FIX / "get_object_info_full.json.gz", "rt", encoding="utf-8") as fh:
        return json.load(fh)["response"]["body"]


def test_the_eleven_templates_exist() -> None:
    assert sorted(t.name for t in list_templates()) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_template_is_a_valid_graph_apart_from_model_files(name: str, object_info: dict[str, Any]) -> None:
    template = get_template(name)
    params = {p.name: "x.png" for p in template.parameters if p.type == "image"}
    if template.prompt_param:
        params[template.prompt_param] = "a fox"
    loras = [LoraChoice(name="a.safetensors")] if template.requires_loras else []
    rendered = render_template(template, params, loras=loras)
    skip = {(node, inp) for node, inp, _ in rendered.images.values()}
    problems = validate_workflow(rendered.workflow, object_info, skip=skip)
    assert all(p.kind == "not_in_list" for p in problems), [p.message for p in problems]
    for param in template.parameters:
        for node_id, input_name in param.targets:
            assert input_name in rendered.workflow[node_id]["inputs"], (param.name, node_id)


def test_params_are_bound_to_their_inputs_and_seed_is_recorded() -> None:
    rendered = render_template(get_template("txt2img-sdxl"), {"prompt": "fox", "width": "768", "seed": 7, "cfg": 5})
    wf = rendered.workflow
    assert wf["6"]["inputs"]["text"] == "fox" and wf["5"]["inputs"]["width"] == 768
    assert wf["3"]["inputs"]["seed"] == 7 and wf["3"]["inputs"]["cfg"] == 5.0
    assert rendered.seed == 7 and rendered.params["width"] == 768
    assert get_template("txt2img-sdxl").workflow["6"]["inputs"]["text"] == ""  # the template itself is untouched


def test_a_missing_seed_is_random_and_recorded() -> None:
    seeds = {render_template(get_template("txt2img-flux"), {"prompt": "fox"}).seed for _ in range(5)}
    assert len(seeds) > 1 and all(isinstance(s, int) for s in seeds)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"prompt": "x", "colour": 1}, "no parameter 'colour'"),
        ({}, "needs 'prompt'"),
        ({"prompt": "x", "width": 1.5}, "must be a whole number"),
        ({"prompt": "x", "width": 99999}, "outside 64.0..4096.0"),
        ({"prompt": "x", "seed": -1}, "outside 0.."),
        ({"prompt": 3}, "must be a string"),
        ({"prompt": "x", "cfg": "NaN"}, "must be a float, not 'NaN'"),
        ({"prompt": "x", "cfg": "-Infinity"}, "must be a float, not '-Infinity'"),
        ({"prompt": "x", "steps": [None, 1]}, "must be a whole number, not '[null, 1]'"),
    ],
)
def test_bad_params_are_refused_with_a_fix(params: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        render_template(get_template("txt2img-sdxl"), params)
    assert words in caught.value.message


def test_unknown_template_lists_the_real_ones() -> None:
    with pytest.raises(NotFoundError) as caught:
        get_template("txt2img-sd3")
    assert "txt2img-sdxl" in caught.value.hint


def test_lora_stack_on_flux_chains_after_the_model_and_clip_loaders() -> None:
    facts = {"ink": LoraFacts(trigger_words=["inkstyle", "lineart"], weight_min=0.5, weight_max=0.7)}
    rendered = render_template(
        get_template("txt2img-flux"),
        {"prompt": "a lineart fox"},
        loras=[LoraChoice(name="ink.safetensors", weight=0.9)],
        lora_facts=facts,
    )
    wf = rendered.workflow
    [lora_id] = [k for k, v in wf.items() if v["class_type"] == "LoraLoader"]
    assert wf[lora_id]["inputs"]["model"] == ["1", 0] and wf[lora_id]["inputs"]["clip"] == ["2", 0]
    assert wf["8"]["inputs"]["model"] == [lora_id, 0] and wf["4"]["inputs"]["clip"] == [lora_id, 1]
    assert wf["4"]["inputs"]["text"] == "inkstyle, a lineart fox"  # 'lineart' was already there
    assert rendered.warnings and "outside its usual range 0.5-0.7" in rendered.warnings[0]


def test_lora_test_needs_a_lora_and_upscale_takes_none() -> None:
    with pytest.raises(InvalidRequestError):
        render_template(get_template("lora-test"), {"prompt": "x"})
    with pytest.raises(InvalidRequestError):
        render_template(get_template("upscale-esrgan"), {"image": "a.png"}, loras=[LoraChoice(name="a")])


SDXL_GRAPHS = ["batch-variations", "controlnet-sdxl", "img2img-sdxl", "lora-test", "txt2img-sdxl"]


@pytest.mark.parametrize("name", SDXL_GRAPHS)
def test_clip_skip_sits_between_the_lora_stack_and_both_text_encoders(name: str, object_info: dict[str, Any]) -> None:
    template = get_template(name)
    params: dict[str, Any] = {p.name: "x.png" for p in template.parameters if p.type == "image"}
    params |= {"prompt": "fox", "clip_skip": 2}
    loras = [LoraChoice(name="a.safetensors", weight=0.7), LoraChoice(name="b.safetensors", weight=0.5)]
    rendered = render_template(template, params, loras=loras)
    wf = rendered.workflow
    [skip] = [k for k, v in wf.items() if v["class_type"] == "CLIPSetLastLayer"]
    first, second = [k for k, v in wf.items() if v["class_type"] == "LoraLoader"]
    assert wf[first]["inputs"]["clip"] == ["4", 1] and wf[second]["inputs"]["clip"] == [first, 1]
    assert wf[skip]["inputs"] == {"stop_at_clip_layer": -2, "clip": [second, 1]}
    encoders = [v for v in wf.values() if v["class_type"] == "CLIPTextEncode"]
    assert len(encoders) == 2 and all(v["inputs"]["clip"] == [skip, 0] for v in encoders)
    assert rendered.params["clip_skip"] == 2  # recorded as the artist said it, not as ComfyUI counts
    skip_files = {(node, inp) for node, inp, _ in rendered.images.values()}
    problems = validate_workflow(wf, object_info, skip=skip_files)
    assert all(p.kind == "not_in_list" for p in problems), [p.message for p in problems]


def test_clip_skip_defaults_to_the_last_layer_and_is_range_checked(object_info: dict[str, Any]) -> None:
    template = get_template("txt2img-sdxl")
    wf = render_template(template, {"prompt": "fox"}).workflow
    assert wf["20"]["inputs"]["stop_at_clip_layer"] == -1
    spec = object_info["CLIPSetLastLayer"]["input"]["required"]["stop_at_clip_layer"][1]
    param = template.parameter("clip_skip")
    assert param is not None and (-(param.max or 0), -(param.min or 0)) == (spec["min"], spec["max"])
    with pytest.raises(InvalidRequestError) as caught:
        render_template(template, {"prompt": "fox", "clip_skip": 0})
    assert "clip_skip" in caught.value.message


def test_sd35_samples_through_model_sampling_sd3_after_the_lora_stack(object_info: dict[str, Any]) -> None:
    template = get_template("txt2img-sd35")
    params = {"prompt": "a fox reading a map", "shift": 4.5, "width": 1216, "height": 832, "seed": 3}
    rendered = render_template(template, params, loras=[LoraChoice(name="sd35_ink.safetensors", weight=0.6)])
    wf = rendered.workflow
    [lora] = [k for k, v in wf.items() if v["class_type"] == "LoraLoader"]
    [sampling] = [k for k, v in wf.items() if v["class_type"] == "ModelSamplingSD3"]
    assert wf[lora]["inputs"]["model"] == ["4", 0] and wf[sampling]["inputs"]["model"] == [lora, 0]
    assert wf[sampling]["inputs"]["shift"] == 4.5 and wf["3"]["inputs"]["model"] == [sampling, 0]
    assert wf["6"]["inputs"]["clip"] == wf["7"]["inputs"]["clip"] == [lora, 1]
    [latent] = [v for v in wf.values() if v["class_type"] == "EmptySD3LatentImage"]
    assert (latent["inputs"]["width"], latent["inputs"]["height"]) == (1216, 832)
    assert (wf["3"]["inputs"]["sampler_name"], wf["3"]["inputs"]["scheduler"]) == ("euler", "sgm_uniform")
    assert template.parameter("clip_skip") is None  # no clip skip on SD3.5: its T5 encoder has no such setting
    problems = validate_workflow(wf, object_info)
    assert {(p.kind, p.node_id) for p in problems} <= {("not_in_list", "4"), ("not_in_list", lora)}, [
        p.message for p in problems
    ]


def test_a_flux_lora_test_loads_the_lora_into_the_diffusion_model_only(object_info: dict[str, Any]) -> None:
    loras = [LoraChoice(name="ink-000004.safetensors", weight=0.7), LoraChoice(name="b.safetensors", weight=0.5)]
    rendered = render_template(get_template("lora-test-flux"), {"prompt": "a fox", "seed": 3}, loras=loras)
    wf = rendered.workflow
    first, second = [k for k, v in wf.items() if v["class_type"] == "LoraLoaderModelOnly"]
    assert wf[first]["inputs"] == {"lora_name": "ink-000004.safetensors", "strength_model": 0.7, "model": ["1", 0]}
    assert wf[second]["inputs"]["model"] == [first, 0] and wf["8"]["inputs"]["model"] == [second, 0]
    assert wf["4"]["inputs"]["clip"] == ["2", 0]  # the text encoders are left alone
    assert not [v for v in wf.values() if v["class_type"] == "LoraLoader"]
    assert all(p.kind == "not_in_list" for p in validate_workflow(wf, object_info))


def test_an_sd35_lora_test_feeds_the_lora_from_the_three_text_encoders(object_info: dict[str, Any]) -> None:
    rendered = render_template(
        get_template("lora-test-sd35"), {"prompt": "a fox"}, loras=[LoraChoice(name="a.safetensors", weight=1.0)]
    )
    wf = rendered.workflow
    [lora] = [k for k, v in wf.items() if v["class_type"] == "LoraLoader"]
    assert wf[lora]["inputs"]["model"] == ["4", 0] and wf[lora]["inputs"]["clip"] == ["11", 0]
    assert wf["13"]["inputs"]["model"] == [lora, 0]  # ModelSamplingSD3 after the LoRA
    assert wf["6"]["inputs"]["clip"] == wf["7"]["inputs"]["clip"] == [lora, 1]
    assert all(p.kind == "not_in_list" for p in validate_workflow(wf, object_info))
