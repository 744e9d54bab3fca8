"""Presentation: the console rendering, the HTML report and annotated images.

Used by the command line; the MCP server uses the report and the annotation through the
exception documented in :mod:`sleuth.servers.mcp.resources`.
"""
