"""edgekit's main job: photos → trained model → gated TFLite variants → benchmark → runner.

``python -m edgekit`` (what ``make all`` runs; installed as ``edgekit-pipeline``)
drives the three packages through their own command lines, exactly as a user
would, and ends with one summary table:

1. data: the photos (``--data``, or the public cats_and_dogs_filtered archive,
   downloaded once and verified by content: :mod:`edgekit.dataset`);
2. ``python -m train`` → ``OUT/train/`` (Keras model, contract, split);
3. ``python -m convert export`` → ``OUT/tflite/`` (TFLite variants, gated; its
   ``report.json`` names the files it wrote);
4. ``python -m convert benchmark`` → ``OUT/benchmark/``;
5. ``python -m edge_runner --json`` with the int8 model on the validation photos
   (and the held-out background photos) → the runner's accuracy and false alarms
   (:mod:`edgekit.summary`).

``models/`` is only written with ``--install``. Nothing in ``train``, ``convert``
or ``edge_runner`` imports this package: it sits on top of all three.
"""

from edge_runner import __version__

__all__ = ["__version__"]
