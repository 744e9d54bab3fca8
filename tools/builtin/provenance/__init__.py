"""Provenance: what a file declares about its origin.

C2PA, IPTC/XMP, EXIF, generator metadata, the Stable Diffusion invisible watermark.
"""
