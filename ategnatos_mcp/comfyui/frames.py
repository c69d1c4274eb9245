"""Decode ComfyUI's binary websocket frames (all numbers 4-byte big-endian, as recorded from 0.3.64).

- type 1 PREVIEW_IMAGE: ``[1][format: 1=JPEG, 2=PNG][image bytes]``; no node or prompt named.
- type 4 PREVIEW_IMAGE_WITH_METADATA: ``[4][N][N bytes JSON {node_id, prompt_id, display_node_id, ...,
  image_type}][image bytes]``; sent instead of type 1 once the client announced ``supports_preview_metadata``.
- type 3 TEXT: ``[3][L][L bytes node id][utf-8 text]`` (GetImageSize): not a picture, skipped here.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ategnatos_mcp.comfyui.models import WsImage

__all__ = ["FEATURE_FLAGS", "STREAMING_SAVERS", "decode_binary_frame", "streaming_nodes"]

logger = logging.getLogger(__name__)

# Sent as the socket's first message: ComfyUI then names the node and prompt of every picture frame.
FEATURE_FLAGS = '{"type": "feature_flags", "data": {"supports_preview_metadata": true}}'

# Node classes whose pictures exist only as socket frames (no file, nothing in /history). Recorded:
# ComfyUI's bundled example SaveImageWebsocket (type 1 PNG frames, or type 4 naming the node).
STREAMING_SAVERS = frozenset({"SaveImageWebsocket"})

_PREVIEW_IMAGE = 1
_TEXT = 3
_PREVIEW_IMAGE_WITH_METADATA = 4
_FORMATS = {1: "image/jpeg", 2: "image/png"}


def decode_binary_frame(frame: bytes) -> WsImage | None:
    """The picture in a binary frame, or None for text frames, unknown types and malformed frames."""
    if len(frame) < 8:
        return None
    kind = int.from_bytes(frame[:4], "big")
    word = int.from_bytes(frame[4:8], "big")
    if kind == _PREVIEW_IMAGE:
        return WsImage(data=frame[8:], mime_type=_FORMATS.get(word, "application/octet-stream"))
    if kind == _PREVIEW_IMAGE_WITH_METADATA:
        try:
            meta = json.loads(frame[8 : 8 + word])
        except (ValueError, UnicodeDecodeError):
            logger.warning("ComfyUI sent a picture frame with unreadable metadata; ignored")
            return None
        if not isinstance(meta, dict) or len(frame) < 8 + word:
            return None
        return WsImage(
            data=frame[8 + word :],
            mime_type=str(meta.get("image_type") or "application/octet-stream"),
            node_id=_text(meta.get("node_id")),
            display_node_id=_text(meta.get("display_node_id")),
            prompt_id=_text(meta.get("prompt_id")),
        )
    if kind != _TEXT:
        logger.debug("ComfyUI sent a binary frame of unknown type %s; ignored", kind)
    return None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def streaming_nodes(workflow: dict[str, Any]) -> frozenset[str]:
    """Ids of the workflow's nodes whose results arrive only over the websocket."""
    return frozenset(
        node_id
        for node_id, node in workflow.items()
        if isinstance(node, dict) and node.get("class_type") in STREAMING_SAVERS
    )
