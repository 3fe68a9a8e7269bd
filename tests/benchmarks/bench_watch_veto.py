"""What the watcher's second opinion (``watch --looks-like … --looks-like-veto …``) does to visits, on real photos.

    python tests/benchmarks/bench_watch_veto.py --model M.tflite --subjects NAME=GLOB[|GLOB] [NAME=… ...] \
        [--per-subject 100] [--background DIR] --looks-like imagenet --looks-like-veto 0.05 \
        --looks-like-veto-only-for other-animals

Each photo of a subject makes one clip, held in memory at 5 fps: 2 s of a background photo (one the model answers
with its background label), 3 s of the photo, 2 s of background; every frame is a random 90 % crop plus sensor
noise (``bench_watch.jittered``). The frames go through the model and the watcher's ``VisitTracker`` at its
defaults (5 of 8 frames at the visit threshold, hold 2 s), once without and once with the companion's ``confirm``
(``edge_runner.watcher.watch.second_opinion``). Printed per subject: clips with a visit, with the right label
when NAME is one of the model's labels (else any visit is a false one), and the companion's inferences.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import io
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_watch import SHARED, jittered, load  # noqa: E402

from edge_runner.core.companion_flags import add_companion_arguments, companion_from_args  # noqa: E402
from edge_runner.core.loading import quiet_native_info  # noqa: E402
from edge_runner.core.model import Classifier  # noqa: E402
from edge_runner.watcher.settings import WatchSettings, visit_threshold  # noqa: E402
from edge_runner.watcher.visits import DEFAULT_HOLD_S, DEFAULT_K, DEFAULT_N, VisitTracker  # noqa: E402
from edge_runner.watcher.watch import second_opinion  # noqa: E402

FPS, BEFORE_S, VISIT_S, AFTER_S = 5.0, 2.0, 3.0, 2.0


def clip_labels(classifier: Classifier, photo, background, rng: np.random.Generator) -> list:
    """``(t, label, score, frame)`` per frame of one clip (the top label before any threshold, as ``watch``)."""
    out = []
    segments = [(background, BEFORE_S), (photo, VISIT_S), (background, AFTER_S)]
    for image, seconds in segments:
        for _ in range(int(round(seconds * FPS))):
            frame = jittered(image, rng)
            prediction = classifier.classify_image(frame, top_k=1)
            out.append((len(out) / FPS, prediction.top_k[0].label, prediction.score, frame))
    return out


def visits(spec, labels, threshold: float, confirm) -> list[str]:
    tracker = VisitTracker(spec.is_detection, k=DEFAULT_K, n=DEFAULT_N, hold_s=DEFAULT_HOLD_S, min_score=threshold,
                           clock="video", confirm=confirm)
    events = []
    for t, label, score, frame in labels:
        events += tracker.update(t, label, score, frame)
    events += tracker.finish()
    return [event.label for event in events if event.event == "arrived"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--subjects", nargs="+", required=True, metavar="NAME=GLOB")
    parser.add_argument("--per-subject", type=int, default=100, help="clips per subject (every n-th photo)")
    parser.add_argument("--background", type=Path, default=SHARED / "data" / "other")
    parser.add_argument("--seed", type=int, default=0)
    add_companion_arguments(parser)
    args = parser.parse_args()
    with quiet_native_info():
        classifier = Classifier(args.model, num_threads=1)
        companion = companion_from_args(args, threads=1)
    if companion is None or companion.veto is None:
        print("bench_watch_veto: error: give --looks-like C and --looks-like-veto P", file=sys.stderr)
        return 2
    spec = classifier.spec
    threshold = visit_threshold(WatchSettings(), spec)
    backgrounds = []
    for path in sorted(args.background.iterdir()):
        image = load(path)
        if classifier.classify_image(np.asarray(image), top_k=1).label == spec.background_label:
            backgrounds.append(image)
        if len(backgrounds) == 5:
            break
    confirm = second_opinion(companion)
    print(f"model {args.model.name}, companion {companion.path.name} (veto {companion.veto.limit:g}, "
          f"{'only for ' + str(len(companion.veto.only_for)) + ' outputs' if companion.veto.only_for else 'any guess'}), "
          f"{FPS:g} fps, visit threshold {threshold:g}, {DEFAULT_K} of {DEFAULT_N}, hold {DEFAULT_HOLD_S:g} s\n")
    print("| subject | clips | right answer | clips with a visit, without | with the second opinion | companion runs |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    rng = np.random.default_rng(args.seed)
    for subject in args.subjects:
        name, _, pattern = subject.partition("=")
        paths = sorted({path for part in pattern.split("|") for path in glob.glob(part)})
        paths = paths[:: max(1, len(paths) // args.per_subject)][: args.per_subject]
        want = name if name in spec.interest_labels else None
        counts = {"without": 0, "with": 0}
        calls = companion.calls
        for i, path in enumerate(paths):
            labels = clip_labels(classifier, load(Path(path)), backgrounds[i % len(backgrounds)], rng)
            for key, check in (("without", None), ("with", confirm)):
                with contextlib.redirect_stderr(io.StringIO()):  # the veto's one line per visit
                    arrived = visits(spec, labels, threshold, check)
                counts[key] += (want in arrived) if want else bool(arrived)
        what = f"a {want} visit" if want else "no visit"
        print(f"| {name} | {len(paths)} | {what} | {counts['without']} ({counts['without'] / len(paths):.1%}) | "
              f"{counts['with']} ({counts['with'] / len(paths):.1%}) | {companion.calls - calls} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
