"""``serve`` hosts the browser app at ``/app/`` (a Flask blueprint).

Routes:
    ``GET /app``              → ``/app/`` (the page's links are relative to the folder)
    ``GET /app/``             the app's page
    ``GET /app/model.json``   the served model's file name and input contract
    ``GET /app/<model file>`` the served ``.tflite``
    ``GET /app/<file>``       a file of the built app (``dist/``), nothing else: names are looked up in the
                              build's own file list, so no path reaches outside it

The server's access token covers these routes as every other (:func:`edge_runner.web.access.protect` runs before
every request). When the app is not built, each answers 503 with the one line saying to run ``make webapp``.
"""

from __future__ import annotations

from typing import Any

from . import MODEL_CONFIG, NOT_BUILT, WebappError, build_files, built_dir, model_config

# The app runs LiteRT.js's WebAssembly ('wasm-unsafe-eval'), shows the camera (mediastream:) and the picked
# photos (blob:), and registers its service worker; everything else stays as strict as the server's page.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob: mediastream:; style-src 'self'; connect-src 'self'; manifest-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
MIME_TYPES = {
    ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
    ".json": "application/json", ".webmanifest": "application/manifest+json", ".wasm": "application/wasm",
    ".svg": "image/svg+xml", ".png": "image/png",
}


def create_blueprint(service: Any):
    """The ``/app`` blueprint for a :class:`~edge_runner.web.service.Service` (its model is the one the app loads)."""
    from flask import Blueprint, abort, jsonify, redirect, send_file, send_from_directory

    blueprint = Blueprint("webapp", __name__)

    def app_folder():
        try:
            return built_dir()
        except WebappError:
            abort(503, description=NOT_BUILT)

    def secured(response):
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response

    @blueprint.get("/app")
    def folder():
        return redirect("/app/", code=308)

    @blueprint.get("/app/")
    def page():
        return secured(send_from_directory(app_folder(), "index.html", mimetype="text/html"))

    @blueprint.get("/app/<path:name>")
    def file(name: str):
        directory = app_folder()
        template = service.pool.template  # the served model: read per request, the routes load nothing
        if name == MODEL_CONFIG:
            return secured(jsonify(model_config(template.path.name, template.spec)))
        if name == template.path.name:
            return secured(send_file(template.path, mimetype="application/octet-stream", conditional=True))
        if name not in build_files(directory):
            abort(404, description=f"no such file in the browser app: {name}")
        suffix = name[name.rfind("."):] if "." in name else ""
        return secured(send_from_directory(directory, name, mimetype=MIME_TYPES.get(suffix, "application/octet-stream")))

    return blueprint
