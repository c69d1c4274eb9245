"""The wiring of a running server. ``core`` holds every service and the reactions between domains; the longer
reactions are plain functions it calls with what they need: ``evaluation`` (how an evaluation reaches ComfyUI and
its LoRA folder), ``generations`` (a ComfyUI job on an asset's history), ``checkpoints`` (what ComfyUI offers a
training plan), ``environment`` (this machine, for studio_detect and doctor). No domain imports this package and
those modules import no ``core``; ``tools/`` reach it through ``Context``."""

from ategnatos_mcp.wiring.core import Wiring, utc_now

__all__ = ["Wiring", "utc_now"]
