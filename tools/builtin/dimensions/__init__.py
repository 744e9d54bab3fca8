"""Dimension tools: priors on generator output sizes."""
