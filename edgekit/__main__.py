"""``python -m edgekit``: the main job (see :mod:`edgekit.pipeline`)."""

import sys

from .pipeline import main

sys.exit(main())
