"""Fitting: the two training phases, their epoch loop with checkpoints and resume, and the batches they fit on.

Owns ``phases`` (the run's stage "fit": the head on cached features, then fine-tuning),
``fit`` (one phase's epoch loop: early stopping, checkpoints, ``--resume``, per-epoch seeds),
``batches`` (the ``tf.data`` batches, seeded per epoch), and ``--strategy multi-worker``:
``distributed`` (the run's hooks: each worker's share of the photos, the chief's report),
``cluster`` (``TF_CONFIG``, joining the workers, exchanging numbers) and ``sync`` (the
synchronised training step, validation and checkpoints).

May import: ``train.data``, ``train.model``, ``train.camera``, ``train.errors``, ``train.progress``,
``train.config``, ``convert`` (the run's file names) and ``edge_runner``.
"""
