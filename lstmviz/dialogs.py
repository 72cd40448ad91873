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


def ask_vocabulary(parent, source: str) -> dict | None:
    """The imported model's vocabulary (characters in the source's id order): ``{"vocab_chars":
    str}`` typed in, or ``{"vocab_file": path}`` (plain text, a JSON list, or a JSON object
    char -> id); None if the user cancelled."""
    from pathlib import Path

    dialog = QtWidgets.QDialog(parent)
    dialog.setWindowTitle("Vocabulary of the imported model")
    form = QtWidgets.QFormLayout(dialog)
    form.addRow(QtWidgets.QLabel(f"{Path(source).name}: which character does each token id stand for?"))
    typed = QtWidgets.QRadioButton("Characters in id order")
    chars = QtWidgets.QLineEdit()
    chars.setPlaceholderText("e.g.  abcdefghijklmnopqrstuvwxyz.,")
    from_file = QtWidgets.QRadioButton("Vocabulary file")
    path = QtWidgets.QLineEdit()
    browse = QtWidgets.QPushButton("Browse…")
    browse.clicked.connect(lambda: path.setText(ask_open_path(dialog, "Vocabulary file",
                                                              "Vocabulary (*.txt *.json);;All files (*)") or path.text()))
    typed.setChecked(True)
    row = QtWidgets.QHBoxLayout()
    row.addWidget(path, 1)
    row.addWidget(browse)
    form.addRow(typed, chars)
    form.addRow(from_file, row)
    buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.Ok | QtWidgets.QDialogButtonBox.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    form.addRow(buttons)
    accepted = dialog.exec() == QtWidgets.QDialog.Accepted
    answer = {"vocab_chars": chars.text()} if typed.isChecked() else {"vocab_file": path.text()}
    dialog.deleteLater()
    return answer if accepted else None


def ask_modules(parent, source: str, role: str, candidates: list, several: bool) -> list | None:
    """The modules of ``source`` to use for ``role``, chosen from ``candidates`` (``several``:
    any number, stacked in the listed order); None if cancelled or nothing chosen."""
    dialog = QtWidgets.QDialog(parent)
    dialog.setWindowTitle("Choose the layers to import")
    layout = QtWidgets.QVBoxLayout(dialog)
    layout.addWidget(QtWidgets.QLabel(f"Several modules could be the {role}"
                                      + (" (the chosen ones are stacked in this order):" if several else ":")))
    choices = QtWidgets.QListWidget()
    choices.addItems(candidates)
    choices.setSelectionMode(QtWidgets.QAbstractItemView.MultiSelection if several
                             else QtWidgets.QAbstractItemView.SingleSelection)
    layout.addWidget(choices)
    buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.Ok | QtWidgets.QDialogButtonBox.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    accepted = dialog.exec() == QtWidgets.QDialog.Accepted
    chosen = [candidates[k] for k in sorted(choices.row(item) for item in choices.selectedItems())]
    dialog.deleteLater()
    return chosen if accepted and chosen else None


def show_import_report(parent, source: str, lines: list) -> str:
    """The import's report (what was recognised, the parity line); the user's answer: "open",
    "save" (save as .npz, then open) or "cancel"."""
    from pathlib import Path

    Box = QtWidgets.QMessageBox
    box = Box(Box.Information, "Model imported", f"Imported {Path(source).name}", Box.Cancel, parent)
    box.setInformativeText("\n".join(lines))
    open_button = box.addButton("Open", Box.AcceptRole)
    save_button = box.addButton("Save as .npz and open…", Box.AcceptRole)
    box.setDefaultButton(open_button)
    box.exec()
    answer = {open_button: "open", save_button: "save"}.get(box.clickedButton(), "cancel")
    box.deleteLater()
    return answer
