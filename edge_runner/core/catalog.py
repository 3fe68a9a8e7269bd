"""Companion classifiers known by name (``--looks-like imagenet``), downloaded once into the cache.

A name stands for a public model, where to download it and its labels, the model's pinned size and SHA-256, and
named output ranges for the veto and the rescue (``pets``, ``other-animals``, ``cats``, ``dogs``). :func:`fetch`
downloads what the cache (``$EDGEKIT_CACHE_DIR``, else ``~/.cache/edgekit``; then ``companions/NAME/``) lacks,
checks it in memory, then writes it atomically: an interrupted, truncated or altered download never leaves a file
that looks whole, and the next run downloads again. ``$EDGEKIT_MIRROR`` is a base URL (``https://``, ``http://`` or
``file://``) holding the same file names, for a machine that cannot reach the original host. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..common.files import cache_root, write_atomic
from .companion import BACKGROUND_NAMES, CompanionError

MIRROR_ENV = "EDGEKIT_MIRROR"
TIMEOUT_SECONDS = 60
MAX_BYTES = 64 << 20  # the most read of a file without a pinned size (a labels file is a few KB)


@dataclass(frozen=True)
class RemoteFile:
    """One file to download: its name in the cache (and on a mirror), where it lives, and how to check it.

    ``sha256``/``size``: pinned, or ``None`` for a text file checked by its shape (``lines``) instead, since line
    endings may differ between copies of the same labels.
    """

    name: str
    url: str
    sha256: str | None = None
    size: int | None = None
    lines: int | None = None


@dataclass(frozen=True)
class KnownCompanion:
    """A companion classifier ``--looks-like NAME`` downloads: its model, its labels, and named output ranges."""

    name: str
    summary: str
    model: RemoteFile
    labels: RemoteFile
    ranges: dict[str, str] = field(default_factory=dict)
    rescue_as: tuple[str, ...] = ()  # ``--looks-like-rescue``'s default labels: each means the range of its name


_CORAL = "https://raw.githubusercontent.com/google-coral/test_data/master/"
IMAGENET = KnownCompanion(
    name="imagenet",
    summary="MobileNetV2 1.0 ImageNet classifier, 224 px, int8, 1,001 outputs (Coral test data, Apache-2.0)",
    model=RemoteFile("tf2_mobilenet_v2_1.0_224_ptq.tflite", _CORAL + "tf2_mobilenet_v2_1.0_224_ptq.tflite",
                     sha256="5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c", size=4_070_174),
    labels=RemoteFile("imagenet_labels.txt", _CORAL + "imagenet_labels.txt", lines=1001),
    ranges={
        "pets": "152-269,282-286",  # its 118 dog breeds and 5 domestic cats
        "cats": "282-286",  # tabby, tiger cat, Persian, Siamese, Egyptian cat
        "dogs": "152-269",  # Chihuahua ... Mexican hairless
        "other-animals": "1-151,270-281,287-398",  # its animals that are neither: wolves, foxes, big cats, raccoons...
        # what it names on a face close-up: bathing and shower caps, masks (4 kinds), sunglass(es), lipstick, face
        # powder, sunscreen, hair spray, a neck brace, a wig
        "face-wear": "434,552,571,586,630,644,679,692,794,797,837-839,904",
    },
    rescue_as=("cats", "dogs"),  # the labels of the kit's cats_dogs model
)
KNOWN = {companion.name: companion for companion in (IMAGENET,)}


@dataclass(frozen=True)
class Fetched:
    """A known companion's files in the cache, checked."""

    companion: KnownCompanion
    model: Path
    labels: Path


def known(name: str) -> KnownCompanion | None:
    """The known companion called ``name`` (case-insensitive), else ``None``."""
    return KNOWN.get(name.strip().lower())


def fetch(companion: KnownCompanion, *, cache_dir: Path | None = None, mirror: str | None = None) -> Fetched:
    """``companion``'s model and labels in ``cache_dir/companions/NAME/``, downloading (and checking) what is missing.

    Args:
        cache_dir: default :func:`cache_root`.
        mirror: a base URL replacing each file's own; default ``$EDGEKIT_MIRROR``, else none.

    Raises:
        CompanionError: one line naming ``--looks-like NAME``, the URL and what went wrong (unreachable, HTTP error,
            wrong size or checksum, not the expected labels); nothing is left in the cache then.
    """
    folder = (cache_dir or cache_root()) / "companions" / companion.name
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    paths = []
    for remote in (companion.model, companion.labels):
        path = folder / remote.name
        if not path.is_file() or _problem(remote, path.read_bytes()) is not None:
            _download(companion, remote, path, mirror)
        paths.append(path)
    return Fetched(companion, *paths)


def _url(remote: RemoteFile, mirror: str | None) -> str:
    return f"{mirror.rstrip('/')}/{remote.name}" if mirror else remote.url


def _download(companion: KnownCompanion, remote: RemoteFile, path: Path, mirror: str | None) -> None:
    """Download ``remote`` into memory (a few MB), check it, and only then write it to ``path`` atomically."""
    import urllib.error  # here, not at the top: every runner start imports this module, few download
    import urllib.request
    url = _url(remote, mirror)
    where = f"--looks-like {companion.name}: {url}"
    print(f"downloading {url} to {path}", file=sys.stderr, flush=True)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (https/file URLs)
            data = response.read((remote.size or MAX_BYTES) + 1)  # a pinned size and one byte more tells "too long"
    except urllib.error.HTTPError as exc:
        raise CompanionError(f"{where}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CompanionError(f"{where}: cannot download it ({reason}); download {remote.name} yourself and "
                             f"give its path to --looks-like, or set ${MIRROR_ENV} to a copy") from None
    problem = _problem(remote, data)
    if problem is not None:
        raise CompanionError(f"{where}: {problem}; nothing was kept")
    write_atomic(path, data)


def _problem(remote: RemoteFile, data: bytes) -> str | None:
    """What is wrong with ``data`` as ``remote`` (one phrase), or ``None`` when it checks out."""
    if remote.size is not None and len(data) != remote.size:
        return f"received {len(data):,} bytes, expected {remote.size:,}"
    digest = hashlib.sha256(data).hexdigest() if remote.sha256 is not None else None
    if digest != remote.sha256:
        return f"SHA-256 {digest}, expected {remote.sha256}"
    if remote.lines is not None:
        try:
            lines = data.decode("utf-8").strip().splitlines()
        except UnicodeDecodeError:
            return "not UTF-8 text"
        if not lines:
            return "an empty file"
        if len(lines) != remote.lines or lines[0].strip().lower() not in BACKGROUND_NAMES:
            return f"{len(lines)} lines starting {lines[0][:30]!r}, expected {remote.lines} labels starting 'background'"
    return None


def named_ranges(companion: KnownCompanion) -> str:
    """``"pets (152-269,282-286), other-animals (…)"``: for help texts and errors."""
    return ", ".join(f"{name} ({ranges})" for name, ranges in companion.ranges.items())
