"""Options read from the PETSc options database in one place: a table of specs with defaults.

Every greenpc entry point (the PC, the trainer, the drivers) declares its options as a tuple of
``Option`` and reads them with ``read``; ``help_text`` is what ``-help`` prints. Errors name the option
(with its prefix) and the value.
"""
import math
from dataclasses import dataclass
from typing import Any, Callable


class OptionError(ValueError):
    """A bad option value; the message names the option and the value."""


@dataclass(frozen=True)
class Option:
    """One option: ``kind`` is str, int, float, bool, "choice" or "floats" (comma-separated)."""

    name: str
    kind: Any
    default: Any
    help: str
    choices: tuple = ()
    check: Callable | None = None  # value -> None, or a message saying what was expected
    allow_infinite: bool = False

    def parse(self, raw):
        if self.kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("", "1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected a boolean (true/false)")
        if self.kind is int:
            value = float(raw)
            if not value.is_integer():
                raise ValueError("expected an integer")
            return int(value)
        if self.kind is float:
            value = float(raw)
            if math.isnan(value) or (math.isinf(value) and not self.allow_infinite):
                raise ValueError("expected a finite number")
            return value
        if self.kind == "choice":
            value = str(raw).strip().lower()
            if value not in self.choices:
                raise ValueError(f"expected one of {', '.join(self.choices)}")
            return value
        if self.kind == "floats":
            return tuple(float(v) for v in str(raw).split(",") if v.strip())
        return str(raw)


class MappingOptions:
    """A plain dict ``{"problem": "react1d", "train_seed": "3"}`` seen as an options database."""

    def __init__(self, values):
        self.values = {k.lstrip("-"): v for k, v in values.items()}

    def hasName(self, key):
        return key in self.values

    def getString(self, key, default=None):
        value = self.values.get(key, default)
        return default if value is None else str(value)


def read(specs, prefix="", database=None):
    """A dict ``name -> value`` for every spec, from the options database (or defaults).

    ``database`` is PETSc's (the default) or a plain dict of option names to values.
    """
    if database is None:
        from petsc4py import PETSc
        database = PETSc.Options()
    elif isinstance(database, dict):
        database = MappingOptions(database)
    values = {}
    for spec in specs:
        key = prefix + spec.name
        if not database.hasName(key):
            values[spec.name] = spec.default
            continue
        raw = database.getString(key, "") or ""  # a bare flag reads as ""
        try:
            value = spec.parse(raw)
            problem = spec.check(value) if spec.check else None
        except ValueError as err:
            raise OptionError(f"-{key} {raw!r}: {err}") from None
        if problem:
            raise OptionError(f"-{key} {raw!r}: {problem}")
        values[spec.name] = value
    return values


def help_text(specs, prefix="", title=""):
    lines = [title] if title else []
    for spec in specs:
        kind = spec.kind if isinstance(spec.kind, str) else spec.kind.__name__
        choices = f" ({'|'.join(spec.choices)})" if spec.choices else ""
        lines.append(f"  -{prefix}{spec.name} <{spec.default}> {kind}{choices}: {spec.help}")
    return "\n".join(lines)


def positive(value):
    return None if value > 0 else "expected a positive value"


def non_negative(value):
    return None if value >= 0 else "expected a value >= 0"


def fraction(value):
    return None if 0 < value < 1 else "expected a value in (0, 1)"


def fraction_or_zero(value):
    return None if 0 <= value < 1 else "expected a value in [0, 1)"
