"""Stepping a numeric forecaster in the viewer: heatmaps, hover readout, labels in the text panel,
predicted vs actual in the current-step panel, switching back to text, and the series lesson's
"Step through" button."""

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from engine.model import ModelConfig, SequenceModel
from engine.series import SeriesDataset, sine
from lstmviz.lessons.series_panel import SeriesPanel
from lstmviz.core.sequence import SERIES_SEPARATOR

from .conftest import TEXT
from .helpers import assert_heatmaps_equal_trace

NAMES = ("f", "i", "o", "g", "c", "h")
W, K = 5, 2


@pytest.fixture
def dataset():
    return SeriesDataset(3.0 + 2.0 * sine(80, period=13.0), W, K, val_fraction=0.2, dtype="float64")


@pytest.fixture
def series_model():
    cfg = ModelConfig(input_size=W, output_size=K, hidden_size=7, num_layers=2, input_kind="dense",
                      head="linear", dtype="float64")
    return SequenceModel(cfg, rng=np.random.default_rng(5))


def labels_of(dataset):
    """Independent of the panel's helper: the first value each position forecasts, 4 significant digits."""
    return ["%.4g" % dataset.values[p + W] for p in range(dataset.positions)]


@pytest.fixture
def series_window(window, dataset, series_model):
    window.session.set_series(series_model, dataset.inputs, labels_of(dataset),
                              inverse=dataset.scaler.inverse_transform, targets=dataset.targets)
    return window


def assert_heatmaps_match(window, model, values, layer=0):
    assert_heatmaps_equal_trace(window, model.trace(values), NAMES, layer)


def test_heatmaps_equal_engine_trace_after_steps(series_window, series_model, dataset):
    s = series_window.session
    assert s.sequence.kind == "series" and s.vocab is None and s.steps == dataset.positions
    for _ in range(23):
        assert s.step()
    assert s.t == 23
    assert_heatmaps_match(series_window, series_model, dataset.inputs)
    s.select(1, -1)
    assert_heatmaps_match(series_window, series_model, dataset.inputs, layer=1)
    s.seek(s.steps)
    assert_heatmaps_match(series_window, series_model, dataset.inputs, layer=1)


def test_cell_levels_come_from_whole_series(series_window, series_model, dataset):
    s = series_window.session
    s.seek(2)
    c = np.abs(series_model.trace(dataset.inputs).gate("c", 0))  # (T, H)
    lo, hi = series_window.panel("gates").views["c"].colorbar.levels()
    assert lo == -hi and hi >= np.percentile(c, 50) and hi > np.abs(s.trace().gate("c", 0)).max()


def test_hover_readout_shows_label_and_value(series_window, qtbot, dataset, series_model):
    s = series_window.session
    s.seek(20)
    view = series_window.panel("gates").views["h"]
    point = QtCore.QPointF(view.mapFromScene(view.scene_pos_of(3, 12)))
    move = QtGui.QMouseEvent(QtCore.QEvent.MouseMove, point, view.viewport().mapToGlobal(point),
                             QtCore.Qt.NoButton, QtCore.Qt.NoButton, QtCore.Qt.NoModifier)
    with qtbot.waitSignal(view.hovered, timeout=2000) as blocker:
        QtWidgets.QApplication.sendEvent(view.viewport(), move)
    assert blocker.args[:2] == [3, 12]
    expected = series_model.trace(dataset.inputs).gate("h", 0)[12, 3]
    message = series_window.statusBar().currentMessage()
    assert "unit 3" in message and "step 13 ·" in message  # index 12 is step 13 (lstmviz.core.labels)
    assert f"next {dataset.values[12 + W]:.4g}" in message and f"{expected:+.4f}" in message


def test_step_panel_shows_prediction_and_actual_in_original_units(series_window, series_model, dataset):
    s = series_window.session
    s.seek(31)
    predicted, actual = series_window.panel("step").forecast
    scaled = series_model.trace(dataset.inputs).outputs[30]  # (K,) prediction made at step 30
    np.testing.assert_allclose(predicted, dataset.scaler.inverse_transform(scaled), rtol=0, atol=1e-12)
    np.testing.assert_allclose(actual, dataset.values[30 + W : 30 + W + K], rtol=0, atol=1e-9)
    assert f"predicted {predicted[0]:.4g}" in series_window.panel("step").predictions_title.text()
    assert "step 31:" in series_window.panel("step").vectors_title.text()  # after seek(31)
    assert series_window.panel("step").top == []


def test_step_panel_without_inverse_shows_scaled(window, series_model, dataset):
    s = window.session
    s.set_series(series_model, dataset.inputs, labels_of(dataset))
    s.seek(4)
    predicted, actual = window.panel("step").forecast
    np.testing.assert_allclose(predicted, series_model.trace(dataset.inputs).outputs[3], rtol=0, atol=1e-12)
    assert actual is None and "(scaled)" in window.panel("step").predictions_title.text()


def test_text_panel_shows_labels_highlights_and_jumps(series_window, qtbot, dataset):
    s = series_window.session
    editor = series_window.panel("text").editor
    labels = labels_of(dataset)
    assert editor.isReadOnly() and editor.toPlainText() == SERIES_SEPARATOR.join(labels)
    s.seek(7)
    start = sum(len(label) + len(SERIES_SEPARATOR) for label in labels[:6])
    bold = [sel for sel in editor.extraSelections() if sel.format.fontWeight() == QtGui.QFont.Bold]
    assert [(sel.cursor.selectionStart(), sel.cursor.selectionEnd()) for sel in bold] == \
        [(start, start + len(labels[6]))]
    target = sum(len(label) + len(SERIES_SEPARATOR) for label in labels[:11]) + 1  # inside label 11
    cursor = editor.textCursor()
    cursor.setPosition(target)
    rect = editor.cursorRect(cursor)
    qtbot.mouseClick(editor.viewport(), QtCore.Qt.LeftButton, pos=QtCore.QPoint(rect.x() + 2, rect.center().y()))
    assert s.t == 12
    s.select(0, 4, -1)
    coloured = list(series_window.panel("text").coloured())  # [(start, end)] by position
    assert len(coloured) == 12
    assert coloured[11] == (target - 1, target - 1 + len(labels[11]))


def test_refuses_mismatched_series_and_text_while_stepping_series(window, series_model, dataset, text_path):
    s = window.session
    with pytest.raises(ValueError, match="labels"):
        s.set_series(series_model, dataset.inputs, ["1"] * 3)
    with pytest.raises(ValueError, match="dense"):
        s.set_series(s.model, dataset.inputs, labels_of(dataset))
    assert s.sequence.kind == "text" and s.text == TEXT  # nothing changed
    s.set_series(series_model, dataset.inputs, labels_of(dataset))
    with pytest.raises(ValueError, match="series"):
        s.load_text(text_path)


def test_switching_back_to_text_model_restores_text(series_window, model, vocab):
    s = series_window.session
    s.seek(9)
    s.set_model(model, vocab)
    assert s.sequence.kind == "text" and s.text == TEXT and s.t == 0
    assert not series_window.panel("text").editor.isReadOnly()
    assert series_window.panel("text").editor.toPlainText() == TEXT
    s.seek(17)
    reference = model.trace(vocab.encode(TEXT))
    np.testing.assert_allclose(series_window.panel("gates").views["h"].displayed_image(),
                               reference.gate("h", 0)[:17].T, rtol=0, atol=1e-6)
    assert series_window.panel("step").top and series_window.panel("step").forecast is None
    assert s.caption(16) == f"char {TEXT[16]!r}"


@pytest.fixture
def series_panel(qtbot, window):
    widget = SeriesPanel(window.session)
    widget.show()
    yield widget
    widget.shutdown()
    widget.close()
    widget.deleteLater()


def test_series_panel_step_through_loads_trained_model(series_panel, window, qtbot, errors):
    panel = series_panel
    panel.generator_box.setCurrentText("sine")
    panel.length.setValue(120)
    panel.generate()
    assert not panel.step_button.isEnabled() and not panel.step_through()
    panel.steps.setValue(10)
    panel.train()
    qtbot.waitUntil(lambda: not panel.controller.is_active(), timeout=60_000)
    assert errors == [] and panel.model is not None and panel.step_button.isEnabled()
    qtbot.mouseClick(panel.step_button, QtCore.Qt.LeftButton)
    s = window.session
    assert s.sequence.kind == "series" and s.model is panel.model and s.steps == panel.dataset.positions
    assert s.label(0) == "%.4g" % panel.values[panel.dataset.window]
    s.seek(15)
    assert_heatmaps_match(window, panel.model, panel.dataset.inputs)
