"""``python -m convert gate-device``: a retrained model against the model on the device, before it is sent there.

Owns ``gate`` (the new int8 model, made by ``convert export``, and the device's ``.tflite`` run through the runner's
``Classifier`` on the old validation photos, paired McNemar test, and on the reviewed frames of a review export: what
was fixed, what broke; ``DeviceGate``), ``report`` (``report.json``, ``report.md``, ``fixed.png``, ``broke.png``) and
``cli`` (the flags and the run).

May import: ``convert.errors``, ``convert.photos``, ``convert.source``, ``convert.export``, ``convert.results``,
``convert.gate``, ``convert.evaluation`` (answers, contact sheets) and ``edge_runner``; nothing of ``train``.
Imported by ``convert.cli``.
"""
