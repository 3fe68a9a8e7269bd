"""``python -m edge_runner``: see :mod:`edge_runner.cli`."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
