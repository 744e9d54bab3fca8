"""``python -m sleuth.servers``: the same command as ``sleuth serve``.

An entry module: nothing imports it (it imports the command line, above the servers).
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run ``sleuth serve`` with this command's arguments."""
    from sleuth.cli import main as cli_main

    sys.argv = [sys.argv[0], "serve", *sys.argv[1:]]
    cli_main()


if __name__ == "__main__":
    main()
