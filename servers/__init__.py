"""Servers exposing sleuth: the MCP server and serving recipes."""
