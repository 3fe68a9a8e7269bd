"""The model card's figures: each shipped variant on the validation photos, through the runner.

    python tests/benchmarks/eval_shipped.py [--data ../shared/data/cats_and_dogs_filtered/validation]
        [--background ../shared/data/other] [--seed 0] [--models models/*.tflite]

Prints markdown: accuracy and per-class precision / recall / F1 for every
``models/*.tflite`` (decode → resize → invoke, exactly the runner's path, with
the contract's recommended threshold applied), the int8-vs-float16 agreement,
then per threshold the recall of the real classes on the validation photos and
the false alarms (a real label) on the held-out part of the background folder
(the photos the seeded split of training kept out: ``train.data.split.background_split``),
and the scores the model gives to generated inputs that are neither a cat nor a dog.
Older models without a background class are measured the same way (any label
counts as an alarm), so the figures of two models can be compared.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edge_runner import Classifier, preprocess  # noqa: E402
from edge_runner.core.image import find_images  # noqa: E402
from edge_runner.core.spec import UNKNOWN_LABEL  # noqa: E402
from train.data.split import background_split  # noqa: E402 (numpy + the standard library only, no TensorFlow)

THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def photos_with_labels(root: Path) -> list[tuple[Path, str]]:
    return [(p, p.parent.name) for p in find_images(root)]


def neither_images(seed: int = 0, count: int = 40) -> list[Image.Image]:
    """Inputs that are no cat and no dog: noise, flat colours, gradients, shapes, stripes."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(count):
        kind = i % 5
        if kind == 0:
            array = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
        elif kind == 1:
            array = np.full((224, 224, 3), rng.integers(0, 256, 3), dtype=np.uint8)
        elif kind == 2:
            ramp = np.linspace(0, 255, 224, dtype=np.float32)
            array = np.stack([np.tile(ramp, (224, 1)), np.tile(ramp[:, None], (1, 224)), np.full((224, 224), rng.integers(0, 256))], -1).astype(np.uint8)
        elif kind == 3:
            image = Image.new("RGB", (224, 224), tuple(int(v) for v in rng.integers(0, 256, 3)))
            draw = ImageDraw.Draw(image)
            for _ in range(6):
                x0, y0 = (int(v) for v in rng.integers(0, 180, 2))
                draw.rectangle((x0, y0, x0 + 40, y0 + 40), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
            images.append(image)
            continue
        else:
            stripes = (np.arange(224)[None, :] // int(rng.integers(4, 32)) % 2) * 255
            array = np.repeat(np.repeat(stripes, 224, 0)[..., None], 3, -1).astype(np.uint8)
        images.append(Image.fromarray(array))
    return images


def curves_for(curves: dict, variant: str):
    return next(value for (name, _), value in curves.items() if name == variant)


def recall_and_false_alarms(spec, probabilities: np.ndarray, truth: list[str], background: np.ndarray, threshold: float):
    """Share of ``truth`` photos given their label at score ≥ threshold; share of background photos given a real label."""
    labels = np.array(spec.labels)
    top, score = probabilities.argmax(axis=1), probabilities.max(axis=1)
    recall = float(np.mean((labels[top] == np.array(truth)) & (score >= threshold)))
    bg_top, bg_score = background.argmax(axis=1), background.max(axis=1)
    alarms = float(np.mean([spec.is_detection(str(labels[i])) and s >= threshold for i, s in zip(bg_top, bg_score)]))
    return recall, alarms


def metrics(truth: list[str], predicted: list[str], labels: tuple[str, ...]) -> dict:
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=list(labels), zero_division=0)
    accuracy = float(np.mean([t == p for t, p in zip(truth, predicted)]))
    return {"accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1, "support": support}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "cats_and_dogs_filtered" / "validation")
    parser.add_argument("--models", type=Path, nargs="*", default=sorted((REPO / "models").glob("*.tflite")))
    parser.add_argument("--background", type=Path, default=REPO.parent / "shared" / "data" / "other",
                        help="the background folder training used; its held-out part is measured")
    parser.add_argument("--seed", type=int, default=0, help="the training run's --seed (make model: 0)")
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    args = parser.parse_args(argv)
    photos = photos_with_labels(args.data)
    if not photos:
        print(f"eval_shipped: error: {args.data}: no photos", file=sys.stderr)
        return 2
    held_out: list[Path] = []
    if args.background.is_dir():
        _, held_out = background_split(args.background, validation_fraction=args.validation_fraction, seed=args.seed)
    else:
        print(f"eval_shipped: warning: --background {args.background}: not a directory; no false-alarm figures", file=sys.stderr)
    top_labels: dict[str, list[str]] = {}
    print(f"{len(photos)} photos from {args.data}\n")
    print("| Variant | File (MB) | Accuracy | Class | Precision | Recall | F1 | Photos |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    neither = neither_images()
    neither_scores, photo_scores, curves, neither_alarms = {}, {}, {}, {}
    for model_path in args.models:
        classifier = Classifier(model_path, num_threads=1)
        spec = classifier.spec
        probabilities = np.stack([classifier.probabilities(preprocess(path, spec).array) for path, _ in photos])
        background_probs = np.stack([classifier.probabilities(preprocess(path, spec).array) for path in held_out]) if held_out else None
        curves[(classifier.variant, model_path)] = (spec, probabilities, background_probs)
        predictions = [classifier.classify(preprocess(path, spec).array) for path, _ in photos]
        predicted = [p.label for p in predictions]
        photo_scores[classifier.variant] = np.array([p.score for p in predictions])
        top_labels[classifier.variant] = predicted
        result = metrics([label for _, label in photos], predicted, (*spec.labels, UNKNOWN_LABEL))
        shown = [i for i, label in enumerate(spec.labels) if result["support"][i]]  # classes among the photos
        for i, label in enumerate(spec.labels):
            if i not in shown:
                continue
            head = (classifier.variant, f"{classifier.size_bytes / 1e6:.2f}", f"{100 * result['accuracy']:.2f}%") if i == shown[0] else ("", "", "")
            print(
                f"| {' | '.join(head)} | {label} | {100 * result['precision'][i]:.2f}% | "
                f"{100 * result['recall'][i]:.2f}% | {100 * result['f1'][i]:.2f}% | {result['support'][i]} |"
            )
        answers = [classifier.classify(np.asarray(image.resize(spec.size, Image.Resampling.BILINEAR))) for image in neither]
        neither_scores[classifier.variant] = np.array([a.score for a in answers])
        neither_alarms[classifier.variant] = float(np.mean([a.detected for a in answers]))
    print("\n(Labels as the runner gives them, the contract's recommended threshold applied: below it `unknown`.)")
    variants = list(top_labels)
    if len(variants) >= 2:
        a, b = variants[0], variants[1]
        first, second = (np.argmax(curves_for(curves, v)[1], axis=1) for v in (a, b))
        print(f"\nTop-1 agreement {a} vs {b} on the {len(photos)} validation photos (no threshold): "
              f"{100 * np.mean(first == second):.2f}%")
    if held_out:
        truth = [label for _, label in photos]
        print(f"\nRecall (cat/dog photos given their right label, {len(photos)} validation photos) and false alarms "
              f"(held-out background photos given a real label: {len(held_out)} of {args.background}, seed {args.seed}) per threshold:\n")
        print("| Variant | Threshold | Recall | False alarms | |")
        print("|---|---:|---:|---:|---|")
        for (variant, _), (spec, probs, bg_probs) in curves.items():
            for threshold in sorted({*THRESHOLDS, *([spec.threshold] if spec.threshold is not None else [])}):
                recall, alarms = recall_and_false_alarms(spec, probs, truth, bg_probs, threshold)
                mark = "contract's threshold" if spec.threshold == threshold else ""
                print(f"| {variant} | {threshold:.2f} | {100 * recall:.2f}% | {100 * alarms:.2f}% "
                      f"({round(alarms * len(held_out))}/{len(held_out)}) | {mark} |")
    print(f"\nTop score on {len(neither)} generated inputs that are neither cat nor dog (noise, flat colours, gradients, shapes, stripes):\n")
    for variant, share in neither_alarms.items():
        print(f"- {variant}: {100 * share:.1f}% of them called cat or dog (the contract's threshold applied)")
    print()
    print("| Inputs | Variant | min | median | max | share ≥ 0.8 | share ≥ 0.9 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, table in (("neither (generated)", neither_scores), ("validation photos", photo_scores)):
        for variant, scores in table.items():
            print(
                f"| {name} | {variant} | {scores.min():.3f} | {np.median(scores):.3f} | {scores.max():.3f} | "
                f"{100 * np.mean(scores >= 0.8):.1f}% | {100 * np.mean(scores >= 0.9):.1f}% |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
