"""JPEG compression tools: error level analysis, quantization tables."""
