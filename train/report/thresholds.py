"""Recall of the real classes and false alarms on the background class, per threshold.

The table code lives in :mod:`convert.thresholds` (``python -m convert evaluate`` uses it
too, and convert never imports train); this module re-exports it unchanged.
"""

from convert.thresholds import (  # noqa: F401 - re-exported
    MIN_RECOMMENDED,
    THRESHOLDS,
    ThresholdRow,
    ThresholdTable,
    recommend,
    threshold_rows,
    threshold_table,
)
