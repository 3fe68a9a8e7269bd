"""The network: the classifier built on a registry backbone, the cached activations of its frozen part, the prior.

Owns ``network`` (backbone + head, the sub-models each phase runs, the exported inference
model), ``features`` (activations of the frozen layers, computed once per photo and view and
cached) and ``prior`` (the ImageNet classifier's view of the training photos, folded into the head). The registry itself, ``train.backbones``, sits below ``train.config``, which checks
options against it.

May import: ``train.backbones``, ``train.errors``, ``train.progress``, ``train.config``, Keras, scikit-learn,
``edge_runner`` (the teacher is loaded as the runner's companions are); nothing of the other sub-packages.
"""
