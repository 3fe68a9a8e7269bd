"""``python -m train compare``: train, convert and measure several candidate models and recommend one.

Owns ``candidates`` (parsing ``BACKBONE:ALPHA:SIZE[:WEIGHTS]`` and finding their weights),
``compare`` (training, converting and measuring each candidate, resumably), ``pareto`` (the
accuracy/latency front and the noise-aware pick), ``compare_report`` (the comparison's report
and plot) and ``compare_cli`` (the command line).

May import: ``train`` (it sits on top and runs whole trainings through :func:`train.run_training`),
``train.config``, ``train.errors``, ``train.progress``, ``train.backbones``, ``convert`` and
``edge_runner``. Nothing in ``train`` imports it (``train.cli`` runs it by name).
"""
