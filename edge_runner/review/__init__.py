"""Teach it your door: the review queue on the device, its collector, labelling and the export ``train`` reads.

Owns: the queue's record format and its atomic writes (``record``), the bounded folder of records
(``queue``: disk cap by bytes and count, oldest first; torn records skipped with one warning), the
policy deciding which frames go in (``collector``: each visit's best frame and strip, frames close to
the threshold, a few quiet frames an hour), its options (``options``: ``--review-dir`` …), the export
as a folder or a zip (``export``) and the ``python -m edge_runner review`` command (``cli``).

May import: :mod:`edge_runner.core` and :mod:`edge_runner.common`. The watcher (its recorder feeds
the collector) and the web page (``/review``) import this package, never the other way round.
"""
