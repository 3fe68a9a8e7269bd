"""The photos of a run: found in their folders, sorted into sources, split, decoded once, weighted.

Owns ``sources`` (where photos come from: roots, sources, held-out sources), ``folders``
(finding labelled photo files in the layouts ``--data`` accepts), ``split`` (the seeded
training/validation split and ``split.json``), ``pixels`` (decoding with the runner's own
preprocessing into a cached array) and ``dataset`` (the run's stage "data": all of the above,
written down before training).

May import: ``train.errors``, ``train.progress``, ``train.config``, ``train.output``, ``convert``
and ``edge_runner``; nothing of the other sub-packages. No TensorFlow here.
"""
