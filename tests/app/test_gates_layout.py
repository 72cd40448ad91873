"""The gate panel's grid is laid out again only when the quantities shown change: new weights
for a model of the same cell kind (live training refreshes) leave every view's size alone."""

import numpy as np
from PySide6 import QtWidgets

from engine import ModelConfig, SequenceModel
from engine.quantities import display_order

from .helpers import ResizeCounter, shown


def _model(vocab, cell, seed):
    cfg = ModelConfig(input_size=len(vocab), output_size=len(vocab), cell=cell, hidden_size=12, num_layers=2,
                      dtype="float64")
    return SequenceModel(cfg, rng=np.random.default_rng(seed))


def _grid_cells(panel):
    """name -> (row, column) of every view in the panel's grid."""
    cells = {}
    for name, view in panel.views.items():
        index = panel.grid.indexOf(view)
        if index >= 0:
            cells[name] = panel.grid.getItemPosition(index)[:2]
    return cells


def _settle():
    """Deliver the posted layout requests (and the resizes they cause), two rounds deep."""
    QtWidgets.QApplication.processEvents()
    QtWidgets.QApplication.processEvents()


def test_new_weights_of_the_same_cell_kind_keep_the_grid(qtbot, window, vocab):
    panel = shown(window, "gates")
    counter = ResizeCounter()
    for view in panel.views.values():
        view.installEventFilter(counter)
    before = _grid_cells(panel)
    assert sorted(before) == sorted(display_order("lstm"))
    for seed in (11, 12):  # two live refreshes: new weights, same cell kind and shape
        window.session.set_model(_model(vocab, "lstm", seed), vocab)
        _settle()
    assert counter.count == 0
    assert _grid_cells(panel) == before


def test_another_cell_kind_lays_the_grid_out_again(qtbot, window, vocab):
    panel = shown(window, "gates")
    counter = ResizeCounter()
    for view in panel.views.values():
        view.installEventFilter(counter)
    window.session.set_model(_model(vocab, "gru", 11), vocab)
    _settle()
    assert sorted(_grid_cells(panel)) == sorted(display_order("gru"))
    assert counter.count > 0
