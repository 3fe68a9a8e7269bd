"""What ``--looks-like`` costs and what it names, on real photos (the figures in edge_runner/README.md).

    nice -n 5 python tests/benchmarks/bench_looks_like.py [--photos 200] [--repeats 3] [--model M] [--looks-like C]
        [--veto] [--rescue] [--skip-names]

1. **Cost**: the runner's batch classifier (:func:`edge_runner.cli.batch.classify_paths`, one thread, so the
   time is the CPU cost of a photo) over ``--photos`` background photos (``../shared/data/other``) and as many pet
   photos (``cats_and_dogs_filtered/validation``, every n-th), with and without the companion, alternating by
   repeat in one run: per-photo medians and their ratios, with the load average before and after.
2. **What it names**: every photo of ``other/``, ``more_other/`` (by source), ``lookalikes/`` and ``people/``
   that the main model does not call a pet: how many get a name at the floors 0.1/0.2/0.3/0.5, and the most
   common names at the default floor. On ``other/`` (ImageNet sample images named ``<wnid>_<class>.jpg``) a
   name is counted right when the file's class is one of the label's synonyms.
3. **The veto** (``--veto``): ``--looks-like-veto P --looks-like-veto-classes 152-269,282-286`` (the ImageNet
   model's dog breeds and domestic cats) at several P, on every pet photo (``cats_and_dogs_filtered/validation``,
   ``more_pets/``) and every non-pet photo: pets still named right, non-pets still called a pet, and the cost
   per pet photo with the veto (ratio to none, same run as 1.).
4. **The rescue** (``--rescue``): the cost of ``--looks-like-rescue 0.5`` (cats, dogs), timed in 1.'s run.

Nothing is asserted; the figures are printed as Markdown.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edge_runner.cli.batch import classify_paths  # noqa: E402
from edge_runner.core.companion_loader import load_companion  # noqa: E402
from edge_runner.core.image import find_images  # noqa: E402
from edge_runner.core.loading import quiet_native_info, shipped_model_path  # noqa: E402
from edge_runner.core.model import Classifier  # noqa: E402

SHARED = Path(os.environ.get("EDGEKIT_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"
IMAGENET = SHARED / "weights" / "imagenet_classifier" / "tf2_mobilenet_v2_1.0_224_ptq.tflite"
FLOORS = (0.1, 0.2, 0.3, 0.5)
DOG_CLASSES, CAT_CLASSES = tuple(range(152, 270)), tuple(range(282, 287))  # the ImageNet model's dog breeds, cats
PET_CLASSES = DOG_CLASSES + CAT_CLASSES
VETO_LIMITS = (0.01, 0.05, 0.1, 0.2, 0.3)


def every_nth(paths: list[Path], count: int) -> list[str]:
    step = max(1, len(paths) // count)
    return [str(path) for path in paths[::step][:count]]


def timed(classifier, paths, companion) -> tuple[float, float]:
    """``(wall, CPU)`` seconds per photo for one pass of the batch classifier in this thread.

    With ``workers=0`` and one interpreter thread, decoding and both models run in the calling thread, so its CPU
    time (``time.thread_time``) is the photo's cost, hardly moved by other jobs on the machine; the wall time is.
    """
    start, cpu = time.perf_counter(), time.thread_time()
    for result in classify_paths(classifier, paths, top_k=3, workers=0, companion=companion):
        assert result.ok, result.error
    return (time.perf_counter() - start) / len(paths), (time.thread_time() - cpu) / len(paths)


def measure_cost(classifier, companion, background: list[str], pets: list[str], repeats: int,
                 extras: dict[str, object]) -> None:
    """``extras``: more companions to time in the same run, by column name ("a veto too": ``--looks-like-veto``)."""
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for name, paths in (("background", background), ("pets", pets)):
        timed(classifier, paths[:20], companion)  # warm the caches and both interpreters
    times = collections.defaultdict(list)
    calls = {}
    for _ in range(repeats):
        for name, paths in (("background", background), ("pets", pets)):
            before = companion.calls
            times[name, "with"].append(timed(classifier, paths, companion))
            calls[name] = companion.calls - before
            times[name, "without"].append(timed(classifier, paths, None))
            for extra, other in extras.items():
                times[name, extra].append(timed(classifier, paths, other))
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
    print("CPU ms per photo (wall ms in brackets), medians:\n")
    print("| photos | without | with --looks-like | ratio | companion runs |"
          + "".join(f" with {extra} | ratio |" for extra in extras))
    print("| --- | ---: | ---: | ---: | ---: |" + " ---: | ---: |" * len(extras))
    for name, paths in (("background", background), ("pets", pets)):
        row = {}
        for variant in ("without", "with", *extras):
            runs = times[name, variant]
            row[variant] = tuple(statistics.median(run[i] for run in runs) * 1000 for i in (0, 1))
        cell = {v: f"{row[v][1]:.2f} ({row[v][0]:.2f})" for v in row}
        ratio = {v: f"{row[v][1] / row['without'][1]:.2f}x ({row[v][0] / row['without'][0]:.2f}x)" for v in row}
        print(f"| {name} ({len(paths)}) | {cell['without']} | {cell['with']} | {ratio['with']} | "
              f"{calls[name]} of {len(paths)} |" + "".join(f" {cell[extra]} | {ratio[extra]} |" for extra in extras))
    print()


def synonyms(label: str) -> set[str]:
    return {part.strip().lower().replace("-", " ").replace("'", "") for part in label.split(",")}


def measure_names(classifier, companion, folders: dict[str, list[str]], default_floor: float) -> None:
    print("| photos | not a pet | named at " + " / ".join(f"{f:g}" for f in FLOORS) + " | most common names (at "
          f"{default_floor:g}) |")
    print("| --- | ---: | ---: | --- |")
    right = collections.Counter()
    known = collections.defaultdict(set)  # a shown name -> every synonym of the labels shown by that name
    for label in companion.names:
        known[label.split(",")[0].strip()] |= synonyms(label)
    for name, paths in folders.items():
        scores, names = [], collections.Counter()
        for result in classify_paths(classifier, paths, top_k=3, workers=2, companion=companion):
            if not result.ok or result.prediction.detected:
                continue
            looks = result.looks_like
            scores.append(looks.score if looks else 0.0)
            if looks and looks.score >= default_floor:
                names[looks.label] += 1
            if name == "other" and looks:
                truth = Path(result.source).stem.split("_", 1)[1].replace("_", " ").lower().replace("-", " ")
                for floor in FLOORS:
                    if looks.score >= floor:
                        right[floor, "named"] += 1
                        right[floor, "right"] += truth in known[looks.label]
        named = " / ".join(f"{sum(s >= f for s in scores) / max(1, len(scores)):.0%}" for f in FLOORS)
        common = ", ".join(f"{label} {count}" for label, count in names.most_common(5))
        print(f"| {name} ({len(paths)}) | {len(scores)} | {named} | {common} |")
    if right:
        print("\nother/: names right (the file's ImageNet class is one of the label's synonyms): " + ", ".join(
            f"{right[f, 'right'] / max(1, right[f, 'named']):.0%} at {f:g}" for f in FLOORS))


def measure_veto(classifier, vetoing, pets: dict[str, list[str]], others: dict[str, list[str]]) -> None:
    """Every detection's companion mass on the pet classes (``vetoing`` vetoes all, so each reports its mass)."""
    print("\n| photos | right answer | no veto | " + " | ".join(f"veto < {p:g}" for p in VETO_LIMITS) + " |")
    print("| --- | --- | ---: | " + " | ".join("---:" for _ in VETO_LIMITS) + " |")
    for name, paths in {**pets, **others}.items():
        truth = name.split()[-1] if name in pets else None  # "validation cats" -> cats
        masses = []  # (answer, mass) of each detection
        for result in classify_paths(classifier, paths, top_k=3, workers=2, companion=vetoing):
            if result.ok and result.vetoed is not None:
                masses.append((result.vetoed["label"], result.vetoed["mass"]))
        if truth is not None:
            cells = [sum(label == truth and mass >= p for label, mass in masses) / len(paths) for p in (0.0, *VETO_LIMITS)]
            print(f"| {name} ({len(paths)}) | {truth} (right) | " + " | ".join(f"{c:.2%}" for c in cells) + " |")
        else:
            cells = [sum(mass >= p for _, mass in masses) / len(paths) for p in (0.0, *VETO_LIMITS)]
            print(f"| {name} ({len(paths)}) | nothing (called a pet) | " + " | ".join(f"{c:.2%}" for c in cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(shipped_model_path()))
    parser.add_argument("--looks-like", default=str(IMAGENET))
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-names", action="store_true", help="leave out what it names (2.)")
    parser.add_argument("--veto", action="store_true", help="also measure --looks-like-veto (cost, pets kept, false alarms)")
    parser.add_argument("--rescue", action="store_true", help="also time --looks-like-rescue 0.5 (cats, dogs)")
    args = parser.parse_args()
    if not DATA.is_dir() or not Path(args.looks_like).is_file():
        print(f"needs {DATA} and the companion {args.looks_like}", file=sys.stderr)
        return 2
    with quiet_native_info():
        classifier = Classifier(args.model, num_threads=1)
        companion = load_companion(args.looks_like, threads=1, pool_size=2)
        floor = companion.floor
        background = every_nth(find_images(DATA / "other"), args.photos)
        pets = every_nth(find_images(DATA / "cats_and_dogs_filtered" / "validation"), args.photos)
        print(f"model {Path(args.model).name}, companion {Path(args.looks_like).name} "
              f"({len(companion.names)} labels, floor {floor:g}), one thread, {args.repeats} repeats\n")
        vetoing = load_companion(args.looks_like, threads=1, pool_size=2, veto=2.0, veto_classes=PET_CLASSES) \
            if args.veto else None  # a limit above 1 vetoes every detection, so each reports its mass
        extras = {"a veto too": vetoing} if vetoing is not None else {}
        if args.rescue:  # the shipped model's labels, as --looks-like imagenet --looks-like-rescue 0.5 gives them
            extras["a rescue too"] = load_companion(args.looks_like, threads=1, pool_size=2, rescue=0.5,
                                                    rescue_as=(("cats", CAT_CLASSES), ("dogs", DOG_CLASSES)))
        measure_cost(classifier, companion, background, pets, args.repeats, extras)
        more_other = find_images(DATA / "more_other")
        folders = {"other": [str(p) for p in find_images(DATA / "other")]}
        for source in ("caltech101", "oxford17flowers", "intelscene"):
            folders[f"more_other: {source}"] = [str(p) for p in more_other if p.name.startswith(source + "_")]
        folders["lookalikes"] = [str(p) for p in find_images(DATA / "lookalikes")]
        folders["people"] = [str(p) for p in find_images(DATA / "people")]
        companion.floor = 0.0  # every best name, so the floors can be compared on one pass
        if not args.skip_names:
            measure_names(classifier, companion, folders, floor)
        if vetoing is not None:
            pets_folders = {"validation cats": DATA / "cats_and_dogs_filtered/validation/cats",
                            "validation dogs": DATA / "cats_and_dogs_filtered/validation/dogs",
                            "more_pets cats": DATA / "more_pets/cats", "more_pets dogs": DATA / "more_pets/dogs"}
            others = {"other": folders["other"], "more_other": [str(p) for p in more_other],
                      "lookalikes": folders["lookalikes"], "people": folders["people"]}
            measure_veto(classifier, vetoing, {k: [str(p) for p in find_images(v)] for k, v in pets_folders.items()}, others)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
