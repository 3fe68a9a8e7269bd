"""Why did the model say that: occlusion maps computed with the interpreter alone.

Owns: the occlusion measurement (``occlusion``), drawing maps (``heatmap``), the check that
a map is right (``deletion``) and explaining one photo for the command line and the web
page (``explanation``).

May import: :mod:`edge_runner.core` and :mod:`edge_runner.common`.
"""
