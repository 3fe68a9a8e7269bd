"""Frames and visits: cameras, the frame loop and ``python -m edge_runner watch``.

Owns: frame sources (``camera``), the one frame loop (``frames``), the watch command
(``watch``) and its options (``settings``), visit smoothing (``visits``), the recorder of
events (``recorder``), snapshots and strips (``snapshots``, ``strip``) and the actions
(``notify``: command and webhook, ``mqtt``), and following the model ``serve --deploy-dir`` makes
current (``follow``).

May import: :mod:`edge_runner.review` (the recorder feeds its collector), :mod:`edge_runner.core` and :mod:`edge_runner.common`.
"""
