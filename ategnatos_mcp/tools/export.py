"""MCP adapter for asset export and image info (placeholder until its issue lands)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from ategnatos_mcp.context import AppContext


def register(server: MCPServer[AppContext], app: AppContext) -> None:
    """Register this domain's tools, resources and prompts."""
