"""GUI test fixtures: a small float64 character model saved as a checkpoint, a text file, and
the app's main window with every dock (held by a yield fixture that closes it) with an injected INI settings file and
a recording replacement for the error dialog."""

import numpy as np
import pyqtgraph as pg
import pytest

from engine import ModelConfig, SequenceModel
from engine.checkpoint import save_checkpoint
from engine.data import CharVocab

# pyqtgraph drops mouse moves that come less than 1/100 s after the previous one (a rate limit
# for real pointers); synthetic moves come microseconds apart, so a drag would depend on timing.
pg.setConfigOption("mouseRateLimit", -1)

TEXT = 'He said "one (two [three] four) five". Then 1 2 3 4.\nShe said "six".\n'


@pytest.fixture
def vocab():
    return CharVocab.from_text(TEXT + "xyz")


@pytest.fixture
def model(vocab):
    cfg = ModelConfig(input_size=len(vocab), output_size=len(vocab), hidden_size=12, num_layers=2, dtype="float64")
    return SequenceModel(cfg, rng=np.random.default_rng(3))


@pytest.fixture
def model_path(tmp_path, model, vocab):
    path = tmp_path / "model.npz"
    save_checkpoint(path, model, vocab=vocab, step=5)
    return path


@pytest.fixture
def text_path(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture
def errors(monkeypatch):
    """Error dialogs recorded as (title, message) instead of shown."""
    from lstmviz import dialogs

    shown = []
    monkeypatch.setattr(dialogs, "show_error", lambda parent, title, message: shown.append((title, message)))
    return shown


@pytest.fixture
def settings_path(tmp_path):
    return tmp_path / "settings.ini"


def make_window(settings_path):
    from PySide6 import QtCore

    from lstmviz.app import create_window
    from lstmviz.session import Session

    settings = QtCore.QSettings(str(settings_path), QtCore.QSettings.IniFormat)
    return create_window(Session(), settings)


@pytest.fixture
def window(qtbot, settings_path, model_path, text_path, errors):
    from PySide6 import QtCore, QtWidgets

    win = make_window(settings_path)
    win.session.load_model(model_path)
    win.session.load_text(text_path)
    win.resize(1200, 800)
    with qtbot.waitExposed(win):
        win.show()
    QtWidgets.QApplication.processEvents()  # the first-run dock sizes are applied in the next event-loop turn
    yield win
    win.close()
    win.deleteLater()
    # destroy it now (not at some later event-loop turn): a window left alive keeps its timers and
    # connections, and every later test's GUI thread pays for them
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)


@pytest.fixture(autouse=True)
def confirmations(monkeypatch):
    """Every "replace this?" question (``dialogs.ask_confirm``) recorded as (title, message,
    details) and answered by ``confirmations.answer`` (True: go ahead) instead of shown."""
    from lstmviz import dialogs

    class Asked(list):
        answer = True

    asked = Asked()

    def ask(parent, title, message, details="", confirm="Replace"):
        asked.append((title, message, details))
        return asked.answer

    monkeypatch.setattr(dialogs, "ask_confirm", ask)
    return asked
