"""The investigation agent: LangGraph loop, model backends, verdicts, case store."""
