"""Issue 19 in the app: whatever file a user hands the window (File > Open, recent files, drag
and drop, Save model as, the command line), the result is the right one or one dialog naming the
file and the cause, with the current model and text unchanged; an exception nobody caught (GUI
thread or worker) ends in the crash dialog and the window keeps running.

The bad files are made by the matrix's makers (tests/test_bad_inputs.py, each ``make(d, base)``
writes into folder ``d`` from a folder ``base`` holding ``model.npz``) and the 2 GiB-member maker
of tests/engine/test_checkpoint.py.
"""

import errno
import os
import re
import shutil
import zipfile

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from engine import memory
from engine.checkpoint import load_checkpoint
from engine.model import ModelConfig
from engine.safe_read import format_size
from engine.train import TimeEstimate
from lstmviz import crash_handler, dialogs, threads
from lstmviz.learn import training_panel
from tests.engine.test_checkpoint import _append_member
from tests.test_bad_inputs import fifo, meta_with, plain_meta, plain_param

SAMPLE = "one two\nsaid five\nsix\n"  # characters the window's model knows (tests/app/conftest.py)


@pytest.fixture
def base(tmp_path, model_path):
    folder = tmp_path / "base"
    folder.mkdir()
    shutil.copy(model_path, folder / "model.npz")
    return folder


@pytest.fixture
def bad(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    return folder


def folder(d, base):
    (d / "folder.npz").mkdir()
    (d / "folder.txt").mkdir()


def copy_of_model(d, base):
    shutil.copy(base / "model.npz", d / "model.npz")


def text_bytes(data: bytes):
    def make(d, base):
        (d / "t.txt").write_bytes(data)
    return make


def permission_denied(monkeypatch, path):
    """Opening ``path`` fails with EACCES (the tests run as root, who may read any file)."""
    real_open = os.open

    def refusing(name, *args, **kwargs):
        if os.fspath(name) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr("engine.safe_read.os.open", refusing)


# (case, maker, file name in d, kind, pattern of the dialog's message; {p} = the file's path)
REFUSED = [
    ("fifo-model", fifo, "fifo", "model", r"{p} is a named pipe \(FIFO\), not a regular file"),
    ("fifo-text", fifo, "fifo", "text", r"{p} is a named pipe \(FIFO\), not a regular file"),
    ("folder-model", folder, "folder.npz", "model", r"{p} is a folder"),
    ("folder-text", folder, "folder.txt", "text", r"{p} is a folder"),
    ("plain-meta", plain_meta, "plain.npz", "model", r"{p}: entry 'meta' is stored as a plain zip member"),
    ("plain-param", plain_param, "plain.npz", "model", r"{p}: entry 'param/l0\.Wx' is stored as a plain zip member"),
    ("meta-model-list", meta_with(model=[1, 2]), "bad.npz", "model", r"'meta' entry 'model' must be a JSON object"),
    ("meta-vocab-string", meta_with(vocab="abc"), "bad.npz", "model",
     r"'meta' entry 'vocab' must be a list of characters or null"),
    ("utf16-non-latin", text_bytes(("\u4e2d\u6587\u6587\u672c\u3002" * 20).encode("utf-16-le")), "t.txt", "text",
     r"{p}.*not valid UTF-8.*iconv -f UTF-16LE -t UTF-8"),
    ("binary-text", text_bytes(bytes(range(256)) * 8), "t.txt", "text", r"{p} looks like a binary file"),
]


def _unchanged(window):
    s = window.session
    return s.model, s.vocab, s.text, s.model_path


@pytest.mark.parametrize("case, make, name, kind, pattern", REFUSED, ids=[row[0] for row in REFUSED])
def test_bad_file_is_refused_in_a_dialog_and_nothing_changes(window, errors, base, bad, case, make, name, kind,
                                                             pattern, alarm):
    make(bad, base)
    before = _unchanged(window)
    assert window.open_path(str(bad / name), kind) is False
    (title, message), = errors
    assert title == f"Cannot open this {kind}"
    assert re.search(pattern.format(p=re.escape(str(bad / name))), message), message
    assert "\n" not in message
    assert all(a is b for a, b in zip(_unchanged(window), before))
    assert str(bad / name) not in " ".join(window.recent_files())


@pytest.mark.parametrize("kind, name, what", [("model", "model.npz", "checkpoint"), ("text", "t.txt", "text")])
def test_permission_denied_is_said_as_such(window, errors, base, bad, monkeypatch, kind, name, what):
    copy_of_model(bad, base)
    text_bytes(SAMPLE.encode())(bad, base)
    permission_denied(monkeypatch, bad / name)
    before = _unchanged(window)
    assert not window.open_path(str(bad / name), kind)
    (title, message), = errors
    assert message.startswith(f"{bad / name}: permission denied"), message
    assert all(a is b for a, b in zip(_unchanged(window), before))


@pytest.mark.parametrize("kind, name, pattern", [
    ("model", "model.npz", r"loading {p} needs about [\d.]+ KiB.*; this machine has 1\.0 KiB available"),
    ("text", "t.txt", r"reading {p} needs about [\d.]+ KiB.*; this machine has 1\.0 KiB available"),
], ids=["model", "text"])
def test_sizes_that_cannot_fit_are_refused_before_reading(window, errors, base, bad, monkeypatch, kind, name, pattern):
    copy_of_model(bad, base)
    text_bytes(SAMPLE.encode() * 100)(bad, base)
    monkeypatch.setattr(memory, "available_bytes", lambda: 1024)
    before = _unchanged(window)
    assert not window.open_path(str(bad / name), kind)
    (title, message), = errors
    assert re.fullmatch(pattern.format(p=re.escape(str(bad / name))), message), message
    assert all(a is b for a, b in zip(_unchanged(window), before))


def test_memory_error_while_opening_is_a_dialog(window, errors, base, bad, monkeypatch):
    copy_of_model(bad, base)

    def exhausted(ckpt, path):
        np.empty((2 ** 50,), np.float64)  # 8 PiB: numpy's own MemoryError

    monkeypatch.setattr(window.session, "open_checkpoint", exhausted)
    assert not window.open_path(str(bad / "model.npz"), "model")
    (title, message), = errors
    assert title == "Cannot open this model"
    assert message.startswith("Not enough memory: Unable to allocate ") and message.endswith("batch or text.")


@pytest.mark.parametrize("data", [SAMPLE.replace("\n", "\r").encode(), SAMPLE.encode("utf-16-le")],
                         ids=["lone-cr", "utf16le-no-bom"])
def test_texts_decoded_right(window, errors, bad, data):
    (bad / "t.txt").write_bytes(data)
    assert window.open_path(str(bad / "t.txt"), "text")
    assert window.session.text == SAMPLE and errors == []


def test_checkpoint_with_an_unused_2_gib_member_opens_without_reading_it(window, errors, base, bad, monkeypatch):
    copy_of_model(bad, base)
    _append_member(bad / "model.npz", "junk.npy", b"", 128, monkeypatch)  # 2 GiB of zeros, ~2 MB on disk
    with zipfile.ZipFile(bad / "model.npz") as z:
        assert z.getinfo("junk.npy").file_size == 2 * 1024 ** 3
    assert window.open_path(str(bad / "model.npz"), "model"), errors
    expected = load_checkpoint(base / "model.npz").model.params
    for key, value in window.session.model.params.items():
        np.testing.assert_array_equal(value, expected[key])


def test_every_route_to_opening_shows_the_dialog(window, errors, base, bad, monkeypatch):
    """File > Open model, the recent-files menu and a drop all end in the same dialog."""
    plain_meta(bad, base)
    path = str(bad / "plain.npz")
    before = _unchanged(window)
    monkeypatch.setattr(dialogs, "ask_open_path", lambda *a: path)
    window.ask_open_model()
    window.settings.setValue("recent_files", [path])
    window._rebuild_recent_menu()
    window.recent_menu.actions()[0].trigger()
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(path)])
    window.dropEvent(QtGui.QDropEvent(QtCore.QPointF(10, 10), QtCore.Qt.CopyAction, mime, QtCore.Qt.LeftButton,
                                      QtCore.Qt.NoModifier))
    assert [title for title, _ in errors] == ["Cannot open this model"] * 3
    assert all("stored as a plain zip member" in message for _, message in errors)
    assert all(a is b for a, b in zip(_unchanged(window), before))


# --- Save model as: the destination is named, nothing is left behind --------------------------------
def _full_disk(f, **arrays):
    f.write(b"partial")
    raise OSError(errno.ENOSPC, "No space left on device")


def _read_only(monkeypatch, folder):
    real = os.open

    def refusing(name, flags, *args, **kwargs):
        if os.path.dirname(os.fspath(name)) == str(folder) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(name))
        return real(name, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing)


@pytest.mark.parametrize("case, target, pattern", [
    ("missing-folder", "no/m.npz", r"cannot write {p}: folder {d}/no does not exist"),
    ("folder", "sub.npz", r"cannot write {p}: it is a folder; give a file name"),
    ("read-only", "m.npz", r"cannot write {p}: Read-only file system \(folder {d}\); choose another folder"),
    ("full-disk", "m.npz", r"cannot write {p}: the disk is full \(No space left on device\); free some space or "
                           r"choose another folder"),
], ids=["missing-folder", "folder", "read-only", "full-disk"])
def test_save_model_failures_name_the_file_and_leave_nothing(window, errors, bad, monkeypatch, case, target, pattern):
    (bad / "sub.npz").mkdir()
    if case == "read-only":
        _read_only(monkeypatch, bad)
    if case == "full-disk":
        monkeypatch.setattr("engine.checkpoint.np.savez", _full_disk)
    monkeypatch.setattr(dialogs, "ask_save_path", lambda *a: str(bad / target))
    model_path = window.session.model_path
    window.ask_save_model()
    (title, message), = errors
    assert title == "Cannot save the model"
    assert re.fullmatch(pattern.format(p=re.escape(str(bad / target)), d=re.escape(str(bad))), message), message
    assert sorted(os.listdir(bad)) == ["sub.npz"] and os.listdir(bad / "sub.npz") == []
    assert window.session.model_path == model_path


# --- start-up and the last-resort handler ----------------------------------------------------------
def test_bad_files_at_start_up_show_a_dialog_and_open_the_demo(qtbot, base, bad, settings_path, errors):
    from lstmviz import app

    plain_meta(bad, base)
    fifo(bad, base)
    window = app.build_window(str(bad / "plain.npz"), str(bad / "fifo"),
                              QtCore.QSettings(str(settings_path), QtCore.QSettings.IniFormat))
    try:
        qtbot.waitUntil(lambda: len(errors) == 2, timeout=5000)
        assert errors[0][0] == "Cannot open this model" and "plain zip member" in errors[0][1]
        assert errors[1][0] == "Cannot open this text" and "named pipe (FIFO)" in errors[1][1]
        assert window.session.model_path == str(app.asset_path(app.DEMO_MODEL)) and window.session.text
    finally:
        window.close()


class _Progress(threads.Worker):
    """A worker that reports once; the GUI-thread slot receiving the report fails."""

    progressed = QtCore.Signal(int)

    def work(self):
        self.progressed.emit(1)


class _Receiver(QtCore.QObject):
    @QtCore.Slot(int)
    def on_progress(self, value):
        raise RuntimeError(f"slot failed on {value}")


def test_run_app_shows_uncaught_exceptions_in_a_dialog_and_keeps_running(qtbot, tmp_path, settings_path,
                                                                         monkeypatch, alarm):
    """``run_app`` installs the crash handler around the real window: a bug in a menu command
    (GUI thread) and in a slot fed by a worker each end in the dialog, parented on the window,
    which stays open and usable; the hooks are restored when the event loop ends."""
    import sys

    from lstmviz import app

    shown = []
    monkeypatch.setattr(crash_handler, "show_dialog", lambda parent, cause, details, note: shown.append((parent, cause)))
    monkeypatch.setattr(crash_handler, "default_log_path", lambda: tmp_path / "crash.log")
    monkeypatch.setattr(app.xcb_check, "check_or_explain", lambda: 0)
    built = []
    real_build = app.build_window

    def build(model_path=None, text_path=None):
        built.append(real_build(model_path, text_path, QtCore.QSettings(str(settings_path), QtCore.QSettings.IniFormat)))
        return built[-1]

    def bug(path, kind=None):
        raise KeyError("a bug while opening")

    monkeypatch.setattr(app, "build_window", build)
    qapp = QtWidgets.QApplication.instance()
    names, style, palette = (qapp.organizationName(), qapp.applicationName()), qapp.style().name(), qapp.palette()
    before = sys.excepthook
    checked = []

    def event_loop():
        window = built[0]
        monkeypatch.setattr(window, "open_path", bug)
        monkeypatch.setattr(dialogs, "ask_open_path", lambda *a: "x.npz")
        open_model = next(a for a in window.menuBar().actions()[0].menu().actions() if a.text() == "Open &model…")
        open_model.trigger()
        receiver = _Receiver()
        worker = _Progress()
        worker.progressed.connect(receiver.on_progress)
        thread = threads.start(worker, "lstmviz-test")
        qtbot.waitUntil(lambda: threads.is_finished(thread) and len(shown) == 2)
        qtbot.waitUntil(lambda: not threads.live_threads())
        assert window.isVisible() and shown == [(window, "KeyError: 'a bug while opening'"),
                                                (window, "RuntimeError: slot failed on 1")]
        assert "a bug while opening" in (tmp_path / "crash.log").read_text()
        window.session.step()  # still running: steps as before
        checked.append(window.session.t)
        window.close()
        return 0

    monkeypatch.setattr(qapp, "exec", event_loop)
    try:
        assert app.run_app() == 0
    finally:
        qapp.setOrganizationName(names[0])
        qapp.setApplicationName(names[1])
        qapp.setStyle(style)
        qapp.setPalette(palette)
    assert checked and sys.excepthook is before


# --- sizes chosen in the app: refused before allocating, with the estimate ------------------------------
def test_huge_model_settings_disable_train_with_the_estimate(window, monkeypatch):
    """The form's largest hidden size (4096; the CLI's example is 100000) on a machine with
    100 MiB free: Train is disabled and the reason line names the estimate and the memory."""
    from tests.app.helpers import learning

    service = learning(window)
    service.model_panel.set_values({"hidden_size": 8, "batch_size": 4, "seq_len": 8, "num_layers": 1,
                                    "optimizer": "adam"})
    assert service.data_panel.use_text("abcd abce xyz\n" * 40, "corpus")
    assert service.training_panel.train_button.isEnabled(), service.model_panel.reason
    monkeypatch.setattr(memory, "available_bytes", lambda: 100 * 1024 ** 2)
    service.model_panel.set_values({"hidden_size": 4096})
    reason = service.model_panel.reason
    config = ModelConfig(8, 8, hidden_size=4096)  # 8 characters in the corpus
    need = memory.training_state_bytes(config, 2)  # Adam: two slots
    assert reason == (f"a model with hidden size 4096 needs about {format_size(need)} (parameters and adam state); "
                      "this machine has 100 MiB available")
    assert not service.training_panel.train_button.isEnabled()
    assert reason in service.training_panel.train_button.toolTip()
    assert service.model_panel.message.isVisible() and service.model_panel.message.text() == reason


def test_sampling_length_that_cannot_fit_is_refused(window, errors, monkeypatch):
    from tests.app.helpers import learning

    sampling = learning(window).sampling_panel
    sampling.length.setValue(5000)
    monkeypatch.setattr(memory, "available_bytes", lambda: 1024 ** 2)
    assert not sampling.generate() and not sampling.busy
    (title, message), = errors
    assert title == "Cannot generate"
    assert re.fullmatch(r"sampling 5000 characters needs about [\d.]+ MiB \(the recorded gates of every step\); "
                        r"this machine has 1\.0 MiB available", message), message


@pytest.mark.parametrize("case", ["missing-folder", "read-only", "full-disk", "memory"])
def test_export_failures_are_a_dialog_naming_the_file(window, errors, bad, monkeypatch, qtbot, case):
    from lstmviz import export_actions

    actions = window.findChild(export_actions.ExportActions)
    window.session.seek(5)
    qtbot.waitUntil(lambda: window.session.t == 5)
    target = bad / ("no" if case == "missing-folder" else "") / "f.png"
    if case == "read-only":
        _read_only(monkeypatch, bad)
    if case == "full-disk":
        def full(fd):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr("engine.atomic.os.fsync", full)  # the data reaches the disk at fsync
    if case == "memory":
        monkeypatch.setattr(memory, "available_bytes", lambda: 1024)
    monkeypatch.setattr(export_actions, "ask_panel", lambda *a: ("f", 800))
    monkeypatch.setattr(export_actions, "ask_save_path", lambda *a: str(target))
    actions.export_panel_png()
    (title, message), = errors
    assert title == "Export panel as PNG"
    expected = {
        "missing-folder": rf"cannot write {re.escape(str(target))}: folder {re.escape(str(bad))}/no does not exist",
        "read-only": rf"cannot write {re.escape(str(target))}: Read-only file system",
        "full-disk": rf"cannot write {re.escape(str(target))}: the disk is full \(No space left on device\)",
        "memory": r"exporting a picture 800 pixels wide needs about [\d.]+ MiB; this machine has 1\.0 KiB available",
    }[case]
    assert re.match(expected, message), message
    assert os.listdir(bad) == []


# --- closing is prompt -----------------------------------------------------------------------------------
def test_closing_during_a_validation_pass_stops_it_at_once(window, monkeypatch, qtbot):
    """Training with a 1.4 M-character validation split (a whole pass of the 8-unit model takes
    seconds): the window closes while the worker is inside the pass; the Trainer handed the
    worker's stop event down to ``evaluate``, which ends after its chunk in progress."""
    import threading
    import time

    import engine.data
    from engine.evaluation import eval_chunk_length
    from tests.app.helpers import learning

    received, chunks, took = [], [], []
    inside = threading.Event()
    real_evaluate = engine.data.evaluate

    def hooked(model, ids, batch_size, stop=None, **kwargs):
        received.append((stop, len(ids), eval_chunk_length(model.config, batch_size)))
        real_forward = model.forward

        def forward(*args, **kw):
            chunks.append(1)
            if len(chunks) == 3:  # inside the pass: hold until the test is about to close the window
                inside.wait(30)
            return real_forward(*args, **kw)

        model.forward = forward
        started = time.monotonic()
        try:
            return real_evaluate(model, ids, batch_size, stop=stop, **kwargs)
        finally:
            took.append(time.monotonic() - started)
            del model.forward

    monkeypatch.setattr(engine.data, "evaluate", hooked)
    # the time estimate's own validation passes would go through the hook too: a fixed estimate instead
    monkeypatch.setattr(training_panel, "estimate_time", lambda trainer, stop: TimeEstimate(1000, 0.01, 1000, 0.01))
    monkeypatch.setattr(dialogs, "ask_save_discard_cancel", lambda parent: "discard")
    service = learning(window)
    service.model_panel.set_values({"hidden_size": 8, "batch_size": 4, "seq_len": 8, "num_layers": 1,
                                    "steps": 1000, "eval_every": 1})
    service.data_panel.val_fraction.setValue(0.5)
    assert service.data_panel.use_text("abcd abce xyz\n" * 200_000, "big")
    assert service.training_panel.train()
    qtbot.waitUntil(lambda: len(chunks) >= 3, timeout=30_000)  # inside the validation pass
    started, before_close = time.monotonic(), len(chunks)
    inside.set()
    window.close()
    closed_in = time.monotonic() - started
    assert not threads.live_threads()
    (stop, n_val, chunk), = received
    assert isinstance(stop, threading.Event) and stop.is_set() and n_val == 1_400_000
    whole_pass = -(-n_val // (4 * chunk))  # chunks of 4 streams x chunk steps
    after_close = len(chunks) - before_close  # chunks the worker ran once the window was asked to close
    assert len(chunks) < whole_pass and after_close < whole_pass / 10, (before_close, after_close, whole_pass)
    print(f"closed in {closed_in:.3f} s, {after_close} chunks after the close of {whole_pass} ({took[0]:.3f} s in evaluate)")
    assert closed_in < 5.0  # measured about 0.1 s on 2 shared cores


# --- the panels' own file dialogs ---------------------------------------------------------------------
def _data_panel(window):
    from tests.app.helpers import learning

    panel = learning(window).data_panel
    return "Cannot use this text", panel.open_file, lambda: panel.corpus


def _resume(window):
    from tests.app.helpers import learning

    service = learning(window)
    service.model_panel.set_values({"hidden_size": 8, "batch_size": 4, "seq_len": 8, "num_layers": 1})
    assert service.data_panel.use_text("abcd abce xyz\n" * 40, "corpus")
    return "Cannot resume training", service.training_panel.resume_from_checkpoint, lambda: service.controller.trainer


def _series(window):
    from tests.app.helpers import lessons

    panel = lessons(window).series
    return "Cannot open this CSV file", panel.ask_open_csv, lambda: (panel.csv_path, panel.values)


PANEL_CASES = [
    (route, case, make, name, pattern)
    for route in (_data_panel, _resume, _series)
    for case, make, name, pattern in (
        ("fifo", fifo, "fifo", r"{p} is a named pipe \(FIFO\), not a regular file"),
        ("folder", folder, "folder.txt", r"{p} is a folder"),
        ("denied", copy_of_model, "model.npz", r"{p}: permission denied"),
    )
] + [
    (_resume, "plain-meta", plain_meta, "plain.npz", r"{p}: entry 'meta' is stored as a plain zip member"),
    (_resume, "meta-model-list", meta_with(model=[1, 2]), "bad.npz", r"'meta' entry 'model' must be a JSON object"),
    (_resume, "model-only", copy_of_model, "model.npz", r"{p} holds a model only, no training state to resume"),
]


@pytest.mark.parametrize("route, case, make, name, pattern", PANEL_CASES,
                         ids=[f"{row[0].__name__.strip('_')}-{row[1]}" for row in PANEL_CASES])
def test_panel_file_dialogs_refuse_bad_files_in_a_dialog(window, errors, base, bad, monkeypatch, alarm,
                                                         route, case, make, name, pattern):
    title, command, state = route(window)
    make(bad, base)
    if case == "denied":
        permission_denied(monkeypatch, bad / name)
    monkeypatch.setattr(dialogs, "ask_open_path", lambda *a: str(bad / name))
    before = state()
    assert not command()
    (shown_title, message), = errors
    assert shown_title == title
    assert re.search(pattern.format(p=re.escape(str(bad / name))), message), message
    assert state() == before
