"""Real engines for tests: a tiny Qwen2.5-VL built offline, scripted by training, served by vLLM.

- :mod:`tests.engines.tiny_vlm` builds the tiny random model (tokenizer, template, weights).
- :mod:`tests.engines.scripted` overfits it to a script of chats, so an agent loop against it
  is deterministic.
- :mod:`tests.engines.vllm_server` serves a model with the real vLLM CPU build.
- :mod:`tests.engines.conftest` has the fixtures and the skip-or-fail rule for missing engines.

Everything built is cached under ``.cache/engines`` in the checkout.
"""
