"""Evaluating a trained LoRA and bringing the chosen one home.

``Evaluations.evaluate`` (service.py) puts the run's saves where ComfyUI finds them (``shelves.py``), draws the grid
of saves x weights (``grid.py``: a template per model family, the run's own base model) and composes one labelled
contact sheet (``sheet.py``). ``Keeper.keep`` (keep.py) copies the chosen save into ``workspace/loras/`` and
registers it in the studio with its provenance. ComfyUI itself is reached through the ``Renderer`` protocol, which
the server's wiring implements with the ComfyUI pool.
"""

from ategnatos_mcp.training.evaluation.grid import DEFAULT_WEIGHTS, RECIPES, choose_saves, lora_name
from ategnatos_mcp.training.evaluation.keep import Keeper, weight_range
from ategnatos_mcp.training.evaluation.models import EvalAnswer, EvalRecord, KeptLora, evaluation_document
from ategnatos_mcp.training.evaluation.service import EvalRequest, EvalStudio, Evaluations, Renderer, RenderResult
from ategnatos_mcp.training.evaluation.shelves import LocalShelf, LoraShelf, RemoteShelf

__all__ = [
    "DEFAULT_WEIGHTS",
    "RECIPES",
    "EvalAnswer",
    "EvalRecord",
    "EvalRequest",
    "EvalStudio",
    "Evaluations",
    "Keeper",
    "KeptLora",
    "LocalShelf",
    "LoraShelf",
    "RemoteShelf",
    "RenderResult",
    "Renderer",
    "choose_saves",
    "evaluation_document",
    "lora_name",
    "weight_range",
]
