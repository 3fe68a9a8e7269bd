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

from edge_runner.common.run_layout import RunLayout

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
