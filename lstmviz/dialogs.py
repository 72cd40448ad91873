"""The app's modal file, error, About, confirm-replacing and close-while-training dialogs (tests monkeypatch these
functions; the export commands' own dialogs are the ``ask_*`` functions of ``export_actions``)."""

from __future__ import annotations

from PySide6 import QtWidgets


def ask_open_path(parent, title: str, file_filter: str) -> str | None:
    """A file to open, or None if the user cancelled."""
    path, _ = QtWidgets.QFileDialog.getOpenFileName(parent, title, "", file_filter)
    return path or None


def ask_save_path(parent, title: str, file_filter: str) -> str | None:
    """A file to write, or None if the user cancelled (the dialog asks before overwriting)."""
    path, _ = QtWidgets.QFileDialog.getSaveFileName(parent, title, "", file_filter)
    return path or None


def show_error(parent, title: str, message: str) -> None:
    """A modal error box."""
    QtWidgets.QMessageBox.critical(parent, title, message)


def show_about(parent, title: str, rich_text: str) -> None:
    """The modal About box."""
    QtWidgets.QMessageBox.about(parent, title, rich_text)


def ask_save_discard_cancel(parent: QtWidgets.QWidget) -> str:
    """Ask whether to save the model being trained before closing: "save", "discard" or "cancel"."""
    Box = QtWidgets.QMessageBox
    box = Box(Box.Question, "Training in progress", "A model is being trained. Save it before closing?",
              Box.Save | Box.Discard | Box.Cancel, parent)
    box.setDefaultButton(Box.Save)
    answer = box.exec()
    return {Box.Save: "save", Box.Discard: "discard"}.get(answer, "cancel")


def ask_confirm(parent, title: str, message: str, details: str = "", confirm: str = "Replace") -> bool:
    """Ask before something is replaced: ``message`` says what will change, ``details`` (shown
    in full below it) lists what is lost. True if the user pressed ``confirm``, False on Cancel."""
    Box = QtWidgets.QMessageBox
    box = Box(Box.Question, title, message, Box.Cancel, parent)
    if details:
        box.setInformativeText(details)
    yes = box.addButton(confirm, Box.AcceptRole)
    box.setDefaultButton(Box.Cancel)
    box.exec()
    return box.clickedButton() is yes
