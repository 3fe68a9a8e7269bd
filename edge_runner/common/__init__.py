"""Kit-wide helpers at the bottom of edgekit: used by ``edge_runner``, ``train``, ``convert`` and ``edgekit``.

Owns: atomic file writing (``files``), the command lines' conventions (``console``: exit
codes, the one error line, the parser, the exception → exit status mapping, the subcommand
dispatch), argparse value types (``argtypes``), latency measurement (``timing``), native
log filtering and the one place ``TF_CPP_MIN_LOG_LEVEL`` is set (``native_log``), named crash
points for the kill-at-each-step tests (``crash``), which
optional extras are installed (``extras``) and the training run folder's layout
(``run_layout``).

May import: the standard library and numpy only, never another part of the kit, so any
module of any package may use it without a cycle.
"""
