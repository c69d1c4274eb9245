"""Backend adapters: render a standard config into each backend's real files and launch command."""

from __future__ import annotations

from ategnatos_mcp.training.backends.aitoolkit import render_aitoolkit
from ategnatos_mcp.training.backends.catalogue import CatalogueError
from ategnatos_mcp.training.backends.kohya import render_kohya
from ategnatos_mcp.training.backends.simpletuner import render_simpletuner
from ategnatos_mcp.training.config import TrainingConfig
from ategnatos_mcp.training.models import DRY_RUN_STEPS, BackendName, RenderedBackend, RunPaths

__all__ = ["BACKENDS", "CatalogueError", "render_backend"]

BACKENDS: tuple[BackendName, ...] = ("kohya", "simpletuner", "ai-toolkit")


def render_backend(
    cfg: TrainingConfig,
    backend: BackendName,
    paths: RunPaths,
    *,
    dry_run: bool = False,
    dry_run_steps: int = DRY_RUN_STEPS,
) -> RenderedBackend:
    """The files and launch command of ``backend`` for ``cfg`` (the dry-run variant of ``dry_run_steps`` steps and
    one save when ``dry_run``)."""
    if backend == "kohya":
        return render_kohya(cfg, paths, dry_run=dry_run, dry_run_steps=dry_run_steps)
    if backend == "simpletuner":
        return render_simpletuner(cfg, paths, dry_run=dry_run, dry_run_steps=dry_run_steps)
    return render_aitoolkit(cfg, paths, dry_run=dry_run, dry_run_steps=dry_run_steps)
