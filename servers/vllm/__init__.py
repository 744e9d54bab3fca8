"""Serving a vision-language model with vLLM for the agent (``sleuth model-server``)."""
