"""Graphics-memory (VRAM) estimate for a LoRA run: a central value with a range, the largest batch that
fits a card, and the memory savers to switch on, in order, when it does not fit.

How it was fitted. The model is additive:

    overhead + base weights x precision factor - swapped blocks + text encoders (unless cached)
    + LoRA parameters x bytes per parameter for the optimizer + activations

Weights come from parameter counts (SD1.5 U-Net 0.86 B, SDXL U-Net 2.6 B, FLUX.1 12 B, SD3.5 Large 8 B
parameters at 2 bytes; fp8/int8 halve them, int4/nf4 about quarter them). Bytes per trained parameter are
the optimizer's state sizes (AdamW 16, AdamW 8-bit 10, Prodigy 24, Lion 12, Adafactor 9; bf16 weights halve
the weight and gradient part). Four numbers per family were then set by hand against the rows of the
shared ``vram-reports.md`` (copied as ``data/vram_reports.json``): activation GB per sample per megapixel
with gradient checkpointing, its multiplier without it, the GB moved off the card per swapped block, and
a fixed overhead. Each was chosen so that the "fits" reports fit and the "OOM" reports do not, then
nudged to halve the error on the measured peaks. ``bench_vram.py`` / the tests print every row.

The range is the spread of reported/estimated ratios over the measured rows (``RANGE_LOW``/``RANGE_HIGH``):
reports for the same settings differ by that much between versions, so no more certainty is claimed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, Field

from ategnatos_mcp.training.families import Family, resolve_family

__all__ = [
    "RANGE_HIGH",
    "RANGE_LOW",
    "MemorySaver",
    "VramEstimate",
    "VramInputs",
    "estimate_vram",
    "fit_to_card",
    "largest_batch",
    "savers_in_order",
]

RANGE_LOW = 0.75
RANGE_HIGH = 1.3

_PRECISION = {"fp32": 2.0, "bf16": 1.0, "fp16": 1.0, "fp8": 0.5, "int8": 0.5, "int4": 0.3, "nf4": 0.3, "int2": 0.2}
# Bytes per trained parameter: fp32 weight + fp32 gradient + optimizer state.
_OPTIMIZER_BYTES = {
    "adamw": 16.0,
    "adamw8bit": 10.0,
    "adamw_bf16": 8.0,
    "prodigy": 24.0,
    "lion": 12.0,
    "lion8bit": 9.0,
    "adafactor": 9.0,
}
_VAE_GB = 0.3


@dataclass(frozen=True)
class VramInputs:
    """The settings that drive memory use."""

    family: str
    resolution: int
    batch: int = 1
    rank: int = 16
    base_precision: str = "bf16"
    optimizer: str = "adamw8bit"
    gc: bool = True
    cache_latents: bool = True
    cache_te: bool = True
    trains_te: bool = False
    blocks_to_swap: int = 0
    full_bf16: bool = False


class VramEstimate(BaseModel):
    """An estimate in GB: ``low``-``high`` is the range the reports support, ``gb`` the central value."""

    gb: float
    low_gb: float
    high_gb: float
    parts: dict[str, float] = Field(description="Where the memory goes, in GB.")


def _family(name: str) -> Family:
    return resolve_family(name)


def estimate_vram(inp: VramInputs) -> VramEstimate:
    """Estimate peak VRAM for ``inp``."""
    fam = _family(inp.family)
    v = fam.vram
    weights = v.net_gb_bf16 * _PRECISION.get(inp.base_precision, 1.0)
    swapped = min(weights * 0.85, inp.blocks_to_swap * v.swap_gb_per_block)
    te_needed = not inp.cache_te or inp.trains_te
    te_factor = _PRECISION.get(inp.base_precision, 1.0) if inp.base_precision in ("int8", "nf4", "int4") else 1.0
    text_encoders = v.text_encoders_gb_bf16 * te_factor if te_needed else 0.0
    bytes_per_param = _OPTIMIZER_BYTES.get(inp.optimizer, 16.0) - (4.0 if inp.full_bf16 else 0.0)
    lora = inp.rank * v.lora_mparams_per_rank * 1e6 * bytes_per_param / 1e9
    megapixels = (inp.resolution / 1024) ** 2
    activations = v.activation_gb_per_mp * inp.batch * megapixels * (1.0 if inp.gc else v.no_checkpointing_factor)
    if inp.base_precision == "fp32":
        activations *= 2
    vae = 0.0 if inp.cache_latents else _VAE_GB
    parts = {
        "base model": round(weights - swapped, 2),
        "text encoders": round(text_encoders, 2),
        "LoRA + optimizer": round(lora, 2),
        "activations": round(activations, 2),
        "VAE": round(vae, 2),
        "overhead": v.overhead_gb,
    }
    total = sum(parts.values())
    return VramEstimate(
        gb=round(total, 1), low_gb=round(total * RANGE_LOW, 1), high_gb=round(total * RANGE_HIGH, 1), parts=parts
    )


def headroom_gb(card_gb: float) -> float:
    """Memory left free on purpose: other programs, fragmentation, version drift."""
    return max(1.0, 0.08 * card_gb)


def fit_to_card(estimate: VramEstimate, card_gb: float) -> Literal["fits", "tight", "unlikely", "no"]:
    """``fits``: central value plus headroom fits; ``tight``: only without headroom; ``unlikely``: only the
    low end fits; ``no``: even the low end is too big."""
    if estimate.gb + headroom_gb(card_gb) <= card_gb:
        return "fits"
    if estimate.gb <= card_gb:
        return "tight"
    if estimate.low_gb <= card_gb:
        return "unlikely"
    return "no"


def largest_batch(inp: VramInputs, card_gb: float, *, limit: int = 16) -> int:
    """The largest batch size whose estimate plus headroom fits ``card_gb`` (0 when not even 1 fits)."""
    best = 0
    for batch in range(1, limit + 1):
        if fit_to_card(estimate_vram(replace(inp, batch=batch)), card_gb) != "fits":
            break
        best = batch
    return best


class MemorySaver(BaseModel):
    """One memory saver to switch on, and the estimate once it (and the ones before it) are on."""

    saver: str
    what_it_does: str
    options: dict[str, str] = Field(description="The setting in each backend.")
    estimate_gb: float
    fits: bool


def _saver_steps(inp: VramInputs, fam: Family) -> list[tuple[str, str, dict[str, str], VramInputs]]:
    steps: list[tuple[str, str, dict[str, str], VramInputs]] = []
    cur = inp
    if not cur.gc:
        cur = replace(cur, gc=True)
        steps.append(
            (
                "gradient checkpointing",
                "Recomputes values instead of storing them: the biggest saving, about 20% slower.",
                {
                    "kohya": "gradient_checkpointing",
                    "ai-toolkit": "train.gradient_checkpointing",
                    "simpletuner": "gradient_checkpointing",
                },
                cur,
            )
        )
    if not cur.cache_latents or (not cur.cache_te and not cur.trains_te):
        cur = replace(cur, cache_latents=True, cache_te=cur.cache_te or not cur.trains_te)
        steps.append(
            (
                "caching",
                "Prepares images and captions once, so the image encoder and prompt reader can leave the card.",
                {
                    "kohya": "cache_latents, cache_text_encoder_outputs",
                    "ai-toolkit": "datasets[].cache_latents_to_disk",
                    "simpletuner": "(always cached)",
                },
                cur,
            )
        )
    if cur.optimizer not in ("adamw8bit", "lion8bit", "adafactor", "adamw_bf16"):
        cur = replace(cur, optimizer="adamw8bit")
        steps.append(
            (
                "8-bit optimizer",
                "Keeps the optimizer's bookkeeping in 8 bits (AdamW 8-bit): little quality difference.",
                {
                    "kohya": "optimizer_type = AdamW8bit",
                    "ai-toolkit": "train.optimizer: adamw8bit",
                    "simpletuner": "optimizer: bnb-adamw8bit",
                },
                cur,
            )
        )
    if cur.base_precision in ("bf16", "fp16", "fp32"):
        cur = replace(cur, base_precision="fp8")
        steps.append(
            (
                "fp8 base model",
                "Loads the frozen base model in 8 bits; the LoRA still trains at full quality.",
                {
                    "kohya": "fp8_base",
                    "ai-toolkit": "model.quantize: true",
                    "simpletuner": "base_model_precision: int8-quanto",
                },
                cur,
            )
        )
    if fam.block_count:
        steps.extend(
            (
                f"block swap ({blocks})",
                f"Keeps {blocks} of the model's blocks in normal memory and moves them in when needed: slower.",
                {
                    "kohya": f"blocks_to_swap = {blocks}",
                    "ai-toolkit": "model.layer_offloading: true",
                    "simpletuner": "enable_group_offload: true",
                },
                replace(cur, blocks_to_swap=blocks),
            )
            for blocks in range(4, min(fam.block_count - 2, 36) + 1, 4)
        )
    return steps


def savers_in_order(inp: VramInputs, card_gb: float) -> list[MemorySaver]:
    """The savers to switch on, in order, until the run fits ``card_gb`` (all of them if it never does)."""
    if fit_to_card(estimate_vram(inp), card_gb) == "fits":
        return []
    savers: list[MemorySaver] = []
    for name, text, options, after in _saver_steps(inp, _family(inp.family)):
        est = estimate_vram(after)
        fits = fit_to_card(est, card_gb) == "fits"
        savers.append(MemorySaver(saver=name, what_it_does=text, options=options, estimate_gb=est.gb, fits=fits))
        if fits:
            break
    return _collapse_swaps(savers)


def _collapse_swaps(savers: list[MemorySaver]) -> list[MemorySaver]:
    """Only the last block-swap step matters: it names how many blocks are needed."""
    non_swap = [s for s in savers if not s.saver.startswith("block swap")]
    swaps = [s for s in savers if s.saver.startswith("block swap")]
    return [*non_swap, *swaps[-1:]]
