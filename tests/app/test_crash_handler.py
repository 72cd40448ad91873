"""lstmviz.crash_handler: every uncaught exception (GUI thread, slots, worker threads) ends in
one dialog on the GUI thread and a log entry; the app keeps running."""

import sys
import threading

import pytest
from PySide6 import QtWidgets

from lstmviz import crash_handler


@pytest.fixture
def shown(monkeypatch):
    """Dialogs recorded as (cause, details, log note, parent, thread) instead of shown."""
    calls = []

    def record(parent, cause, details, log_note):
        calls.append((cause, details, log_note, parent, threading.current_thread()))

    monkeypatch.setattr(crash_handler, "show_dialog", record)
    return calls


@pytest.fixture
def window(qtbot):
    w = QtWidgets.QWidget()
    qtbot.addWidget(w)
    yield w
    w.close()


@pytest.fixture
def handler(qtbot, tmp_path, window):
    installed = crash_handler.install(lambda: window, log_path=tmp_path / "logs" / "crash.log")
    yield installed
    installed.uninstall()


def _raise(exc):
    try:
        raise exc
    except BaseException:
        return sys.exc_info()


def test_gui_thread_exception_shows_one_line_and_logs_the_traceback(handler, shown, window, tmp_path):
    sys.excepthook(*_raise(KeyError("weights")))
    (cause, details, note, parent, thread), = shown
    assert cause == "KeyError: 'weights'"
    assert "Traceback (most recent call last)" in details and "_raise" in details
    assert parent is window and thread is threading.main_thread()
    log = (tmp_path / "logs" / "crash.log").read_text()
    assert note == f"The details were saved to {tmp_path / 'logs' / 'crash.log'}."
    assert "in thread MainThread" in log and "KeyError: 'weights'" in log


def test_user_facing_errors_and_memory_errors_read_as_sentences(handler, shown):
    sys.excepthook(*_raise(ValueError("m.npz: permission denied")))
    sys.excepthook(*_raise(MemoryError("Unable to allocate 298. GiB")))
    assert [s[0] for s in shown] == ["m.npz: permission denied",
                                     "Not enough memory: Unable to allocate 298. GiB. Try a smaller model, batch or text."]


def test_exception_in_a_slot_is_caught_and_the_app_keeps_running(handler, shown, qtbot, window):
    button = QtWidgets.QPushButton("boom", window)
    clicks = []

    def explode():
        clicks.append(1)
        raise RuntimeError("slot failed")

    button.clicked.connect(explode)
    qtbot.mouseClick(button, crash_handler.QtCore.Qt.LeftButton)
    qtbot.mouseClick(button, crash_handler.QtCore.Qt.LeftButton)
    assert len(clicks) == 2  # still responding after the first failure
    assert [s[0] for s in shown] == ["RuntimeError: slot failed"] * 2  # not a data error: the type is named
    assert all("explode" in s[1] for s in shown)


def test_worker_thread_exception_reaches_the_gui_thread(handler, shown, qtbot):
    worker = threading.Thread(target=lambda: 1 / 0, name="trainer")
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: len(shown) == 1)
    cause, details, note, parent, thread = shown[0]
    assert cause == "ZeroDivisionError: division by zero"
    assert thread is threading.main_thread()  # the dialog is built on the GUI thread
    assert "in thread trainer" in handler.log_path.read_text()


def test_one_dialog_at_a_time(handler, monkeypatch, tmp_path):
    causes = []

    def reentrant(parent, cause, details, log_note):
        causes.append(cause)
        sys.excepthook(*_raise(RuntimeError("while the dialog is open")))  # logged, not shown

    monkeypatch.setattr(crash_handler, "show_dialog", reentrant)
    sys.excepthook(*_raise(RuntimeError("first")))
    assert causes == ["RuntimeError: first"]
    assert handler.log_path.read_text().count("RuntimeError") == 2


def test_interrupts_pass_to_the_previous_hook(qtbot, tmp_path, shown, monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda *info: seen.append(info[0]))
    installed = crash_handler.install(lambda: None, log_path=tmp_path / "c.log")
    try:
        sys.excepthook(*_raise(KeyboardInterrupt()))
    finally:
        installed.uninstall()
    assert seen == [KeyboardInterrupt] and shown == []
    assert not (tmp_path / "c.log").exists()


def test_uninstall_restores_the_hooks(qtbot, tmp_path):
    before = (sys.excepthook, threading.excepthook)
    installed = crash_handler.install(lambda: None, log_path=tmp_path / "c.log")
    assert sys.excepthook != before[0] and threading.excepthook != before[1]
    installed.uninstall()
    assert (sys.excepthook, threading.excepthook) == before


def test_unwritable_log_is_said_in_the_dialog(qtbot, tmp_path, shown):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    installed = crash_handler.install(lambda: None, log_path=blocker / "crash.log")
    try:
        sys.excepthook(*_raise(RuntimeError("x")))
    finally:
        installed.uninstall()
    assert shown[0][2].startswith(f"The details could not be saved to {blocker / 'crash.log'}")


def test_log_is_rotated_past_its_limit(handler, shown, monkeypatch):
    monkeypatch.setattr(crash_handler, "MAX_LOG_BYTES", 100)
    sys.excepthook(*_raise(RuntimeError("one")))
    sys.excepthook(*_raise(RuntimeError("two")))  # the log is over 100 bytes: rotated first
    old = handler.log_path.with_name("crash.log.1")
    assert "RuntimeError: one" in old.read_text() and "RuntimeError: one" not in handler.log_path.read_text()
    assert "RuntimeError: two" in handler.log_path.read_text()


def test_dialog_has_the_cause_the_log_note_and_expandable_details(qtbot, window):
    box = crash_handler.build_dialog(window, "m.npz: permission denied", "Traceback ...", "The details were saved to x.")
    qtbot.addWidget(box)
    assert box.text() == "m.npz: permission denied"
    assert box.detailedText() == "Traceback ..."
    assert "keeps running" in box.informativeText() and "saved to x." in box.informativeText()
    assert box.icon() == QtWidgets.QMessageBox.Critical and box.parent() is window


def test_default_log_is_in_the_app_data_folder(qapp):
    folder = crash_handler.QtCore.QStandardPaths.writableLocation(crash_handler.QtCore.QStandardPaths.AppDataLocation)
    assert crash_handler.default_log_path() == crash_handler.Path(folder) / "crash.log"
