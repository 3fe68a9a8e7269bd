"""The Flask application of ``serve``: the page, the classification API, and the rules every route shares.

Routes here:
    ``GET /``                    the page (``static/index.html``, ``app.js``, ``style.css``; works offline)
    ``POST /api/classify``       a photo (multipart field ``file``, or the raw bytes as the body) →
                                 ``Prediction.to_dict(source)``, the runner's ``--json`` object;
                                 ``?top_k=K``, ``?explain=1`` (the occlusion map, :mod:`edge_runner.explain.explanation`);
                                 with ``--looks-like``, ``"looks_like"`` (:mod:`edge_runner.core.companion`)
    ``GET /api/model``           name, sha256, labels, input contract, runtime, variant, size, limits, deployed
    ``GET /healthz``             ``{"status": "ok", ...}``

and from blueprints: the live view (:mod:`edge_runner.web.stream`), the watcher's
events (:mod:`edge_runner.web.gallery`), model uploads (:mod:`edge_runner.web.models`) and the review queue
(:mod:`edge_runner.web.review`). Shared by all: the access token
(:func:`edge_runner.web.access.protect`), security headers, and errors as
``{"error": message, "status": status}`` JSON (a bug costs one request, a 500).
"""

from __future__ import annotations

import logging
import time

from .access import protect
from .throttle import Throttle
from .archive import ArchiveError
from ..core.assets import static_dir
from ..explain.explanation import explain_requested, explain_upload
from ..core.image import ImageError, preprocess
from .service import Service, missing_web_library
from .upload import MULTIPART_ALLOWANCE, UploadError, in_memory_request_class, parse_top_k, read_upload, too_large_message

logger = logging.getLogger(__name__)

STATIC_DIR = static_dir()
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def create_app(service: Service):
    """The Flask application for ``service`` (a WSGI callable; waitress serves it).

    Raises:
        ServerError: Flask is not installed.
    """
    try:
        from flask import Flask, jsonify, request, send_from_directory
        from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
    except ImportError as exc:
        raise missing_web_library(exc) from None

    from .gallery import create_blueprint as events_blueprint
    from .models import create_blueprint as models_blueprint
    from .review import create_blueprint as review_blueprint
    from .stream import create_blueprint as stream_blueprint
    from ..webapp.routes import create_blueprint as webapp_blueprint

    limit = service.options.max_upload_bytes
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.request_class = in_memory_request_class(Flask.request_class)
    app.config["MAX_CONTENT_LENGTH"] = limit + MULTIPART_ALLOWANCE
    app.json.sort_keys = False
    app.extensions["edgekit"] = service
    if service.options.token is not None:
        protect(app, service.options.token, Throttle(service.options.max_wrong_tokens))  # first: every route, and any blueprint added later, is behind it
    app.register_blueprint(stream_blueprint(service))  # /api/camera, /api/camera/frame.jpg, /camera.mjpg
    app.register_blueprint(events_blueprint(service))  # /events, /api/events, snapshots
    app.register_blueprint(webapp_blueprint(service))  # /app/: the model in the browser (edge_runner.webapp)
    app.register_blueprint(models_blueprint(service))  # POST /api/model, /api/model/rollback (edge_runner.web.models)
    app.register_blueprint(review_blueprint(service))  # /review, /api/review…: the review queue (edge_runner.review)

    def error(status: int, message: str):
        response = jsonify({"error": message, "status": status})
        response.status_code = status
        return response

    @app.after_request
    def harden(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if request.path.startswith("/api/") or request.path == "/healthz":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(UploadError)
    def upload_error(exc: UploadError):
        return error(exc.status, exc.message)

    @app.errorhandler(RequestEntityTooLarge)
    def entity_too_large(exc):
        return error(413, too_large_message(request.content_length, limit))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        # A bug must cost one request, never the server: log it, answer 500.
        logger.exception("unexpected error on %s %s", request.method, request.path)
        return error(500, f"internal error ({type(exc).__name__}); see the server log")

    @app.get("/")
    def index():
        return send_from_directory(STATIC_DIR, "index.html")

    @app.get("/healthz")
    def healthz():
        body = {
            "status": "ok",
            "model": service.spec.name,
            "uptime_s": round(time.time() - service.started_at, 1),
            "interpreters_idle": service.pool.idle,
        }
        if service.live is not None:
            state = service.live.status()
            body["camera"] = {"running": state["running"], "error": state["error"]}
        return jsonify(body)

    @app.get("/api/model")
    def model_info():
        return jsonify(service.describe_model())

    @app.post("/api/classify")
    def classify():
        top_k = parse_top_k(request.args.get("top_k"), service.options.top_k, len(service.spec.labels))
        try:  # ?explain=1: add the occlusion map (see edge_runner.explain.explanation)
            explain = explain_requested(request.args.get("explain"))
        except ValueError as exc:
            raise UploadError(400, str(exc)) from None
        data, name = read_upload(request, limit)
        spec = service.spec
        try:
            pixels = preprocess(data, spec, name=name)
        except ImageError as exc:
            raise UploadError(415, str(exc)) from None
        with service.pool.acquire() as classifier:
            if classifier.spec is not spec:  # a new model was switched in meanwhile (edge_runner.web.models)
                pixels = preprocess(data, classifier.spec, name=name)
            prediction = classifier.classify(pixels.array, top_k=min(top_k, len(classifier.labels)))
            spec = classifier.spec
        result = prediction.to_dict(name)
        if service.companion is not None:  # "looks_like": what a photo that is not a detection looks like, else null
            opinion = service.companion.review(prediction, data, pixels=pixels.array, spec=spec)
            result = opinion.annotate(opinion.prediction.to_dict(name), service.companion)
        response = jsonify({**result, "explanation": explain_upload(service.pool.template, data, name)} if explain else result)
        if service.archive is not None:
            try:
                kept = service.archive.keep(data, client_name=name, prediction=result)
                response.headers["X-Archived-As"] = kept.name
            except ArchiveError as exc:
                # The answer is still right; losing the copy is logged, not fatal.
                logger.warning("%s", exc)
                response.headers["X-Archive-Error"] = "the upload could not be archived (see the server log)"
        return response

    return app
