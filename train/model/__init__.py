"""The network: the classifier built on a registry backbone, and the cached activations of its frozen part.

Owns ``network`` (backbone + head, the sub-models each phase runs, the exported inference
model) and ``features`` (activations of the frozen layers, computed once per photo and view and
cached). The registry itself, ``train.backbones``, sits below ``train.config``, which checks
options against it.

May import: ``train.backbones``, ``train.errors``, ``train.progress``, ``train.config``, Keras;
nothing of the other sub-packages.
"""
