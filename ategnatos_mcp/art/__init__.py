"""The art-direction loop: prompts per model family, feedback, iteration history, the prompt library.

No ``mcp`` here; ``ategnatos_mcp/tools/art.py`` is the adapter. ``ArtDirector`` is the entry point.
"""

from ategnatos_mcp.art.assets import AssetBook
from ategnatos_mcp.art.director import ArtDirector
from ategnatos_mcp.art.families import FamilyCatalog, load_family_database, load_feedback_map, pick_resolution
from ategnatos_mcp.art.feedback import apply_adjustments, match_feedback
from ategnatos_mcp.art.generations import Generation
from ategnatos_mcp.art.models import (
    Adjustment,
    ArtAsset,
    AssetSpec,
    EyeSuggestion,
    Family,
    FamilyDatabase,
    FeedbackMap,
    Iteration,
    IterationsAnswer,
    LibraryAnswer,
    LibraryEntry,
    LibraryMatch,
    LoraUse,
    PromptAnswer,
    PromptDraft,
    PromptSettings,
    PromptTerm,
    SubmitSuggestion,
    TasteGuidance,
)
from ategnatos_mcp.art.prompt import build_prompt, parse_terms, render_terms

__all__ = [
    "Adjustment",
    "ArtAsset",
    "ArtDirector",
    "AssetBook",
    "AssetSpec",
    "EyeSuggestion",
    "Family",
    "FamilyCatalog",
    "FamilyDatabase",
    "FeedbackMap",
    "Generation",
    "Iteration",
    "IterationsAnswer",
    "LibraryAnswer",
    "LibraryEntry",
    "LibraryMatch",
    "LoraUse",
    "PromptAnswer",
    "PromptDraft",
    "PromptSettings",
    "PromptTerm",
    "SubmitSuggestion",
    "TasteGuidance",
    "apply_adjustments",
    "build_prompt",
    "load_family_database",
    "load_feedback_map",
    "match_feedback",
    "parse_terms",
    "pick_resolution",
    "render_terms",
]
