"""The kit's one "photo with a label": a file, its true label, the source it came from and its group.

``train`` finds and splits them (``split.json`` stores each as :meth:`Photo.to_dict`), ``convert``
calibrates, gates and evaluates on them, and a review export's frames become them. Standard library only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class Photo:
    """A photo file and what is known about it.

    Attributes:
        path: the file (a ``str`` given is made a ``Path``); absolute wherever the kit listed it.
        label: its true class, or ``None`` when unlabelled (e.g. int8 calibration photos).
        source: the collection it came from (a ``--data``/``--background`` folder's name, or
            ``folder:prefix``; see ``train.data.sources``), ``""`` when there is one.
        group: photos that must stay on one side of a split (the frames of one visit in a review
            export), ``""`` when the photo stands alone.
    """

    path: Path
    label: str | None = None
    source: str = ""
    group: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.path, Path):
            object.__setattr__(self, "path", Path(os.fspath(self.path)))

    @property
    def key(self) -> str:
        """The path as text: the sort key and dictionary key (text order, not ``Path`` order, keeps splits stable)."""
        return str(self.path)

    def to_dict(self) -> dict[str, Any]:
        """``{"path", "label", "source"[, "group"]}``, as ``split.json`` lists photos."""
        return {"path": self.key, "label": self.label, "source": self.source, **({"group": self.group} if self.group else {})}

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> Photo:
        """The inverse of :meth:`to_dict` (``source`` and ``group`` may be missing)."""
        return cls(entry["path"], entry.get("label"), entry.get("source", ""), entry.get("group", ""))
