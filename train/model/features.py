"""Activations of the frozen part of the backbone, computed once and cached.

The backbone below the fine-tuned block never changes during training, so its
output (the *cut* activation) is computed once per photo and per *view*:

* view 0: the photo as the runner sees it;
* view 1: its mirror image;
* view 2, 3, …: random flips, rotations, zooms and contrast changes (seeded), and with ``--degrade`` a camera
  degradation of a share of the photos (:mod:`train.camera`).

Phase 1 trains the head on view 0 (pooled through the frozen top); phase 2, in
``cached`` mode, trains the top block on all views. Arrays are stored as
``float16`` ``.npy`` files in the cache directory, keyed by the decoded pixels,
the backbone and its weights, the cut and the view, so a resumed or repeated
run does not pay for them again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import keras
import numpy as np

from ..camera import NONE, Degradation
from .network import Network, make_augmentation
from ..progress import Progress

log = logging.getLogger(__name__)

ACTIVATION_DTYPE = np.float16


def weights_identity(weights: str) -> str:
    """A short identity of the initial weights for cache keys (file content digest for a path)."""
    if weights in ("imagenet", "none"):
        return weights
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def bottom_identity(network: Network) -> str:
    """A digest of the weights below the cut (``network.bottom``'s): the activations' true identity.

    The same for a run from a weights file and for a retrain from that run's ``model.keras`` (fine-tuning never
    changes the layers below the cut), so both share the cached activations.
    """
    digest = hashlib.sha256(network.backbone_tag.encode())
    for weights in network.bottom.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return "bottom:" + digest.hexdigest()


def extractor_for(network: Network, view: int, seed: int) -> keras.Model:
    """image float32 0–255 ``(None, S, S, 3)`` → cut activation, with ``view``'s transformation applied."""
    size = network.inference.input_shape[1:]
    image = keras.Input(size, name="image")
    x = image
    # View 1 (the mirror image) is flipped exactly in numpy by _view_batch.
    if view >= 2:
        x = make_augmentation(seed * 1000 + view, name=f"view_{view}")(x, training=True)
    return keras.Model(image, network.bottom(x), name=f"extract_view_{view}")


def _view_batch(batch: np.ndarray, view: int, *, degrade: Degradation = NONE, seed: int = 0,
                start: int = 0) -> np.ndarray:
    """uint8 ``(B, H, W, 3)`` → float32, mirrored left-right for view 1.

    A random view (2 and up) first gives ``degrade``'s share of its photos a camera degradation, drawn from
    ``(seed, view, start)`` so that the view is the same in every run (and its cache stays true).
    """
    if view >= 2 and degrade:
        batch = degrade.apply(batch, np.random.default_rng([seed, view, start]))
    out = batch.astype(np.float32)
    return out[:, :, ::-1, :] if view == 1 else out


def compute_activations(
    network: Network,
    pixels: np.ndarray,
    rows: np.ndarray,
    *,
    view: int,
    seed: int,
    batch_size: int,
    cache_file: Path | None,
    desc: str,
    progress: bool = True,
    degrade: Degradation = NONE,
) -> np.ndarray:
    """Cut activations ``float16`` ``(len(rows), h, w, c)`` of ``pixels[rows]`` under ``view``.

    Args:
        pixels: ``uint8`` ``(N, S, S, 3)`` decoded photos.
        rows: which rows of ``pixels``, in output order.
        cache_file: where to keep the result (read back when it exists).
        degrade: the camera degradations of a random view's photos (:mod:`train.camera`).
    """
    shape = (len(rows), *network.cut_shape)
    if cache_file is not None and cache_file.is_file():
        try:
            cached = np.load(cache_file, mmap_mode="r")
            if cached.shape == shape and cached.dtype == ACTIVATION_DTYPE:
                log.info("%s: reusing cached activations %s", desc, cache_file)
                return cached
        except (OSError, ValueError):
            pass
    extractor = extractor_for(network, view, seed)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f".{cache_file.stem}.{os.getpid()}.tmp.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=ACTIVATION_DTYPE, shape=shape)
    else:
        out = np.empty(shape, dtype=ACTIVATION_DTYPE)
    try:
        with Progress(len(rows), desc, "photo", enabled=progress) as bar:
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                batch = _view_batch(np.asarray(pixels[chunk]), view, degrade=degrade, seed=seed, start=start)
                out[start : start + len(chunk)] = np.asarray(extractor.predict_on_batch(batch)).astype(ACTIVATION_DTYPE)
                bar.update(len(chunk))
        if cache_file is not None:
            out.flush()
            del out
            os.replace(tmp, cache_file)
            return np.load(cache_file, mmap_mode="r")
    except BaseException:
        if cache_file is not None:
            tmp.unlink(missing_ok=True)
        raise
    return out


def activation_cache_file(
    cache_dir: Path | None,
    *,
    pixel_key: str,
    rows: np.ndarray,
    network: Network,
    weights_id: str,
    view: int,
    seed: int,
    degrade: Degradation = NONE,
) -> Path | None:
    """The cache file for one set of activations (``None`` without a cache directory)."""
    if cache_dir is None:
        return None
    parts = {
        "pixels": pixel_key,
        "rows": hashlib.sha256(np.ascontiguousarray(rows, dtype=np.int64).tobytes()).hexdigest(),
        "backbone": network.backbone_tag,
        "weights": weights_id,
        "cut": network.cut_name,
        "view": view,
        # Only the random views depend on the seed.
        "seed": seed if view >= 2 else None,
        "keras": keras.__version__,
    }
    if view >= 2 and degrade:  # absent otherwise: the caches made before --degrade stay valid
        parts["degrade"] = degrade.key()
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]
    return Path(cache_dir) / "activations" / f"{key}.npy"


def pool_activations(network: Network, activations: np.ndarray, *, batch_size: int, desc: str, progress: bool = True) -> np.ndarray:
    """Pooled features ``float32`` ``(N, C)`` of cut activations, through the frozen top of the backbone."""
    if network.caches_pooled:
        return np.asarray(activations, dtype=np.float32)
    out = np.empty((len(activations), network.feature_size), dtype=np.float32)
    step = max(batch_size, 64)
    with Progress(len(activations), desc, "photo", enabled=progress) as bar:
        for start in range(0, len(activations), step):
            batch = np.asarray(activations[start : start + step], dtype=np.float32)
            out[start : start + len(batch)] = np.asarray(network.pooled.predict_on_batch(batch))
            bar.update(len(batch))
    return out
