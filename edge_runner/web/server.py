"""``python -m edge_runner serve``: a web page and a JSON API on the device, served by waitress.

Flask for the routes, served by waitress: both are pure Python (they install
on a Raspberry Pi from wheels, with nothing to compile), well kept (the Pallets
projects and the Pylons project) and small; waitress is a production,
multi-threaded WSGI server with no C dependency, unlike the development server
that ships with Flask.

The parts: :mod:`edge_runner.web.service` (the options and the loaded model, archive
and live view), :mod:`edge_runner.web.app` (the Flask application: the page,
``POST /api/classify``, ``GET /api/model``, ``GET /healthz``),
:mod:`edge_runner.web.upload` (reading uploads and their limits),
:mod:`edge_runner.web.stream` (the live view: ``/camera.mjpg``,
``/api/camera/frame.jpg``, ``/api/camera``), :mod:`edge_runner.web.gallery`
(``/events``, ``/api/events``) and :mod:`edge_runner.web.models` (``--deploy-dir``:
``POST /api/model``, ``POST /api/model/rollback``). This module runs them: the command line, the
waitress server, and a clean stop on Ctrl-C or SIGTERM.

Access: with a token (``--token-file FILE`` or ``$EDGEKIT_TOKEN``) every route
but ``/healthz`` needs it (see :mod:`edge_runner.web.access`); a non-loopback
``--host`` without one is refused unless ``--trusted-network`` is given.

Safety: binds 127.0.0.1 unless ``--host`` says otherwise; uploads over
``--max-upload-mb`` get 413, undecodable ones (and decompression bombs) 415,
always with a JSON ``{"error": ...}`` message; uploads are held in memory and
nothing is written except into ``--archive`` under generated names; each
request borrows its own interpreter from a :class:`~edge_runner.core.pool.ClassifierPool`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Sequence

from ..common.argtypes import port, positive_float, positive_int
from ..common.console import DEFAULT_CAMERA, EXIT_OK, SERVE_PROG, Parser, parse_args, report_error
from ..core.companion_flags import add_companion_arguments, looks_like_options
from ..core.loading import add_model_arguments, describe_classifier, resolve_model
from ..watcher.settings import add_watch_arguments, settings_from_args
from .access import TOKEN_ENV, is_loopback, load_token
from .app import create_app
from .service import ServerError, ServerOptions, Service, build_service, missing_web_library
from .upload import MULTIPART_ALLOWANCE, SERVER_BODY_FACTOR


# -- running it ---------------------------------------------------------------


def _waitress_settings(options: ServerOptions) -> dict:
    body_limit = (options.max_upload_bytes + MULTIPART_ALLOWANCE) * SERVER_BODY_FACTOR
    if options.deploy_dir is not None:  # model uploads (edge_runner.web.models) may be larger than photos
        body_limit = max(body_limit, int(options.max_model_mb * 1024 * 1024) + MULTIPART_ALLOWANCE * SERVER_BODY_FACTOR)
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
                try:
                    dispatcher.close()
                except OSError:  # a pipe or socket already closed under it: it is out of the map all the same
                    pass

        try:
            server.trigger.pull_trigger(close_everything)
        except OSError:
            # The loop's wake-up pipe was already closed (EBADF, seen once in a test's teardown): the loop cannot be
            # woken, so empty its map from here; it wakes every second by itself, finds nothing left and ends.
            close_everything()
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
        raise missing_web_library(exc) from None
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


def serve(options: ServerOptions, *, verbose: bool = False) -> None:
    """Load the model and serve until Ctrl-C or SIGTERM (blocking); ``verbose``: say what is used, as the runner does."""
    service = build_service(options)
    server = create_server(service)
    template = service.pool.template
    if verbose:
        describe_classifier(template)
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
    add_model_arguments(parser, threads_default=1)
    deploy = parser.add_argument_group("sending models to this device (python -m edge_runner deploy)")
    deploy.add_argument(
        "--deploy-dir", type=Path, metavar="DIR",
        help="keep deployed models in DIR and serve its current one (else --model); enables POST /api/model and "
        "POST /api/model/rollback, which switch models without a restart",
    )
    deploy.add_argument("--max-model-mb", type=positive_float, default=50.0, metavar="MB",
                        help="largest accepted model upload in MB (default: %(default)s)")
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
    add_companion_arguments(parser)  # --looks-like: name what a "nothing recognised" photo looks like
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
        runtime=args.runtime,
        interpreters=args.interpreters,
        top_k=args.top_k,
        max_upload_mb=args.max_upload_mb,
        camera_fps=args.camera_fps,
        token=load_token(args.token_file),
        trusted_network=args.trusted_network,
        watch=settings_from_args(args),
        deploy_dir=args.deploy_dir,
        max_model_mb=args.max_model_mb,
        **looks_like_options(args),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``serve``'s entry point: 0 after a clean stop, 1 when the server cannot listen, 2 usage or model error.

    Errors are one ``edge_runner serve: error: …`` line (see :mod:`edge_runner.common.console`).
    """
    parser = build_parser()
    args = parse_args(parser, argv)
    if isinstance(args, int):
        return args
    logging.basicConfig(level=logging.WARNING, format="edgekit: %(levelname)s: %(message)s")
    # waitress warns at every queued request under load; the pool already queues by design.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    try:
        serve(options_from_args(args), verbose=args.verbose)
    except Exception as exc:  # usage, access, watcher, archive, server and model errors carry their exit status
        return report_error(exc, SERVE_PROG, parser=parser)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
