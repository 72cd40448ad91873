"""File > Import model… (and dropped .pt/.safetensors/.keras/.h5/.onnx files): a model trained
elsewhere, converted exactly by ``engine.interop``, opened in the viewer.

The flow, every dialog through ``lstmviz.dialogs``: ask for the vocabulary (characters in the
source's id order, typed or from a file); read, convert and run the parity check in a worker
thread (``lstmviz.threads``) behind a busy indicator; when several candidates fit one role
(PyTorch modules, Keras layers or ONNX nodes of separate recurrent stacks, several output
layers: ``engine.interop.AmbiguousModules``), let the user choose and import again; show
the report (what was recognised, the parity line) and open the model, after saving it as an
lstmviz checkpoint if the user asks (``engine.checkpoint.save_checkpoint``: atomic). Any
refusal of the importer (bidirectional layers, LSTM ``proj_size``, peepholes, ``hard_sigmoid``,
GRU ``reset_after=False``, unknown layers, a pickle that is not plain tensors, a vocabulary of
the wrong size, ...) ends in an error dialog titled with the file name and giving the cause;
the viewer is left as it was. A result without a vocabulary is not opened: its error dialog
gives ``cli_interop.no_vocabulary_note`` (what ``lstmviz import`` prints without ``--vocab``)
and the report. An import still running when the window closes is waited for
(``threads.stop_all``) and then dropped without a dialog.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from engine.checkpoint import save_checkpoint
from engine.interop import SOURCE_KINDS, AmbiguousModules, ImportResult, import_model

from . import dialogs, threads
from .cli_interop import no_vocabulary_note

IMPORTABLE = tuple(SOURCE_KINDS)  # the file extensions engine.interop reads
IMPORT_FILTER = ("Models from PyTorch, Keras or ONNX (" + " ".join(f"*{ext}" for ext in IMPORTABLE)
                 + ");;All files (*)")
SAVE_FILTER = "lstmviz models (*.npz)"


class ImportWorker(threads.Worker):
    """Runs ``engine.interop.import_model`` (with its parity check) in the worker thread.
    ``done(ImportResult)`` on success; ``ambiguous(AmbiguousModules)`` when the user must choose
    modules, layers or nodes; ``failed(str)`` (from ``threads.Worker``) for every refusal."""

    done = QtCore.Signal(object)
    ambiguous = QtCore.Signal(object)

    def __init__(self, path: str, vocab: dict, prefixes: list):
        super().__init__()
        self.path, self.vocab, self.prefixes = path, dict(vocab), list(prefixes)

    def work(self) -> None:
        try:
            result = import_model(self.path, prefixes=self.prefixes, **self.vocab)
        except AmbiguousModules as e:
            self.ambiguous.emit(e.with_traceback(None))
            return
        self.done.emit(result)


class ModelImporter(QtCore.QObject):
    """The import flow of one window (module docstring). ``imported(path)`` is emitted once an
    imported model is shown; ``outcome`` is set when a run ends ("opened", "cancelled" or
    "failed") for callers that wait on it."""

    imported = QtCore.Signal(str)

    def __init__(self, session, parent: QtWidgets.QWidget):
        super().__init__(parent)
        self.session = session
        self._parent = parent
        self._thread = None
        self._progress = None
        self._run_args = None  # (path, vocab, prefixes) of the running import
        self._result = None  # what the worker handed back: ImportResult, AmbiguousModules or str
        self._stop_requested = None  # the running worker's event, set by threads.stop_all (window closing)
        self.outcome: str | None = None

    @property
    def busy(self) -> bool:
        """True while an import runs in its worker thread."""
        return self._thread is not None

    def ask(self) -> bool:
        """File > Import model…: ask for the file, then ``start`` it."""
        path = dialogs.ask_open_path(self._parent, "Import model", IMPORT_FILTER)
        return bool(path) and self.start(path)

    def start(self, path: str) -> bool:
        """Ask for the vocabulary and start importing ``path``; False if cancelled or busy."""
        if self.busy:
            dialogs.show_error(self._parent, "Import in progress", "Wait for the running import to finish.")
            return False
        vocab = dialogs.ask_vocabulary(self._parent, path)
        if vocab is None:
            return False
        self._run(os.fspath(path), vocab, [])
        return True

    def _run(self, path: str, vocab: dict, prefixes: list) -> None:
        self.outcome, self._result, self._run_args = None, None, (path, vocab, prefixes)
        self._progress = QtWidgets.QProgressDialog(
            f"Importing {Path(path).name}: reading, converting and checking parity…", None, 0, 0, self._parent)
        self._progress.setWindowTitle("Import model")
        self._progress.setWindowModality(QtCore.Qt.WindowModal)
        self._progress.setMinimumDuration(0)
        self._progress.show()
        worker = ImportWorker(path, vocab, prefixes)
        self._stop_requested = worker.stop_requested
        worker.done.connect(self._on_done)
        worker.ambiguous.connect(self._on_ambiguous)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        self._thread = threads.start(worker, "lstmviz-import")

    @QtCore.Slot(object)
    def _on_done(self, result: ImportResult) -> None:
        self._result = result

    @QtCore.Slot(object)
    def _on_ambiguous(self, choice: AmbiguousModules) -> None:
        self._result = choice

    @QtCore.Slot(str)
    def _on_failed(self, message: str) -> None:
        self._result = message

    @QtCore.Slot()
    def _on_finished(self) -> None:
        self._thread = None
        self._progress.close()
        self._progress.deleteLater()
        self._progress = None
        path, vocab, prefixes = self._run_args
        result = self._result
        if self._stop_requested.is_set():  # the window is closing: no more dialogs
            self.outcome = "cancelled"
        elif isinstance(result, ImportResult):
            self._open(path, result)
        elif isinstance(result, AmbiguousModules):
            chosen = dialogs.ask_modules(self._parent, path, result.role, result.candidates, several=result.several)
            if chosen is None:
                self.outcome = "cancelled"
            else:
                self._run(path, vocab, prefixes + chosen)
        else:
            self._fail(path, result)

    def _fail(self, path: str, message: str) -> None:
        self.outcome = "failed"
        dialogs.show_error(self._parent, f"Cannot import {Path(path).name}", message)

    def _open(self, path: str, result: ImportResult) -> None:
        """Show the report; open the model (saved first if asked); nothing changes on cancel."""
        if result.vocab is None:
            self._fail(path, "\n".join([f"{no_vocabulary_note(result.model.config, path)}; to step text, import "
                                        "it again with the characters in id order.", "", *result.report]))
            return
        answer = dialogs.show_import_report(self._parent, path, result.report)
        saved = None
        if answer == "save":
            saved = dialogs.ask_save_path(self._parent, "Save the imported model as", SAVE_FILTER)
            if saved and not saved.lower().endswith(".npz"):
                saved += ".npz"
            if saved:
                try:
                    save_checkpoint(saved, result.model, vocab=result.vocab,
                                    extra={"imported_from": Path(path).name, "import_report": result.report})
                except (ValueError, OSError) as e:
                    dialogs.show_error(self._parent, "Cannot save the imported model", str(e))
                    saved = None
            if saved is None:
                answer = "cancel"
        if answer == "cancel":
            self.outcome = "cancelled"
            return
        s = self.session
        s.model_path, s.model_step = saved, 0
        s.set_model(result.model, result.vocab)
        parity = [line for line in result.report if line.startswith("parity")]
        s.message.emit(f"Imported {Path(path).name}" + (f", saved as {saved}" if saved else "")
                       + "".join(f" · {line}" for line in parity))
        self.outcome = "opened"
        self.imported.emit(path)
