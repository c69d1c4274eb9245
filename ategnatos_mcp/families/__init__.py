"""Model families: the one catalogue of ids and aliases, shared by art, training, the eye, the studio and ComfyUI.

Every tool that takes a family resolves it here, so "PDXL", "Pony Diffusion V6 XL" and "pony" mean the
same family everywhere::

    from ategnatos_mcp.families import resolve_family, canonical_family, guess_family

    resolve_family("FLUX.1 dev").id          # "flux1"; unknown names raise InvalidRequestError
    canonical_family("Pony Diffusion")       # "pony"; unknown names come back normalised
    guess_family("ponyDiffusionV6XL.safetensors", metadata).family   # "pony", with a reason

Domain facts stay with their domains (``art/data/model_families.json`` for prompting,
``training/data/families.json`` for training), keyed by these ids.
"""

from ategnatos_mcp.families.catalogue import (
    FamilyCatalogue,
    KnownFamily,
    canonical_family,
    family_ids,
    find_family,
    load_catalogue,
    normalise,
    resolve_family,
)
from ategnatos_mcp.families.guess import FamilyGuess, guess_family

__all__ = [
    "FamilyCatalogue",
    "FamilyGuess",
    "KnownFamily",
    "canonical_family",
    "family_ids",
    "find_family",
    "guess_family",
    "load_catalogue",
    "normalise",
    "resolve_family",
]
