"""What a ``TrainConfig`` field is, said once: its group, flag, help, allowed values and whether a resume may change it.

:func:`option` is ``dataclasses.field`` with an :class:`Option` in its metadata. From those the
command line is generated (:func:`add_arguments`), the plain range and choice checks are run
(:meth:`Option.check`), the command that repeats a configuration is written (:func:`command_words`)
and the fields a ``--resume`` may change are listed (:func:`resumable_names`). Checks that need
several fields (the width a backbone offers, a weights file that must exist) stay in
:meth:`train.config.TrainConfig.validate`.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Callable, Iterator

from edge_runner.common.console import print_warning

from .errors import ConfigError

# The option groups, in the order ``--help`` shows them: where the photos come from, what is
# built, how it is fitted (the hyper-parameters), and how this run behaves.
GROUPS = {
    "data": "data",
    "model": "model",
    "fitting": "fitting (hyper-parameters)",
    "run": "run",
}


@dataclass(frozen=True)
class Option:
    """One field's command-line face and plain checks.

    Attributes:
        group: a key of ``GROUPS``.
        help: the ``--help`` text (``%(default)s`` allowed).
        flag: the flag (default ``--`` + the field name with dashes).
        aliases: older spellings still accepted for one release, each with a one-line warning.
        metavar: the value's name in ``--help``.
        choices: the allowed values, or a function returning them (read when the parser is built).
        ints, floats: the allowed range: ``(low, high)`` for integers, ``(low, high, open_low, open_high)``
            for numbers (``math.inf`` for no upper bound).
        repeat: a list field: the flag may be given several times (``action="append"``).
        const: the flag takes no value and sets the field to this (``--quiet`` sets ``verbose`` to 0).
        required: the flag must be given.
        resumable: ``--resume`` may change it (the others define the experiment and must match).
        in_command: written into the command that repeats the run (``--resume``/``--overwrite`` are not).
    """

    group: str
    help: str | None = None
    flag: str | None = None
    aliases: tuple[str, ...] = ()
    metavar: str | None = None
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None
    ints: tuple[int, int] | None = None
    floats: tuple[float, float, bool, bool] | None = None
    repeat: bool = False
    const: Any = None
    required: bool = False
    resumable: bool = False
    in_command: bool = True

    def allowed(self) -> tuple[str, ...] | None:
        return self.choices() if callable(self.choices) else self.choices

    def check(self, flag: str, value: Any) -> None:
        """Raise ``ConfigError`` naming ``flag``, the allowed values and ``value`` when it is out of range."""
        if self.choices is not None:
            if self.repeat and not value:
                raise ConfigError(f"{flag} needs at least one of {list(self.allowed())}, received none")
            for item in value if self.repeat else [value]:
                check_choice(flag, item, self.allowed())
        if self.ints is not None:
            check_int(flag, value, *self.ints)
        if self.floats is not None:
            low, high, open_low, open_high = self.floats
            check_float(flag, value, low, high, open_low=open_low, open_high=open_high)


def option(default: Any = MISSING, *, default_factory: Any = MISSING, **meta: Any) -> Any:
    """A dataclass field carrying an :class:`Option` (``meta`` are its attributes)."""
    return field(default=default, default_factory=default_factory, metadata={"option": Option(**meta)})


def options_of(cls: Any) -> Iterator[tuple[Field, Option]]:
    """``(field, option)`` for every field of ``cls`` that has one, in declaration order."""
    for f in fields(cls):
        if "option" in f.metadata:
            yield f, f.metadata["option"]


def flag_of(f: Field) -> str:
    return f.metadata["option"].flag or "--" + f.name.replace("_", "-")


def resumable_names(cls: Any) -> frozenset[str]:
    """The fields an interrupted run's ``--resume`` may change."""
    return frozenset(f.name for f, opt in options_of(cls) if opt.resumable)


def check_fields(config: Any) -> None:
    """The plain range and choice checks of every field, in declaration order."""
    for f, opt in options_of(type(config)):
        opt.check(flag_of(f), getattr(config, f.name))


class DeprecatedAlias(argparse.Action):
    """Stores like ``store``; given under an old spelling, also warns once on stderr that it goes away."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if option_string != self.option_strings[0]:
            prog = getattr(parser, "error_prog", parser.prog)
            print_warning(prog, f"{option_string} is deprecated and will be removed in the next release; "
                          f"use {self.option_strings[0]}")
        setattr(namespace, self.dest, values)


def add_arguments(parser: argparse.ArgumentParser, cls: Any) -> None:
    """Add a flag per field of ``cls``, in its group, with its type, default, choices and help."""
    groups = {key: parser.add_argument_group(title) for key, title in GROUPS.items()}
    for f, opt in options_of(cls):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        kwargs: dict[str, Any] = {"dest": f.name, "help": opt.help}
        if opt.const is not None or isinstance(default, bool):
            # A switch: it sets the one value that differs from the default.
            kwargs.update(action="store_const", const=(not default) if opt.const is None else opt.const, default=default)
        else:
            kwargs.update(default=default, metavar=opt.metavar, required=opt.required)
            if opt.repeat:
                kwargs["action"] = "append"
                kwargs["default"] = None
            elif opt.aliases:
                kwargs["action"] = DeprecatedAlias
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                kwargs["type"] = type(default)
            if opt.choices is not None:
                kwargs["choices"] = opt.allowed()
                kwargs.pop("metavar")
        groups[opt.group].add_argument(flag_of(f), *opt.aliases, **kwargs)


def from_arguments(cls: Any, args: argparse.Namespace) -> Any:
    """``cls(**values)`` from a namespace filled by a parser of :func:`add_arguments`."""
    values = {}
    for f, _ in options_of(cls):
        value = getattr(args, f.name)
        if value is None and f.default_factory is not MISSING:  # a repeatable flag never given
            value = f.default_factory()
        values[f.name] = value
    return cls(**values)


def command_words(config: Any, defaults: Any) -> list[str]:
    """The flags that repeat ``config``: every field that differs from ``defaults`` (required ones always)."""
    words: list[str] = []
    for f, opt in options_of(type(config)):
        value = getattr(config, f.name)
        if not opt.in_command or (value == getattr(defaults, f.name) and not opt.required):
            continue
        flag = flag_of(f)
        if opt.repeat:
            for item in value:
                words += [flag, str(item)]
        elif opt.const is not None or isinstance(value, bool):
            words.append(flag)
        else:
            words += [flag, str(value)]
    return words


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(flag: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{flag} must be an integer from {low} to {high}, received {value!r}")


def check_float(flag: str, value: Any, low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> None:
    ok = is_number(value) and math.isfinite(float(value)) if high != math.inf else is_number(value)
    if ok:
        v = float(value)
        ok = (v > low if open_low else v >= low) and (v < high if open_high else v <= high)
    if not ok:
        left, right = "(" if open_low else "[", ")" if open_high else "]"
        raise ConfigError(f"{flag} must be a number in {left}{low:g}, {high:g}{right}, received {value!r}")


def check_choice(flag: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{flag} must be one of {list(choices)}, received {value!r}")
