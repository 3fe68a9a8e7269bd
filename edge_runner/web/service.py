"""What ``serve`` serves: its options and the state its routes share (the interpreter pool, the archive, the live view).

:func:`build_service` checks the options and loads everything once, before the
server listens; the Flask application (:mod:`edge_runner.web.app`) and the waitress
server (:mod:`edge_runner.web.server`) only read the :class:`Service`.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..common.console import EXIT_FAILED
from .access import Token, check_exposure
from .archive import Archive
from ..core.model import Classifier
from ..core.pool import ClassifierPool
from ..core.runtime import load_runtime
from ..watcher.settings import WatchSettings, build_recorder, why_no_events

if TYPE_CHECKING:
    from ..core.companion import Companion
    from .live import LiveView
    from .models import ModelSwitcher
    from ..watcher.recorder import Recorder

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install .[serve]  (or: pip install flask waitress)"


class ServerError(RuntimeError):
    """The server cannot start: a missing web library, a port in use, a bad option."""

    exit_status = EXIT_FAILED  # cannot listen, or Flask/waitress missing


def missing_web_library(exc: ImportError) -> ServerError:
    """The one-line error for a device without Flask or waitress (the ``serve`` extra)."""
    return ServerError(f"the web server needs Flask and waitress ({exc}); install them with: {INSTALL_HINT}")


@dataclass(frozen=True)
class ServerOptions:
    """Everything ``serve`` is told.

    Attributes:
        model: the ``.tflite`` to serve.
        camera: ``None`` for no live view, ``"0"`` (what a bare ``--camera`` gives) or ``""`` for
            the default camera, else a device index, video file or stream URL (see :func:`edge_runner.watcher.camera.open_camera`).
        archive: folder that keeps uploads, or ``None`` (the default: keep nothing).
        threads: interpreter threads per interpreter (``None``: the runtime's default).
        runtime: the TFLite runtime to use by name (``--runtime``), ``None``: the first importable.
        interpreters: how many interpreters answer uploads in parallel.
        max_upload_mb: the largest accepted photo, in MiB.
        token: the access token every route but ``/healthz`` requires, or ``None`` (hidden from ``repr``).
        trusted_network: serve beyond loopback without a token (an explicit choice).
        deploy_dir: the deployed-model folder (:mod:`edge_runner.core.slot`): its current model is served
            instead of ``model`` when there is one, and ``POST /api/model`` switches models; ``None``: no uploads.
        max_model_mb: the largest model upload, in MiB.
        max_wrong_tokens: wrong tokens from one address within a minute before it is locked out (:mod:`.throttle`).
        looks_like, looks_like_labels, looks_like_floor: the companion classifier that names what a "nothing
            recognised" photo looks like (``--looks-like``, :mod:`edge_runner.core.companion`), its labels and floor;
            looks_like_veto, looks_like_veto_classes, looks_like_veto_only_for: its veto on uploads;
            looks_like_rescue, looks_like_rescue_as: its rescue on uploads (the live view names, never vetoes or
                rescues).
    """

    model: Path
    host: str = "127.0.0.1"
    port: int = 8000
    camera: str | None = None
    archive: Path | None = None
    threads: int | None = 1
    runtime: str | None = None
    interpreters: int = 2
    top_k: int = 3
    max_upload_mb: float = 10.0
    camera_fps: float = 15.0
    max_viewers: int = 4
    token: Token | None = None
    trusted_network: bool = False
    watch: WatchSettings | None = None  # the watcher's settings with --camera (edge_runner.watcher.settings)
    deploy_dir: Path | None = None
    max_model_mb: float = 50.0
    max_wrong_tokens: int = 5
    looks_like: Path | None = None
    looks_like_labels: Path | None = None
    looks_like_floor: float | None = None
    looks_like_veto: float | None = None
    looks_like_veto_classes: tuple[int, ...] | None = None
    looks_like_veto_only_for: tuple[int, ...] | None = None
    looks_like_rescue: float | None = None
    looks_like_rescue_as: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


@dataclass
class Service:
    """The state the routes share: the interpreter pool, the archive and the live view."""

    options: ServerOptions
    pool: ClassifierPool
    archive: Archive | None = None
    live: LiveView | None = None  # only with --camera
    recorder: Recorder | None = None  # the watcher's events, only with --camera
    models: ModelSwitcher | None = None  # uploads and rollback, only with --deploy-dir (edge_runner.web.models)
    companion: Companion | None = None  # --looks-like (edge_runner.core.companion)
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
            "sha256": template.sha256,
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
            "deployed": self.models.describe() if self.models is not None else None,
            "looks_like": self.companion.describe() if self.companion is not None else None,
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
    folder, serving, model = _deployed_model(options)
    pool = ClassifierPool(model, size=options.interpreters, num_threads=options.threads, runtime=load_runtime(options.runtime))
    companion = _companion(options, pool)
    live = recorder = None
    if options.camera is not None:
        from ..watcher.camera import open_camera
        from .live import LiveView

        source = options.camera or None
        live = LiveView(
            lambda: open_camera(source),
            Classifier(model, num_threads=options.threads, runtime=pool.template.runtime, spec=pool.template.spec),
            top_k=options.top_k,
            max_fps=options.camera_fps,
            source_name="camera" if source is None else (f"camera {source}" if str(source).isdigit() else str(source)),
        )
        recorder = _watch_camera(live, options.watch or WatchSettings())
        if companion is not None:
            from ..core.companion import Throttle

            live.looks = Throttle(companion)
    service = Service(options, pool, archive, live, recorder, companion=companion)
    if folder is not None:
        from .models import ModelSwitcher

        service.models = ModelSwitcher(service, folder, serving, options.watch, int(options.max_model_mb * 1024 * 1024))
    return service


def _companion(options: ServerOptions, pool: ClassifierPool) -> Companion | None:
    """The ``--looks-like`` companion, one interpreter per upload interpreter (plus the live view's turn)."""
    if options.looks_like is None:
        return None
    from ..core.companion import DEFAULT_FLOOR
    from ..core.companion_loader import load_companion
    from ..core.loading import quiet_native_info

    floor = DEFAULT_FLOOR if options.looks_like_floor is None else options.looks_like_floor
    with quiet_native_info():
        return load_companion(options.looks_like, options.looks_like_labels, floor=floor, runtime=pool.runtime,
                              threads=options.threads, pool_size=options.interpreters, veto=options.looks_like_veto,
                              veto_classes=options.looks_like_veto_classes,
                              veto_only_for=options.looks_like_veto_only_for, rescue=options.looks_like_rescue,
                              rescue_as=options.looks_like_rescue_as, main_labels=pool.template.spec.interest_labels)


def _deployed_model(options: ServerOptions):
    """``(DeployDir | None, the entry served | None, the model path)``: DIR's current model when it has one, else ``--model``."""
    if options.deploy_dir is None:
        return None, None, options.model
    from ..core.slot import DeployDir, DeployError

    folder = DeployDir(options.deploy_dir)
    entry, warnings = folder.startup()
    for warning in warnings:
        logger.warning("%s", warning)
    try:
        with folder.writing():  # leftovers of an interrupted deploy: temporary files, an unreferenced model
            folder.prune(folder.read())
    except DeployError:
        pass  # an unreadable current.json: touch nothing (already warned)
    if entry is None:
        return folder, None, options.model
    print(f"edgekit: serving the deployed model {folder.path_of(entry)} (sha256 {entry.sha256}, deployed {entry.deployed_at}); "
          f"--model is used only when {options.deploy_dir} has none", flush=True)
    return folder, entry, folder.path_of(entry)


def _watch_camera(live: LiveView, settings: WatchSettings) -> Recorder | None:
    """Run the watcher's tracker on the live view's frames (events printed as readable lines).

    ``None`` for a model that cannot say "nothing here" with these settings (see
    :func:`~edge_runner.watcher.settings.why_no_events`, the check ``watch`` makes too).
    """
    reason = why_no_events(settings, live.classifier.spec, live.classifier.path.name)
    if reason is not None:
        logger.warning("no events: %s", reason)
        return None
    recorder = build_recorder(settings, live.classifier.spec, source_name=live.source_name, out=sys.stdout,
                              model_sha256=live.classifier.sha256)
    # The top label before the page's threshold: the watcher applies its own (--visit-threshold, see visit_threshold).
    live.on_frame = lambda t, frame, prediction: recorder.observe(
        t, prediction.top_k[0].label if prediction.top_k else prediction.label, prediction.score, frame,
    )
    return recorder
