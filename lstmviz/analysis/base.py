"""What every analysis panel shares: a job runner with its progress bar, a status line, an
Export button (PNG/SVG of the panel's figure, CSV of its table where it has one) and the
"compute only when shown" behaviour (``lstmviz.shown.RefreshWhenShown``)."""

from __future__ import annotations

import csv
import os

from PySide6 import QtCore, QtWidgets

from engine.atomic import atomic_writer
from engine.errors import FileWriteError
from engine.quantities import QUANTITIES

from .. import dialogs, export, export_actions
from ..readout import ElidedLabel
from ..shown import RefreshWhenShown
from .jobs import JobBar, JobRunner

QUANTITY_LABELS = {"tanh_c": "tanh(c) (cell state)",
                   **{n: f"{n} ({q.title})" for n, q in QUANTITIES.items() if n != "probs"}}


UPDATING = "(updating for the new weights…) "


class AnalysisPanel(RefreshWhenShown, QtWidgets.QWidget):
    """Base of the analysis docks. Subclasses build their controls into ``self.controls`` (a
    horizontal row) and ``self.body``, override ``refresh()`` (start a job, usually),
    ``clear_results()`` (forget the shown results), ``figure()`` (the widget exported as
    PNG/SVG), and ``csv_rows()`` (header + rows, or None).

    A new text, or a model of another shape or vocabulary, clears the shown results at once (they
    described something no longer shown); new weights for the same model (training) keep them,
    marked as being updated, until the new ones arrive. The panel refreshes itself for a new
    text or model (``refresh_soon`` in the next event-loop turn: once for a new model, which
    emits ``model_changed`` then ``text_changed``), so subclasses connect only their own
    settings' changes to ``refresh_soon``."""

    def __init__(self, session, name: str, parent=None):
        super().__init__(parent)
        self.session = session
        self.name = name
        self.runner = JobRunner(name, self)
        # No word wrap: a height-for-width label makes the dock's scroll area size the panel by
        # its children's size hints; an ElidedLabel ignores its text's width (a long message
        # never widens the dock) and elides it to the width it gets.
        self.status = ElidedLabel()
        self.status.setStyleSheet("color: gray")
        self.export_button = QtWidgets.QPushButton("Export…")  # its size hint makes room for the menu arrow
        menu = QtWidgets.QMenu(self.export_button)
        menu.addAction("Picture (PNG or SVG)…", self.export_picture)
        self.csv_action = menu.addAction("Table (CSV)…", self.export_csv)
        self.export_button.setMenu(menu)
        self.controls = QtWidgets.QHBoxLayout()
        self.controls.setContentsMargins(4, 2, 4, 0)
        top = QtWidgets.QHBoxLayout()
        top.setContentsMargins(4, 0, 4, 0)
        top.addWidget(self.status, 1)
        top.addWidget(self.export_button)
        self.body = QtWidgets.QVBoxLayout()
        self.body.setContentsMargins(0, 0, 0, 0)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(self.controls)
        layout.addLayout(top)
        layout.addWidget(JobBar(self.runner))
        layout.addLayout(self.body, 1)
        self._model = None  # the model of the last job started
        self._job = None  # what the last job started describes (``_inputs()``)
        self._due = QtCore.QTimer(self)  # the refresh for the inputs changed in this event-loop turn
        self._due.setSingleShot(True)
        self._due.setInterval(0)
        self._due.timeout.connect(self.refresh_soon)
        self._shown = None  # what the shown results describe (``_inputs()``), None: nothing shown
        self.runner.failed.connect(self.say)
        self.runner.result.connect(self._on_result)
        session.text_changed.connect(self._on_inputs_changed)
        session.model_changed.connect(self._on_inputs_changed)

    def _inputs(self, text: str, model) -> tuple:
        """What results depend on beyond the weights: the text, and the model's shape and vocabulary."""
        return text, None if model is None else model.config, self.session.vocab

    def _on_inputs_changed(self) -> None:
        self._due.start()
        if self._shown is None:
            return
        if self._shown != self._inputs(self.session.text, self.session.model):
            self._shown = None
            self.runner.cancel()  # its answer would describe the old inputs too
            self.clear_results()
            self.say("Computing for the new text or model…")
        elif not self.status.text().startswith(UPDATING):
            self.say(UPDATING + self.status.text())

    def _on_result(self, result) -> None:
        if self._job != self._inputs(self.session.text, self.session.model):
            return  # a job that finished while hidden, after the text or model changed
        self._shown = self._job
        self.show_result(result)

    def start(self, fn, text: str, model) -> None:
        """Run the job ``fn`` over ``text`` under ``model``. Only new weights for the same
        text, model shape and vocabulary (training) let the running job finish first, then the
        latest ``fn`` runs: live at a rate bounded by the work. Any other change (the text,
        another model, the panel's settings) cancels the running job, whose answer is worthless."""
        self._due.stop()  # this job covers the change of this event-loop turn: one job, not two
        inputs = self._inputs(text, model)
        restart = model is self._model or inputs != self._job
        self._model, self._job = model, inputs
        self.runner.run(fn, restart=restart)

    def say(self, message: str) -> None:
        self.status.setText(message)
        self.status.setToolTip(message)

    def refresh(self) -> None:
        raise NotImplementedError

    def show_result(self, result) -> None:
        raise NotImplementedError

    def clear_results(self) -> None:
        """Forget and undraw the shown results."""
        raise NotImplementedError

    def figure(self) -> QtWidgets.QWidget:
        return self

    def csv_rows(self):
        """``(header, rows)`` of the panel's table, or None when it has none."""
        return None

    # --- export -------------------------------------------------------------------------------
    def export_picture(self) -> None:
        title = f"Export {self.name}"
        path = export_actions.ask_save_path(self, title, export_actions.IMAGE_FILTER,
                                            os.path.join(os.path.expanduser("~"), f"{self.name}.png"))
        if path is None:
            return
        fmt = os.path.splitext(path)[1].lower()
        try:
            if fmt == ".png":
                export.export_png(self.figure(), path)
            elif fmt == ".svg":
                export.export_svg(self.figure(), path)
            else:
                raise ValueError(f"{path}: choose a file name ending in .png or .svg")
        except (export.ExportError, ValueError) as error:
            dialogs.show_error(self, title, str(error))
            return
        self.say(f"Exported {path}")

    def export_csv(self) -> None:
        title = f"Export {self.name} table"
        table = self.csv_rows()
        if table is None:
            dialogs.show_error(self, title, "Nothing to export yet: wait for the results.")
            return
        path = export_actions.ask_save_path(self, title, export_actions.CSV_FILTER,
                                            os.path.join(os.path.expanduser("~"), f"{self.name}.csv"))
        if path is None:
            return
        try:
            write_csv(path, *table)
        except FileWriteError as error:
            dialogs.show_error(self, title, str(error))
            return
        self.say(f"Exported {path}")


def write_csv(path, header, rows) -> None:
    """Write ``header`` and ``rows`` as a CSV file atomically (``engine.atomic``); raises
    ``FileWriteError`` naming the file."""
    with atomic_writer(path, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def quantity_box(names, current: str = "h") -> QtWidgets.QComboBox:
    """A combo box of quantities (data: the engine name) labelled with ``QUANTITY_LABELS``."""
    box = QtWidgets.QComboBox()
    for name in names:
        box.addItem(QUANTITY_LABELS[name], name)
    box.setCurrentIndex(max(0, box.findData(current)))
    return box


def layer_box(session) -> QtWidgets.QSpinBox:
    """A layer spin box kept within the viewed model's layers."""
    box = QtWidgets.QSpinBox()
    box.setPrefix("layer ")
    box.setToolTip("Which layer of the model")

    def update(*_):
        box.setRange(0, max(0, session.num_layers - 1))

    session.model_changed.connect(update)
    update()
    return box
