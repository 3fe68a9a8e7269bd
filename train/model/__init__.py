"""The network: the classifier on a registry backbone, the cached activations of its frozen part, the teacher's head.

Owns ``network`` (backbone + head, the sub-models each phase runs, the exported inference
model), ``features`` (activations of the frozen layers, computed once per photo and view and
cached), ``teacher`` (a head fitted to an ImageNet classifier's view of the training photos; its prior fold) and
``rescue`` (that head built into the model's one output as a rescue). The registries themselves, ``train.backbones``
and ``train.camera`` (the camera degradations), sit below ``train.config``, which checks options against them.

May import: ``train.backbones``, ``train.camera``, ``train.errors``, ``train.progress``, ``train.config``, Keras, scikit-learn,
``edge_runner`` (the teacher is loaded as the runner's companions are); nothing of the other sub-packages.
"""
