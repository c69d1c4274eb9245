"""The wiring of a running server (``core``: every service and the reactions between domains; ``evaluation``: how
an evaluation reaches ComfyUI and its LoRA folder). No domain imports this package; ``tools/`` reach it through
``Context``."""

from ategnatos_mcp.wiring.core import Wiring, utc_now

__all__ = ["Wiring", "utc_now"]
