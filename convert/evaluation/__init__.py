"""``python -m convert evaluate``: a model measured on labelled photos, answer by answer, as the runner answers.

Owns ``sources`` (``--data`` class folders and ``--background`` folders, each root a ``Source``;
``train.data`` uses the same ``Source``), ``scoring`` (loading a ``.tflite`` or a training run,
the answers and every figure: ``Evaluation``), ``report`` (the text table, ``evaluation.{json,md}``,
``mistakes.png``), ``contact_sheet`` (the thumbnail grid, Pillow only) and ``cli`` (the flags and the run).

May import: ``convert.errors``, ``convert.photos``, ``convert.thresholds``, ``convert.source``,
``convert.gate`` (the Keras predictions) and ``edge_runner``; nothing of ``export``, ``variants``,
``int8`` or ``benchmark``. Imported by ``convert.cli`` and ``train.data`` (``sources``).
"""
