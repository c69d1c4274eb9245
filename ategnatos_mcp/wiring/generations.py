"""A ComfyUI job for an asset goes on the asset's history (art <- comfyui). Used by the wiring
(``core.Wiring.log_generation``); imports no wiring itself."""

from __future__ import annotations

from ategnatos_mcp.art import AssetBook, Generation, LoraUse
from ategnatos_mcp.comfyui import JobView
from ategnatos_mcp.errors import AtegnatosError

__all__ = ["log_generation"]


async def log_generation(
    assets: AssetBook, view: JobView, where: tuple[str, str, int | None] | None, workflow: str | None = None
) -> None:
    """Log ``view`` on the asset ``where`` names (project, asset, version), or complete the log of a job submitted
    for a version once its pictures arrive. Logging never costs the artist the job: a failure becomes a note on the
    job (``view.asset_log``)."""
    loras = [LoraUse(name=str(x["name"]), weight=float(x["weight"])) for x in view.params.get("loras", [])]
    gen = Generation(
        job_id=view.job_id,
        state=view.state,
        seed=view.seed,
        template=view.template,
        workflow=workflow,
        params=view.params,
        loras=loras,
        outputs=[f.path for f in view.files if f.kind == "image"],
    )
    try:
        if where is not None:
            project, asset, version = where
            logged, notices = await assets.record_generation(project, asset, version, gen)
            name = f"{project}/{asset}"
        else:
            finished = await assets.record_finished(gen)
            if finished is None:
                return
            name, logged, notices = finished
    except AtegnatosError as exc:
        view.asset_log = f"The job ran, but logging it on the asset failed: {exc.message} {exc.hint}".strip()
        return
    if logged is not None:
        later = " Its pictures are added when it finishes (comfyui_job)." if view.state in ("queued", "running") else ""
        notices.insert(0, f"Logged on {name} version {logged}.{later}")
    view.asset_log = " ".join(notices) or None
