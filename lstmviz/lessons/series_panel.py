"""Numeric series mode: a series from a CSV column or a generator, scaled to (-1, 1), a small
forecaster trained on it (in a worker, through ``lstmviz.training.TrainingController``), and its
forecasts in the series' original units.

Sources: the tutorial's ramp -3 … 8, a sine, a noisy sine, a random-walk "price" (all from
``engine.series``), or a numeric column of a CSV file (the column is chosen in a combo after the
header is read; an unusable file or column shows an error and changes nothing). The values plot
shows the original series next to its scaled version (``MinMaxScaler`` fitted on the training
part). Train builds ``SequenceModel(dense input of W values, K outputs, linear head)`` and an
``engine.train.Trainer`` on the ``SeriesDataset``; while it learns, the forecast plot shows
``predict_all`` (one-step-ahead) and a forecast rolled forward from the picked origin.
"Step through" hands the model and the dataset's input windows to the viewer's ``Session``
(``set_series``), so the gate heatmaps, text and current-step panels step the forecaster; step
``p`` is labelled with the value it forecasts (``core.recipes.step_labels``), in original units.
The sources and the training recipe are in ``core.recipes`` (``generate``, ``series_trainer``).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from engine.errors import DataError
from engine.model import ModelConfig, SequenceModel
from engine.series import MISSING_MODES, SeriesDataset, csv_columns, forecast, predict_all, read_csv_column
from engine.settings import settings_of
from engine.train import TrainConfig

from .. import dialogs
from ..crash_handler import one_line
from ..core.recipes import SERIES_GENERATORS, SERIES_SEED, generate, series_dataset, series_trainer, step_labels
from ..forms import setting_widget
from ..training import TrainingController
from .controls import spin_box as _spin
from .forecast_plot import ForecastPlot

CSV_FILTER = "CSV files (*.csv *.txt);;All files (*)"
# The source chosen at first: a periodic series, whose every part lies in the range the scaler
# was fitted on, so a rolled-forward forecast keeps to the pattern (default settings, 30 values
# past the end: within 0.3 % of the range of the true continuation). A ramp's validation part and
# continuation lie beyond the training range; the forecaster has never seen such inputs and
# flattens out (14 % of the range off 30 values on; a 12-value ramp swung from -0.8 to 6.9).
DEFAULT_SOURCE = "sine"
MODEL_SETTINGS, TRAIN_SETTINGS = settings_of(ModelConfig), settings_of(TrainConfig)


# The delimiter and decimal-separator choices: label shown -> value passed to engine.series
DELIMITERS = {"Auto": None, "comma ,": ",", "semicolon ;": ";", "tab": "\t", "pipe |": "|"}
DECIMALS = {"point .": ".", "comma ,": ","}
MISSING = {mode: mode for mode in MISSING_MODES}


class SeriesPanel(QtWidgets.QWidget):
    """The series lesson (module docstring). ``values`` (N,) original units; ``dataset`` and
    ``model`` are the last trained (or shown) pair; ``score`` its ``SeriesScore``."""

    def __init__(self, session=None, parent=None):
        """``session``: the viewer's ``Session`` that "Step through" loads into (None: no button)."""
        super().__init__(parent)
        self.session = session
        self.values: np.ndarray | None = None
        self.dataset: SeriesDataset | None = None
        self.model: SequenceModel | None = None
        self.score = None
        self.csv_path: str | None = None
        self.controller = TrainingController(self)

        self.generator_box = QtWidgets.QComboBox()
        self.generator_box.addItems(SERIES_GENERATORS)
        self.generator_box.setCurrentText(DEFAULT_SOURCE)
        self.length = _spin(20, 100_000, 400, "Number of values to generate")
        generate_button = QtWidgets.QPushButton("Generate")
        generate_button.clicked.connect(self.generate)
        open_button = QtWidgets.QPushButton("Open CSV…")
        open_button.clicked.connect(self.ask_open_csv)
        self.delimiter_box = _choice(DELIMITERS, "The CSV file's delimiter (Auto: the one that gives every row "
                                                 "the same number of fields)")
        self.decimal_box = _choice(DECIMALS, "The decimal separator of the CSV file's numbers")
        self.missing_box = _choice(MISSING, "Missing cells (empty, NA, null, NaN, n/a, -, ?): refuse the column, "
                                            "or fill each gap linearly between its neighbours (gaps before the "
                                            "first value or after the last are left out)")
        self.delimiter_box.currentIndexChanged.connect(self._reread_columns)
        self.decimal_box.currentIndexChanged.connect(self._reread_columns)
        self.column_box = QtWidgets.QComboBox()
        self.column_box.setToolTip("The numeric column to load (from the file's first row)")
        self.column_box.setEnabled(False)
        self.load_column_button = QtWidgets.QPushButton("Load column")
        self.load_column_button.setEnabled(False)
        self.load_column_button.clicked.connect(self.load_column)

        self.window_size = _spin(1, 200, 8, "W: past values the model reads at each position")
        self.horizon = _spin(1, 50, 1, "K: future values the model predicts at each position")
        self.hidden = setting_widget(MODEL_SETTINGS["hidden_size"], value=16, high=256, tip="Hidden units")
        self.steps = setting_widget(TRAIN_SETTINGS["steps"], value=300, low=10, high=100_000, tip="Optimizer steps")
        self.train_button = QtWidgets.QPushButton("Train")
        self.train_button.clicked.connect(self.train)
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.clicked.connect(self.controller.stop)
        self.step_button = QtWidgets.QPushButton("Step through")
        self.step_button.setToolTip("Step the trained model through the series in the viewer "
                                    "(gate heatmaps, values, predicted vs actual)")
        self.step_button.clicked.connect(self.step_through)
        self.step_button.setVisible(session is not None)
        self.origin = _spin(0, 0, 0, "Roll a forecast forward from this index (or click the forecast plot)")
        self.ahead = _spin(1, 1000, 30, "How many values to forecast")
        self.origin.valueChanged.connect(self.update_forecast)
        self.ahead.valueChanged.connect(self.update_forecast)
        self.status = QtWidgets.QLabel("Generate a series or open a CSV file.")
        self.status.setWordWrap(True)

        self.values_view = pg.GraphicsLayoutWidget()
        self.original_plot = self.values_view.addPlot(row=0, col=0, title="original")
        self.scaled_plot = self.values_view.addPlot(row=0, col=1, title="scaled to (-1, 1)")
        self.original_curve = self.original_plot.plot(pen=pg.mkPen((150, 150, 150), width=1.5))
        self.scaled_curve = self.scaled_plot.plot(pen=pg.mkPen("#0072B2", width=1.5))
        self.values_view.setMaximumHeight(170)
        self.forecast_plot = ForecastPlot()
        self.forecast_plot.origin_picked.connect(self.origin.setValue)

        source = _row([self.generator_box, QtWidgets.QLabel("N"), self.length, generate_button])
        csv_file = _row([open_button, QtWidgets.QLabel("delimiter"), self.delimiter_box, QtWidgets.QLabel("decimal"),
                         self.decimal_box, QtWidgets.QLabel("missing"), self.missing_box, self.column_box,
                         self.load_column_button])
        params = _row([QtWidgets.QLabel("window"), self.window_size, QtWidgets.QLabel("horizon"), self.horizon,
                       QtWidgets.QLabel("hidden"), self.hidden, QtWidgets.QLabel("steps"), self.steps,
                       self.train_button, self.stop_button, self.step_button])
        rollout = _row([QtWidgets.QLabel("forecast from"), self.origin, QtWidgets.QLabel("ahead"), self.ahead])
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(source)
        layout.addLayout(csv_file)  # its own row, like the forecast's: no sideways scrolling
        layout.addWidget(self.values_view)
        layout.addLayout(params)
        layout.addLayout(rollout)  # its own row: the panel fits a narrower dock without clipping
        layout.addWidget(self.forecast_plot, 1)
        layout.addWidget(self.status)

        self.controller.weights_updated.connect(self._on_weights)
        self.controller.progressed.connect(self._on_progress)
        self.controller.failed.connect(lambda message: dialogs.show_error(self, "Training stopped", message))
        self.controller.state_changed.connect(self._update_buttons)
        self._update_buttons()

    # --- data ---------------------------------------------------------------------------------
    def generate(self) -> None:
        kind = self.generator_box.currentText()
        self.set_values(generate(kind, self.length.value(), np.random.default_rng(SERIES_SEED)), kind)

    def ask_open_csv(self) -> None:
        path = dialogs.ask_open_path(self, "Open a CSV file", CSV_FILTER)
        if path:
            self.open_csv(path)

    def csv_options(self) -> dict:
        """The chosen ``delimiter`` (None: detected) and ``decimal`` separator, as keyword
        arguments of ``engine.series.csv_columns`` and ``read_csv_column``."""
        return {"delimiter": self.delimiter_box.currentData(), "decimal": self.decimal_box.currentData()}

    def open_csv(self, path) -> bool:
        """Read the header of ``path`` (with ``csv_options``) into the column combo; on error
        show it and change nothing."""
        try:
            names = csv_columns(path, **self.csv_options())
        except (ValueError, OSError, MemoryError) as e:
            dialogs.show_error(self, "Cannot open this CSV file", one_line(e))
            return False
        self.csv_path = str(path)
        self.column_box.clear()
        for k, name in enumerate(names):
            self.column_box.addItem(f"{k}: {name}" if name else f"column {k}", k)
        self.column_box.setEnabled(True)
        self.load_column_button.setEnabled(True)
        return True

    def _reread_columns(self, *_) -> None:
        """The delimiter or decimal separator changed: list the open file's columns again."""
        if self.csv_path is not None:
            self.open_csv(self.csv_path)

    def load_column(self) -> bool:
        """Load the chosen column; on error show it and change nothing."""
        column = self.column_box.currentData()
        if self.csv_path is None or column is None:
            return False
        try:
            read = read_csv_column(self.csv_path, int(column), **self.csv_options(),
                                   missing=self.missing_box.currentData())
        except (ValueError, OSError, MemoryError) as e:
            dialogs.show_error(self, "Cannot use this column", one_line(e))
            return False
        notes = [f"{len(lines)} missing value{'s' * (len(lines) > 1)} {what} (row{'s' * (len(lines) > 1)} "
                 f"{_rows(lines)})" for lines, what in ((read.interpolated, "interpolated"),
                                                        (read.dropped, "left out at the ends")) if lines]
        self.set_values(read.values, f"{self.column_box.currentText()} of {self.csv_path}"
                        + (f"; {', '.join(notes)}" if notes else ""))
        return True

    def set_values(self, values: np.ndarray, description: str) -> None:
        """Show a new series (scaled as the dataset will scale it); forget the trained model."""
        dataset = self._dataset(values)
        self.values, self.dataset, self.model, self.score = values, dataset, None, None
        self._update_buttons()
        x = np.arange(len(values))  # (N,)
        self.original_curve.setData(x, values)
        self.scaled_curve.setData(x, dataset.scaled if dataset is not None else np.zeros(0))
        self.forecast_plot.set_series(values, len(values) - (dataset.n_val if dataset is not None else 0))
        self.origin.setMaximum(len(values) - 1)
        self.origin.setValue(max(self.window_size.value() - 1, int(len(values) * 0.8) - 1))
        note = "" if dataset is not None else " (too short for this window: the scaled view needs a longer series)"
        self.status.setText(f"{len(values)} values: {description}{note}")

    def _dataset(self, values: np.ndarray) -> SeriesDataset | None:
        try:
            return series_dataset(values, self.window_size.value(), self.horizon.value())
        except DataError:
            return None

    # --- training -----------------------------------------------------------------------------
    def train(self) -> None:
        if self.values is None or self.controller.is_active():
            return
        try:
            self.dataset, trainer = series_trainer(self.values, self.window_size.value(), self.horizon.value(),
                                                   self.hidden.value(), self.steps.value())
        except (ValueError, OSError) as e:
            dialogs.show_error(self, "Cannot train on this series", str(e))
            return
        self.controller.start(trainer)

    @QtCore.Slot(object, object)
    def _on_weights(self, model: SequenceModel, _viewer_trace) -> None:
        self.show_model(model)

    def show_model(self, model: SequenceModel) -> None:
        """Show ``model``'s predictions for the current dataset (live weights, or a model trained elsewhere)."""
        if self.dataset is None:
            raise ValueError("load or generate a series first")
        self.dataset.check_model(model)
        self.model = model
        self._update_buttons()
        prediction = predict_all(model, self.dataset)
        self.forecast_plot.set_prediction(prediction.index, prediction.predicted)
        self.score = self.dataset.evaluate(model) if self.dataset.has_validation else None
        if self.score is not None:
            self.status.setText(f"validation MSE {self.score.mse:.4g} (scaled units), "
                                f"{self.score.mse_original:.4g} (original units²)")
        self.update_forecast()

    def update_forecast(self, *_) -> None:
        """Roll the forecast forward from the origin (it needs at least W values of history)."""
        if self.model is None or self.dataset is None:
            return
        origin = self.origin.value()
        if origin + 1 < self.dataset.window:
            self.forecast_plot.clear_forecast()
            return
        scaled = forecast(self.model, self.dataset.scaled[: origin + 1], self.ahead.value())  # (S,)
        self.forecast_plot.set_forecast(origin, self.dataset.scaler.inverse_transform(scaled))

    def step_through(self) -> bool:
        """Load the model and every position's scaled input window into the session (labels:
        the value each position forecasts). False (nothing changes) without a session or model."""
        if self.session is None or self.model is None or self.dataset is None:
            return False
        d = self.dataset
        self.session.set_series(self.model, d.inputs, step_labels(d), inverse=d.scaler.inverse_transform,
                                targets=d.targets)
        return True

    def _on_progress(self, update) -> None:
        p = update.progress
        self.status.setText(f"step {p.step} / {p.total_steps}: smoothed loss {p.smooth_loss:.4g} ({p.loss_unit})")

    def _update_buttons(self, *_) -> None:
        active = self.controller.is_active()
        self.train_button.setEnabled(not active)
        self.step_button.setEnabled(self.model is not None)
        self.stop_button.setEnabled(active)

    def shutdown(self) -> None:
        """Stop training and wait for the thread."""
        self.controller.shutdown()


def _rows(lines: list, shown: int = 5) -> str:
    """``"8, 15, 22"``: the first ``shown`` file lines, then how many more."""
    more = len(lines) - shown
    return ", ".join(map(str, lines[:shown])) + (f" and {more} more" if more > 0 else "")


def _choice(choices: dict, tip: str) -> QtWidgets.QComboBox:
    """A combo listing ``choices``' labels, each carrying its value as item data."""
    box = QtWidgets.QComboBox()
    for label, value in choices.items():
        box.addItem(label, value)
    box.setToolTip(tip)
    return box


def _row(widgets: list) -> QtWidgets.QHBoxLayout:
    row = QtWidgets.QHBoxLayout()
    for widget in widgets:
        row.addWidget(widget)
    row.addStretch(1)
    return row
