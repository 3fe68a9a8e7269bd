"""The candidates of ``python -m train compare``: which backbone, width, input size and weights.

Syntax (``--candidates``), comma-separated::

    BACKBONE:ALPHA:SIZE[:WEIGHTS]     mobilenet_v2:0.35:96, mobilenet_v2:1.0:224:imagenet
    BACKBONE:SIZE[:WEIGHTS]           for backbones with one width: baseline:128, efficientnet_b0:224

or the path of a JSON file holding a list of objects
``{"backbone": "mobilenet_v2", "alpha": 0.35, "image_size": 96, "weights": "imagenet"}``
(``alpha`` and ``weights`` optional). ``WEIGHTS`` is ``imagenet`` (Keras' own
download), ``none`` (from scratch) or a weights file; without it a candidate takes
the weights ``--weights`` gives for its width (see :func:`resolve_weights`), and a
backbone without pretrained weights (``baseline``) takes ``none``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..backbones import BACKBONES, get_backbone
from ..errors import ConfigError

WEIGHTS_KEYWORDS = ("imagenet", "none")
# Keras' own cache name for MobileNetV2 ImageNet weights without the top (alpha as
# str(float), the input size it was trained at).
KERAS_FILE = re.compile(r"^mobilenet_v2_weights_tf_dim_ordering_tf_kernels_(?P<alpha>[0-9.]+)_(?P<rows>\d+)_no_top\.h5$")
KERAS_MOBILENET_V2_ROWS = (96, 128, 160, 192, 224)


@dataclass(frozen=True)
class Candidate:
    """One model to train and measure.

    Attributes:
        backbone: a key of ``train.backbones.BACKBONES``.
        alpha: its width multiplier.
        image_size: the square input side in pixels.
        weights: ``"imagenet"``, ``"none"`` or a weights file path; ``None`` until resolved.
        text: how the user wrote it (for error messages).
    """

    backbone: str
    alpha: float
    image_size: int
    weights: str | None = None
    text: str = ""

    @property
    def name(self) -> str:
        """The result folder and table name, e.g. ``mobilenet_v2_0.35_96`` (the contract's backbone tag)."""
        return get_backbone(self.backbone).tag(self.alpha, self.image_size)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "backbone": self.backbone, "alpha": self.alpha, "image_size": self.image_size,
                "weights": self.weights}


def keras_weights_name(alpha: float, image_size: int) -> str:
    """The file name Keras caches MobileNetV2 no-top ImageNet weights under for this width and input size.

    Keras has checkpoints for 96, 128, 160, 192 and 224 px and loads the 224 px one for other sizes.
    """
    rows = image_size if image_size in KERAS_MOBILENET_V2_ROWS else 224
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}_no_top.h5"


def _bad(text: str, reason: str) -> ConfigError:
    return ConfigError(f"--candidates: candidate {text!r}: {reason}")


def _number(text: str, field: str, value: str, kind: type) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise _bad(text, f"{field} must be {'an integer' if kind is int else 'a number'}, received {value!r}") from None


def _checked(candidate: Candidate) -> Candidate:
    """Check the backbone, width, size and explicit weights; raise ``ConfigError`` naming the candidate."""
    text = candidate.text
    if candidate.backbone not in BACKBONES:
        raise _bad(text, f"backbone must be one of {sorted(BACKBONES)}, received {candidate.backbone!r}")
    backbone = get_backbone(candidate.backbone)
    if float(candidate.alpha) not in backbone.alphas:
        raise _bad(text, f"width (alpha) for {candidate.backbone} must be one of {list(backbone.alphas)}, received {candidate.alpha!r}")
    if not 32 <= candidate.image_size <= 1024 or candidate.image_size < backbone.min_size:
        raise _bad(text, f"input size must be an integer from {max(32, backbone.min_size)} to 1024, received {candidate.image_size}")
    weights = candidate.weights
    if weights is not None:
        if not backbone.pretrained and weights != "none":
            raise _bad(text, f"{candidate.backbone} has no pretrained weights: weights must be 'none', received {weights!r}")
        if weights not in WEIGHTS_KEYWORDS and not Path(weights).expanduser().is_file():
            raise _bad(text, f"weights must be one of {list(WEIGHTS_KEYWORDS)} or an existing file, received {weights!r}")
    return candidate


def parse_one(text: str) -> Candidate:
    """``"mobilenet_v2:0.35:96"``, ``"baseline:128"``, ``"mobilenet_v2:1.0:224:imagenet"`` → a checked :class:`Candidate`."""
    text = text.strip()
    name, _, rest = text.partition(":")
    if name not in BACKBONES:
        raise _bad(text, f"backbone must be one of {sorted(BACKBONES)}, received {name!r} "
                   "(syntax BACKBONE:ALPHA:SIZE[:WEIGHTS], or BACKBONE:SIZE[:WEIGHTS] for one-width backbones)")
    backbone = get_backbone(name)
    fields = rest.split(":", 2 if len(backbone.alphas) > 1 else 1)
    if len(backbone.alphas) > 1:
        if len(fields) < 2 or not fields[1]:
            raise _bad(text, f"expected {name}:ALPHA:SIZE[:WEIGHTS] with ALPHA one of {list(backbone.alphas)}")
        alpha = _number(text, "width (alpha)", fields[0], float)
        fields = fields[1:]
    else:
        alpha = backbone.alphas[0]
    if not fields or not fields[0]:
        raise _bad(text, f"expected {name}:SIZE[:WEIGHTS]")
    size = _number(text, "input size", fields[0], int)
    weights = fields[1] if len(fields) > 1 and fields[1] else None
    return _checked(Candidate(name, alpha, size, weights, text))


def _from_json(path: Path) -> list[Candidate]:
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--candidates {path}: cannot read the JSON list of candidates ({exc})") from None
    if not isinstance(items, list):
        raise ConfigError(f"--candidates {path}: must hold a JSON list of candidate objects, received {type(items).__name__}")
    candidates = []
    for i, item in enumerate(items):
        text = f"{path.name}[{i}]"
        if not isinstance(item, dict) or "backbone" not in item or "image_size" not in item:
            raise _bad(text, 'must be an object with "backbone", "image_size" and optionally "alpha", "weights"')
        unknown = sorted(set(item) - {"backbone", "alpha", "image_size", "weights"})
        if unknown:
            raise _bad(text, f"unknown keys {unknown}; allowed: backbone, alpha, image_size, weights")
        backbone = BACKBONES.get(str(item["backbone"]))
        alpha = item.get("alpha", backbone.alphas[0] if backbone and len(backbone.alphas) == 1 else 1.0)
        size = item["image_size"]
        if not isinstance(size, int) or isinstance(size, bool):
            raise _bad(text, f"image_size must be an integer, received {size!r}")
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool):
            raise _bad(text, f"alpha must be a number, received {alpha!r}")
        weights = item.get("weights")
        candidates.append(_checked(Candidate(str(item["backbone"]), float(alpha), size, None if weights is None else str(weights), text)))
    return candidates


def parse_candidates(value: str) -> list[Candidate]:
    """``--candidates``: a comma-separated list or a ``.json`` file → checked candidates (no duplicates, at least one)."""
    path = Path(value).expanduser()
    if value.endswith(".json") or path.is_file():
        candidates = _from_json(path)
    else:
        candidates = [parse_one(part) for part in value.split(",") if part.strip()]
    if not candidates:
        raise ConfigError(f"--candidates: no candidate given, received {value!r}")
    seen: dict[str, str] = {}
    for candidate in candidates:
        if candidate.name in seen:
            raise _bad(candidate.text, f"the same model as {seen[candidate.name]!r} ({candidate.name}); give each once")
        seen[candidate.name] = candidate.text
    return candidates


def parse_weights(values: Sequence[str]) -> tuple[bool, dict[float, str]]:
    """``--weights`` values → (``imagenet`` allowed as a fallback, {alpha: local file}).

    Each value is ``imagenet``, ``ALPHA=PATH``, a file named as Keras names its
    MobileNetV2 weights (the width is read from the name), or a directory holding such files.
    """
    imagenet, files = False, {}
    for value in values:
        if value == "imagenet":
            imagenet = True
            continue
        alpha_text, sep, path_text = value.partition("=")
        path = Path(path_text if sep else value).expanduser()
        if sep:
            try:
                files[float(alpha_text)] = str(_existing_file(path, value))
            except ValueError:
                raise ConfigError(f"--weights {value!r}: expected imagenet, ALPHA=PATH, a Keras-named weights file or a directory") from None
        elif path.is_dir():
            for item in sorted(path.iterdir()):
                match = KERAS_FILE.match(item.name)
                if match and (int(match["rows"]) == 224 or float(match["alpha"]) not in files):
                    files[float(match["alpha"])] = str(item.resolve())
        elif path.is_file():
            match = KERAS_FILE.match(path.name)
            if not match:
                raise ConfigError(f"--weights {value!r}: cannot tell the width from the file name; write ALPHA=PATH (e.g. 0.35={value})")
            files[float(match["alpha"])] = str(path.resolve())
        else:
            raise ConfigError(f"--weights {value!r}: must be imagenet, ALPHA=PATH, a weights file or a directory (no such file or directory)")
    return imagenet or not values, files


def _existing_file(path: Path, value: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"--weights {value!r}: {path} is not a file")
    return path.resolve()


def resolve_weights(candidates: Sequence[Candidate], weights: Sequence[str]) -> list[Candidate]:
    """Give every candidate without explicit weights its width's file from ``--weights``, else ``imagenet``.

    A backbone without pretrained weights gets ``none``. Raises ``ConfigError`` naming a candidate
    that is left without weights (no file for its width and ``imagenet`` not allowed).
    """
    imagenet, files = parse_weights(weights)
    resolved = []
    for candidate in candidates:
        backbone = get_backbone(candidate.backbone)
        chosen = candidate.weights
        if chosen is None:
            if not backbone.pretrained:
                chosen = "none"
            elif candidate.backbone == "mobilenet_v2" and float(candidate.alpha) in files:
                chosen = files[float(candidate.alpha)]
            elif imagenet:
                chosen = "imagenet"
            else:
                raise _bad(candidate.text, f"no weights for width {candidate.alpha:g} among --weights {list(weights)}; "
                           f"add --weights {candidate.alpha:g}=PATH or --weights imagenet")
        resolved.append(Candidate(candidate.backbone, candidate.alpha, candidate.image_size, str(chosen), candidate.text))
    return resolved
