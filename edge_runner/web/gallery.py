"""The web page's recent events and their snapshots (a Flask blueprint for ``serve --camera``).

Routes:
    ``GET /events``                      recent visits with their snapshots (a plain HTML page, no script)
    ``GET /api/events``                  ``{"present": label|null, "events": [event, …]}``, newest first;
                                         ``?limit=N`` (1–200, default 50)
    ``GET /api/events/snapshot/<name>``  a snapshot JPEG (a best frame or a visit's thumbnail strip)

A snapshot is served only when ``<name>`` is a name the watcher generated and
an event in memory refers to it: the client never supplies a path.
"""

from __future__ import annotations

from typing import Any

from ..watcher.recorder import RECENT_EVENTS
from ..watcher.visits import format_clock, format_duration

DEFAULT_LIMIT = 50

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="10">
<title>edgekit · events</title>
<link rel="icon" href="{{ url_for('static', filename='favicon.svg') }}">
<link rel="stylesheet" href="{{ url_for('static', filename='style.css') }}">
</head><body><main>
<h1>Recent events</h1>
<p><a href="/">← live view</a> · {% if present %}<strong>{{ present }}</strong> is here now{% else %}nobody here now{% endif %}
 · <a href="/api/events">JSON</a></p>
{% if not events %}<p class="muted">No events yet: a visit appears here when a label of interest stays in view.</p>{% endif %}
{% for e in events %}
<section class="panel">
<h2>{{ e.when }} · {{ e.label }} {{ e.event }}</h2>
<p class="muted">{{ e.detail }}</p>
{% if e.snapshot_url %}<img src="{{ e.snapshot_url }}" alt="best frame of {{ e.label }} visit {{ e.visit }}">{% endif %}
{% if e.strip_url %}<img src="{{ e.strip_url }}" alt="{{ e.label }} visit {{ e.visit }} from arrival to departure">{% endif %}
</section>
{% endfor %}
</main></body></html>
"""


def _with_url(event: dict, url_for: Any) -> dict:
    data = dict(event)
    for key in ("snapshot", "strip"):
        data[f"{key}_url"] = url_for("events.snapshot", name=event[key]) if event.get(key) else None
    return data


def create_blueprint(service: Any):
    """The blueprint for a :class:`~edge_runner.web.service.Service`; its ``recorder`` is ``None`` without ``--camera``."""
    from flask import Blueprint, abort, jsonify, render_template_string, request, send_file, url_for

    blueprint = Blueprint("events", __name__)

    def recorder():
        found = getattr(service, "recorder", None)
        if found is None:  # the server's HTTP error handler turns abort() into its {"error": ...} JSON
            abort(404, description="no events are recorded: they need --camera [SOURCE] and a model whose contract has a background label (or a threshold)")
        return found

    @blueprint.get("/api/events")
    def events():
        raw = request.args.get("limit", str(DEFAULT_LIMIT))
        if not raw.isdigit() or not 1 <= int(raw) <= RECENT_EVENTS:
            abort(400, description=f"limit must be an integer from 1 to {RECENT_EVENTS}, received {raw!r}")
        state = recorder().state()
        state["events"] = [_with_url(event, url_for) for event in state["events"][: int(raw)]]
        return jsonify(state)

    @blueprint.get("/api/events/snapshot/<name>")
    def snapshot(name: str):
        found = recorder()
        store = found.snapshots
        if store is None or not any(name in (event.get("snapshot"), event.get("strip")) for event in found.state()["events"]):
            abort(404, description="no such snapshot")
        path = store.path_for(name)  # None for anything but a generated name of an existing file
        if path is None:
            abort(404, description="no such snapshot (removed by the size or count limit)")
        return send_file(path, mimetype="image/jpeg", max_age=3600)

    @blueprint.get("/events")
    def page():
        state = recorder().state()
        shown = []
        for event in state["events"][:DEFAULT_LIMIT]:
            data = _with_url(event, url_for)
            at = event["end"] if event["event"] == "left" and event.get("end") is not None else event["start"]
            data["when"] = format_clock(at, event.get("clock", "unix"))
            data["detail"] = (
                f"{format_duration(event['duration_s'])}, {event['frames']} frames, "
                f"best {event['peak_score'] * 100:.0f}%, mean {event['mean_score'] * 100:.0f}%"
            )
            shown.append(data)
        return render_template_string(_PAGE, events=shown, present=state["present"])

    return blueprint
