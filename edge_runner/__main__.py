"""``python -m edge_runner``: see :mod:`edge_runner.cli.runner`."""

from .cli.runner import main

if __name__ == "__main__":
    raise SystemExit(main())
