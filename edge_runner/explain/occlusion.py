"""Occlusion sensitivity: which part of the photo the answer depends on, with the TFLite interpreter alone.

No gradients and no TensorFlow, so it runs on a Pi with the int8 model. A grey
square (value 128, which the model's normalisation maps to about 0) is slid
over a ``grid x grid`` lattice of positions on the model's input; for each
position the model runs on the occluded copy, and the map holds the drop of the
predicted class's score: ``score(original) - score(occluded)``. Positive
cells are regions that supported the answer; negative ones argued against it.

The score is the class's *logit margin* ``z_c - mean(z_j, j != c)`` (the log-odds
for two classes), read from the input of the model's final SOFTMAX with
``experimental_preserve_all_tensors``, when the runtime exposes it (LiteRT does,
for the kit's int8 and float models). A confident int8 model's uint8 output is
255/256 for most photos and stays there under any one patch, so a map of
probability drops would be all zeros; the logits still move. Without a
readable SOFTMAX input the map falls back to probability drops (``measure``
says which).

Cost: ``grid**2 + 1`` inferences. The default, a 7x7 grid with a patch two cells
wide (64 px of 224, overlapping its neighbours by half), is 50 inferences:
about 0.2 s with the shipped int8 model on one x86 core (the benchmark
``tests/benchmarks/bench_explain.py`` measures it and 4x4 … 14x14). Two-cell
patches hide a whole ear or eye at 7x7, yet still locate it to one cell.

Occluded copies are batched when ``batch_size > 1`` and the runtime can resize
the input's batch dimension (``resize_tensor_input``); otherwise they run one at
a time. On this x86 machine the XNNPACK int8 kernels were no faster per image in
batches (the benchmark prints both), so the default is 1.
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..core.quantization import dequantize_output, quantize_input

if TYPE_CHECKING:
    from ..core.model import Classifier

DEFAULT_GRID = 7
DEFAULT_PATCH_CELLS = 2.0
DEFAULT_BATCH = 1
FILL_VALUE = 128
GRID_RANGE = (2, 32)


class OcclusionError(ValueError):
    """Arguments that cannot make a map (the message names the argument, allowed values and what was received)."""


@dataclass(frozen=True)
class OcclusionMap:
    """One occlusion-sensitivity map.

    Attributes:
        grid: float32 ``(rows, cols)``: drop of the class's score (``measure``: logit margin,
            or probability −1…1) when the patch centred on that cell is grey; row 0 is the top.
        label: the explained class (the top-1 answer unless another was asked for).
        class_index: its index in the model's labels.
        score: its probability on the unoccluded photo (0–1).
        measure: ``"logit_margin"`` or ``"probability"``: the unit of ``grid``.
        patch: ``(height, width)`` of the grey square in input pixels.
        input_size: ``(height, width)`` of the model's input.
        batch_size: occluded copies per interpreter call actually used.
        elapsed_ms: wall time for all inferences.
    """

    grid: np.ndarray
    label: str
    class_index: int
    score: float
    patch: tuple[int, int]
    input_size: tuple[int, int]
    batch_size: int
    elapsed_ms: float
    measure: str = "probability"

    @property
    def evaluations(self) -> int:
        return int(self.grid.size) + 1

    def to_dict(self) -> dict:
        """JSON form: the numbers of the grid (rounded to 4 decimals) and how they were made."""
        return {
            "method": "occlusion",
            "label": self.label,
            "class_index": self.class_index,
            "score": round(self.score, 6),
            "rows": int(self.grid.shape[0]),
            "cols": int(self.grid.shape[1]),
            "grid": np.round(self.grid.astype(np.float64), 4).tolist(),
            "patch_px": list(self.patch),
            "input_px": list(self.input_size),
            "fill": FILL_VALUE,
            "measure": self.measure,
            "evaluations": self.evaluations,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }


def check_grid(grid: int) -> int:
    if not isinstance(grid, (int, np.integer)) or not GRID_RANGE[0] <= int(grid) <= GRID_RANGE[1]:
        raise OcclusionError(f"grid must be an integer from {GRID_RANGE[0]} to {GRID_RANGE[1]}, received {grid!r}")
    return int(grid)


def patch_boxes(height: int, width: int, grid: int, patch_cells: float = DEFAULT_PATCH_CELLS) -> list[tuple[int, int, int, int]]:
    """``(top, left, bottom, right)`` of each patch, row by row: centred on each grid cell, clipped to the image.

    The patch is ``patch_cells`` cells on each side (at least 1 px).
    """
    grid = check_grid(grid)
    if not 0.5 <= patch_cells <= grid:
        raise OcclusionError(f"patch_cells must be from 0.5 to the grid size {grid}, received {patch_cells}")
    ph, pw = max(1, round(height / grid * patch_cells)), max(1, round(width / grid * patch_cells))
    boxes = []
    for r in range(grid):
        cy = (r + 0.5) * height / grid
        for c in range(grid):
            cx = (c + 0.5) * width / grid
            top, left = round(cy - ph / 2), round(cx - pw / 2)
            boxes.append((max(0, top), max(0, left), min(height, top + ph), min(width, left + pw)))
    return boxes


def _softmax_input(interpreter) -> dict | None:
    """Details of the tensor feeding the model's last SOFTMAX op (the logits), or None."""
    try:
        ops = interpreter._get_ops_details()  # public in all three runtimes' wrappers, despite the underscore
        details = {t["index"]: t for t in interpreter.get_tensor_details()}
    except (AttributeError, ValueError, RuntimeError):
        return None
    softmax = [op for op in ops if op.get("op_name") == "SOFTMAX" and len(op.get("inputs", ())) == 1]
    return details.get(int(softmax[-1]["inputs"][0])) if softmax else None


def margins(logits: np.ndarray) -> np.ndarray:
    """``(N, K)`` logits → ``(N, K)`` margins ``z_c - mean(z_j, j != c)`` (the logits themselves when K = 1)."""
    count = logits.shape[-1]
    if count == 1:
        return logits
    return logits - (logits.sum(axis=-1, keepdims=True) - logits) / (count - 1)


class Occluder:
    """Scores many occluded copies of one image with a classifier's model.

    Keeps its own interpreter (the classifier's stays free for answers) whose
    input takes ``batch_size`` images when the runtime can resize it, else 1.
    Calls are serialised by a lock.

    Attributes:
        measure: ``"logit_margin"`` or ``"probability"``: what :meth:`scores` returns.
        batch_size: images per interpreter call actually used.
        batch_error: why batching was refused, or None.
    """

    def __init__(self, classifier: Classifier, batch_size: int = DEFAULT_BATCH) -> None:
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise OcclusionError(f"batch_size must be an integer >= 1, received {batch_size!r}")
        self.classifier = classifier
        self.batch_size = 1
        self.batch_error: str | None = None
        self._lock = threading.Lock()
        content = classifier.path.read_bytes()
        self._interpreter = self._make(content, int(batch_size))
        if self._interpreter is None:
            self._interpreter = self._make(content, 1)
        else:
            self.batch_size = int(batch_size)
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._logits = _softmax_input(self._interpreter)
        self.measure = "logit_margin" if self._logits is not None else "probability"

    def _make(self, content: bytes, batch_size: int):
        classifier = self.classifier
        make = classifier.runtime.interpreter_class
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "preserve_all_tensors is for debugging": we read one tensor of it
                interpreter = make(model_content=content, num_threads=classifier.num_threads,
                                   experimental_preserve_all_tensors=True)
            if batch_size > 1:
                index = interpreter.get_input_details()[0]["index"]
                interpreter.resize_tensor_input(index, [batch_size, classifier.spec.height, classifier.spec.width, 3],
                                                strict=False)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError, TypeError) as exc:
            # A fixed batch dimension (or an old runtime without the option): fall back.
            self.batch_error = f"{classifier.path}: cannot batch {batch_size} ({exc})"
            if batch_size > 1:
                return None
            interpreter = classifier.runtime.make_interpreter(content, num_threads=classifier.num_threads)
            interpreter.allocate_tensors()
        return interpreter

    def _run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, scores)``, both float32 ``(N, num_classes)``, from one pass over ``images``."""
        images = np.asarray(images)
        if images.ndim != 4:
            raise OcclusionError(f"images must be (N, height, width, 3), received shape {images.shape}")
        classifier = self.classifier
        probs, scores = [], []
        with self._lock:
            for start in range(0, len(images), self.batch_size):
                chunk = images[start:start + self.batch_size]
                count = len(chunk)
                if count < self.batch_size:  # pad the last batch: the tensor's batch dimension is fixed once allocated
                    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch_size - count, axis=0)])
                tensor = quantize_input(chunk, classifier.input_dtype, classifier.input_scale, int(classifier.input_zero_point))
                self._interpreter.set_tensor(self._input["index"], tensor)
                self._interpreter.invoke()
                raw = self._interpreter.get_tensor(self._output["index"]).reshape(self.batch_size, -1)[:count]
                probs.append(dequantize_output(raw, classifier.output_scale, int(classifier.output_zero_point)))
                if self._logits is not None:
                    raw = self._interpreter.get_tensor(self._logits["index"]).reshape(self.batch_size, -1)[:count]
                    scale, zero = self._logits["quantization"]
                    scores.append(margins(dequantize_output(raw, float(scale or 1.0), int(zero))))
        probabilities = np.concatenate(probs)
        return probabilities, (np.concatenate(scores) if scores else probabilities)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """float32 ``(N, num_classes)`` probabilities for ``uint8`` ``(N, height, width, 3)`` preprocessed images."""
        return self._run(images)[0]

    def scores(self, images: np.ndarray) -> np.ndarray:
        """float32 ``(N, num_classes)``: logit margins when readable (see ``measure``), else probabilities."""
        return self._run(images)[1]

    def explain(
        self,
        pixels: np.ndarray,
        *,
        grid: int = DEFAULT_GRID,
        patch_cells: float = DEFAULT_PATCH_CELLS,
        class_index: int | None = None,
    ) -> OcclusionMap:
        """The occlusion map of one preprocessed image.

        Args:
            pixels: ``uint8`` ``(height, width, 3)`` from :func:`edge_runner.core.image.preprocess`.
            grid: cells per side (2–32); cost is ``grid**2 + 1`` inferences.
            patch_cells: side of the grey square in cells (0.5 – grid).
            class_index: the class to explain (default: the top-1 answer).
        """
        spec = self.classifier.spec
        if pixels.shape != (spec.height, spec.width, 3) or pixels.dtype != np.uint8:
            raise OcclusionError(
                f"pixels must be uint8 {(spec.height, spec.width, 3)}, received {pixels.dtype} {pixels.shape}"
            )
        boxes = patch_boxes(spec.height, spec.width, grid, patch_cells)
        start = time.perf_counter()
        probs, base = (row[0] for row in self._run(pixels[np.newaxis]))
        if class_index is None:
            class_index = int(np.argmax(probs))
        elif not 0 <= class_index < len(base):
            raise OcclusionError(f"class_index must be from 0 to {len(base) - 1}, received {class_index}")
        drops = np.empty(len(boxes), dtype=np.float32)
        # Build the occluded copies a batch at a time: 196 copies at 14x14 would be 30 MB at once.
        step = max(self.batch_size, 8)
        for first in range(0, len(boxes), step):
            part = boxes[first:first + step]
            copies = np.repeat(pixels[np.newaxis], len(part), axis=0)
            for copy, (top, left, bottom, right) in zip(copies, part):
                copy[top:bottom, left:right] = FILL_VALUE
            drops[first:first + len(part)] = base[class_index] - self.scores(copies)[:, class_index]
        elapsed = (time.perf_counter() - start) * 1000.0
        ph, pw = max(1, round(spec.height / grid * patch_cells)), max(1, round(spec.width / grid * patch_cells))
        return OcclusionMap(
            grid=drops.reshape(grid, grid),
            label=self.classifier.labels[class_index],
            class_index=int(class_index),
            score=float(probs[class_index]),
            measure=self.measure,
            patch=(ph, pw),
            input_size=(spec.height, spec.width),
            batch_size=self.batch_size,
            elapsed_ms=elapsed,
        )


def occlusion_map(classifier: Classifier, pixels: np.ndarray, **options) -> OcclusionMap:
    """One map, one image at a time (see :meth:`Occluder.explain`); reuse an :class:`Occluder` for many."""
    return Occluder(classifier).explain(pixels, **options)
