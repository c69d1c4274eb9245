"""The grimoire: JSON documents as the source of truth, markdown views rendered from them."""

from ategnatos_mcp.state.atomic import keep_copy, write_bytes_atomic, write_text_atomic
from ategnatos_mcp.state.rendered import Rendered, text_hash, write_rendered
from ategnatos_mcp.state.store import Document, GrimoireStore, Migration, Update
from ategnatos_mcp.state.views import Merge, View

__all__ = [
    "Document",
    "GrimoireStore",
    "Merge",
    "Migration",
    "Update",
    "View",
    "keep_copy",
    "write_bytes_atomic",
    "Rendered",
    "text_hash",
    "write_rendered",
    "write_text_atomic",
]
