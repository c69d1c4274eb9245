"""Ategnatos: an MCP server that makes Claude an AI-art studio assistant."""

__version__ = "0.1.0"
