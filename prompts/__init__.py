"""Prompt texts, kept as files and rendered by name."""
