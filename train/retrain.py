"""``--init-from RUN``: retrain from a previous run, in minutes, with one more source (a review export).

The configuration is RUN's ``config.json`` with what the command line gives on top (:func:`inherit`):

* ``--data``, ``--background``, ``--holdout-source`` and ``--source-weight`` **add** to RUN's lists (the user adds one
  source: ``--data door=EXPORT``); a folder RUN already has is not added twice, so the command a retrained run
  writes (``config.json`` → ``to_command``) repeats it;
* any other flag given replaces RUN's value; ``--out``, ``--resume``, ``--overwrite``, ``--quiet`` and
  ``--workers`` are this run's own;
* the schedule is a retrain's, not RUN's (:data:`RETRAIN_DEFAULTS`), unless given: no head phase (RUN's head is
  trained) and :data:`RETRAIN_DEFAULTS` fine-tuning epochs of the head and RUN's fine-tuned top layers, on cached
  activations, at RUN's fine-tuning learning rate.

A ``config.json`` of an older kit is read leniently: ``width`` is ``alpha``, options this kit does not know are
dropped (and named in one warning line), options it does not have take their defaults.
The model starts from RUN's ``model.keras`` weights (:func:`load_run_weights`); the classes must be RUN's
(:func:`check_labels`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Iterable

from edge_runner.common.console import print_warning

from .config import TrainConfig
from .errors import ConfigError, DataError
from .options import options_of

log = logging.getLogger(__name__)

# List options whose values given on the command line are added to RUN's.
ADDED = ("data", "background", "holdout_sources", "source_weights")
# This run's own: never taken from RUN.
OWN = ("out", "resume", "overwrite", "verbose", "workers", "init_from")
# A retrain's schedule, unless given (measured in train/README.md, "Retrain from the last run").
RETRAIN_DEFAULTS = {"epochs": 0, "fine_tune_epochs": 3}
RENAMED = {"width": "alpha"}
RUN_FILES = ("model.keras", "config.json", "contract.json", "split.json")


def check_run(run: str | Path) -> Path:
    """RUN resolved; ``ConfigError`` naming ``--init-from`` when it is not a finished training run."""
    path = Path(run).expanduser()
    if not path.is_dir():
        raise ConfigError(f"--init-from {run}: {'no such directory' if not path.exists() else 'not a directory'}")
    missing = [name for name in RUN_FILES if not (path / name).is_file()]
    if missing:
        raise ConfigError(f"--init-from {run}: not a finished training run (no {', '.join(missing)})")
    return path.resolve()


def run_settings(run: Path, prog: str = "train") -> dict[str, Any]:
    """RUN's ``config.json`` as ``TrainConfig`` keyword arguments (older names mapped, unknown ones dropped)."""
    try:
        data = json.loads((run / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--init-from {run}: cannot read config.json ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--init-from {run}: config.json is not an object of options")
    known = {f.name for f in fields(TrainConfig)}
    settings = {RENAMED.get(key, key): value for key, value in data.items()}
    dropped = sorted(set(settings) - known)
    if dropped:
        print_warning(prog, f"--init-from {run}: ignoring options this version does not know: {', '.join(dropped)}")
    return {key: value for key, value in settings.items() if key in known}


def _merged_list(old: Iterable[str], new: Iterable[str]) -> list[str]:
    """``old`` then the items of ``new`` not already there (folders compared resolved, ``NAME=`` kept)."""
    def key(item: str) -> str:
        name, sep, path = str(item).partition("=")
        target = path if sep and Path(path).expanduser().exists() else item
        return str(Path(target).expanduser().resolve()) if Path(target).expanduser().exists() else str(item)

    merged = list(old)
    seen = {key(i) for i in merged}
    for item in new:
        if key(item) not in seen:
            merged.append(item)
            seen.add(key(item))
    return merged


def inherit(config: TrainConfig, given: Iterable[str]) -> TrainConfig:
    """``config`` (from the command line; ``given``: the fields set there) on top of ``--init-from RUN``'s settings.

    Raises:
        ConfigError: RUN is not a finished run or its ``config.json`` is unreadable.
    """
    run = check_run(config.init_from)
    settings = run_settings(run)
    given = set(given)
    values: dict[str, Any] = {}
    for f, _ in options_of(TrainConfig):
        mine = getattr(config, f.name)
        if f.name in OWN:
            values[f.name] = mine
        elif f.name in ADDED:
            theirs = settings.get(f.name) or []
            values[f.name] = _merged_list([theirs] if isinstance(theirs, str) else theirs, mine or [])
        elif f.name in given:
            values[f.name] = mine
        elif f.name in RETRAIN_DEFAULTS:
            values[f.name] = RETRAIN_DEFAULTS[f.name]
        elif f.name in settings:
            values[f.name] = settings[f.name]
        else:
            values[f.name] = f.default if f.default is not MISSING else f.default_factory()
    values["init_from"] = str(run)
    return TrainConfig(**values)


def retrain_config(run: str | Path, **given: Any) -> TrainConfig:
    """For Python: ``run_training(retrain_config(RUN, data=["door=EXPORT"], out="runs/new"))``; ``given`` as flags."""
    base = TrainConfig(data=given.pop("data", []), out=given.pop("out", ""), init_from=str(run), **given)
    return inherit(base, given)


def check_labels(config: TrainConfig, labels: tuple[str, ...]) -> None:
    """``DataError`` when the classes found differ from RUN's (its ``contract.json``)."""
    run = Path(config.init_from)
    try:
        theirs = tuple(json.loads((run / "contract.json").read_text(encoding="utf-8"))["labels"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--init-from {run}: cannot read the labels of contract.json ({exc})") from None
    if tuple(labels) != theirs:
        raise DataError(f"--init-from {run}: the classes found {list(labels)} differ from the run's {list(theirs)}; "
                        "a retrain keeps the run's classes (an export's labels must be among them)")


def load_run_weights(network: Any, config: TrainConfig) -> None:
    """Set every weight of ``network.inference`` from RUN's ``model.keras`` (same backbone, width, size, classes)."""
    import keras

    path = Path(config.init_from) / "model.keras"
    try:
        saved = keras.saving.load_model(path, compile=False)
        if any(layer.name in ("rescue", "veto") for layer in saved.layers):
            # RUN's model holds a rescue head (train/model/rescue.py) or a distance veto (train/model/veto.py),
            # which this run fits again after its own training: every other layer's weights, by name.
            for layer in network.inference.layers:
                if layer.weights:
                    layer.set_weights(saved.get_layer(layer.name).get_weights())
        else:
            network.inference.set_weights(saved.get_weights())
    except Exception as exc:  # noqa: BLE001 - Keras raises ValueError, OSError or its own errors for a bad file
        reason = " ".join(str(exc).split())[:200]
        raise ConfigError(f"--init-from {config.init_from}: model.keras does not fit --backbone {config.backbone} "
                          f"--width {config.alpha} --image-size {config.image_size} ({reason})") from None
    log.info("starting from %s", path)


def given_fields(parser: Any, argv: list[str]) -> set[str]:
    """The ``TrainConfig`` fields ``argv`` sets explicitly (parsed again with every default suppressed)."""
    import argparse

    for action in parser._actions:  # noqa: SLF001 - argparse has no public way to list them
        action.default = argparse.SUPPRESS
        action.required = False
    return set(vars(parser.parse_args(argv)))


def describe(config: TrainConfig) -> str:
    """One log line: where the retrain starts and what it adds."""
    settings = run_settings(Path(config.init_from))
    added = [d for d in config.data if d not in (settings.get("data") or [])]
    return (f"retraining from {config.init_from} with {', '.join(added) or 'no new --data'}: head epochs "
            f"{config.epochs}, fine-tuning epochs {config.fine_tune_epochs} at {config.fine_tune_learning_rate:g}")
