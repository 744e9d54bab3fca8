"""Noise residual tools."""
