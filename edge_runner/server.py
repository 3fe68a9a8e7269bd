"""``python -m edge_runner serve``: a web page and a JSON API on the device.

Flask for the routes, served by waitress: both are pure Python (they install
on a Raspberry Pi from wheels, with nothing to compile), well kept (the Pallets
projects and the Pylons project) and small; waitress is a production,
multi-threaded WSGI server with no C dependency, unlike the development server
that ships with Flask.

Routes:
    ``GET /``                    the page (``static/index.html``, ``app.js``, ``style.css``; works offline)
    ``POST /api/classify``       a photo (multipart field ``file``, or the raw bytes as the body) →
                                 ``Prediction.to_dict(source)``, the runner's ``--json`` object
    ``GET /api/model``           name, labels, input contract, runtime, variant, size, limits
    ``GET /healthz``             ``{"status": "ok", ...}``
    ``GET /camera.mjpg``         with ``--camera``: the annotated live view as an MJPEG stream
    ``GET /api/camera/frame.jpg`` the latest annotated frame
    ``GET /api/camera``          the live label, score, fps and any camera error
    ``GET /events``, ``GET /api/events``  with ``--camera``: the watcher's recent events and snapshots (edge_runner.gallery)

Access: with a token (``--token-file FILE`` or ``$EDGEKIT_TOKEN``) every route
but ``/healthz`` needs it (see :mod:`edge_runner.access`); a non-loopback
``--host`` without one is refused unless ``--trusted-network`` is given.

Safety: binds 127.0.0.1 unless ``--host`` says otherwise; uploads over
``--max-upload-mb`` get 413, undecodable ones (and decompression bombs) 415,
always with a JSON ``{"error": ...}`` message; uploads are held in memory and
nothing is written except into ``--archive`` under generated names; each
request borrows its own interpreter from a :class:`~edge_runner.pool.ClassifierPool`.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence
from urllib.parse import unquote

from .access import TOKEN_ENV, AccessError, Token, check_exposure, is_loopback, load_token, protect
from .archive import Archive, ArchiveError
from .argtypes import port, positive_float, positive_int
from .assets import static_dir
from .console import (
    DEFAULT_CAMERA, EXIT_FAILED, EXIT_OK, EXIT_USAGE, SERVE_PROG, Parser, UsageError, parse_args, print_error,
)
from .explanation import explain_requested, explain_upload
from .image import ImageError, preprocess
from .loading import MODEL_ENV, SHIPPED_MODEL_NAME, report_model_error, resolve_model
from .model import Classifier, ModelError
from .pool import ClassifierPool
from .runtime import RuntimeUnavailable
from .settings import WatchError, WatchSettings, add_watch_arguments, build_recorder, settings_from_args
from .spec import ContractError

if TYPE_CHECKING:
    from .live import LiveView
    from .recorder import Recorder

logger = logging.getLogger(__name__)

STATIC_DIR = static_dir()
# Room for the multipart framing around a file of exactly --max-upload-mb.
MULTIPART_ALLOWANCE = 64 * 1024
# Bodies up to this multiple of the limit are read and answered with a JSON 413;
# beyond it waitress refuses them itself, before the application sees them.
SERVER_BODY_FACTOR = 4
MAX_NAME_CHARS = 200
INSTALL_HINT = "pip install .[serve]  (or: pip install flask waitress)"


class ServerError(RuntimeError):
    """The server cannot start: a missing web library, a port in use, a bad option."""


# -- options -----------------------------------------------------------------


@dataclass(frozen=True)
class ServerOptions:
    """Everything ``serve`` is told.

    Attributes:
        model: the ``.tflite`` to serve.
        camera: ``None`` for no live view, ``"0"`` (what a bare ``--camera`` gives) or ``""`` for
            the default camera, else a device index, video file or stream URL (see :func:`edge_runner.camera.open_camera`).
        archive: folder that keeps uploads, or ``None`` (the default: keep nothing).
        threads: interpreter threads per interpreter (``None``: the runtime's default).
        interpreters: how many interpreters answer uploads in parallel.
        max_upload_mb: the largest accepted photo, in MiB.
        token: the access token every route but ``/healthz`` requires, or ``None`` (hidden from ``repr``).
        trusted_network: serve beyond loopback without a token (an explicit choice).
    """

    model: Path
    host: str = "127.0.0.1"
    port: int = 8000
    camera: str | None = None
    archive: Path | None = None
    threads: int | None = 1
    interpreters: int = 2
    top_k: int = 3
    max_upload_mb: float = 10.0
    camera_fps: float = 15.0
    max_viewers: int = 4
    token: Token | None = None
    trusted_network: bool = False
    watch: WatchSettings | None = None  # the watcher's settings with --camera (edge_runner.settings)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


# -- the service behind the routes --------------------------------------------


@dataclass
class Service:
    """The state the routes share: the interpreter pool, the archive and the live view."""

    options: ServerOptions
    pool: ClassifierPool
    archive: Archive | None = None
    live: LiveView | None = None  # only with --camera
    recorder: Recorder | None = None  # the watcher's events, only with --camera
    started_at: float = field(default_factory=time.time)

    @property
    def spec(self):
        return self.pool.template.spec

    def describe_model(self) -> dict:
        """The ``GET /api/model`` object."""
        template: Classifier = self.pool.template
        return {
            "name": template.spec.name,
            "file": template.path.name,
            "labels": list(template.labels),
            "contract": template.spec.to_dict(),
            # Shortcuts for clients: the label meaning "nothing here" (or null) and the
            # threshold below which answers are "unknown" (the contract's recommendation, or null).
            "background_label": template.spec.background_label,
            "threshold": template.spec.threshold,
            "runtime": {"name": template.runtime.name, "version": template.runtime.version},
            "variant": template.variant,
            "input": {
                "dtype": template.input_dtype.name,
                "scale": template.input_scale,
                "zero_point": template.input_zero_point,
            },
            "size_bytes": template.size_bytes,
            "interpreters": self.pool.size,
            "threads_per_interpreter": self.pool.num_threads,
            "top_k": self.options.top_k,
            "max_upload_bytes": self.options.max_upload_bytes,
            "camera": self.live is not None,
            "archive": self.archive is not None,
        }

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
        if self.recorder is not None:
            self.recorder.finish()  # an open visit gets its `left`
            self.recorder.close()


def build_service(options: ServerOptions) -> Service:
    """Load the model (``options.interpreters`` times), open the archive and prepare the live view.

    Raises:
        ModelError, ContractError, RuntimeUnavailable: the model cannot be served.
        ArchiveError: ``--archive`` cannot be created or written.
        ServerError: a bad option.
        AccessError: a non-loopback host without a token (and without ``trusted_network``).
    """
    check_exposure(options.host, options.token, options.trusted_network)
    if options.top_k < 1:
        raise ServerError(f"--top-k must be 1 or more, received {options.top_k}")
    if options.max_upload_mb <= 0:
        raise ServerError(f"--max-upload-mb must be > 0, received {options.max_upload_mb}")
    if options.interpreters < 1:
        raise ServerError(f"--interpreters must be 1 or more, received {options.interpreters}")
    if options.threads is not None and options.threads < 1:
        raise ServerError(f"--threads must be 1 or more, received {options.threads}")
    archive = Archive(options.archive) if options.archive is not None else None
    pool = ClassifierPool(options.model, size=options.interpreters, num_threads=options.threads)
    live = recorder = None
    if options.camera is not None:
        from .camera import open_camera
        from .live import LiveView

        source = options.camera or None
        live = LiveView(
            lambda: open_camera(source),
            Classifier(options.model, num_threads=options.threads, runtime=pool.template.runtime, spec=pool.template.spec),
            top_k=options.top_k,
            max_fps=options.camera_fps,
            source_name="camera" if source is None else (f"camera {source}" if str(source).isdigit() else str(source)),
        )
        recorder = _watch_camera(live, options.watch or WatchSettings())
    return Service(options, pool, archive, live, recorder)


def _watch_camera(live: LiveView, settings: WatchSettings) -> Recorder | None:
    """Run the watcher's tracker on the live view's frames (events printed as readable lines).

    ``None`` for a model that cannot say "nothing here" (no background label, no threshold).
    """
    spec = live.classifier.spec
    if spec.background_label is None and spec.threshold is None:
        logger.warning("no events: %s has no background label or threshold in its contract", spec.name)
        return None
    recorder = build_recorder(settings, live.classifier.spec, source_name=live.source_name, out=sys.stdout)
    live.on_frame = lambda t, frame, prediction: recorder.observe(t, prediction.label, prediction.score, frame)
    return recorder


# -- the Flask application ----------------------------------------------------


class UploadError(Exception):
    """A request the API refuses; becomes ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def display_name(raw: str | None, *, percent_encoded: bool = False) -> str:
    """The client's file name, cut to its last path component and printable characters, for display only.

    ``percent_encoded``: the name came in a header (``X-Filename``), where names
    outside Latin-1 have to be percent-encoded.
    """
    if not raw:
        return "upload"
    name = (unquote(raw) if percent_encoded else raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()[:MAX_NAME_CHARS]
    return name or "upload"


def format_size(n: int | float) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{int(n)} bytes"


def create_app(service: Service):
    """The Flask application for ``service`` (a WSGI callable; waitress serves it)."""
    try:
        from flask import Flask, Response, jsonify, request, send_from_directory
        from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
    except ImportError as exc:
        raise ServerError(f"the web server needs Flask and waitress ({exc}); install them with: {INSTALL_HINT}") from None

    limit = service.options.max_upload_bytes

    class InMemoryRequest(Flask.request_class):  # type: ignore[misc, valid-type]
        """Keeps multipart file parts in memory (they are bounded by the upload limit), so no temp file is ever written."""

        def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
            return io.BytesIO()

    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.request_class = InMemoryRequest
    app.config["MAX_CONTENT_LENGTH"] = limit + MULTIPART_ALLOWANCE
    app.json.sort_keys = False
    app.extensions["edgekit"] = service
    if service.options.token is not None:
        protect(app, service.options.token)  # first: every route, and any blueprint added later, is behind it
    viewers = threading.BoundedSemaphore(service.options.max_viewers)
    from .gallery import create_blueprint

    app.register_blueprint(create_blueprint(service))  # /events, /api/events, snapshots

    def error(status: int, message: str):
        response = jsonify({"error": message, "status": status})
        response.status_code = status
        return response

    def too_large_message(size: int | None) -> str:
        got = f"the upload is {format_size(size)}" if size else "the upload is too large"
        return f"{got}; the limit is {format_size(limit)} (server option --max-upload-mb)"

    @app.after_request
    def harden(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        )
        if request.path.startswith("/api/") or request.path == "/healthz":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(UploadError)
    def upload_error(exc: UploadError):
        return error(exc.status, exc.message)

    @app.errorhandler(RequestEntityTooLarge)
    def entity_too_large(exc):
        return error(413, too_large_message(request.content_length))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        # A bug must cost one request, never the server: log it, answer 500.
        logger.exception("unexpected error on %s %s", request.method, request.path)
        return error(500, f"internal error ({type(exc).__name__}); see the server log")

    def read_upload() -> tuple[bytes, str]:
        if request.mimetype == "multipart/form-data":
            storage = request.files.get("file")
            if storage is None:  # a client that named the field otherwise: take its first file
                storage = next(iter(request.files.values()), None)
            if storage is None:
                raise UploadError(400, "no file in the form: send the photo in a multipart field named 'file'")
            data = storage.read(limit + 1)
            name = display_name(storage.filename)
        else:
            data = request.get_data(cache=False)
            name = display_name(request.headers.get("X-Filename") or request.args.get("filename"), percent_encoded=True)
        if len(data) > limit:
            raise UploadError(413, f"{name}: {too_large_message(len(data))}")
        if not data:
            raise UploadError(
                400, f"{name}: empty upload (0 bytes); send a photo as the multipart field 'file' or as the request body"
            )
        return data, name

    def parse_top_k() -> int:
        raw = request.args.get("top_k")
        if raw is None:
            return service.options.top_k
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if not 1 <= value <= len(service.spec.labels):
            raise UploadError(
                400, f"top_k must be an integer from 1 to {len(service.spec.labels)}, received {raw!r}"
            )
        return value

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
        top_k = parse_top_k()
        try:  # ?explain=1: add the occlusion map (see edge_runner.explanation)
            explain = explain_requested(request.args.get("explain"))
        except ValueError as exc:
            raise UploadError(400, str(exc)) from None
        data, name = read_upload()
        try:
            pixels = preprocess(data, service.spec, name=name)
        except ImageError as exc:
            raise UploadError(415, str(exc)) from None
        with service.pool.acquire() as classifier:
            prediction = classifier.classify(pixels.array, top_k=top_k)
        result = prediction.to_dict(name)
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

    def live_view():
        if service.live is None:
            raise UploadError(404, "the camera is off: start the server with --camera [SOURCE]")
        return service.live

    @app.get("/api/camera")
    def camera_state():
        live = live_view()
        live.touch()
        return jsonify(live.status())

    @app.get("/api/camera/frame.jpg")
    def camera_frame():
        frame = live_view().wait_frame(0, timeout=10.0)
        if frame is None:
            raise UploadError(503, "no camera frame yet; try again in a moment")
        return Response(frame.jpeg, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/camera.mjpg")
    def camera_stream():
        live = live_view()
        if not viewers.acquire(blocking=False):
            raise UploadError(
                503, f"too many live viewers (at most {service.options.max_viewers}); close another tab or use /api/camera/frame.jpg"
            )
        released = threading.Event()

        def release() -> None:
            if not released.is_set():
                released.set()
                viewers.release()

        def frames():
            seq = 0
            while not live.stopped and not released.is_set():
                frame = live.wait_frame(seq, timeout=2.0)
                if frame is None:
                    continue
                seq = frame.seq
                head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}\r\nX-Frame: {frame.seq}\r\n\r\n"
                yield head.encode("ascii") + frame.jpeg + b"\r\n"

        response = Response(frames(), mimetype="multipart/x-mixed-replace; boundary=frame")
        response.headers["Cache-Control"] = "no-store"
        # Called when the client goes away or the stream ends, even if no frame was sent.
        response.call_on_close(release)
        return response

    return app


# -- running it ---------------------------------------------------------------


def _waitress_settings(options: ServerOptions) -> dict:
    body_limit = (options.max_upload_bytes + MULTIPART_ALLOWANCE) * SERVER_BODY_FACTOR
    return {
        # Upload threads wait for an interpreter; two more keep the page and
        # /healthz answering under load; each live viewer holds one for its stream.
        "threads": options.interpreters + 2 + (options.max_viewers if options.camera is not None else 0),
        "max_request_body_size": body_limit,
        # Request bodies stay in memory (no spooling to temp files) ...
        "inbuf_overflow": body_limit + 1,
        # ... and so do responses (JSON and JPEG frames are small).
        "outbuf_overflow": 16 * 1024 * 1024,
        "connection_limit": 64,
        "channel_timeout": 60,
        "ident": "edgekit",
    }


class RunningServer:
    """A server answering in a background thread (tests, benchmarks); ``stop()`` ends it."""

    def __init__(self, service: Service, server, thread: threading.Thread) -> None:
        self.service = service
        self._server = server
        self._thread = thread
        self.host = service.options.host
        self.port = int(server.effective_port)
        self._stopped = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop answering, close every connection and join the threads (a second call does nothing)."""
        if self._stopped:
            return
        self._stopped = True
        self.service.close()  # ends live streams first, so their threads return
        server = self._server

        def close_everything() -> None:  # runs on waitress's loop thread: the map is not touched elsewhere
            for dispatcher in list(server._map.values()):
                dispatcher.close()

        server.trigger.pull_trigger(close_everything)
        self._thread.join(timeout)
        server.task_dispatcher.shutdown(timeout=timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def create_server(service: Service):
    """A waitress server for ``service``, bound and listening but not yet running.

    Raises ``ServerError`` when the address cannot be bound (port in use, unknown host).
    """
    try:
        from waitress.server import create_server as waitress_create_server
    except ImportError as exc:
        raise ServerError(f"the web server needs Flask and waitress ({exc}); install them with: {INSTALL_HINT}") from None
    app = create_app(service)
    options = service.options
    try:
        return waitress_create_server(app, host=options.host, port=options.port, **_waitress_settings(options))
    except OSError as exc:
        raise ServerError(f"cannot listen on {options.host}:{options.port} ({exc.strerror or exc})") from None


def start_server(service: Service) -> RunningServer:
    """Serve ``service`` from a background thread (``options.port`` 0 picks a free port); returns at once."""
    server = create_server(service)
    if service.live is not None:
        service.live.start()
    thread = threading.Thread(target=server.run, name="edgekit-waitress", daemon=True)
    thread.start()
    return RunningServer(service, server, thread)


def lan_address() -> str | None:
    """This device's address on the local network (no packet is sent), or ``None``."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # UDP connect only picks the outgoing interface
        return probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()


def serve(options: ServerOptions) -> None:
    """Load the model and serve until Ctrl-C or SIGTERM (blocking)."""
    service = build_service(options)
    server = create_server(service)
    template = service.pool.template
    port = int(server.effective_port)
    print(
        f"edgekit: serving {template.spec.name} ({template.variant}, {template.runtime.name} {template.runtime.version}, "
        f"{options.interpreters} interpreter(s) x {options.threads or 'default'} thread(s))",
        flush=True,
    )
    if options.token is not None:
        print(f"edgekit: access token required (from {options.token.origin}); /healthz stays open", flush=True)
    elif not is_loopback(options.host):
        print(
            "edgekit: warning: no access token (--trusted-network): anyone who can reach this port sees the camera and the API",
            flush=True,
        )
    if options.host in ("0.0.0.0", "::", ""):
        address = lan_address()
        where = f"http://{address}:{port}/" if address else f"port {port} of this device's address"
        print(f"edgekit: open {where} from a phone or computer on the same network", flush=True)
    else:
        host = f"[{options.host}]" if ":" in options.host else options.host
        print(f"edgekit: open http://{host}:{port}/ (only this device; --host 0.0.0.0 opens it to the network)", flush=True)
    if service.live is not None:
        service.live.start()

    def on_signal(signum, frame):
        # Ctrl-C, or SIGTERM from systemd: end the live streams first, so waitress's
        # threads are free when it shuts them down, then stop as waitress does on Ctrl-C.
        if service.live is not None:
            service.live.request_stop()
        raise KeyboardInterrupt

    handled = (signal.SIGINT, signal.SIGTERM) if threading.current_thread() is threading.main_thread() else ()
    previous = {signum: signal.signal(signum, on_signal) for signum in handled}
    try:
        server.run()  # returns after the signal, once waitress has shut its threads down
    finally:
        service.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("edgekit: stopped", flush=True)


# -- command line ---------------------------------------------------------------


def build_parser(prog: str = "python -m edge_runner serve") -> argparse.ArgumentParser:
    parser = Parser(
        prog=prog,
        error_prog=SERVE_PROG,
        description="Serve a web page and a JSON API that classify uploaded photos (and, with --camera, a live view).",
        epilog="The page binds to 127.0.0.1 (this device only) unless --host says otherwise: "
        "--host 0.0.0.0 opens it to the local network, and then needs --token-file FILE "
        f"(or ${TOKEN_ENV}) unless --trusted-network is given.",
    )
    parser.add_argument(
        "--model",
        help=f"the .tflite model (default: ${MODEL_ENV}, else the shipped {SHIPPED_MODEL_NAME})",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s; 0.0.0.0 = every network)")
    parser.add_argument("--port", type=port, default=8000, help="port (default: %(default)s; 0 = any free port)")
    parser.add_argument(
        "--camera",
        nargs="?",
        const=DEFAULT_CAMERA,
        default=None,
        metavar="SOURCE",
        help="add a live view: no value or 0 = the default camera, 1 = the second, or a video file / stream URL",
    )
    parser.add_argument("--archive", type=Path, metavar="DIR", help="keep every uploaded photo in DIR under a generated name (default: keep nothing)")
    parser.add_argument("--threads", type=positive_int, default=1, metavar="N", help="interpreter threads per interpreter (default: %(default)s)")
    parser.add_argument(
        "--interpreters",
        type=positive_int,
        default=min(2, os.cpu_count() or 1),
        metavar="N",
        help="interpreters answering uploads in parallel (default: %(default)s, up to 2 by CPU count)",
    )
    parser.add_argument("--top-k", type=positive_int, default=3, metavar="K", help="labels returned per photo (default: %(default)s)")
    parser.add_argument("--max-upload-mb", type=positive_float, default=10.0, metavar="MB", help="largest accepted photo in MB (default: %(default)s)")
    parser.add_argument("--camera-fps", type=positive_float, default=15.0, metavar="FPS", help="most live-view frames per second (default: %(default)s)")
    access = parser.add_argument_group("access")
    access.add_argument(
        "--token-file", type=Path, metavar="FILE",
        help=f"require the token in FILE (first line) on every route but /healthz; default: ${TOKEN_ENV} if set, else no token. "
        "Browsers are asked once and get a cookie; API clients send 'Authorization: Bearer TOKEN'",
    )
    access.add_argument(
        "--trusted-network", action="store_true",
        help="allow a non-loopback --host without a token (everyone who can reach the port sees the camera)",
    )
    add_watch_arguments(parser)  # the watcher's smoothing, snapshots and actions, used with --camera
    return parser


def options_from_args(args: argparse.Namespace) -> ServerOptions:
    return ServerOptions(
        model=resolve_model(args.model),
        host=args.host,
        port=args.port,
        camera=args.camera,
        archive=args.archive,
        threads=args.threads,
        interpreters=args.interpreters,
        top_k=args.top_k,
        max_upload_mb=args.max_upload_mb,
        camera_fps=args.camera_fps,
        token=load_token(args.token_file),
        trusted_network=args.trusted_network,
        watch=settings_from_args(args),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``serve``'s entry point: 0 after a clean stop, 1 when the server cannot listen, 2 usage or model error.

    Errors are one ``edge_runner serve: error: …`` line (see :mod:`edge_runner.console`).
    """
    parser = build_parser()
    args = parse_args(parser, argv)
    if isinstance(args, int):
        return args
    logging.basicConfig(level=logging.WARNING, format="edgekit: %(levelname)s: %(message)s")
    # waitress warns at every queued request under load; the pool already queues by design.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    try:
        serve(options_from_args(args))
    except UsageError as exc:  # no --model and no default one
        parser.print_usage(sys.stderr)
        print_error(SERVE_PROG, str(exc))
        return EXIT_USAGE
    except (AccessError, WatchError, ArchiveError) as exc:  # a bad token or open server, watcher settings, --archive DIR
        print_error(SERVE_PROG, str(exc))
        return EXIT_USAGE
    except ServerError as exc:  # cannot listen (port taken, unknown host), or Flask/waitress missing
        print_error(SERVE_PROG, str(exc))
        return EXIT_FAILED
    except (ModelError, ContractError, RuntimeUnavailable) as exc:  # a missing or invalid model: 2, as everywhere
        return report_model_error(exc, SERVE_PROG)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
