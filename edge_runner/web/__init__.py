"""The web page and JSON API, ``python -m edge_runner serve`` (Flask + waitress, imported lazily).

Owns: the server command (``server``), its options and shared state (``service``), the
Flask application (``app``), the access token (``access``) and its wrong-token throttle
(``throttle``), model uploads with hot swap and rollback (``models``), uploads and the archive
(``upload``, ``archive``), the live camera view (``live``, ``overlay``, ``stream``), the events page
(``gallery``), the review page and API (``review``) and the page's files (``static/``).

May import: :mod:`edge_runner.webapp` (its ``/app`` routes), :mod:`edge_runner.watcher`, :mod:`edge_runner.review`, :mod:`edge_runner.explain`, :mod:`edge_runner.core`
and :mod:`edge_runner.common`.
"""
