"""The network: the backbone registry, the classifier built on it, and the cached activations of its frozen part.

Owns ``backbones`` (which pretrained networks can be fine-tuned and how pixels are normalised
for each), ``network`` (backbone + head, the sub-models each phase runs, the exported inference
model) and ``features`` (activations of the frozen layers, computed once per photo and view and
cached).

May import: ``train.errors``, ``train.progress``, ``train.config``, Keras; nothing of the other
sub-packages. ``backbones`` imports only ``train.errors`` (``train.config`` reads its registry)
and no TensorFlow, so checking a configuration stays cheap.
"""
