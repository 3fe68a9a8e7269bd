"""Loading a ``--looks-like`` companion classifier, and the flags that ask for one (the runner and ``serve``).

:func:`load_companion` checks the file once and says what is wrong in one line naming the flag
(``--looks-like PATH: not an image classifier: …``): a file, a TFLite model, one ``1xHxWx3``
image input and one ``1xN`` probability output, as many labels as outputs. Labels come from
``--looks-like-labels``, else the model's edgekit contract, else a ``.txt`` packed in its TFLite
metadata, else a labels file beside it. What a loaded companion does is :mod:`edge_runner.core.companion`.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..common.argtypes import probability
from .catalog import IMAGENET, KNOWN, KnownCompanion, fetch, known, named_ranges
from .companion import BACKGROUND_NAMES, DEFAULT_FLOOR, Companion, CompanionError, Veto
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
                   veto_only_for: tuple[int, ...] | None = None) -> Companion:
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
    return Companion(classifier, names, floor=floor, skip=skip, pool_size=pool_size, labels_from=labels_from, veto=veto)


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


# -- the command lines --------------------------------------------------------------------------------------------


def add_companion_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add ``--looks-like MODEL``, ``--looks-like-labels FILE`` and ``--looks-like-floor P`` (runner and ``serve``)."""
    group = parser.add_argument_group("what a background answer looks like (a companion classifier)")
    group.add_argument(
        "--looks-like", metavar="MODEL.tflite|NAME", default=None,
        help="on answers that are not a detection (the background label or 'unknown'), also run this image "
        "classifier and name its best labels: JSON 'looks_like', text 'looks like: raccoon 71%%'. A name instead of "
        f"a file is downloaded once into the cache: {', '.join(KNOWN)} ({IMAGENET.summary})",
    )
    group.add_argument(
        "--looks-like-labels", metavar="FILE", default=None,
        help="its labels, one per output line (default: its contract's, else a .txt embedded in it, else "
        "NAME.txt, NAME_labels.txt, labels.txt or the only *labels*.txt beside it)",
    )
    group.add_argument(
        "--looks-like-floor", type=probability, default=DEFAULT_FLOOR, metavar="P",
        help="name a label only when the companion gives it at least P (0-1; default: %(default)s)",
    )
    group.add_argument(
        "--looks-like-veto", type=probability, default=None, metavar="P",
        help="also run it on detections, and answer 'nothing recognised' (JSON 'vetoed') when its probability on "
        "--looks-like-veto-classes is below P (0-1; default: no veto: detections never run it)",
    )
    group.add_argument(
        "--looks-like-veto-classes", type=output_ranges, default=None, metavar="RANGES",
        help="its outputs that mean 'something of interest' for the veto, e.g. 152-269,282-286 (the ImageNet "
        "model's dog breeds and domestic cats), or a named range of a --looks-like NAME (default for "
        f"{IMAGENET.name}: pets): {named_ranges(IMAGENET)}",
    )
    group.add_argument(
        "--looks-like-veto-only-for", type=output_ranges, default=None, metavar="RANGES",
        help="veto only when its best guess outside --looks-like-veto-classes is one of these outputs, e.g. "
        "1-151,270-281,287-398 or other-animals (the ImageNet model's other animals: a cat it calls a box stays a "
        "cat), other-animals,face-wear (and masks, sunglasses, make-up, wigs: a face close-up; default: whatever "
        "it guesses)",
    )
    return group


def output_ranges(text: str) -> tuple[int, ...] | str:
    """An argparse ``type=``: ``"152-269,282-286"`` → the output indices, sorted, each once. Text with names such
    as ``"other-animals,face-wear"`` (a known companion's named ranges, resolved by :func:`looks_like_options`) stays
    a string."""
    parts = [part.strip().lower() for part in text.split(",") if part.strip()]
    if any(part.replace("-", "").isalpha() for part in parts):
        return ",".join(parts)
    indices: set[int] = set()
    try:
        for part in parts:
            low, _, high = part.partition("-")
            first, last = int(low), int(high or low)
            if first < 0 or last < first:
                raise ValueError(part)
            indices.update(range(first, last + 1))
    except ValueError:
        indices = set()
    if not indices:
        raise argparse.ArgumentTypeError(f"must be output indices and ranges such as 152-269,282-286 (or a known "
                                         f"companion's named ranges), received {text!r}")
    return tuple(sorted(indices))


def looks_like_options(args: argparse.Namespace) -> dict:
    """``{"looks_like", "looks_like_labels", "looks_like_floor", "looks_like_veto*"}`` from the flags (``serve``'s
    options take them as they are): a known name (``imagenet``) becomes its files in the cache, downloaded if need be,
    and its named ranges become output indices.

    Raises ``UsageError`` for flags that do not go together (``--looks-like-floor`` without ``--looks-like``, a
    named range without a known companion), ``CompanionError`` when a download fails (after the flags are checked).
    """
    from ..common.console import UsageError

    if args.looks_like is None and (args.looks_like_labels is not None or args.looks_like_floor != DEFAULT_FLOOR
                                    or args.looks_like_veto is not None or args.looks_like_veto_classes is not None
                                    or args.looks_like_veto_only_for is not None):
        raise UsageError("--looks-like-labels, --looks-like-floor and --looks-like-veto* only apply with "
                         "--looks-like MODEL.tflite")
    model, labels, classes = args.looks_like, args.looks_like_labels, args.looks_like_veto_classes
    companion = known(model) if model is not None and not Path(model).exists() else None
    if companion is not None and args.looks_like_veto is not None and classes is None:
        classes = "pets"
    if (args.looks_like_veto is None) != (classes is None):
        raise UsageError("--looks-like-veto P and --looks-like-veto-classes RANGES go together")
    if args.looks_like_veto_only_for is not None and args.looks_like_veto is None:
        raise UsageError("--looks-like-veto-only-for RANGES only applies with --looks-like-veto P")
    classes = _named(classes, "--looks-like-veto-classes", companion, model)
    only_for = _named(args.looks_like_veto_only_for, "--looks-like-veto-only-for", companion, model)
    if companion is not None:  # the flags are right: only now download what the cache lacks
        fetched = fetch(companion)
        model, labels = fetched.model, labels if labels is not None else fetched.labels
    return {
        "looks_like": Path(model) if model is not None else None,
        "looks_like_labels": Path(labels) if labels is not None else None,
        "looks_like_floor": args.looks_like_floor,
        "looks_like_veto": args.looks_like_veto,
        "looks_like_veto_classes": classes,
        "looks_like_veto_only_for": only_for,
    }


def _named(ranges: tuple[int, ...] | str | None, flag: str, companion: KnownCompanion | None,
           looks_like: str | None) -> tuple[int, ...] | None:
    """Output indices for ``ranges``: as they are, or with a known companion's named ranges (``pets``) resolved."""
    from ..common.console import UsageError

    if not isinstance(ranges, str):
        return ranges
    if companion is None:
        raise UsageError(f"{flag} {ranges}: a named range needs a known companion ({', '.join(KNOWN)}), "
                         f"received --looks-like {looks_like}")
    unknown = [part for part in ranges.split(",") if part.replace("-", "").isalpha() and part not in companion.ranges]
    if unknown:
        raise UsageError(f"{flag} {unknown[0]}: --looks-like {companion.name} names {named_ranges(companion)}")
    return output_ranges(",".join(companion.ranges.get(part, part) for part in ranges.split(",")))


def companion_from_args(args: argparse.Namespace, *, runtime: Runtime | None = None, threads: int | None = None,
                        pool_size: int = 1) -> Companion | None:
    """The companion ``--looks-like`` asks for (loaded, LiteRT's start-up line kept quiet), or ``None``."""
    options = looks_like_options(args)
    if options["looks_like"] is None:
        return None
    from .loading import quiet_native_info

    with quiet_native_info():
        return load_companion(options["looks_like"], options["looks_like_labels"], floor=options["looks_like_floor"],
                              runtime=runtime, threads=threads, pool_size=pool_size, veto=options["looks_like_veto"],
                              veto_classes=options["looks_like_veto_classes"],
                              veto_only_for=options["looks_like_veto_only_for"])
