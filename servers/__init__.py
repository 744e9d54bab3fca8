"""Servers exposing sleuth: MCP (``mcp/``), vLLM serving (``vllm/``), LangGraph Studio."""

if __name__ != "sleuth.servers":  # e.g. `import servers` from the repository root: a second copy
    raise ImportError(
        f"import sleuth.servers, not {__name__}: the servers/ folder is installed as sleuth.servers"
    )
