"""edgekit's shipped models, installed as the data package ``edgekit_models``.

The wheel maps this directory to ``edgekit_models`` (see ``pyproject.toml``); the runner finds
the files with ``edge_runner.core.assets.models_dir()``. Nothing here is meant to be imported otherwise.
"""
