"""Frequency-domain tools."""
