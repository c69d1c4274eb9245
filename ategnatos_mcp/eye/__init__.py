"""The eye: the artist's taste profile. Only ``eye_update`` writes it; everything else reads it.

Read it with ``await store.read(EYE_DOCUMENT, EyeProfile)`` and turn it into prompt terms with
``query_profile(profile, family=..., subject=..., request=...)``.
"""

from ategnatos_mcp.eye.models import (
    CATEGORIES,
    EYE_DOCUMENT,
    Category,
    Evidence,
    EyeProfile,
    EyeQuery,
    Level,
    Preference,
)
from ategnatos_mcp.eye.profile import EyeAction, EyeChange, applies_to, apply_change, query_profile
from ategnatos_mcp.eye.view import EYE_VIEW_FILE, merge_eye, parse_eye, render_eye
from ategnatos_mcp.state import View

EYE_VIEW: View[EyeProfile] = View(
    filename=EYE_VIEW_FILE,
    render=render_eye,
    parse=parse_eye,
    merge=merge_eye,
    model=EyeProfile,
    accept_with="eye_update action 'accept_edit'",
)

__all__ = [
    "CATEGORIES",
    "EYE_DOCUMENT",
    "EYE_VIEW",
    "Category",
    "Evidence",
    "EyeAction",
    "EyeChange",
    "EyeProfile",
    "EyeQuery",
    "Level",
    "Preference",
    "applies_to",
    "apply_change",
    "merge_eye",
    "parse_eye",
    "query_profile",
    "render_eye",
]
