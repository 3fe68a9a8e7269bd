"""When int8 fails (or is close, or on request): where its error comes from, and the fixes tried.

Owns ``diagnosis`` (TensorFlow's ``QuantizationDebugger``: each layer's own int8 error, the
table and the plot) and ``remedy`` (wider calibration, the worst layers kept in float,
int16x8 — each a new file written and gated by :mod:`convert.variants`; the file to ship).

May import: the top-level modules ``convert.errors``, ``convert.photos``, ``convert.quantize``,
``convert.results`` and ``convert.variants``, ``convert.gate``, ``edge_runner.common`` and
``edge_runner.core``; not ``convert.export``, ``convert.report``, ``convert.cli``, ``benchmark``
or ``evaluation``. Only ``convert.export`` (``remedy``) and ``convert.report`` (``diagnosis.LOST``) import it.
"""
