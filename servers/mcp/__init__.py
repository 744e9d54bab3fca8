"""The MCP server: the agent and the forensic tools for chat assistants (``sleuth serve``)."""
