"""``python -m sleuth``: the command line."""

from sleuth.cli import main

main()
