"""Keyboard shortcuts of the main window: each key sequence belongs to one action (Qt fires
neither of two actions that share one), and the File menu's import and export keys open their
dialogs."""

from collections import Counter

from PySide6 import QtCore, QtGui

from lstmviz import dialogs, export_actions


def shortcuts(window) -> list:
    """The key sequences of every action of the window and its widgets, as text."""
    return [action.shortcut().toString() for action in window.findChildren(QtGui.QAction)
            if not action.shortcut().isEmpty()]


def test_no_two_actions_share_a_key_sequence(window):
    keys = shortcuts(window)
    assert {"Ctrl+I", "Ctrl+E", "Ctrl+Shift+E", "Ctrl+O", "Ctrl+T", "Right", "Left", "Space"} <= set(keys)
    assert [key for key, count in Counter(keys).items() if count > 1] == []


def test_ctrl_i_asks_for_a_model_to_import_and_ctrl_e_for_a_panel_to_export(window, qtbot, monkeypatch):
    asked = []
    monkeypatch.setattr(dialogs, "ask_open_path", lambda parent, title, file_filter: asked.append(title))
    monkeypatch.setattr(export_actions, "ask_panel", lambda parent, title, *rest: asked.append(title))
    monkeypatch.setattr(export_actions, "ask_all_panels", lambda parent, *rest: asked.append("all panels"))
    window.session.seek(5)  # something to export
    window.panel("gates").views["h"].setFocus()
    qtbot.keyClick(window, QtCore.Qt.Key_I, QtCore.Qt.ControlModifier)
    qtbot.keyClick(window, QtCore.Qt.Key_E, QtCore.Qt.ControlModifier)
    qtbot.keyClick(window, QtCore.Qt.Key_E, QtCore.Qt.ControlModifier | QtCore.Qt.ShiftModifier)
    assert asked == ["Import model", "Export panel as PNG", "all panels"]
