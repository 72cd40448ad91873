"""engine.settings: one declaration per config field (default, range, help, label) and the one
set of checks the configs, the command line and the forms share."""

import dataclasses
import math
from dataclasses import MISSING

import numpy as np
import pytest
from hypothesis import given, settings as hyp_settings, strategies as st

from engine.model import ModelConfig
from engine.settings import (FLOAT_FORM_MAX, INT_FORM_MAX, NON_NEGATIVE_INT, POSITIVE_INT, POSITIVE_REAL,
                             VAL_FRACTION, Setting, check_fields, is_integer, is_real, setting, settings_of,
                             split_values)
from engine.train import TrainConfig

# The valid values of every bounded numeric field, written out by hand from the documented
# ranges (not read from the settings): the configs must accept exactly these.
RANGES = {
    ModelConfig: {
        "input_size": lambda v: isinstance(v, int) and v >= 1,
        "output_size": lambda v: isinstance(v, int) and v >= 1,
        "hidden_size": lambda v: isinstance(v, int) and v >= 1,
        "num_layers": lambda v: isinstance(v, int) and v >= 1,
        "dropout": lambda v: 0.0 <= v < 1.0,
        "forget_bias": lambda v: math.isfinite(v),
    },
    TrainConfig: {
        "seq_len": lambda v: isinstance(v, int) and v >= 1,
        "batch_size": lambda v: isinstance(v, int) and v >= 1,
        "steps": lambda v: isinstance(v, int) and v >= 1,
        "lr": lambda v: math.isfinite(v) and v > 0,
        "momentum": lambda v: 0.0 <= v < 1.0,
        "clip_norm": lambda v: v is None or (math.isfinite(v) and v > 0),
        "clip_value": lambda v: v is None or (math.isfinite(v) and v > 0),
        "seed": lambda v: isinstance(v, int) and v >= 0,
        "val_fraction": lambda v: 0.0 <= v <= 0.5,
        "eval_every": lambda v: isinstance(v, int) and v >= 1,
        "smoothing": lambda v: 0.0 <= v < 1.0,
    },
}
NEEDED = {ModelConfig: {"input_size": 3, "output_size": 3}, TrainConfig: {}}


def make(cls, name, value):
    extra = {"optimizer": "sgd"} if name == "momentum" else {}  # momentum applies to sgd only
    return cls(**{**NEEDED[cls], **extra, name: value})


def accepts(cls, name, value) -> bool:
    try:
        make(cls, name, value)
    except ValueError as error:
        assert name in str(error), str(error)  # the message names the field
        return False
    return True


numbers = st.one_of(st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0.0, 0.5, 1.0, -0.0, 1e-300, 0.4999999, 0.5000001, 0.9999999]))


@pytest.mark.parametrize("cls, name", [(cls, name) for cls, table in RANGES.items() for name in table])
@hyp_settings(max_examples=60, deadline=None)
@given(value=numbers)
def test_configs_accept_exactly_the_documented_range(cls, name, value):
    expected = RANGES[cls][name](value)
    assert accepts(cls, name, value) == expected
    assert settings_of(cls)[name].contains(value) == expected


@pytest.mark.parametrize("cls", [ModelConfig, TrainConfig])
def test_every_field_is_declared_once_with_its_default(cls):
    specs = settings_of(cls)
    assert list(specs) == [f.name for f in dataclasses.fields(cls)]
    for f in dataclasses.fields(cls):
        spec = specs[f.name]
        assert spec.default is f.default or spec.default == f.default
        assert spec.label and spec.help and spec.help[0].isupper() and spec.help.endswith(".")
    assert cls(**NEEDED[cls]).to_dict() == {**{n: s.default for n, s in specs.items()}, **NEEDED[cls]}


@pytest.mark.parametrize("value, message", [
    (0, "hidden_size must be a positive integer, got 0"),
    (2.0, "hidden_size must be a positive integer, got 2.0"),
    (True, "hidden_size must be a positive integer, got True"),
    ("8", "hidden_size must be a positive integer, got '8'"),
])
def test_integer_messages_name_field_range_and_value(value, message):
    with pytest.raises(ValueError) as info:
        settings_of(ModelConfig)["hidden_size"].check("hidden_size", value)
    assert str(info.value) == message


def test_messages_of_each_kind_of_range():
    spec = settings_of(TrainConfig)
    cases = [
        (spec["seed"], "seed", -1, "seed must be a non-negative integer, got -1"),
        (spec["lr"], "lr", 0.0, "lr must be a finite number > 0, got 0.0"),
        (spec["lr"], "lr", "fast", "lr must be a real number, got 'fast'"),
        (spec["momentum"], "momentum", 1.0, "momentum must be in [0, 1), got 1.0"),
        (spec["clip_norm"], "clip_norm", -2.0, "clip_norm must be a finite number > 0 or None (off), got -2.0"),
        (spec["val_fraction"], "val_fraction", 0.6, "val_fraction must be in [0, 0.5], got 0.6"),
        (spec["optimizer"], "optimizer", "lbfgs",
         "unknown optimizer 'lbfgs'; expected one of ('sgd', 'adagrad', 'rmsprop', 'adam')"),
        (settings_of(ModelConfig)["forget_bias"], "forget_bias", math.inf, "forget_bias must be finite, got inf"),
    ]
    for s, name, value, message in cases:
        with pytest.raises(ValueError) as info:
            s.check(name, value)
        assert str(info.value) == message


def test_numpy_scalars_are_numbers():
    assert is_integer(np.int64(3)) and not is_integer(np.float64(3)) and not is_integer(False)
    assert is_real(np.float32(0.5)) and is_real(np.int8(1)) and not is_real(True) and not is_real("1")
    config = TrainConfig(seq_len=np.int64(8), lr=np.float32(0.01))
    assert config.seq_len == 8


@pytest.mark.parametrize("name, text, expected", [
    ("seq_len", "12", 12),
    ("lr", "0.5", 0.5),
    ("lr", "1e-3", 1e-3),
    ("clip_norm", "0", None),
    ("clip_value", "0.0", None),
    ("clip_norm", "2.5", 2.5),
    ("optimizer", "sgd", "sgd"),
    ("val_fraction", "0", 0.0),
])
def test_parse_reads_command_line_text(name, text, expected):
    value = settings_of(TrainConfig)[name].parse(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("name, text, message", [
    ("seq_len", "ten", "must be a positive integer, got 'ten'"),
    ("seq_len", "2.5", "must be a positive integer, got '2.5'"),
    ("seq_len", "0", "must be a positive integer, got '0'"),
    ("lr", "nan", "must be a finite number > 0, got 'nan'"),
    ("lr", "-1", "must be a finite number > 0, got '-1'"),
    ("clip_norm", "-1", "must be a finite number > 0 or 0 (off), got '-1'"),
    ("momentum", "1", "must be in [0, 1), got '1'"),
    ("batching", "shuffled", "must be one of ('sequential', 'random'), got 'shuffled'"),
])
def test_parse_refuses_with_the_range(name, text, message):
    with pytest.raises(ValueError) as info:
        settings_of(TrainConfig)[name].parse(text)
    assert str(info.value) == message


def test_form_range_uses_the_bounds_and_form_limits():
    model, train = settings_of(ModelConfig), settings_of(TrainConfig)
    assert model["hidden_size"].form_range() == (1, 4096)
    assert model["dropout"].form_range() == (0.0, 1.0)  # 1 itself is refused by the config, with its message
    assert train["seed"].form_range() == (0, INT_FORM_MAX)
    assert train["lr"].form_range() == (0.0, FLOAT_FORM_MAX)
    assert train["clip_value"].form_range() == (0.0, FLOAT_FORM_MAX)
    assert train["clip_value"].form_value(None) == 0.0 and train["clip_value"].from_form(0.0) is None
    assert train["clip_value"].from_form(1.5) == 1.5 and train["seq_len"].from_form(0) == 0
    assert VAL_FRACTION.form_range() == (0.0, 0.5)
    assert model["cell"].choice_label("rnn") == "Vanilla RNN" and model["cell"].choice_label("xyz") == "xyz"


@pytest.mark.parametrize("kwargs, message", [
    (dict(default=0, kind=int, low=1), "default must be a positive integer, got 0"),
    (dict(default="a", kind=str), "needs choices"),
    (dict(default=1, kind=int, choices=(1, 2)), "needs choices"),
    (dict(default=1, kind=int, low=0, low_inclusive=False), "inclusive"),
    (dict(default=1.0, kind=float, low=0.0, off=True), "exclude 0"),
    (dict(default=1, kind=list), "kind must be"),
])
def test_inconsistent_declarations_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Setting(**kwargs)


def test_setting_infers_kind_and_builds_a_checked_dataclass():
    @dataclasses.dataclass(frozen=True)
    class Config:
        size: int = setting(kind=int, low=1, label="Size", help="Size.")
        rate: float = setting(0.5, low=0.0, high=1.0, label="Rate", help="Rate.")
        mode: str = setting("a", choices=("a", "b"), label="Mode", help="Mode.")

        def __post_init__(self):
            check_fields(self)

    specs = settings_of(Config)
    assert (specs["size"].kind, specs["rate"].kind, specs["mode"].kind) == (int, float, str)
    assert specs["size"].default is MISSING
    assert Config(2).rate == 0.5
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\], got 2.0"):
        Config(2, rate=2.0)
    with pytest.raises(ValueError, match="needs kind="):
        setting(None, label="X", help="X.")


def test_split_values_over_configs():
    model, train = split_values({"hidden_size": 8, "lr": 0.1, "cell": "rnn"}, ModelConfig, TrainConfig)
    assert model == {"hidden_size": 8, "cell": "rnn"} and train == {"lr": 0.1}
    with pytest.raises(ValueError, match=r"unknown settings: \['learning_rate'\]"):
        split_values({"learning_rate": 0.1}, ModelConfig, TrainConfig)


def test_shared_argument_ranges():
    with pytest.raises(ValueError, match="^window must be a positive integer, got 0$"):
        POSITIVE_INT.check("window", 0)
    with pytest.raises(ValueError, match="^start must be a non-negative integer, got -1$"):
        NON_NEGATIVE_INT.check("start", -1)
    with pytest.raises(ValueError, match="^temperature must be a finite number > 0, got inf$"):
        POSITIVE_REAL.check("temperature", math.inf)
    assert POSITIVE_INT.parse("3") == 3 and NON_NEGATIVE_INT.parse("0") == 0 and POSITIVE_REAL.parse("0.5") == 0.5
