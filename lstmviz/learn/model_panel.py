"""Model panel: the architecture and optimisation form, presets, and inline validation.

Each control is built from its config field's ``Setting`` (``lstmviz.forms``): range, label,
tooltip and choices come from ``engine.model.ModelConfig`` / ``engine.train.TrainConfig``. The
form starts at the ``START_PRESET`` preset (fields it leaves out: their defaults). It is
validated on every edit by constructing the engine's own ``ModelConfig`` and ``TrainConfig`` and
calling ``corpus.check_trainable`` and ``engine.memory.check_training`` (a run too big for the
memory available is refused with the estimate); their error messages appear in red under the form and
``validity_changed(False)`` is emitted (the training panel disables Train and shows the reason),
so a bad combination is explained before Train is pressed. The last values are kept in
QSettings under ``learn/<field>``.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from engine import memory
from engine.model import ModelConfig
from engine.settings import settings_of, split_values
from engine.train import TrainConfig

from ..forms import changed_signal, set_widget_value, setting_widget, widget_value
from ..core.presets import PRESETS, preset_named

CUSTOM = "Custom"
SETTINGS_PREFIX = "learn/"
START_PRESET = "char-rnn"  # the form's first values (the seed: its default)
# the config fields the form shows, in order
FORM_FIELDS = ("cell", "input_kind", "embed_size", "hidden_size", "num_layers", "dropout", "forget_bias", "init",
               "init_range", "seq_len",
               "batch_size", "optimizer", "lr", "momentum", "rmsprop_decay", "clip_norm", "clip_value", "lr_schedule",
               "lr_decay", "lr_decay_every", "lr_decay_start", "lr_warmup", "seed", "steps", "eval_every", "batching")
SETTINGS = {**settings_of(ModelConfig), **settings_of(TrainConfig)}


def start_values() -> dict:
    """The form's first values: the fields' defaults, then ``START_PRESET``'s values."""
    return {**{name: SETTINGS[name].default for name in FORM_FIELDS}, **preset_named(START_PRESET).values}


class ModelPanel(QWidget):
    """Form for ``ModelConfig`` + ``TrainConfig`` with presets. See the module docstring."""

    validity_changed = Signal(bool)
    reason_changed = Signal(str)  # why the form cannot be trained ("" when it can)

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
        self.controls = {name: setting_widget(SETTINGS[name]) for name in FORM_FIELDS}
        form = QFormLayout()
        form.addRow("Preset", self.preset)
        for name, widget in self.controls.items():
            form.addRow(SETTINGS[name].label, widget)
            changed_signal(widget).connect(self._on_edited)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setToolTip("Why the current settings cannot be trained, if they cannot.")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addStretch(1)
        self.preset.currentTextChanged.connect(self._on_preset_chosen)
        self.set_values(start_values())
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
        return {name: widget_value(SETTINGS[name], widget) for name, widget in self.controls.items()}

    def set_values(self, values: dict) -> None:
        """Fill the given fields (unknown names or choices: ValueError); validates once at the end."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown model panel fields: {sorted(unknown)}")
        self._applying = True
        try:
            for name, value in values.items():
                set_widget_value(SETTINGS[name], self.controls[name], value)
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

    @property
    def reason(self) -> str:
        """Why the form cannot be trained: the configs' or the corpus' message ("" when it can)."""
        return self.message.text()

    def build(self, corpus=None) -> tuple[ModelConfig, TrainConfig]:
        """The engine configs for training on ``corpus`` (default: the one set). Raises the
        engine's ValueError (or DataError) when the form cannot be trained, ``NotEnoughMemory``
        (a ValueError naming the estimate and the memory available) when the run cannot fit."""
        corpus = self._corpus if corpus is None else corpus
        if corpus is None:
            raise ValueError("Open or paste a training text first (Data panel).")
        model_values, train_values = split_values(self.values(), ModelConfig, TrainConfig)
        V = len(corpus.vocab)
        model_config = ModelConfig(input_size=V, output_size=V, **model_values)
        train_config = TrainConfig(**train_values, val_fraction=corpus.val_fraction)
        corpus.check_trainable(train_config.seq_len, train_config.batch_size)
        memory.check_training(model_config, train_config, len(corpus.text))
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
        changed_reason = text != self.message.text()
        self.message.setText(text)
        self.message.setVisible(bool(text))
        if valid != self._valid:
            self._valid = valid
            self.validity_changed.emit(valid)
        if changed_reason:
            self.reason_changed.emit(text)

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
            self._settings.setValue(SETTINGS_PREFIX + name, SETTINGS[name].form_value(value))

    @staticmethod
    def _stored_values(settings: QSettings) -> dict:
        out = {}
        for name in FORM_FIELDS:
            key, spec = SETTINGS_PREFIX + name, SETTINGS[name]
            if settings.contains(key):
                out[name] = spec.from_form(settings.value(key, spec.form_value(spec.default), type=spec.kind))
        return out
