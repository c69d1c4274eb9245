"""MCP adapters, one module per domain. Only this package and server.py import mcp."""
