"""Loading a ``--looks-like`` companion classifier (the runner and ``serve``).

:func:`load_companion` checks the file once and says what is wrong in one line naming the flag
(``--looks-like PATH: not an image classifier: …``): a file, a TFLite model, one ``1xHxWx3``
image input and one ``1xN`` probability output, as many labels as outputs. Labels come from
``--looks-like-labels``, else the model's edgekit contract, else a ``.txt`` packed in its TFLite
metadata, else a labels file beside it. What a loaded companion does is :mod:`edge_runner.core.companion`; the
flags that ask for one are :mod:`edge_runner.core.companion_flags`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .catalog import KNOWN
from .companion import BACKGROUND_NAMES, DEFAULT_FLOOR, Companion, CompanionError, Rescue, Veto
from .model import RAW_TENSOR_INPUT, TFLITE_IDENTIFIER, Classifier, ModelError, read_contract, read_packed_files
from .spec import CONTRACT_FILENAME, UNKNOWN_LABEL, ContractError, InputSpec, contract_path_for

if TYPE_CHECKING:
    from .runtime import Runtime


def read_labels(path: Path, flag: str = "--looks-like-labels") -> tuple[str, ...]:
    """One label per line (a trailing empty line allowed); a ``CompanionError`` naming ``flag`` otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CompanionError(f"{flag} {path}: no such file") from None
    except IsADirectoryError:
        raise CompanionError(f"{flag} {path}: is a directory, not a labels file (one label per line)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CompanionError(f"{flag} {path}: cannot read it as UTF-8 text ({exc})") from None
    return _label_lines(text, f"{flag} {path}")


def _label_lines(text: str, where: str) -> tuple[str, ...]:
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise CompanionError(f"{where}: no labels (expected one label per line, in output order)")
    blank = [number for number, line in enumerate(lines, 1) if not line]
    if blank:
        raise CompanionError(f"{where}: line {blank[0]} is empty (expected one label per line, in output order)")
    return tuple(lines)


def labels_beside(model: Path) -> Path | None:
    """A labels file beside ``model``: ``NAME.labels.txt``, ``NAME_labels.txt``, ``NAME.txt``, ``labels.txt``,
    else the only ``*labels*.txt`` there; ``None`` when there is none (or several)."""
    for name in (f"{model.stem}.labels.txt", f"{model.stem}_labels.txt", f"{model.stem}.txt", "labels.txt"):
        if (model.parent / name).is_file():
            return model.parent / name
    found = sorted(path for path in model.parent.glob("*labels*.txt") if path.is_file())
    return found[0] if len(found) == 1 else None


def _find_labels(model: Path, content: bytes, outputs: int) -> tuple[tuple[str, ...], str]:
    """``(labels, where from)``: a ``.txt`` packed in the model's metadata with ``outputs`` lines, else one beside it."""
    for name, data in sorted(read_packed_files(content).items()):
        if name.endswith(".txt"):
            try:
                labels = _label_lines(data.decode("utf-8"), name)
            except (UnicodeDecodeError, CompanionError):
                continue
            if len(labels) == outputs:
                return labels, f"{name} (embedded)"
    beside = labels_beside(model)
    if beside is None:
        raise CompanionError(
            f"--looks-like {model}: no labels: none embedded in the model and no labels file beside it "
            f"(looked for {model.stem}.txt, {model.stem}_labels.txt, labels.txt, *labels*.txt); "
            "give --looks-like-labels FILE (one label per output, in order)")
    return read_labels(beside, "labels file"), str(beside)


def _unique(names: tuple[str, ...]) -> tuple[str, ...]:
    """Contract labels for ``names``: a repeated name (ImageNet has two "crane"s) or ``unknown`` gets its output index."""
    seen: set[str] = set()
    labels = []
    for index, name in enumerate(names):
        label = name if name not in seen and name != UNKNOWN_LABEL else f"{name} [{index}]"
        seen.add(label)
        labels.append(label)
    return tuple(labels)


def load_companion(model: str | Path, labels: str | Path | None = None, *, floor: float = DEFAULT_FLOOR,
                   runtime: Runtime | None = None, threads: int | None = None, pool_size: int = 1,
                   veto: float | None = None, veto_classes: tuple[int, ...] | None = None,
                   veto_only_for: tuple[int, ...] | None = None, rescue: float | None = None,
                   rescue_as: tuple[tuple[str, tuple[int, ...]], ...] = (),
                   main_labels: tuple[str, ...] | None = None) -> Companion:
    """Load and check a companion classifier (see the module's docstring).

    Args:
        model: the ``.tflite`` (``--looks-like``).
        labels: its labels file (``--looks-like-labels``); ``None``: its contract's labels, else a ``.txt``
            embedded in its metadata, else one beside it (:func:`labels_beside`).
        floor: 0–1, the lowest probability named.
        runtime, threads: as for the main model.
        pool_size: interpreters lent to parallel callers (the runner's workers, the server's request threads).
        veto, veto_classes, veto_only_for: ``--looks-like-veto P``, its output indices and
            ``--looks-like-veto-only-for`` (:class:`~edge_runner.core.companion.Veto`).
        rescue, rescue_as: ``--looks-like-rescue P`` and its ``(label, output indices)`` pairs
            (:class:`~edge_runner.core.companion.Rescue`).
        main_labels: the main model's labels of interest, which the rescue's labels must be (``None``: not checked).

    Raises:
        CompanionError: one line naming the flag, the file and what is wrong (exit status 2).
    """
    from .runtime import load_runtime

    path = Path(model)
    if not path.exists():
        raise CompanionError(f"--looks-like {path}: no such file (nor a known name: {', '.join(KNOWN)})")
    if not path.is_file():
        raise CompanionError(f"--looks-like {path}: not a file (expected a .tflite image classifier)")
    content = path.read_bytes()
    if len(content) < 8 or content[4:8] != TFLITE_IDENTIFIER:
        raise CompanionError(f"--looks-like {path}: not a TFLite model (missing the 'TFL3' flatbuffer identifier)")
    runtime = runtime if runtime is not None else load_runtime()
    spec, names, labels_from = _contract(path, content, labels, runtime)
    try:
        classifier = Classifier(path, num_threads=threads, runtime=runtime, spec=spec)
    except (ModelError, ContractError) as exc:
        raise CompanionError(f"--looks-like {exc}") from None
    _check_probabilities(classifier)
    skip = frozenset(i for i, name in enumerate(names) if name.split(",")[0].strip().lower() in BACKGROUND_NAMES
                     or name == spec.background_label)
    if veto is not None:
        outputs = f"--looks-like {path} has outputs 0 to {len(names) - 1}"
        if not veto_classes:
            raise CompanionError(f"--looks-like-veto-classes: no outputs given: {outputs}")
        for flag, indices in (("--looks-like-veto-classes", veto_classes), ("--looks-like-veto-only-for", veto_only_for)):
            outside = [index for index in indices or () if index >= len(names)]
            if outside:
                raise CompanionError(f"{flag}: output {outside[0]} is out of range: {outputs}")
        veto = Veto(tuple(veto_classes), veto, frozenset(veto_only_for) if veto_only_for else None)
    if rescue is not None:
        rescue = _rescue(rescue, rescue_as, len(names), path, main_labels)
    return Companion(classifier, names, floor=floor, skip=skip, pool_size=pool_size, labels_from=labels_from, veto=veto,
                     rescue=rescue)


def _rescue(limit: float, labels: tuple[tuple[str, tuple[int, ...]], ...], outputs: int, path: Path,
            main_labels: tuple[str, ...] | None) -> Rescue:
    """A checked :class:`Rescue`: each label one of ``main_labels``, each output below ``outputs``."""
    if not labels:
        raise CompanionError("--looks-like-rescue-as: no labels given: say which of the model's labels each companion "
                             "output means, e.g. --looks-like-rescue-as dogs=152-269")
    for label, indices in labels:
        if main_labels is not None and label not in main_labels:
            raise CompanionError(f"--looks-like-rescue-as {label}=…: {label!r} is not one of the model's labels of "
                                 f"interest ({', '.join(main_labels)}); give --looks-like-rescue-as LABEL=RANGES for "
                                 "each of them")
        outside = [index for index in indices if index >= outputs]
        if outside:
            raise CompanionError(f"--looks-like-rescue-as {label}=…: output {outside[0]} is out of range: "
                                 f"--looks-like {path} has outputs 0 to {outputs - 1}")
    return Rescue(labels, limit)


def _contract(path: Path, content: bytes, labels: str | Path | None, runtime: Runtime):
    """``(spec, names, where the names came from)`` for a companion, its tensors checked first."""
    try:
        interpreter = runtime.make_interpreter(content)
        inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    except (ValueError, RuntimeError) as exc:
        raise CompanionError(f"--looks-like {path}: the {runtime.name} interpreter cannot load it ({exc})") from None
    in_shape = tuple(int(d) for d in inputs[0]["shape"]) if len(inputs) == 1 else ()
    out_shape = tuple(int(d) for d in outputs[0]["shape"]) if len(outputs) == 1 else ()
    if len(in_shape) != 4 or in_shape[0] != 1 or in_shape[3] != 3 or len(out_shape) != 2 or out_shape[0] != 1 \
            or out_shape[1] < 2:
        found = ", ".join("x".join(map(str, d["shape"])) for d in inputs) + " in; " + \
            ", ".join("x".join(map(str, d["shape"])) for d in outputs) + " out"
        raise CompanionError(f"--looks-like {path}: not an image classifier: expected one 1xHxWx3 input and one 1xN "
                             f"output (N >= 2), found {found}")
    outputs_n, dtype = out_shape[1], np.dtype(inputs[0]["dtype"])
    spec = None
    if CONTRACT_FILENAME in read_packed_files(content) or contract_path_for(path).is_file():
        try:
            spec = read_contract(path, content)  # a model of the kit (or one with a contract written for it)
        except ContractError as exc:
            raise CompanionError(f"--looks-like {exc}") from None
    names = spec.labels if spec is not None else None
    labels_from = "its contract"
    if labels is not None:
        names, labels_from = read_labels(Path(labels)), str(labels)
    elif names is None:
        names, labels_from = _find_labels(path, content, outputs_n)
    if len(names) != outputs_n:
        raise CompanionError(f"{'--looks-like-labels' if labels is not None else 'labels file'} {labels_from}: "
                             f"{len(names)} labels, but --looks-like {path} has {outputs_n} outputs "
                             "(one label per output, in order)")
    if spec is not None:
        return (_relabel(spec, names) if labels is not None else spec), tuple(names), labels_from
    if dtype.kind not in "iu":
        raise CompanionError(
            f"--looks-like {path}: a {dtype} input without an edgekit contract: its input normalisation is unknown "
            "(use an integer-quantised classifier, uint8 or int8 input, or one exported by `python -m convert export`)")
    spec = InputSpec(labels=_unique(names), height=in_shape[1], width=in_shape[2], name=path.stem,
                     extra={RAW_TENSOR_INPUT: True})
    return spec, tuple(names), labels_from


def _relabel(spec: InputSpec, names: tuple[str, ...]) -> InputSpec:
    background = spec.background_label if spec.background_label in names else None
    return replace(spec, labels=_unique(names), background_label=background)


def _check_probabilities(classifier: Classifier) -> None:
    """Refuse a model whose outputs are not probabilities (logits, embeddings): one grey image must give 0–1 values
    summing to at most 1.5 (a uint8 output rounds its many tiny probabilities down: 0.73 for the ImageNet model)."""
    grey = np.full((classifier.spec.height, classifier.spec.width, 3), 128, np.uint8)
    values = classifier.probabilities(grey)
    if not np.all(np.isfinite(values)) or values.min() < -1e-3 or values.max() > 1.001 or values.sum() > 1.5:
        raise CompanionError(
            f"--looks-like {classifier.path}: not a classifier's probabilities: on a grey image its outputs range "
            f"{values.min():.3g}..{values.max():.3g} and sum to {values.sum():.3g} (expected 0..1 from a softmax)")
