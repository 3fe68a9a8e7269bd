"""The runner's command line, ``python -m edge_runner`` / ``edge-runner`` (entry point: ``runner.main``).

Owns: the photo, ``--camera`` and ``--benchmark`` command (``runner``), which also dispatches
the ``serve``, ``watch``, ``webapp`` and ``deploy`` subcommands; sending a model to a running
``serve`` (``deploy``); collecting and classifying many photos (``batch``);
the text output (``output``); the benchmark (``benchmark``).

May import: every other sub-package of ``edge_runner`` (it is the top); nothing in
``edge_runner`` imports it except ``edge_runner.__main__``.
"""
