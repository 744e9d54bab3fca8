"""The investigation agent: LangGraph loop, model backends, verdicts, case store."""

if __name__ != "sleuth.agent":  # e.g. `import agent` from the repository root: a second copy
    raise ImportError(
        f"import sleuth.agent, not {__name__}: the agent/ folder is installed as sleuth.agent"
    )
