"""edgekit's converter: a trained Keras model → gated, benchmarked TFLite variants with metadata.

``python -m convert export TRAIN_OUT --out DIR`` writes ``<name>_<variant>.tflite``
(float32, float16, dynamic, int8; metadata, labels and the input contract inside),
``<name>_<variant>.contract.json``, ``labels.txt``, ``report.md`` and ``report.json``.
``python -m convert benchmark MODEL.tflite…`` measures size, latency and accuracy.
"""

from edge_runner import __version__  # the kit's one version source (pyproject.toml reads it too)

__all__ = ["__version__"]
