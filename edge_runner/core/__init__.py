"""The runtime core: what every use of a model needs, on a phone-sized device.

Owns: the input contract (``spec``), the one "photo with a label" (``photo``), decoding and
preprocessing (``image``, ``decoder``), the TFLite runtime import (``runtime``), quantisation
arithmetic (``quantization``), the classifier (``model``), a pool of interpreters (``pool``),
the shipped files (``assets``), the deployed-model folder (``slot``) and how a command finds
and loads its model (``loading``: ``-m/--model``, ``--runtime``, ``--threads``, ``-v/--verbose``), and the
companion classifier that names what a "nothing recognised" photo looks like (``companion``,
``companion_loader``, ``companion_flags``: ``--looks-like``; ``catalog``: the ones known by name).

May import: :mod:`edge_runner.common`, numpy, Pillow and a TFLite runtime; nothing else of
the kit, never TensorFlow.
"""
