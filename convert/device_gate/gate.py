"""The gate against the model on the device: may a retrained model replace it?

Both models are ``.tflite`` files run through the runner's own ``Classifier`` on pixels decoded by the runner's own
path (:func:`convert.photos.decode`, JPEG draft decoding as on the device). The new one is the retrained run's int8
variant, made and gated against its float model by ``convert export`` (reused when it exists). Two checks:

1. **The old validation photos** (``split.json``'s validation photos of the run's original sources, not of its
   review exports): the paired McNemar test of the export gate (:mod:`convert.gate.significance`) on top-1
   answers. Refused when the new model is significantly worse: ``p < alpha`` and more photos lost than gained.
2. **The reviewed frames** of the export, answered as the runner answers at each model's own threshold (a frame
   reviewed "nothing" is right when the answer is the background label or ``unknown``): of the frames the device
   model got wrong, the new one must get at least ``min_fixed`` right. Default 0.8 (:data:`MIN_FIXED`): "most"
   with room for a few frames no model can get (a pet half out of the frame, motion blur), while four fixes in five
   is what makes the evening false alarms go away; at 30 mistakes it allows 6 left.

Also listed: what broke (old validation photos and reviewed frames the device got right and the new model gets
wrong), and the fixed share among the reviewed frames the retrain did not train on (its validation groups): the
honest figure, since most reviewed frames were trained on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from edge_runner.core.model import Classifier
from edge_runner.core.spec import UNKNOWN_LABEL

from ..errors import ConvertError
from ..evaluation.scoring import answer_labels
from ..gate.accuracy import predict_tflite
from ..gate.significance import DEFAULT_ALPHA, PairedTest, paired_test
from ..photos import Photo, decode, split_photos, warn_stderr
from ..source import load_training_output

MIN_FIXED = 0.8
EXPORT_FORMAT = "edgekit-review-export"
NOTHING = "nothing"


@dataclass(frozen=True)
class Frame:
    """One photo both models answered.

    Attributes:
        path, truth: the photo and its label (a reviewed "nothing" frame: the background label, or ``nothing``).
        part: ``"validation"`` (old validation photo) or ``"reviewed"`` (a frame of the export).
        source: its source in ``split.json`` (``"review"`` for a reviewed frame).
        trained: whether the retrained run trained on it.
        device, new: each model's answer (top-1 for validation photos; at its threshold for reviewed frames).
        device_score, new_score: the top probability, 0–1.
        device_right, new_right: whether each answer counts as right.
    """

    path: str
    truth: str
    part: str
    source: str
    trained: bool
    device: str
    device_score: float
    new: str
    new_score: float
    device_right: bool
    new_right: bool

    @property
    def fixed(self) -> bool:
        return not self.device_right and self.new_right

    @property
    def broke(self) -> bool:
        return self.device_right and not self.new_right


@dataclass
class DeviceGate:
    """The verdict and its figures (``report.json`` holds the same).

    Attributes:
        accepted: both checks passed; ``reasons``: why not (empty when accepted).
        new_model, device_model: the two ``.tflite`` paths; ``*_sha256`` their digests.
        int8_status: the export gate's verdict on the new int8 model against its float model.
        paired: the McNemar test on the old validation photos (``lost``: device right, new wrong).
        device_wrong, fixed: reviewed frames the device model got wrong, and of those the new one gets right.
        held_out_wrong, held_out_fixed: the same among the reviewed frames the retrain did not train on.
        frames: every photo compared (validation photos first); ``pixels``: their decoded pixels, same order.
    """

    accepted: bool
    reasons: list[str]
    new_model: str
    new_sha256: str
    device_model: str
    device_sha256: str
    int8_status: str
    labels: tuple[str, ...]
    min_fixed: float
    alpha: float
    paired: PairedTest
    device_wrong: int
    fixed: int
    held_out_wrong: int
    held_out_fixed: int
    frames: list[Frame]
    seconds: float
    pixels: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 1, 1, 3), np.uint8))

    @property
    def fixed_fraction(self) -> float | None:
        return self.fixed / self.device_wrong if self.device_wrong else None

    def part(self, name: str) -> list[Frame]:
        return [f for f in self.frames if f.part == name]


def reviewed_photos(export: Path, background: str | None) -> list[Photo]:
    """The frames of a review export (``manifest.json``), labelled as the models answer: "nothing" → ``background``."""
    try:
        manifest = json.loads((Path(export) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConvertError(f"--reviewed {export}: cannot read manifest.json ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise ConvertError(f"--reviewed {export}: manifest.json is not an {EXPORT_FORMAT} "
                           f"(format {manifest.get('format') if isinstance(manifest, dict) else None!r})")
    nothing = {manifest.get("background_label") or NOTHING, NOTHING}
    photos = []
    for frame in manifest.get("frames") or ():
        try:
            path, label = Path(export) / str(frame["file"]), str(frame["label"])
        except (KeyError, TypeError):
            raise ConvertError(f"--reviewed {export}: each frame needs \"file\" and \"label\", received {frame!r}") from None
        photos.append(Photo(path, (background or NOTHING) if label in nothing else label))
    if not photos:
        raise ConvertError(f"--reviewed {export}: manifest.json lists no reviewed frame")
    return photos


def _answers(model: Classifier, pixels: np.ndarray, top1: bool) -> tuple[list[str], np.ndarray]:
    probabilities = predict_tflite(model.path, pixels) if len(pixels) else np.zeros((0, len(model.labels)), np.float32)
    threshold = 0.0 if top1 or model.spec.threshold is None else float(model.spec.threshold)
    return answer_labels(probabilities, model.labels, threshold), probabilities.max(axis=1, initial=0.0)


def _right(answer: str, truth: str, background: str | None) -> bool:
    return answer == truth or (truth in (background, NOTHING) and answer in (background, UNKNOWN_LABEL))


def compare(device: Classifier, new: Classifier, photos: Sequence[Photo], part: str, sources: dict[str, str],
            trained: set[str], *, progress: str | None = None) -> tuple[list[Frame], np.ndarray]:
    """Both models' answers on ``photos`` (decoded once, the runner's way); unreadable ones are skipped with a line."""
    decoded = decode(photos, new.spec, draft=True, warn=warn_stderr, progress=progress)
    background = new.spec.background_label
    top1 = part == "validation"
    device_answers, device_scores = _answers(device, decoded.pixels, top1)
    new_answers, new_scores = _answers(new, decoded.pixels, top1)
    frames = []
    for i, photo in enumerate(decoded.photos):
        truth = photo.label
        frames.append(Frame(str(photo.path), truth, part, sources.get(str(photo.path), "review"),
                            str(photo.path) in trained, device_answers[i], float(device_scores[i]), new_answers[i],
                            float(new_scores[i]), _right(device_answers[i], truth, background),
                            _right(new_answers[i], truth, background)))
    return frames, decoded.pixels


def new_int8(new_run: Path, out: Path, *, log: Callable[[str], None], progress: bool) -> tuple[Path, str]:
    """The retrained run's int8 model, made (or reused) and gated by ``convert export`` into ``out/int8``."""
    from ..export import export
    from ..results import ExportOptions

    result = export(new_run, out / "int8", ExportOptions(variants=("int8",), fix="never"), log=log, progress=progress)
    variant = result.variants[0]
    if variant.status == "failed" or not variant.path:
        raise ConvertError(f"{new_run}: the int8 conversion failed ({variant.error})")
    return Path(variant.path), variant.status


def gate_device(new_run: Path, device_path: Path, reviewed: Path, out: Path, *, min_fixed: float = MIN_FIXED,
                alpha: float = DEFAULT_ALPHA, new_model: Path | None = None, log: Callable[[str], None] = print,
                progress: bool = True) -> DeviceGate:
    """Gate ``new_run`` (its int8 model, or ``new_model``) against the device's model; see the module docstring.

    Raises:
        ConvertError: a bad option, run, model or export, or models with different labels (nothing judged).
    """
    started = time.perf_counter()
    if not 0.0 <= min_fixed <= 1.0:
        raise ConvertError(f"--min-fixed must be a fraction from 0 to 1, received {min_fixed}")
    if not 0.0 < alpha < 1.0:
        raise ConvertError(f"--alpha must be between 0 and 1 (exclusive), received {alpha}")
    for flag, path in (("--device", device_path), ("--new-model", new_model)):
        if path is not None and not Path(path).is_file():
            raise ConvertError(f"{flag} {path}: no such file")
    source = load_training_output(new_run)
    reviewed_list = reviewed_photos(reviewed, source.spec.background_label)
    split = source.split or {}
    status = "given (--new-model)"
    if new_model is None:
        new_model, status = new_int8(Path(new_run), Path(out), log=log, progress=progress)
    device, new = Classifier(device_path), Classifier(new_model)
    if tuple(device.labels) != tuple(new.labels):
        raise ConvertError(f"--device {device_path}: its labels {list(device.labels)} differ from the new model's "
                           f"{list(new.labels)}")
    exports = set(split.get("review_exports") or ())
    entries = [e for e in source.split_entries("validation") if str(e.get("source", "")).partition(":")[0] not in exports]
    old = split_photos(entries, new.labels, f"{source.split_path} (validation)")
    if not old:
        raise ConvertError(f"{source.split_path}: no validation photo of the run's original sources to compare on")
    sources = {str(Path(e["path"])): str(e.get("source", "")) for e in entries}
    trained = {str(Path(e["path"]).resolve()) for e in split.get("train") or ()}
    reviewed_list = [Photo(p.path.resolve(), p.label) for p in reviewed_list]
    val_frames, val_pixels = compare(device, new, old, "validation", sources, set(),
                                     progress="old validation photos" if progress else None)
    rev_frames, rev_pixels = compare(device, new, reviewed_list, "reviewed", {}, trained,
                                     progress="reviewed frames" if progress else None)
    paired = paired_test(np.array([f.device_right for f in val_frames], bool), np.array([f.new_right for f in val_frames], bool))
    wrong = [f for f in rev_frames if not f.device_right]
    held = [f for f in wrong if not f.trained]
    fixed = sum(f.fixed for f in wrong)
    reasons = []
    if paired.p_value < alpha and paired.lost > paired.gained:
        reasons.append(f"significantly worse on the {paired.photos} old validation photos: {paired.lost} lost, "
                       f"{paired.gained} gained (McNemar p = {paired.p_value:.3g} < {alpha:g})")
    if wrong and fixed / len(wrong) < min_fixed:
        reasons.append(f"fixes {fixed} of the {len(wrong)} reviewed frames the device model got wrong "
                       f"({100 * fixed / len(wrong):.0f}%, below --min-fixed {100 * min_fixed:.0f}%)")
    if status == "rejected":
        reasons.append("the int8 model was rejected by the export gate against its float model (int8/report.md)")
    return DeviceGate(
        accepted=not reasons, reasons=reasons, new_model=str(new_model), new_sha256=new.sha256,
        device_model=str(device_path), device_sha256=device.sha256, int8_status=status, labels=tuple(new.labels),
        min_fixed=min_fixed, alpha=alpha, paired=paired, device_wrong=len(wrong), fixed=fixed,
        held_out_wrong=len(held), held_out_fixed=sum(f.fixed for f in held), frames=val_frames + rev_frames,
        seconds=round(time.perf_counter() - started, 1),
        pixels=np.concatenate([val_pixels, rev_pixels]) if len(val_pixels) + len(rev_pixels) else val_pixels,
    )
