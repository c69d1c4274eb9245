"""Guessing a model file's family from its safetensors metadata or its name, always with the reason."""

from __future__ import annotations

import pytest

from ategnatos_mcp.families import guess_family

SDXL_SPEC = {"modelspec.architecture": "stable-diffusion-xl-v1-base"}


@pytest.mark.parametrize(
    ("name", "metadata", "family", "from_metadata"),
    [
        # modelspec (Stability's model spec, written by kohya and ComfyUI) and kohya's own training metadata
        ("model.safetensors", SDXL_SPEC, "sdxl", True),
        ("model.safetensors", {**SDXL_SPEC, "modelspec.title": "Pony Diffusion V6 XL"}, "pony", True),
        ("ponyRealism.safetensors", SDXL_SPEC, "pony", True),
        ("lora.safetensors", {"modelspec.architecture": "stable-diffusion-xl-v1-base/lora",
                              "ss_sd_model_name": "noobaiXLNAIXL_vPred10Version.safetensors"}, "illustrious", True),
        ("lora.safetensors", {"ss_base_model_version": "sdxl_base_v1-0"}, "sdxl", True),
        ("lora.safetensors", {"ss_base_model_version": "sd_v1"}, "sd15", True),
        ("x.safetensors", {"modelspec.architecture": "flux-1-dev"}, "flux1", True),
        ("x.safetensors", {"modelspec.architecture": "stable-diffusion-3-5-large"}, "sd35", True),
        ("x.safetensors", {"modelspec.title": "Illustrious XL 1.0"}, "illustrious", True),
        # names alone
        ("ponyDiffusionV6XL_v6StartWithThisOne.safetensors", None, "pony", False),
        ("illustriousXL_v01.safetensors", None, "illustrious", False),
        ("noobaiXLNAIXL_epsilonPred11Version.safetensors", None, "illustrious", False),
        ("sd_xl_base_1.0.safetensors", None, "sdxl", False),
        ("juggernautXL_v9Rdphoto2Lightning.safetensors", None, "sdxl", False),
        ("v1-5-pruned-emaonly.safetensors", None, "sd15", False),
        ("flux1-dev-fp8.safetensors", None, "flux1", False),
        ("sd3.5_large_fp8_scaled.safetensors", None, "sd35", False),
        ("mcp_random_sd15_layout.safetensors", None, "sd15", False),
        ("dreamshaper_8.safetensors", None, None, False),
        ("pixelart.safetensors", None, None, False),
    ],
)  # fmt: skip
def test_family_is_guessed_from_metadata_then_name(
    name: str, metadata: dict[str, str] | None, family: str | None, from_metadata: bool
) -> None:
    guess = guess_family(name, metadata)
    assert (guess.family, guess.from_metadata) == (family, from_metadata), guess.reason
    assert guess.reason.endswith(".") and (name in guess.reason if family is None else "I guessed" in guess.reason)
