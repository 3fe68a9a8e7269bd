"""Grad-CAM in the training report, and ``python -m train explain RUN photo.jpg … --out DIR``.

The report grid (``gradcam.png`` in the run's directory) shows the worst
mistakes (most confident wrong answers first) and the most confident correct
photos of each class, each with its Grad-CAM map drawn over it and titled with
the file, the true class, the answer and its score.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edge_runner.common.console import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Parser, parse_args, print_error
from edge_runner.explain.heatmap import overlay, save_png
from edge_runner.common.run_layout import PLOT_FILENAMES, RunLayout
from edge_runner.common.files import write_figure
from edge_runner.common.native_log import quiet_tensorflow_logs

PROG = "train explain"  # error lines: `train explain: error: …` (edge_runner.common.console's convention)
GRID_FILENAME = PLOT_FILENAMES["gradcam"]
SUFFIX = ".gradcam.png"

log = logging.getLogger(__name__)


def pick_examples(evaluation: Any, mistakes: int = 8, per_class: int = 2) -> list[tuple[int, bool]]:
    """``(index, is_mistake)``: the ``mistakes`` worst mistakes, then the ``per_class`` most confident correct photos per class."""
    chosen = [(int(i), True) for i in evaluation.worst_mistakes(mistakes)]
    predicted = evaluation.predictions
    for k in range(len(evaluation.labels)):
        right = np.flatnonzero((evaluation.y_true == k) & (predicted == k))
        order = right[np.argsort(-evaluation.probabilities[right, k], kind="stable")]
        chosen.extend((int(i), False) for i in order[:per_class])
    return chosen


def plot_gradcam_grid(model: Any, evaluation: Any, pixels: Any, names: list[str], path: str | os.PathLike[str], *,
                      mistakes: int = 8, per_class: int = 2) -> Path:
    """Write the report grid PNG.

    Args:
        model: the Keras classifier (raw 0–255 RGB in, softmax out).
        evaluation: :class:`train.report.evaluate.Evaluation` of ``model`` on these photos.
        pixels: indexable ``uint8`` ``(H, W, 3)`` photos as the model saw them, in evaluation order.
        names: their file names, same order.
    """
    from matplotlib.figure import Figure

    from .gradcam import GradCamExplainer

    explainer = GradCamExplainer(model)
    examples = pick_examples(evaluation, mistakes, per_class)
    columns = min(4, max(1, len(examples)))
    rows = max(1, math.ceil(len(examples) / columns))
    figure = Figure(figsize=(3.0 * columns, 3.4 * rows))
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.axis("off")
    labels = evaluation.labels
    for ax, (index, wrong) in zip(axes, examples):
        image = np.asarray(pixels[index])
        predicted = int(evaluation.predictions[index])
        cam = explainer.explain(image, class_index=predicted)
        ax.imshow(overlay(image, cam.grid))
        ax.set_title(
            f"{Path(names[index]).name}\ntrue {labels[evaluation.y_true[index]]} · said {labels[predicted]} {cam.score:.3f}",
            fontsize=8, color="firebrick" if wrong else "black",
        )
    figure.suptitle(
        f"Grad-CAM ({explainer.feature.name}): worst mistakes (red), then the surest correct photos per class", fontsize=10
    )
    return write_figure(figure, path, dpi=110, bbox_inches="tight")


def write_report_grid(out: Path, model: Any, evaluation: Any, pixels: Any, names: list[str]) -> dict[str, str]:
    """The training run's hook: ``{"gradcam": file name}``, or ``{}`` (logged) when the model cannot be explained."""
    from .gradcam import GradCamError

    try:
        plot_gradcam_grid(model, evaluation, pixels, names, out / GRID_FILENAME)
    except GradCamError as exc:
        log.warning("no Grad-CAM grid: %s", exc)
        return {}
    return {"gradcam": GRID_FILENAME}


# -- python -m train explain ---------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=f"python -m {PROG}",
        error_prog=PROG,
        description="Draw Grad-CAM maps of a trained run's model over photos: which part of each photo the answer used.",
        epilog="Exit status: 0 all photos explained, 1 some photos failed, 2 bad arguments or an unusable run.",
    )
    parser.add_argument("run", metavar="RUN", help="a training output directory (holds model.keras and contract.json)")
    parser.add_argument("inputs", nargs="+", metavar="PHOTO", help="image files, directories (recursive) or glob patterns")
    parser.add_argument("--out", required=True, metavar="DIR", help="where <photo stem>.gradcam.png files are written")
    parser.add_argument("--label", default=None, metavar="LABEL",
                        help="explain this class instead of each photo's answer (one of the run's labels)")
    return parser


def load_run(run: Path) -> tuple[Any, Any]:
    """``(keras model, InputSpec)`` of a training run; raises ValueError naming the file when unusable."""
    from edge_runner.core.spec import ContractError, InputSpec

    layout = RunLayout(run)
    model_path, contract_path = layout.model, layout.contract
    for path in (model_path, contract_path):
        if not path.is_file():
            raise ValueError(f"RUN {run}: {path.name} not found (pass the --out directory of `python -m train`)")
    try:
        spec = InputSpec.load(contract_path)
    except ContractError as exc:
        raise ValueError(str(exc)) from None
    import keras

    try:
        model = keras.saving.load_model(model_path)
    except Exception as exc:  # noqa: BLE001  (Keras raises many types for a bad file)
        raise ValueError(f"{model_path}: cannot load the Keras model ({' '.join(str(exc).split())[:200]})") from None
    return model, spec


def explain_photos(run: Path, inputs: Sequence[str], out: Path, label: str | None = None) -> int:
    """Explain each photo into ``out``; print one line per photo; return the exit status."""
    from edge_runner.cli.batch import collect_inputs
    from edge_runner.core.image import ImageError, open_image, preprocess

    from .gradcam import GradCamError, GradCamExplainer

    try:
        model, spec = load_run(run)
        explainer = GradCamExplainer(model)
    except (ValueError, GradCamError) as exc:
        print_error(PROG, str(exc))
        return EXIT_USAGE
    class_index = None
    if label is not None:
        if label not in spec.labels:
            print_error(PROG, f"--label must be one of {list(spec.labels)}, received {label!r}")
            return EXIT_USAGE
        class_index = spec.labels.index(label)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print_error(PROG, f"--out {out}: cannot create the directory ({exc.strerror})")
        return EXIT_USAGE
    collected = collect_inputs(inputs)
    for error in collected.errors:
        print_error(PROG, error)
    failed, used = len(collected.errors), set()
    for source in collected.paths:
        try:
            pixels = preprocess(source, spec).array
            cam = explainer.explain(pixels, class_index=class_index)
            drawn = overlay(open_image(source, draft_size=(448, 448)), cam.grid)
            stem, n = Path(source).stem, 1
            name = stem
            while name in used:  # two photos with the same stem: keep both
                n += 1
                name = f"{stem}-{n}"
            used.add(name)
            target = save_png(drawn, out / f"{name}{SUFFIX}")
        except ImageError as exc:
            failed += 1
            print_error(PROG, str(exc))
            continue
        except OSError as exc:
            failed += 1
            print_error(PROG, f"{out}: cannot write the PNG for {source} ({exc.strerror or exc})")
            continue
        print(f"{source}  {spec.labels[cam.class_index]}  {cam.score:.3f}  {target}", flush=True)
    return EXIT_FAILED if failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m train explain``; return the exit status (0 ok, 1 some photos failed, 2 usage or run error)."""
    args = parse_args(build_parser(), argv, needs_extra="train", prog=PROG)
    if isinstance(args, int):
        return args
    quiet_tensorflow_logs()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return explain_photos(Path(args.run), args.inputs, Path(args.out), args.label)
