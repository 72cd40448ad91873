"""Model panel: the architecture and optimisation form, presets, and inline validation.

The form is validated on every edit by constructing the engine's own ``ModelConfig`` and
``TrainConfig`` and calling ``corpus.check_trainable``; their error messages appear in red under
the form and ``validity_changed(False)`` is emitted (the training panel disables Train), so a
bad combination is explained before Train is pressed. The last values are kept in QSettings
under ``learn/<field>``.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QSpinBox,
                               QVBoxLayout, QWidget)

from engine.model import ModelConfig
from engine.train import TrainConfig

from .presets import PRESETS, preset_named

CELLS = (("LSTM", "lstm"), ("Vanilla RNN", "rnn"))
OPTIMIZERS = (("Adam", "adam"), ("RMSprop", "rmsprop"), ("Adagrad", "adagrad"), ("SGD", "sgd"))
BATCHING = (("Sequential (carry state)", "sequential"), ("Random windows", "random"))
CUSTOM = "Custom"
SETTINGS_PREFIX = "learn/"

# field -> (default, tooltip); the defaults are the char-rnn preset's values with seed 0
FIELDS = {
    "cell": ("lstm", "LSTM: gated cell with input, forget and output gates (i, f, g, o). "
                     "Vanilla RNN: h = tanh(x Wx + h Wh + b), no gates."),
    "hidden_size": (128, "Hidden units per layer (H). Cost grows roughly with H squared."),
    "num_layers": (2, "Stacked recurrent layers; each feeds its hidden state to the next."),
    "dropout": (0.0, "Inverted dropout between stacked layers while training (probability of "
                     "zeroing a unit, in [0, 1)). Has no effect with one layer."),
    "seq_len": (50, "Characters per training window: gradients flow back through this many "
                    "timesteps (truncated backpropagation through time)."),
    "batch_size": (50, "Windows trained in parallel per step."),
    "optimizer": ("rmsprop", "Update rule: SGD (with optional momentum), Adagrad, RMSprop or Adam."),
    "lr": (2e-3, "Learning rate: the step size of each update (> 0)."),
    "momentum": (0.0, "SGD momentum in [0, 1); ignored by the other optimizers."),
    "clip_norm": (5.0, "Rescale the gradients when their global L2 norm exceeds this value "
                       "(0 = off)."),
    "clip_value": (0.0, "Clip every gradient element to [-value, value] (0 = off)."),
    "seed": (0, "Random seed for the initial weights, batch order and dropout: the same seed "
                "and settings train the same model."),
    "steps": (5000, "Total optimizer steps to train for."),
    "eval_every": (200, "Compute the validation loss every this many steps."),
    "batching": ("sequential", "Sequential: each batch row continues the previous batch's text and "
                               "the hidden state is carried over (char-rnn). Random: windows at "
                               "random offsets, state reset every step."),
}


class ModelPanel(QWidget):
    """Form for ``ModelConfig`` + ``TrainConfig`` with presets. See the module docstring."""

    validity_changed = Signal(bool)

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._settings = None  # set once the stored values are read, so defaults do not overwrite them
        self._corpus = None
        self._valid = False
        self._applying = False
        self.preset = QComboBox()
        self.preset.addItem(CUSTOM)
        for preset in PRESETS:
            self.preset.addItem(preset.name)
            self.preset.setItemData(self.preset.count() - 1, preset.source, Qt.ToolTipRole)
        self.preset.setToolTip("Fill the form with a well-known configuration; every value stays editable.")
        self.controls = {
            "cell": _combo(CELLS),
            "hidden_size": _spin(1, 4096),
            "num_layers": _spin(1, 8),
            "dropout": _dspin(0.0, 0.99, 2, 0.05),
            "seq_len": _spin(1, 100_000),
            "batch_size": _spin(1, 4096),
            "optimizer": _combo(OPTIMIZERS),
            "lr": _dspin(0.0, 1e6, 6, 1e-4),
            "momentum": _dspin(0.0, 0.99, 2, 0.05),
            "clip_norm": _dspin(0.0, 1e6, 2, 0.5, off=True),
            "clip_value": _dspin(0.0, 1e6, 2, 0.5, off=True),
            "seed": _spin(0, 2**31 - 1),
            "steps": _spin(1, 100_000_000),
            "eval_every": _spin(1, 100_000_000),
            "batching": _combo(BATCHING),
        }
        labels = {"cell": "Cell", "hidden_size": "Hidden size", "num_layers": "Layers", "dropout": "Dropout",
                  "seq_len": "Sequence length", "batch_size": "Batch size", "optimizer": "Optimizer",
                  "lr": "Learning rate", "momentum": "Momentum", "clip_norm": "Clip gradient norm",
                  "clip_value": "Clip gradient value", "seed": "Seed", "steps": "Steps",
                  "eval_every": "Evaluate every", "batching": "Batching"}
        form = QFormLayout()
        form.addRow("Preset", self.preset)
        for name, widget in self.controls.items():
            widget.setToolTip(FIELDS[name][1])
            form.addRow(labels[name], widget)
            signal = widget.currentIndexChanged if isinstance(widget, QComboBox) else widget.valueChanged
            signal.connect(self._on_edited)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setToolTip("Why the current settings cannot be trained, if they cannot.")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addStretch(1)
        self.preset.currentTextChanged.connect(self._on_preset_chosen)
        self.set_values({name: default for name, (default, _) in FIELDS.items()})
        if settings is not None:
            for name, value in self._stored_values(settings).items():
                try:
                    self.set_values({name: value})
                except ValueError:  # a stale or hand-edited setting: keep the default
                    pass
        self._settings = settings
        self._validate()

    # --- values -----------------------------------------------------------------------------
    def values(self) -> dict:
        """The form as ``{field: value}`` (clip fields None when off)."""
        out = {}
        for name, widget in self.controls.items():
            if isinstance(widget, QComboBox):
                out[name] = widget.currentData()
            elif isinstance(widget, QSpinBox):
                out[name] = int(widget.value())
            else:
                out[name] = float(widget.value())
        for name in ("clip_norm", "clip_value"):
            out[name] = out[name] or None
        return out

    def set_values(self, values: dict) -> None:
        """Fill the given fields (unknown names: ValueError); validates once at the end."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown model panel fields: {sorted(unknown)}")
        self._applying = True
        try:
            for name, value in values.items():
                widget = self.controls[name]
                if isinstance(widget, QComboBox):
                    index = widget.findData(value)
                    if index < 0:
                        raise ValueError(f"{name} cannot be {value!r}")
                    widget.setCurrentIndex(index)
                else:
                    widget.setValue(0 if value is None else value)
        finally:
            self._applying = False
        self._on_edited()

    def apply_preset(self, name: str) -> None:
        """Fill the form with preset ``name`` (the seed is kept)."""
        self.set_values(preset_named(name).values)
        self.preset.blockSignals(True)
        self.preset.setCurrentText(name)
        self.preset.blockSignals(False)

    # --- validation -------------------------------------------------------------------------
    def set_corpus(self, corpus) -> None:
        """The ``TextCorpus`` to validate against (None: no training text yet)."""
        self._corpus = corpus
        self._validate()

    @property
    def valid(self) -> bool:
        return self._valid

    def build(self, corpus=None) -> tuple[ModelConfig, TrainConfig]:
        """The engine configs for training on ``corpus`` (default: the one set). Raises the
        engine's ValueError (or DataError) when the form cannot be trained."""
        corpus = self._corpus if corpus is None else corpus
        if corpus is None:
            raise ValueError("Open or paste a training text first (Data panel).")
        v = self.values()
        V = len(corpus.vocab)
        model_config = ModelConfig(input_size=V, output_size=V, cell=v["cell"], hidden_size=v["hidden_size"],
                                   num_layers=v["num_layers"], dropout=v["dropout"])
        train_config = TrainConfig(seq_len=v["seq_len"], batch_size=v["batch_size"], steps=v["steps"], lr=v["lr"],
                                   optimizer=v["optimizer"], momentum=v["momentum"], clip_norm=v["clip_norm"],
                                   clip_value=v["clip_value"], seed=v["seed"], val_fraction=corpus.val_fraction,
                                   eval_every=v["eval_every"], batching=v["batching"])
        corpus.check_trainable(train_config.seq_len, train_config.batch_size)
        return model_config, train_config

    def check_corpus(self, corpus) -> None:
        """Raise the engine's DataError if ``corpus`` is too short for the current settings."""
        v = self.values()
        corpus.check_trainable(v["seq_len"], v["batch_size"])

    def _validate(self) -> None:
        try:
            self.build()
        except ValueError as exc:
            valid, text = False, str(exc)
        else:
            valid, text = True, ""
        no_corpus = self._corpus is None
        self.message.setStyleSheet("" if no_corpus else "color: #c62828;")
        self.message.setText(text)
        self.message.setVisible(bool(text))
        if valid != self._valid:
            self._valid = valid
            self.validity_changed.emit(valid)

    def _on_edited(self, *_args) -> None:
        if self._applying:
            return
        self.controls["dropout"].setEnabled(self.controls["num_layers"].value() > 1)
        if self.preset.currentText() != CUSTOM and not self._matches_preset(self.preset.currentText()):
            self.preset.blockSignals(True)
            self.preset.setCurrentText(CUSTOM)
            self.preset.blockSignals(False)
        self._store()
        self._validate()

    def _on_preset_chosen(self, name: str) -> None:
        if name != CUSTOM:
            self.apply_preset(name)

    def _matches_preset(self, name: str) -> bool:
        current = self.values()
        return all(current[k] == v for k, v in preset_named(name).values.items())

    # --- settings ---------------------------------------------------------------------------
    def _store(self) -> None:
        if self._settings is None:
            return
        for name, value in self.values().items():
            self._settings.setValue(SETTINGS_PREFIX + name, 0.0 if value is None else value)

    @staticmethod
    def _stored_values(settings: QSettings) -> dict:
        out = {}
        for name, (default, _) in FIELDS.items():
            key = SETTINGS_PREFIX + name
            if settings.contains(key):
                out[name] = settings.value(key, default, type=type(default))
        return out


def _spin(low: int, high: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setKeyboardTracking(False)
    return box


def _dspin(low: float, high: float, decimals: int, step: float, off: bool = False) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setDecimals(decimals)
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setKeyboardTracking(False)
    if off:
        box.setSpecialValueText("off")
    return box


def _combo(items) -> QComboBox:
    box = QComboBox()
    for label, data in items:
        box.addItem(label, data)
    return box
