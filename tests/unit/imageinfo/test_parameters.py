"""Parsing embedded generation parameters: A1111 infotext, ComfyUI graphs, EXIF UserComment encodings."""

from __future__ import annotations

import json

from ategnatos_mcp.imageinfo import decode_user_comment, parse_a1111, parse_comfyui


def test_a1111_quoted_values_may_contain_commas() -> None:
    params = parse_a1111(
        'a cat\nSteps: 20, Sampler: Euler a, Seed: 5, Lora hashes: "one: abc, two: def", Size: 512x768'
    )

    assert params is not None
    assert params.loras == ["one", "two"]
    assert (params.width, params.height, params.sampler) == (512, 768, "Euler a")


def test_plain_text_without_settings_is_not_taken_for_parameters() -> None:
    assert parse_a1111("just a caption someone wrote") is None


def test_comfyui_sdxl_graph_traced_through_conditioning_nodes() -> None:
    graph = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl.safetensors"}},
        "2": {"class_type": "LoraLoader", "inputs": {"lora_name": "ink.safetensors", "strength_model": 0.7}},
        "3": {"class_type": "CLIPTextEncodeSDXL", "inputs": {"text_g": "ink wash heron", "text_l": "ink wash heron"}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "misty lake"}},
        "5": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["3", 0], "conditioning_2": ["4", 0]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "photo, 3d"}},
        "7": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 768, "batch_size": 1}},
        "10": {
            "class_type": "KSamplerAdvanced",
            "inputs": {
                "noise_seed": 99,
                "steps": 30,
                "cfg": 5,
                "sampler_name": "dpmpp_2m",
                "scheduler": "karras",
                "positive": ["5", 0],
                "negative": ["6", 0],
                "latent_image": ["7", 0],
            },
        },
    }

    params = parse_comfyui(json.dumps(graph), has_workflow=True)

    assert params is not None
    assert params.positive_prompt == "ink wash heron\nmisty lake"
    assert params.negative_prompt == "photo, 3d"
    assert (params.seed, params.steps, params.cfg, params.width, params.height) == (99, 30, 5.0, 1024, 768)
    assert params.model == "sdxl.safetensors"
    assert params.loras == ["ink.safetensors@0.7"]


def test_comfyui_cycle_in_a_hand_edited_graph_does_not_hang() -> None:
    graph = {
        "1": {"class_type": "Loop", "inputs": {"a": ["2", 0]}},
        "2": {"class_type": "Loop", "inputs": {"a": ["1", 0]}},
        "3": {"class_type": "KSampler", "inputs": {"positive": ["1", 0], "negative": ["2", 0], "seed": 1}},
    }

    params = parse_comfyui(json.dumps(graph), has_workflow=False)

    assert params is not None and params.positive_prompt is None and params.seed == 1


def test_comfyui_chunk_that_is_not_json_is_ignored() -> None:
    assert parse_comfyui("{not json", has_workflow=False) is None


def test_user_comment_encodings() -> None:
    text = "a heron, Steps: 5"
    assert decode_user_comment(b"UNICODE\x00" + text.encode("utf-16-be")) == text
    assert decode_user_comment(b"UNICODE\x00" + text.encode("utf-16-le")) == text
    assert decode_user_comment(b"ASCII\x00\x00\x00" + text.encode("ascii")) == text
    assert decode_user_comment(b"\x00" * 8) is None
