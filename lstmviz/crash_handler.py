"""Last-resort handler for exceptions nobody caught: a dialog, a log file, and the app keeps running.

``install(parent_getter)`` replaces ``sys.excepthook`` (exceptions on the GUI thread, including
those PySide6 reports from slots and event handlers, and uncaught ones in a ``QThread``) and
``threading.excepthook`` (uncaught exceptions in Python threads). For each exception the handler

1. appends the traceback, with a time stamp and the thread's name, to a log file (default
   ``crash.log`` in ``QStandardPaths.AppDataLocation``; rotated to ``crash.log.1`` past
   MAX_LOG_BYTES), from whichever thread raised it;
2. emits a relay signal carrying the one-line cause and the details; the relay is a QObject of
   the GUI thread, so from a worker the signal is queued and the dialog is always built on the
   GUI thread (no widget is touched from a worker);
3. shows ``show_dialog(parent, cause, details, log_note)``: a ``QMessageBox`` with the cause,
   where the log is, and the traceback under "Show Details..." (``setDetailedText``). Tests
   replace ``show_dialog`` with a recorder (never a modal dialog in a test). While a dialog is
   open further exceptions are logged only, so a failure that repeats every frame cannot stack
   dialogs.

``KeyboardInterrupt`` and ``SystemExit`` go to the previous hooks unchanged. The app keeps
running: nothing here quits or re-raises. ``CrashHandler.uninstall()`` restores the hooks.
"""

from __future__ import annotations

import datetime
import os
import sys
import threading
import traceback
from pathlib import Path

from PySide6 import QtCore, QtWidgets

LOG_NAME = "crash.log"
MAX_LOG_BYTES = 1024 * 1024  # the log is rotated (one old copy kept) past this size
TITLE = "lstmviz: unexpected error"
_PASS_THROUGH = (KeyboardInterrupt, SystemExit)


def default_log_path() -> Path:
    """``crash.log`` in the user's application data folder (``QStandardPaths.AppDataLocation``)."""
    folder = QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.AppDataLocation)
    return Path(folder or Path.home()) / LOG_NAME


def one_line(exc: BaseException) -> str:
    """The cause in one line: the message for a ``MemoryError`` or an error of the user's data
    (``ValueError``, ``OSError``), else ``TypeName: message``."""
    message = " ".join(str(exc).split())
    if isinstance(exc, MemoryError):
        return f"Not enough memory{': ' + message if message else ''}. Try a smaller model, batch or text."
    if isinstance(exc, (ValueError, OSError)) and message:
        return message
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def build_dialog(parent, cause: str, details: str, log_note: str) -> QtWidgets.QMessageBox:
    """The error dialog (not shown): ``cause`` as its text, ``log_note`` below it, ``details``
    (the traceback) behind "Show Details..."."""
    box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Critical, TITLE, cause, QtWidgets.QMessageBox.Ok, parent)
    box.setInformativeText(f"The app keeps running; save your work if you can. {log_note}")
    box.setDetailedText(details)
    return box


def show_dialog(parent, cause: str, details: str, log_note: str) -> None:
    """Show the error dialog modally (replaced by a recorder in tests)."""
    build_dialog(parent, cause, details, log_note).exec()


class CrashHandler(QtCore.QObject):
    """The installed hooks and the GUI-thread relay (see the module docstring). Create it on
    the GUI thread (``install`` does)."""

    report = QtCore.Signal(str, str, str)  # cause, details, log note

    def __init__(self, parent_getter, log_path=None):
        super().__init__()
        self.parent_getter = parent_getter
        self.log_path = Path(log_path) if log_path is not None else default_log_path()
        self._log_lock = threading.Lock()
        self._showing = False
        self._previous = None
        self.report.connect(self._show)  # queued when emitted from another thread

    def install(self) -> "CrashHandler":
        self._previous = (sys.excepthook, threading.excepthook)
        sys.excepthook = self._sys_hook
        threading.excepthook = self._thread_hook
        return self

    def uninstall(self) -> None:
        """Put back the hooks that were there before ``install``."""
        if self._previous is not None:
            sys.excepthook, threading.excepthook = self._previous
            self._previous = None

    def _sys_hook(self, exc_type, exc, tb) -> None:
        if issubclass(exc_type, _PASS_THROUGH):
            self._previous[0](exc_type, exc, tb)
            return
        self.handle(exc, tb, threading.current_thread().name)

    def _thread_hook(self, args) -> None:
        if args.exc_type is not None and issubclass(args.exc_type, _PASS_THROUGH):
            self._previous[1](args)
            return
        self.handle(args.exc_value, args.exc_traceback, args.thread.name if args.thread else "?")

    def handle(self, exc: BaseException, tb, thread_name: str) -> None:
        """Log ``exc`` and relay it to the GUI thread's dialog (callable from any thread)."""
        details = "".join(traceback.format_exception(type(exc), exc, tb))
        log_note = self._log(details, thread_name)
        self.report.emit(one_line(exc), details, log_note)

    def _log(self, details: str, thread_name: str) -> str:
        """Append to the log; returns the sentence the dialog shows about it."""
        stamp = datetime.datetime.now().isoformat(timespec="seconds")
        try:
            with self._log_lock:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                if self.log_path.exists() and self.log_path.stat().st_size > MAX_LOG_BYTES:
                    os.replace(self.log_path, self.log_path.with_name(self.log_path.name + ".1"))
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.write(f"--- {stamp} in thread {thread_name}\n{details}\n")
        except OSError as e:
            return f"The details could not be saved to {self.log_path} ({e.strerror or e})."
        return f"The details were saved to {self.log_path}."

    @QtCore.Slot(str, str, str)
    def _show(self, cause: str, details: str, log_note: str) -> None:
        if self._showing:  # one dialog at a time; the rest are in the log
            return
        self._showing = True
        try:
            show_dialog(self.parent_getter(), cause, details, log_note)
        finally:
            self._showing = False


def install(parent_getter, log_path=None) -> CrashHandler:
    """Install the last-resort handler (module docstring) and return it; keep the returned
    object referenced (it is the relay). ``parent_getter()`` returns the dialog's parent widget
    (e.g. the main window) or None; it is called on the GUI thread. ``log_path`` overrides the
    log file (tests)."""
    return CrashHandler(parent_getter, log_path).install()
