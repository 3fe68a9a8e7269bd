"""``watch --deploy-dir DIR``: follow the model that ``serve --deploy-dir DIR`` makes current, without a restart.

A Pi that runs ``watch`` and ``serve`` as two services points both at one folder: ``serve`` receives
models (``python -m edge_runner deploy``) and switches ``DIR/current.json``; :class:`FollowedModel`
polls that file every ``interval_s`` seconds on a thread of its own, loads and checks a new current
model there (:func:`~edge_runner.core.slot.check_model`: the frame loop never waits for a load), then
swaps one reference: the next frame is classified by the new model, with its visit threshold, and the
recorder takes its labels (MQTT discovery is re-published when they changed). A model that cannot be
loaded, or that cannot make visits, is reported once and the old one keeps watching.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from ..core.model import Classifier
from ..core.slot import DeployDir, DeployError, check_model
from .settings import WatchSettings, visit_threshold, why_no_events

logger = logging.getLogger(__name__)

POLL_S = 3.0


class FollowedModel:
    """A stand-in for a :class:`~edge_runner.core.model.Classifier` that answers with DIR's newest current model.

    Args:
        folder: the deploy folder (read only).
        classifier: the model watching now.
        settings: the watcher's settings (the visit threshold of each model).
        recorder: told of a new model's labels and threshold (``Recorder.switch_model``), or ``None``.
        interval_s: seconds between two looks at ``current.json``.
        say: where the one line about a switch goes (default: a log warning, which ``watch`` prints on stderr).
    """

    def __init__(self, folder: DeployDir, classifier: Classifier, settings: WatchSettings, recorder: Any = None, *,
                 interval_s: float = POLL_S, say: Callable[[str], None] | None = None) -> None:
        self.folder = folder
        self.current = classifier
        self.settings = settings
        self.threshold = visit_threshold(settings, classifier.spec)
        self.recorder = recorder
        self.interval_s = interval_s
        self.say = say or (lambda line: logger.warning("%s", line))
        self.switches = 0
        self._refused: set[str] = set()  # hashes already reported as unusable
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def spec(self):
        return self.current.spec

    def classify_image(self, source: Any, *, top_k: int = 3, threshold: float | None = None, draft: bool = True):
        """The current model's answer, with its own visit threshold (``threshold`` is the one it replaces)."""
        model, limit = self.current, self.threshold  # one model per frame, even during a switch
        return model.classify_image(source, top_k=top_k, threshold=limit, draft=draft)

    def poll(self) -> bool:
        """Look at ``current.json`` once; switch when it names another model that loads. Returns whether it switched."""
        try:
            entry = self.folder.read().current
        except DeployError as exc:
            if "unreadable" not in self._refused:
                self._refused.add("unreadable")
                self.say(f"--deploy-dir: {exc}; keeping the model watching now")
            return False
        if entry is None or entry.sha256 == self.current.sha256 or entry.sha256 in self._refused:
            return False
        old = self.current
        try:
            model = check_model(self.folder.path_of(entry), load=lambda p: Classifier(p, num_threads=old.num_threads, runtime=old.runtime))
            if model.sha256 != entry.sha256:
                raise DeployError(422, "its file does not have the sha256 current.json records")
            reason = why_no_events(self.settings, model.spec, "the model")
            if reason is not None:
                raise DeployError(422, reason)
        except DeployError as exc:
            self._refused.add(entry.sha256)
            self.say(f"--deploy-dir: not switching to {entry.file} (sha256 {entry.sha256}): {exc.message}")
            return False
        self.current, self.threshold = model, visit_threshold(self.settings, model.spec)
        if self.recorder is not None:
            self.recorder.switch_model(model.spec.is_detection, self.threshold, model.spec.interest_labels,
                                       model_sha256=model.sha256, spec=model.spec)
        self.switches += 1
        labels = "" if model.labels == old.labels else f"; labels now {', '.join(model.labels)} (were {', '.join(old.labels)})"
        self.say(f"now watching with {model.spec.name} sha256 {model.sha256}{labels}")
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.poll()
            except Exception:  # following must never end the watcher
                logger.exception("--deploy-dir: looking for a new model failed")

    def start(self) -> FollowedModel:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="edgekit-follow-model", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
