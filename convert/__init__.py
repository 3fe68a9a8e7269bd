"""edgekit's converter: a trained Keras model → gated, benchmarked TFLite variants with metadata.

``python -m convert export TRAIN_OUT --out DIR`` writes ``<name>_<variant>.tflite``
(float32, float16, dynamic, int8; metadata, labels and the input contract inside),
``<name>_<variant>.contract.json``, ``labels.txt``, ``report.md`` and ``report.json``.
``python -m convert benchmark MODEL.tflite…`` measures size, latency and accuracy.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("edgekit")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
