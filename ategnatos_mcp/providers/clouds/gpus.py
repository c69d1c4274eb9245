"""Unified GPU names: each provider spells the same card differently (RunPod long ids, Vast spaces, Lambda types)."""

from __future__ import annotations

import re

__all__ = ["KNOWN_VRAM_GB", "gpu_matches", "lambda_gpu", "unify_gpu_name"]

# Canonical name -> VRAM in GB, for cards whose memory a provider does not report.
KNOWN_VRAM_GB: dict[str, float] = {
    "RTX3090": 24,
    "RTX4090": 24,
    "RTX5090": 32,
    "RTXA4000": 16,
    "RTXA5000": 24,
    "RTXA6000": 48,
    "RTX6000ADA": 48,
    "A10": 24,
    "A40": 48,
    "L4": 24,
    "L40": 48,
    "L40S": 48,
    "A100-40G": 40,
    "A100-80G": 80,
    "A100-80G-SXM": 80,
    "H100-PCIE": 80,
    "H100-SXM": 80,
    "H100-NVL": 94,
    "H200": 141,
    "GH200": 96,
    "B200": 180,
    "V100": 16,
    "RTXPRO6000": 96,
}

# Spellings that the generic rule below would get wrong, keyed by the squashed provider spelling.
_ALIASES: dict[str, str] = {
    "A10080GBPCIE": "A100-80G",
    "A100PCIE": "A100-80G",
    "A100SXM480GB": "A100-80G-SXM",
    "A100SXM4": "A100-80G-SXM",
    "A100SXM": "A100-80G-SXM",
    "A100": "A100-40G",
    "A100PCIE40GB": "A100-40G",
    "H10080GBHBM3": "H100-SXM",
    "H100SXM": "H100-SXM",
    "H100SXM5": "H100-SXM",
    "H100PCIE": "H100-PCIE",
    "H100NVL": "H100-NVL",
    "RTX6000ADAGENERATION": "RTX6000ADA",
    "RTX6000": "RTX6000ADA",
    "TESLAV100": "V100",
    "A6000": "RTXA6000",
    "RTXPRO6000BLACKWELLSERVEREDITION": "RTXPRO6000",
    "B200SXM6": "B200",
}

_VENDOR_WORDS = re.compile(r"\b(NVIDIA|GEFORCE|AMD|TESLA(?= V100)|TESLA)\b", re.IGNORECASE)


def _squash(value: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", _VENDOR_WORDS.sub("", value.upper()))


def unify_gpu_name(raw: str) -> str:
    """``NVIDIA GeForce RTX 4090`` / ``RTX 4090`` / ``rtx_4090`` → ``RTX4090``."""
    squashed = _squash(raw)
    if squashed in _ALIASES:
        return _ALIASES[squashed]
    with_tesla = re.sub(r"[^A-Z0-9]", "", raw.upper())
    return _ALIASES.get(with_tesla, squashed)


def lambda_gpu(type_name: str) -> tuple[str, int]:
    """``gpu_8x_h100_sxm5`` → (``H100-SXM``, 8). CPU-only types give ("", 0)."""
    match = re.fullmatch(r"gpu_(\d+)x_(.+)", type_name)
    if not match:
        return "", 0
    return unify_gpu_name(match.group(2)), int(match.group(1))


def gpu_matches(unified: str, wanted: str) -> bool:
    """Whether a user's loose GPU wish (``4090``, ``rtx 4090``, ``H100``) names this card."""
    target = unify_gpu_name(wanted)
    if target == unified:
        return True
    # A wish that is itself a full card name (A10, L40) must not match longer names (A100, L40S).
    squashed = _squash(wanted)
    if squashed in KNOWN_VRAM_GB:
        return False
    return bool(squashed) and squashed in re.sub(r"[^A-Z0-9]", "", unified.upper())
