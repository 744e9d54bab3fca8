"""Built-in forensic tools, registered through the same entry points as plugins."""
