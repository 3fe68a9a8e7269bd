"""Benchmark the watcher (`python -m edge_runner watch`) on clips built from real photos. Prints figures; asserts nothing.

    python tests/benchmarks/bench_watch.py --model M.tflite [--clips 24] [--other DIR] [--other-every 5]

``--model`` needs a contract with a background label (e.g. ``other``). Clips (MJPG
``.avi``, 320x240, written with OpenCV) are built from the validation photos of
``cats_and_dogs_filtered`` and a held-out part of ``data/other`` (files whose index
in sorted order is a multiple of ``--other-every``, offset ``--other-offset``: keep
those out of the model's training set). Every frame of a photo is the photo with a
small random crop shift and sensor noise, so no two frames are identical:

* visit clips: ``--before`` s of a background photo, a cat or dog photo for
  ``--visit`` s, background again for ``--after`` s;
* background-only clips of the same length, the background photo changing every 3 s.

Each clip is decoded and classified once per frame rate (5, 15, 30 fps) through the
watcher's own file path (``file_frames`` + ``preprocess_array`` + ``Classifier``); the
per-frame labels are then replayed through :class:`VisitTracker` for several
K-of-N / hold settings, printing for each: visits found exactly once (one
``arrived`` + one ``left``), extra events on visit clips, events on background-only
clips, and the delay from the first pet frame to ``arrived`` (frames and seconds) over the visits found exactly once.
Finally one clip is played as a live 15 fps (and 30 fps) camera through
``LatestFrame`` (newest frame only) to measure classified frames/s and CPU share.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edge_runner.watcher.camera import open_camera  # noqa: E402
from edge_runner.core.image import preprocess_array  # noqa: E402
from edge_runner.core.model import Classifier  # noqa: E402
from edge_runner.watcher.settings import WatchSettings, build_recorder, visit_threshold  # noqa: E402
from edge_runner.watcher.strip import THUMB_WIDTH, thumbnail  # noqa: E402
from edge_runner.watcher.visits import DEFAULT_HOLD_S, DEFAULT_K, DEFAULT_N, VisitTracker  # noqa: E402
from edge_runner.watcher.frames import file_frames  # noqa: E402
from edge_runner.watcher.watch import WatchStats, run_watch  # noqa: E402

SHARED = Path(os.environ.get("EDGEKIT_SHARED", REPO.parent / "shared"))
FRAME_SIZE = (320, 240)
# (K, N, hold s[, threshold]); without a threshold a row uses the model's contract threshold (a photo's).
SETTINGS = [(2, 3, 1.0), (3, 5, 1.0), (3, 5, 2.0), (3, 5, 3.0), (4, 6, 2.0), (5, 8, 2.0), (3, 5, 2.0, 0.0)]
SETTINGS += [(k, n, 2.0, t) for t in (0.6, 0.7, 0.8, 0.9) for k, n in ((3, 5), (5, 8))]
DEFAULT = (DEFAULT_K, DEFAULT_N, DEFAULT_HOLD_S)

def load(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def jittered(photo: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """A 320x240 frame of ``photo``: a random 90 % crop (a moving camera/animal) plus sensor noise."""
    width, height = photo.size
    cw, ch = int(width * 0.9), int(height * 0.9)
    x, y = int(rng.integers(0, width - cw + 1)), int(rng.integers(0, height - ch + 1))
    frame = np.asarray(photo.crop((x, y, x + cw, y + ch)).resize(FRAME_SIZE, Image.Resampling.BILINEAR), np.int16)
    frame = frame + rng.integers(-6, 7, frame.shape, dtype=np.int16)
    return np.clip(frame, 0, 255).astype(np.uint8)


def write_clip(path: Path, segments: list[tuple[Image.Image, float]], fps: float, seed: int) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, FRAME_SIZE)
    rng = np.random.default_rng(seed)
    for photo, seconds in segments:
        for _ in range(int(round(seconds * fps))):
            writer.write(cv2.cvtColor(jittered(photo, rng), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def classify_clip(classifier: Classifier, path: Path) -> list[tuple[float, str, float]]:
    """``(t, label, score)`` for every frame, through the watcher's file path."""
    out = []
    with open_camera(str(path)) as source:
        for item in file_frames(source):
            prediction = classifier.classify(preprocess_array(item.frame, classifier.spec), top_k=1)
            out.append((item.t, prediction.label, prediction.score))
    return out


def replay(spec, labels, k, n, hold, threshold=0.0):
    """Events of one classified clip under one setting: ``[(event, label, t_emitted), …]``.

    ``threshold``: a frame whose top score is below it counts as nothing, as the watcher's ``--threshold`` does.
    """
    tracker = VisitTracker(spec.is_detection, k=k, n=n, hold_s=hold, min_score=threshold, clock="video")
    events = []
    for t, label, score in labels:
        events += [(e.event, e.label, t) for e in tracker.update(t, label, score)]
    events += [(e.event, e.label, None) for e in tracker.finish()]
    return events


def _median_ms(call, repeats: int = 50) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="a .tflite whose contract names a background label")
    parser.add_argument("--pets", type=Path, default=SHARED / "data" / "cats_and_dogs_filtered" / "validation")
    parser.add_argument("--other", type=Path, default=SHARED / "data" / "other")
    parser.add_argument("--other-every", type=int, default=5, help="use every Nth photo of --other (the held-out part)")
    parser.add_argument("--other-offset", type=int, default=0)
    parser.add_argument("--clips", type=int, default=24, help="visit clips (half cats, half dogs) and as many background-only clips")
    parser.add_argument("--before", type=float, default=4.0)
    parser.add_argument("--visit", type=float, default=3.0)
    parser.add_argument("--after", type=float, default=4.0)
    parser.add_argument("--fps", type=float, nargs="+", default=[5.0, 15.0, 30.0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    classifier = Classifier(args.model, num_threads=1)
    spec = classifier.spec
    if spec.background_label is None:
        print(f"bench_watch: error: {args.model}: its contract has no background_label", file=sys.stderr)
        return 2
    default_threshold = visit_threshold(WatchSettings(), spec)
    rng = np.random.default_rng(args.seed)
    others = [p for i, p in enumerate(sorted(args.other.iterdir())) if i % args.other_every == args.other_offset]
    cats = sorted((args.pets / "cats").iterdir())
    dogs = sorted((args.pets / "dogs").iterdir())
    half = args.clips // 2
    pets = [cats[i] for i in rng.choice(len(cats), half, replace=False)] + [dogs[i] for i in rng.choice(len(dogs), args.clips - half, replace=False)]
    print(f"model: {args.model} ({classifier.variant}, labels {', '.join(spec.labels)}, background {spec.background_label!r})")
    print(f"clips: {len(pets)} visits ({half} cats, {len(pets) - half} dogs) of {args.before:g} s background + "
          f"{args.visit:g} s pet + {args.after:g} s background; {len(pets)} background-only clips of the same length; "
          f"{len(others)} held-out background photos from {args.other}")
    length = args.before + args.visit + args.after
    with tempfile.TemporaryDirectory(prefix="bench_watch_") as tmp:
        for fps in args.fps:
            started = time.perf_counter()
            visits, empties = [], []
            for i, pet in enumerate(pets):
                bg = load(others[int(rng.integers(len(others)))])
                clip = write_clip(Path(tmp) / f"v{i}.avi", [(bg, args.before), (load(pet), args.visit), (bg, args.after)], fps, i)
                expected = "cats" if pet.parent.name == "cats" else "dogs"
                visits.append((classify_clip(classifier, clip), expected, pet.parent.name.rstrip("s")))
                segments = [(load(others[int(rng.integers(len(others)))]), 3.0) for _ in range(int(np.ceil(length / 3.0)))]
                empty = write_clip(Path(tmp) / f"e{i}.avi", segments, fps, 10_000 + i)
                empties.append(classify_clip(classifier, empty))
            frames = sum(len(v[0]) for v in visits) + sum(len(e) for e in empties)
            print(f"\n== {fps:g} fps: {frames} frames classified in {time.perf_counter() - started:.0f} s (clip writing included)")
            pet_frames = [(label, expected) for labels, expected, _ in visits for t, label, _ in labels if args.before <= t < args.before + args.visit]
            bg_frames = [label for labels in empties for _, label, _ in labels]
            print(f"per-frame: pet frames labelled as the right pet {sum(l == e for l, e in pet_frames) / len(pet_frames):.1%}, "
                  f"background frames labelled background {sum(l == spec.background_label for l in bg_frames) / len(bg_frames):.1%}")
            print(f"{'K/N':>5} {'hold':>5} {'thr':>4} {'visits 1+1':>11} {'missed':>7} {'extra ev.':>10} {'wrong label':>12} "
                  f"{'bg-only ev.':>12} {'bg clips w/ ev.':>16} {'delay frames med/max':>21} {'delay s med/max':>16}")
            for setting in SETTINGS:
                # Without a threshold of its own, a setting uses the model's (its contract's), as `watch` does.
                k, n, hold, threshold = (*setting, spec.threshold or 0.0)[:4]
                exact = missed = extra = wrong = 0
                delays = []
                for labels, expected, _ in visits:
                    events = replay(spec, labels, k, n, hold, threshold)
                    arrived = [e for e in events if e[0] == "arrived"]
                    if not arrived:
                        missed += 1
                        continue
                    if arrived[0][1] != expected:
                        wrong += 1
                    if len(events) == 2 and events[0][0] == "arrived" and events[1][0] == "left":
                        exact += 1
                        # Delay over the clean visits only: where the background made a visit of its
                        # own, "the first arrival" would measure the background's error instead.
                        delays.append(arrived[0][2] - args.before)
                    else:
                        extra += len(events) - 2
                bg_counts = [len(replay(spec, labels, k, n, hold, threshold)) for labels in empties]
                bg_events, bg_clips = sum(bg_counts), sum(count > 0 for count in bg_counts)
                dframes = [round(d * fps) for d in delays]
                mark = "  <- default" if (k, n, hold) == DEFAULT and threshold == default_threshold else ""
                delay_f = f"{statistics.median(dframes):.0f}/{max(dframes)}" if dframes else "-"
                delay_s = f"{statistics.median(delays):.2f}/{max(delays):.2f}" if delays else "-"
                print(f"{k}/{n:<3} {hold:>5.1f} {threshold:>4.1f} {exact:>5}/{len(visits):<5} {missed:>7} {extra:>10} "
                      f"{wrong:>12} {bg_events:>12} {bg_clips:>10}/{len(empties):<5} {delay_f:>21} {delay_s:>16}{mark}")
        # Live: a clip played as a camera at 15 (and 30) fps, newest frame only, with the default
        # settings and snapshots (best frame + thumbnail strip) written, as `watch --snapshots` does.
        print("\n== live source (a clip played in real time through the watcher's newest-frame reader, default settings, "
              "snapshots and strips on)")
        pet = load(pets[0])
        bg = load(others[0])
        for fps in (15.0, 30.0):
            clip = write_clip(Path(tmp) / f"live{fps:g}.avi", [(bg, 4.0), (pet, 4.0), (bg, 4.0)], fps, 99)
            recorder = build_recorder(WatchSettings(snapshots=Path(tmp) / f"snaps{fps:g}"), spec, source_name=clip.name)
            stats = WatchStats()
            with open_camera(str(clip)) as source:
                run_watch(classifier, source, recorder, live=True, pace_fps=fps, stats=stats,
                          threshold=default_threshold)
            read = stats.classified + stats.dropped
            print(f"{fps:g} fps source, {stats.seconds:.1f} s: {stats.classified_per_s:.1f} frames classified/s "
                  f"({stats.classified}/{read} frames read, {stats.dropped} stale dropped, "
                  f"{stats.classified / max(read, 1):.1%} of the source), CPU {stats.cpu_share:.1%} of one core "
                  f"(reading + decoding + classifying + snapshots), events {recorder.emitted}, "
                  f"files {sorted(p.name[-9:] for p in (Path(tmp) / f'snaps{fps:g}').iterdir())}")
        # What a strip costs the camera loop: one thumbnail per kept frame (at most ~4 a second, fewer
        # as a visit grows), next to one classification, in the same run.
        frame = np.asarray(pet.resize((640, 480)))
        tensor = preprocess_array(frame, spec)
        classify_ms = _median_ms(lambda: classifier.classify(tensor, top_k=1))
        thumb_ms = _median_ms(lambda: thumbnail(frame, THUMB_WIDTH))
        print(f"strip cost: one {THUMB_WIDTH}px thumbnail of a 640x480 frame {thumb_ms:.2f} ms vs one classification "
              f"{classify_ms:.2f} ms (ratio {thumb_ms / classify_ms:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
