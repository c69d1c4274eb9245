"""MCP adapter for running training: environment check, dry run, launch, status, evaluation (placeholder)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from ategnatos_mcp.context import AppContext


def register(server: MCPServer[AppContext], app: AppContext) -> None:
    """Register this domain's tools, resources and prompts."""
