"""sleuth: decide whether an image is AI-generated, and show why."""

__version__ = "0.1.0"
