"""The run's output folder (``--out``): checked before a run, then written through
:class:`edge_runner.common.run_layout.RunLayout`.

The file names live in the kit-wide ``run_layout`` (``convert`` reads through it too); this
module decides *when* and *how* they are written: nothing before the options are checked,
``--overwrite`` removes exactly the files a run writes, the model through a temporary file and a rename.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from edge_runner.common.run_layout import CHECKPOINT_DIR, CONFIG_FILENAME, MODEL_FILENAME, PLOT_FILENAMES, SKIPPED_FILENAME, \
    SPLIT_FILENAME, RunLayout
from edge_runner.core.spec import CONTRACT_FILENAME, LABELS_FILENAME

from .config import TrainConfig
from .errors import ConfigError


def prepare_out_dir(config: TrainConfig) -> bool:
    """Check ``--out`` against ``--resume``/``--overwrite``; returns whether a previous run is resumed.

    Nothing is written here (``--overwrite`` removes the previous run's files).

    Raises:
        ConfigError: ``--out`` is a file, holds another run without ``--resume``/``--overwrite``,
            or was trained with different options than the resumed run.
    """
    out = Path(config.out)
    layout = RunLayout(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {config.out}: exists and is not a directory")
    # A run counts once it has finished an epoch or written a model; one that failed
    # before that (bad weights file, Ctrl-C while decoding) has nothing to lose.
    has_run = layout.state.is_file() or layout.model.is_file()
    if has_run and config.overwrite:
        shutil.rmtree(layout.checkpoints, ignore_errors=True)
        for path in layout.run_files():
            path.unlink(missing_ok=True)
        has_run = False
    if has_run and not config.resume:
        raise ConfigError(
            f"--out {config.out}: already holds a training run; pass --resume to continue it, "
            "--overwrite to replace it, or choose another --out"
        )
    if has_run and layout.config.is_file():
        old = TrainConfig.load(layout.config)
        differences = config.differences(old)
        if differences:
            details = ", ".join(f"{key}: {getattr(old, key)!r} then, {getattr(config, key)!r} now" for key in differences)
            raise ConfigError(f"--resume: {config.out} was trained with other options ({details}); use the same options or a new --out")
    return has_run and layout.state.is_file()


def ensure_writable(path: Path, flag: str) -> Path:
    """Create ``path`` and check a file can be written there; ``ConfigError`` naming ``flag`` when not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None
    return path


def save_model(model: Any, path: Path) -> Path:
    """``model.save`` via a temporary ``.keras`` file and a rename: never a half-written model."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_plots(out: Path, evaluation: Any, states: dict, pixels: Any, names: list[str], thresholds: Any = None,
                model: Any = None) -> dict[str, str]:
    """The PNG plots; returns ``{kind: file name}`` of everything in ``out`` (for the report).

    ``pixels[i]`` is validation photo ``names[i]`` (0–255 float32 ``(H, W, 3)``); a plot that
    does not apply (no ROC curve, no thresholds) is removed so a resumed run leaves no stale one.
    """
    from .plots import plot_confusion, plot_history, plot_mistakes, plot_roc, plot_thresholds

    layout = RunLayout(out)
    files = {"model": MODEL_FILENAME, "contract": CONTRACT_FILENAME, "labels": LABELS_FILENAME, "split": SPLIT_FILENAME,
             "config": CONFIG_FILENAME, "skipped": SKIPPED_FILENAME, "checkpoints": CHECKPOINT_DIR + "/"}
    plot_history({name: states[name].history for name in ("head", "fine_tune")}, layout.plot("training_curves"))
    plot_confusion(evaluation, layout.plot("confusion_matrix"))
    files.update(training_curves=PLOT_FILENAMES["training_curves"], confusion_matrix=PLOT_FILENAMES["confusion_matrix"])
    if evaluation.roc_fpr.size:
        plot_roc(evaluation, layout.plot("roc"))
        files["roc"] = PLOT_FILENAMES["roc"]
    else:
        layout.plot("roc").unlink(missing_ok=True)
    plot_mistakes(evaluation, pixels, names, layout.plot("worst_mistakes"))
    files["worst_mistakes"] = PLOT_FILENAMES["worst_mistakes"]
    if thresholds is not None:
        plot_thresholds(thresholds, layout.plot("thresholds"))
        files["thresholds"] = PLOT_FILENAMES["thresholds"]
    else:
        layout.plot("thresholds").unlink(missing_ok=True)
    if model is not None:
        from .explain import write_report_grid

        files.update(write_report_grid(out, model, evaluation, pixels, names))
    return files
