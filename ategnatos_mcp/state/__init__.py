"""The grimoire: JSON documents as the source of truth, markdown views rendered from them."""

from ategnatos_mcp.state.atomic import write_bytes_atomic, write_text_atomic
from ategnatos_mcp.state.store import Document, GrimoireStore, Migration, Update, View

__all__ = ["Document", "GrimoireStore", "Migration", "Update", "View", "write_bytes_atomic", "write_text_atomic"]
