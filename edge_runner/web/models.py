"""Send a better model to a running ``serve``: upload, check, switch without a restart, roll back (``--deploy-dir DIR``).

Routes (a Flask blueprint; behind the access token like every route, see :func:`edge_runner.web.access.protect`):
    ``POST /api/model``           multipart field ``model``: a ``.tflite`` of at most ``--max-model-mb``; 200 with
                                  the switch (:func:`switch_answer`), 413 too large, 422 refused (the old model keeps
                                  answering), 404 without ``--deploy-dir``
    ``POST /api/model/rollback``  the previous model becomes current again; 409 when there is none

``GET /api/model`` (in :mod:`edge_runner.web.app`) shows ``"sha256"`` and ``"deployed"`` (:meth:`ModelSwitcher.describe`).

:class:`ModelSwitcher` keeps the device's folder (:class:`~edge_runner.core.slot.DeployDir`) and the running
parts in step: every interpreter of the new model is loaded and checked first (the pool's, the live view's),
then ``current.json`` is switched and the references are swapped: the pool lends the new interpreters
(requests already running finish on the old ones), the live view classifies its next frame with the new
one, the watcher's recorder takes the new labels and threshold and MQTT discovery is re-published when
the labels changed. One line on stdout names the new model's sha256 (and the labels when they changed).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ..core.model import Classifier
from ..core.pool import ClassifierPool
from ..core.slot import DeployDir, DeployError, Entry, Switch, check_model
from ..watcher.settings import WatchSettings, visit_threshold, why_no_events
from .upload import MULTIPART_ALLOWANCE, UploadError, format_size

DEPLOY_OFF = "model upload is off: start the server with --deploy-dir DIR"
FIELD = "model"


class ModelSwitcher:
    """The deployed-model folder of a :class:`~edge_runner.web.service.Service` and the swap of its running parts.

    Args:
        service: the running service (its ``pool``, ``live`` and ``recorder`` are switched).
        folder: the device's deploy folder.
        serving: the entry of ``current.json`` served at start, or ``None`` (serving ``--model``).
        settings: the watcher's settings (the visit threshold of a new contract).
        max_model_bytes: the largest upload accepted.
    """

    def __init__(self, service: Any, folder: DeployDir, serving: Entry | None, settings: WatchSettings | None,
                 max_model_bytes: int) -> None:
        self.service = service
        self.folder = folder
        self.serving = serving
        self.settings = settings or WatchSettings()
        self.max_model_bytes = max_model_bytes
        self.switches = 0
        self.last: dict | None = None
        self._lock = threading.Lock()

    # -- loading before switching ----------------------------------------------------------

    def _load(self, path: Path) -> tuple[Classifier, tuple[ClassifierPool, Classifier | None]]:
        pool = self.service.pool
        first = check_model(path, load=lambda p: Classifier(p, num_threads=pool.num_threads, runtime=pool.runtime))
        if self.service.recorder is not None:
            reason = why_no_events(self.settings, first.spec, "the model")
            if reason is not None:
                raise DeployError(422, f"{reason}; this server's watcher (--camera) needs one")
        try:
            new_pool = ClassifierPool(path, size=pool.size, num_threads=pool.num_threads, runtime=pool.runtime, first=first)
            live = None
            if self.service.live is not None:
                old = self.service.live.classifier
                live = Classifier(path, num_threads=old.num_threads, runtime=old.runtime, spec=first.spec)
        except (ValueError, RuntimeError) as exc:
            raise DeployError(422, str(exc)) from None
        return first, (new_pool, live)

    def _apply(self, loaded: tuple[ClassifierPool, Classifier | None]) -> None:
        new_pool, live = loaded
        old = self.service.pool.template
        self.service.pool.replace(new_pool)
        if live is not None and self.service.live is not None:
            self.service.live.classifier = live  # the capture loop reads it once per frame
        spec = new_pool.template.spec
        if self.service.recorder is not None:
            self.service.recorder.switch_model(spec.is_detection, visit_threshold(self.settings, spec), spec.interest_labels,
                                               model_sha256=new_pool.template.sha256, spec=spec)
        labels = "" if spec.labels == old.labels else f"; labels now {', '.join(spec.labels)} (were {', '.join(old.labels)})"
        print(f"edgekit: now serving {spec.name} sha256 {new_pool.template.sha256}{labels}", flush=True)

    # -- the two operations ----------------------------------------------------------------

    def deploy(self, data: bytes) -> dict:
        """Check ``data`` (a ``.tflite``) and switch to it; raises ``DeployError`` (the old model keeps running)."""
        with self._lock:
            before = self.service.pool.template
            switch = self.folder.deploy(data, running=before, load=self._load, apply=self._apply)
            return self._done(switch, before)

    def rollback(self) -> dict:
        with self._lock:
            before = self.service.pool.template
            switch = self.folder.rollback(load=self._load, apply=self._apply)
            return self._done(switch, before)

    def _done(self, switch: Switch, before: Classifier) -> dict:
        now = self.service.pool.template
        if not switch.unchanged:
            self.serving = switch.current
            self.switches += 1
        answer = switch_answer(switch, before, now)
        self.last = {key: answer[key] for key in ("sha256", "previous_sha256", "load_s", "switch_s", "unchanged")}
        return answer

    def describe(self) -> dict:
        """The ``"deployed"`` object of ``GET /api/model``."""
        try:
            state = self.folder.read()
            current, previous = state.current, state.previous
        except DeployError:
            current = previous = None
        return {
            "dir": str(self.folder.root),
            "serving": self.serving.to_dict() if self.serving else None,  # null: the --model given at start
            "current": current.to_dict() if current else None,
            "previous": previous.to_dict() if previous else None,
            "max_model_bytes": self.max_model_bytes,
            "switches": self.switches,
            "last_switch": self.last,
        }


def switch_answer(switch: Switch, before: Classifier, now: Classifier) -> dict:
    """The JSON answer of an upload or a rollback."""
    return {
        "sha256": now.sha256,
        "previous_sha256": switch.previous.sha256 if switch.previous else None,
        "name": now.spec.name,
        "labels": list(now.labels),
        "labels_changed": now.labels != before.labels,
        "unchanged": switch.unchanged,
        "load_s": round(switch.load_s, 4),
        "switch_s": round(switch.switch_s, 4),
        "current": switch.current.to_dict() if switch.current.file else None,
        "previous": switch.previous.to_dict() if switch.previous else None,
    }


def create_blueprint(service: Any):
    """The ``/api/model`` upload and rollback routes for a :class:`~edge_runner.web.service.Service`."""
    from flask import Blueprint, abort, jsonify, request

    blueprint = Blueprint("models", __name__)

    def switcher() -> ModelSwitcher:
        models = getattr(service, "models", None)
        if models is None:
            abort(404, description=DEPLOY_OFF)
        return models

    def refused(exc: DeployError) -> UploadError:
        what = "refused" if exc.status == 422 else "failed"
        return UploadError(exc.status, f"{what}: {exc.message}" + ("; the running model is unchanged" if exc.status == 422 else ""))

    @blueprint.post("/api/model")
    def upload_model():
        models = switcher()
        limit = models.max_model_bytes
        if request.content_length is not None and request.content_length > limit + MULTIPART_ALLOWANCE:
            raise UploadError(413, f"the model upload is {format_size(request.content_length)}; "
                                   f"the limit is {format_size(limit)} (server option --max-model-mb)")
        request.max_content_length = limit + MULTIPART_ALLOWANCE  # this route only: models are larger than photos
        if request.mimetype != "multipart/form-data" or FIELD not in request.files:
            raise UploadError(400, f"no model in the form: send the .tflite in a multipart field named '{FIELD}'")
        data = request.files[FIELD].read(limit + 1)
        if len(data) > limit:
            raise UploadError(413, f"the model is over {format_size(limit)} (server option --max-model-mb)")
        if not data:
            raise UploadError(400, "empty model upload (0 bytes)")
        try:
            return jsonify(models.deploy(data))
        except DeployError as exc:
            raise refused(exc) from None

    @blueprint.post("/api/model/rollback")
    def rollback_model():
        try:
            return jsonify(switcher().rollback())
        except DeployError as exc:
            raise refused(exc) from None

    return blueprint
