"""Configuration settings: a field's default, range, help text and label, declared once.

A config dataclass declares each field with ``setting(...)``, which stores a ``Setting`` in the
field's metadata. Everything that shows, reads or checks the field derives from that one
declaration:

- the dataclass's ``__post_init__`` calls ``check_fields(self)`` (``Setting.check``: a
  ``ValueError`` naming the field, its range and the value);
- the command line (``lstmviz.cli``) builds its options from ``settings_of(cls)``: type
  (``Setting.parse``), default, choices and help with the range (``Setting.requirement``);
- the GUI forms (``lstmviz.forms``) build spin and combo boxes from ``low``/``high``
  (``form_range``), ``label``, ``help`` and ``choice_labels``.

Ranges: integers use inclusive bounds; reals are finite and may exclude either bound. An
``off`` setting also accepts None ("off"), written as 0 on the command line and in forms (its
range must exclude 0). Pure Python: no Qt, no argparse.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import MISSING, dataclass

import numpy as np

INT_FORM_MAX = 2**31 - 1  # largest value a form offers for an integer without an upper bound (Qt's int)
FLOAT_FORM_MAX = 1e6  # largest value a form offers for a real without an upper bound
METADATA_KEY = "setting"


def is_integer(value) -> bool:
    """True for Python and NumPy integers (bool excluded)."""
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def is_real(value) -> bool:
    """True for Python and NumPy integers and floats (bool excluded); NaN and inf included."""
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def _number(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Setting:
    """One configuration field: default, kind, range, label and help.

    ``default``: the field's default (``dataclasses.MISSING`` when required); ``kind``: ``int``,
    ``float`` or ``str``; ``low``/``high``: bounds (None: unbounded), ``low_inclusive``/
    ``high_inclusive`` for reals; ``choices``: the allowed values (a ``str`` setting);
    ``choice_labels``: a GUI label per choice (default: the choice itself); ``off``: None is
    allowed and means "off"; ``label``: the GUI label; ``help``: one or two sentences, used as the
    CLI help and the GUI tooltip; ``form_high``: the largest value a form offers when ``high`` is
    None (larger values stay valid elsewhere); ``step``/``decimals``: a real spin box's step and
    decimals. Raises ValueError if the declaration is inconsistent or the default is invalid.
    """

    default: object
    kind: type
    label: str = ""
    help: str = ""
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    choices: tuple | None = None
    choice_labels: dict = dataclasses.field(default_factory=dict)
    off: bool = False
    form_high: float | None = None
    step: float | None = None
    decimals: int | None = None

    def __post_init__(self):
        if self.kind not in (int, float, str):
            raise ValueError(f"a setting's kind must be int, float or str, got {self.kind!r}")
        if (self.kind is str) != (self.choices is not None):
            raise ValueError("a str setting needs choices, and only a str setting takes them")
        if self.kind is int and not (self.low_inclusive and self.high_inclusive):
            raise ValueError("an int setting's bounds are inclusive")
        if self.off and not (self.low == 0 and not self.low_inclusive):
            raise ValueError("an off setting's range must exclude 0 (0 stands for off)")
        if self.default is not MISSING:
            self.check("default", self.default)

    # --- the range --------------------------------------------------------------------------
    def requirement(self, off_as: str = "None") -> str:
        """What a valid value is, as it follows "must be": "a positive integer", "in [0, 1)",
        "a finite number > 0 or None (off)", "one of ('lstm', 'rnn')". ``off_as``: how "off"
        is written (None in Python, 0 on the command line)."""
        if self.choices is not None:
            return f"one of {self.choices}"
        low, high = self.low, self.high
        if self.kind is int:
            if high is not None:
                text = f"an integer in [{low}, {high}]" if low is not None else f"an integer <= {high}"
            else:
                text = {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
                    low, f"an integer >= {low}")
        elif low is None and high is None:
            text = "finite"
        elif high is None:
            text = f"a finite number {'>=' if self.low_inclusive else '>'} {_number(low)}"
        elif low is None:
            text = f"a finite number {'<=' if self.high_inclusive else '<'} {_number(high)}"
        else:
            text = (f"in {'[' if self.low_inclusive else '('}{_number(low)}, "
                    f"{_number(high)}{']' if self.high_inclusive else ')'}")
        return f"{text} or {off_as} (off)" if self.off else text

    def contains(self, value) -> bool:
        """True if ``value`` is valid for this setting."""
        if value is None:
            return self.off
        if self.choices is not None:
            return isinstance(value, str) and value in self.choices
        if not (is_integer(value) if self.kind is int else is_real(value)):
            return False
        x = float(value)
        if not math.isfinite(x):
            return False
        if self.low is not None and not (x >= self.low if self.low_inclusive else x > self.low):
            return False
        return self.high is None or (x <= self.high if self.high_inclusive else x < self.high)

    def check(self, name: str, value) -> None:
        """Raise ValueError naming ``name``, the range and ``value`` unless ``value`` is valid."""
        if self.contains(value):
            return
        if self.choices is not None:
            raise ValueError(f"unknown {name} {value!r}; expected one of {self.choices}")
        if self.kind is float and not is_real(value):
            raise ValueError(f"{name} must be a real number{' or None (off)' if self.off else ''}, got {value!r}")
        raise ValueError(f"{name} must be {self.requirement()}, got {value!r}")

    def parse(self, text: str):
        """The value written as ``text`` (command line): a number of the setting's kind, or a
        choice; "0" is None for an ``off`` setting. ValueError "must be ..., got 'text'"."""
        if self.choices is None:
            try:
                value = self.kind(text)
            except ValueError:
                value = text
            if self.off and value == 0:
                return None
        else:
            value = text
        if not self.contains(value):
            raise ValueError(f"must be {self.requirement(off_as='0')}, got {text!r}")
        return value

    # --- forms ------------------------------------------------------------------------------
    def form_range(self) -> tuple:
        """``(low, high)`` for a spin box: the bounds themselves (an excluded bound can be entered
        and is then refused with ``check``'s message), ``form_high`` or the form maximum when
        unbounded above, 0 for an unbounded-below or off setting."""
        big = INT_FORM_MAX if self.kind is int else FLOAT_FORM_MAX
        high = self.high if self.high is not None else (self.form_high if self.form_high is not None else big)
        low = 0 if self.off or self.low is None else self.low
        return (self.kind(low), self.kind(high))

    def form_value(self, value):
        """``value`` as a form shows it: 0 for None (off)."""
        return self.kind(0) if value is None else value

    def from_form(self, value):
        """A form's value as the config takes it: None for 0 of an ``off`` setting."""
        return None if self.off and value == 0 else value

    def choice_label(self, choice: str) -> str:
        """The GUI label of ``choice``."""
        return self.choice_labels.get(choice, choice)


def setting(default=MISSING, *, label: str, help: str, kind: type | None = None, **options) -> dataclasses.Field:
    """A dataclass field carrying a ``Setting`` in its metadata (``options``: ``Setting``'s
    keyword fields). ``kind`` defaults to ``str`` with choices, else the default's type."""
    if kind is None:
        if options.get("choices") is not None:
            kind = str
        elif default is MISSING or default is None:
            raise ValueError(f"setting {label!r} needs kind= (no default to infer it from)")
        else:
            kind = type(default)
    return setting_field(Setting(default, kind, label, help, **options))


def setting_field(spec: Setting) -> dataclasses.Field:
    """A dataclass field for an existing ``Setting`` (one shared by several configs)."""
    return dataclasses.field(default=spec.default, metadata={METADATA_KEY: spec})


def settings_of(config) -> dict:
    """``{field name: Setting}`` of a config dataclass (or instance), in field order."""
    return {f.name: f.metadata[METADATA_KEY] for f in dataclasses.fields(config) if METADATA_KEY in f.metadata}


def check_fields(config) -> None:
    """``Setting.check`` every field of the dataclass instance ``config`` (ValueError)."""
    for name, spec in settings_of(config).items():
        spec.check(name, getattr(config, name))


def split_values(values: dict, *classes) -> tuple:
    """Split a flat ``{field: value}`` over config ``classes`` (one dict per class, in order);
    ValueError naming unknown fields."""
    parts = tuple({name: values[name] for name in settings_of(cls) if name in values} for cls in classes)
    unknown = set(values).difference(*parts)
    if unknown:
        raise ValueError(f"unknown settings: {sorted(unknown)}")
    return parts


# ranges that are not one config's field: arguments checked the same way (command line, datasets)
POSITIVE_INT = Setting(MISSING, int, low=1)
NON_NEGATIVE_INT = Setting(MISSING, int, low=0)
POSITIVE_REAL = Setting(MISSING, float, low=0.0, low_inclusive=False)
# the validation share: a TrainConfig field, also checked by the datasets
VAL_FRACTION = Setting(
    0.1, float, "Validation share",
    "Share of the data held out at its end for validation (0: no validation).",
    low=0.0, high=0.5, step=0.05, decimals=2,
)
