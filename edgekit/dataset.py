"""The main job's default photos: the public cats_and_dogs_filtered archive, downloaded once and verified by content."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from .errors import PipelineError

DATA_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"
# The archive itself is not checksummed upstream, so the download is verified by
# its content: SHA-256 over `sha256sum` lines of every known photo, sorted by
# path (cat.459 is absent from the reference copy and left out).
DATA_CONTENT_SHA256 = "054a87815e655befbc5be8f8ae12fcddb3edea06bf68adf5153d37d0df92bae8"
DATA_PHOTOS = 2999
VERIFIED_MARK = ".edgekit-verified"


def content_digest(root: Path) -> tuple[str, int]:
    """SHA-256 over ``<sha256>  ./<relative path>`` lines of every ``.jpg`` under ``root``, sorted; and their count.

    Equivalent to ``find . -name '*.jpg' | sort | xargs sha256sum | sha256sum``.
    """
    lines = []
    files = sorted(root.rglob("*.jpg"), key=lambda p: "./" + p.relative_to(root).as_posix())
    for path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  ./{path.relative_to(root).as_posix()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest(), len(files)


def fetch_data(cache_dir: Path | None = None) -> Path:
    """Download (once, cached by Keras) and verify the public cats_and_dogs_filtered archive.

    Returns the extracted ``cats_and_dogs_filtered`` directory (``train/`` and
    ``validation/``, one folder per class). Raises ``PipelineError`` when the
    content does not match the known photos.
    """
    import keras

    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)  # Keras falls back to /tmp/.keras for a missing folder
    archive = keras.utils.get_file(
        "cats_and_dogs_filtered.zip",
        origin=DATA_URL,
        extract=True,
        cache_dir=str(cache_dir) if cache_dir else None,
    )
    archive = Path(archive)
    candidates = [archive / "cats_and_dogs_filtered", archive, archive.parent / "cats_and_dogs_filtered"]
    root = next((c for c in candidates if (c / "train").is_dir() and (c / "validation").is_dir()), None)
    if root is None:
        raise PipelineError(f"data: the archive from {DATA_URL} did not contain train/ and validation/ (looked in {archive})")
    verified = root / VERIFIED_MARK
    if not verified.exists():
        digest, count = _reference_digest(root)
        if digest != DATA_CONTENT_SHA256:
            raise PipelineError(
                f"data: the downloaded photos in {root} do not match the known set "
                f"({count} photos, content sha256 {digest}, expected {DATA_PHOTOS} photos and {DATA_CONTENT_SHA256})"
            )
        verified.write_text(digest + "\n")
    return root


def _reference_digest(root: Path) -> tuple[str, int]:
    """``content_digest`` of the photos the reference copy has (cat.459 is not among them), via hard links."""
    reference = root.parent / "cats_and_dogs_filtered.reference"
    shutil.rmtree(reference, ignore_errors=True)
    reference.mkdir()
    try:
        for sub in ("train", "validation"):
            for path in (root / sub).rglob("*.jpg"):
                if path.name != "cat.459.jpg":
                    target = reference / path.relative_to(root)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.link(path, target)
        return content_digest(reference)
    finally:
        shutil.rmtree(reference, ignore_errors=True)
