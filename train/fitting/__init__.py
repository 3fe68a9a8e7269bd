"""Fitting: the two training phases, their epoch loop with checkpoints and resume, and the batches they fit on.

Owns ``phases`` (the run's stage "fit": the head on cached features, then fine-tuning),
``fit`` (one phase's epoch loop: early stopping, checkpoints, ``--resume``, per-epoch seeds)
and ``batches`` (the ``tf.data`` batches, seeded per epoch).

May import: ``train.data``, ``train.model``, ``train.errors``, ``train.progress``,
``train.config``, ``convert`` (the run's file names) and ``edge_runner``.
"""
