"""The accuracy gate: a variant's answers against the float Keras model's, photo by photo, and its verdict.

Owns ``accuracy`` (predictions of the Keras model and of a ``.tflite`` through the runner's
``Classifier`` on the same pixels, ``Scores``, the paired ``compare``, ``Thresholds`` and the
``judge``-ment, the JPEG draft study) and ``significance`` (McNemar's exact test, the paired
bootstrap interval, confident agreement, per-class changes).

May import: ``edge_runner.core``, numpy, scikit-learn and scipy; nothing else of ``convert``
(``export``, ``variants``, ``benchmark``, ``evaluation`` and ``train`` use it). No TensorFlow at import.
"""
