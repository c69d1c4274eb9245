"""Rough time and cost of a run on candidate GPUs (``data/gpus.json``), and the user's own card.

Seconds per step = the family's seconds per step at batch 1 and one megapixel on an RTX 4090, scaled by
megapixels, batch (85% efficient per extra image), gradient accumulation and the card's relative speed.
These are rules of thumb for a first answer, not benchmarks.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel

from ategnatos_mcp.training.config import TrainingConfig
from ategnatos_mcp.training.vram import VramInputs, estimate_vram, fit_to_card, largest_batch

__all__ = ["GpuOption", "gpu_options", "load_gpus", "run_hours", "vram_inputs"]

_SETUP_HOURS = 0.25  # model download, caching latents and text embeddings before the first step


@cache
def load_gpus() -> list[dict[str, Any]]:
    text = resources.files("ategnatos_mcp.training").joinpath("data", "gpus.json").read_text(encoding="utf-8")
    return json.loads(text)["gpus"]


class GpuOption(BaseModel):
    """How the run would go on one GPU."""

    gpu: str
    vram_gb: float
    fit: str
    largest_batch: int
    block_swap: int = 0
    hours: float | None
    usd: float | None
    usd_per_hour: float | None
    price_source: str | None


def vram_inputs(cfg: TrainingConfig) -> VramInputs:
    """The memory-relevant part of a config."""
    return VramInputs(
        family=cfg.family,
        resolution=cfg.resolution,
        batch=cfg.batch_size,
        rank=cfg.network_rank,
        base_precision=cfg.base_precision,
        optimizer=cfg.optimizer,
        gc=cfg.gradient_checkpointing,
        cache_latents=cfg.cache_latents,
        cache_te=cfg.cache_text_encoder,
        trains_te=cfg.trains_text_encoder,
        blocks_to_swap=cfg.blocks_to_swap,
    )


def run_hours(
    cfg: TrainingConfig, relative_speed: float, *, swapping: bool | None = None, steps: int | None = None
) -> float:
    """Rough wall-clock hours of the whole run on a card of ``relative_speed`` (RTX 4090 = 1).

    ``steps``: the steps the backend will really run when they differ from ``cfg.total_steps`` (e.g. sd-scripts
    with regularisation images).
    """
    swapping = bool(cfg.blocks_to_swap) if swapping is None else swapping
    megapixels = (cfg.resolution / 1024) ** 2
    per_step = cfg.family_info.speed_s_per_it_1mp * megapixels * (1 + 0.85 * (cfg.batch_size - 1))
    per_step *= cfg.gradient_accumulation * (1.25 if swapping else 1.0)
    return round((steps or cfg.total_steps) * per_step / relative_speed / 3600 + _SETUP_HOURS, 2)


def gpu_options(cfg: TrainingConfig, *, rented_only: bool = False, steps: int | None = None) -> list[GpuOption]:
    """Every catalogued GPU with its fit, largest batch, rough hours and cost (rented cards only have a price).

    A card that fits the run without block swapping is judged without it (swapping only slows it down).
    """
    swapped = vram_inputs(cfg)
    unswapped = replace(swapped, blocks_to_swap=0)
    options: list[GpuOption] = []
    for gpu in load_gpus():
        if rented_only and gpu["usd_per_hour"] is None:
            continue
        inputs = unswapped if fit_to_card(estimate_vram(unswapped), gpu["vram_gb"]) == "fits" else swapped
        fit = fit_to_card(estimate_vram(inputs), gpu["vram_gb"])
        swapping = bool(inputs.blocks_to_swap)
        hours = (
            run_hours(cfg, gpu["relative_speed"], swapping=swapping, steps=steps) if fit in ("fits", "tight") else None
        )
        price = gpu["usd_per_hour"]
        options.append(
            GpuOption(
                gpu=gpu["name"],
                vram_gb=gpu["vram_gb"],
                fit=fit,
                largest_batch=largest_batch(replace(inputs, batch=1), gpu["vram_gb"]),
                block_swap=inputs.blocks_to_swap,
                hours=hours,
                usd=round(hours * price, 2) if hours is not None and price is not None else None,
                usd_per_hour=price,
                price_source=gpu["price_source"],
            )
        )
    return options
