"""What a run measured, written down: metrics, per-source figures, thresholds, plots, ``report.json``/``report.md``.

Owns ``evaluate`` (scikit-learn metrics of the saved model's probabilities), ``thresholds``
(recall and false alarms per threshold, re-exported from ``convert.thresholds``),
``breakdown`` (figures per source and what background photos are mistaken for), ``plots``
(the PNG plots, the Grad-CAM grid among them) and ``run_report`` (``report.json`` and ``report.md``).

May import: ``train.data`` (the split and its samples), ``train.explanations`` (the grid),
``train.config``, ``convert`` and ``edge_runner``; not ``train.model`` or ``train.fitting``
(it reads their results, passed in).
"""
