"""Why did the model say that: Grad-CAM maps for the training report and ``python -m train explain``.

Owns ``gradcam`` (the Grad-CAM computation for any registry backbone) and ``explain`` (the
report's ``gradcam.png`` grid and the ``explain`` command line).

May import: ``convert`` (the run's file names) and ``edge_runner`` (overlays, the CLI
conventions); nothing else of ``train``, so ``train.output`` can draw the grid without a cycle.
"""
