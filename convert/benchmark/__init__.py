"""``python -m convert benchmark``: size, latency and accuracy of ``.tflite`` variants, the Keras model as baseline.

Owns ``measure`` (the timing through the runner's ``Classifier`` and :mod:`edge_runner.common.timing`,
accuracy and agreement: ``BenchmarkResult``) and ``report`` (the markdown table, ``benchmark.json``,
``benchmark.png``).

May import: ``convert.errors``, ``convert.photos``, ``convert.gate`` and ``edge_runner``; nothing of
``export``, ``variants``, ``int8`` or ``evaluation``. Imported by ``convert.cli`` (and the main job reads
``report.BENCHMARK_JSON``).
"""
