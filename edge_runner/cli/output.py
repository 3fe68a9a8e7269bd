"""How the runner prints a result as text: ``source  label  0.973``, "nothing recognised", and the camera's label counts.

The ``--json`` form is :meth:`edge_runner.core.model.Prediction.to_dict`; these are
the readable lines of ``python -m edge_runner`` (files and ``--camera``) and
its ``--verbose`` notes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from ..core.model import nothing_message, threshold_in_force
from ..core.spec import UNKNOWN_LABEL

if TYPE_CHECKING:
    from ..core.companion import LooksLike
    from ..core.model import Prediction
    from ..core.spec import InputSpec


def format_prediction(
    source: str, prediction: Prediction, top_k: int | None, spec: InputSpec | None = None, threshold: float | None = None,
    looks_like: LooksLike | None = None, vetoed: dict | None = None, rescued: dict | None = None,
) -> str:
    """``source  label  0.973`` (plus ``[a 0.97, b 0.02]`` when ``--top-k`` was given).

    With a model whose contract names a background label (``spec``), a "nothing
    here" answer says so in words, with the score that led to it:
    ``source  nothing recognised  (other 0.981)`` for the background label, and
    ``source  nothing recognised with enough confidence  (best: cats 0.412, threshold 0.600)``
    when the best score was below ``threshold``. Other models print as always. What the
    ``--looks-like`` companion named goes in the brackets: ``(other 0.981; looks like: raccoon 71%)``,
    and a detection it vetoed says so: ``(cats 0.970 vetoed: the companion's classes 3%; looks like: …)``, as does
    an answer it rescued: ``source  dogs  0.930  (rescued from other 0.912 by the companion)``.
    """
    message = nothing_message(prediction.label, spec) if spec is not None else None
    best = prediction.top_k[0] if prediction.top_k else None
    looks = f"; looks like: {looks_like.text()}" if looks_like is not None else ""
    if rescued is not None:
        line = f"{source}  {prediction.label}  {prediction.score:.3f}  (rescued from {rescued['label']} " \
               f"{rescued['score']:.3f} by the companion)"
    elif message is None or best is None:
        line = f"{source}  {prediction.label}  {prediction.score:.3f}"
        if looks:  # a model without a background label: its "unknown" answers
            line += f"  ({looks[2:]})"
    elif vetoed is not None:
        line = f"{source}  {message}  ({vetoed['label']} {vetoed['score']:.3f} vetoed: the companion's classes " \
               f"{vetoed['mass'] * 100:.0f}%{looks})"
    elif prediction.label == spec.background_label:
        line = f"{source}  {message}  ({best.label} {best.score:.3f}{looks})"
    else:
        limit = threshold_in_force(spec, threshold)[0]
        line = f"{source}  {message}  (best: {best.label} {best.score:.3f}, threshold {limit:.3f}{looks})"
    if top_k is not None:
        line += "  [" + ", ".join(f"{item.label} {item.score:.3f}" for item in prediction.top_k) + "]"
    return line


def format_label_counts(counts: Mapping[str, int], spec: InputSpec) -> str:
    """``frames per label: cats 12, dogs 0; nothing recognised 85 (other 80, unknown 5)``.

    ``counts``: frames per answered label. Every label of interest is listed, even
    at 0, so a script reading the summary always finds each one; "nothing" adds
    the background label and ``unknown``.
    """
    seen = ", ".join(f"{label} {counts.get(label, 0)}" for label in spec.interest_labels)
    background = counts.get(spec.background_label, 0)
    unsure = counts.get(UNKNOWN_LABEL, 0)
    return (
        f"frames per label: {seen}; nothing recognised {background + unsure} "
        f"({spec.background_label} {background}, {UNKNOWN_LABEL} {unsure})"
    )
