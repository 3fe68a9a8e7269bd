"""The ``.tflite`` file format: the model flatbuffer (``flatbuffer``) and its standard metadata (``metadata``).

Owns reading and re-packing a model and writing/reading the ``TFLITE_METADATA`` entry and the packed files
(labels, contract) that MediaPipe Tasks and Android Studio read. May import ``convert.schema`` (generated
code), ``edge_runner.common`` and ``edge_runner.core.spec``; nothing else of ``convert``.
"""
