"""Tools that look at regions: zoom, box proposal."""
