"""Texture tools: rich/poor texture contrast (PatchCraft, weight-free)."""
