"""Colour tools: saturation and clipping statistics."""
