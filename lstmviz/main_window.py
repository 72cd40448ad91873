"""The main window: docks for the panels, menus, window-level shortcuts, status bar, drag and
drop, and settings persistence (geometry, dock layout, recent files, colormaps, play speed)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import PySide6
from PySide6 import QtCore, QtGui, QtWidgets

from . import dialogs
from .panels import CurrentStepPanel, GatesPanel, TextPanel, TransportPanel
from .panels.readout import Readout
from .panels.shown import RefreshWhenShown
from .panels.transport import DEFAULT_SPEED
from .session import Session

DEFAULT_SIZE = (1400, 880)  # first-run window size, logical pixels
RECENT_MAX = 8
MODEL_FILTER = "lstmviz models (*.npz);;All files (*)"
TEXT_FILTER = "Text files (*.txt);;All files (*)"
OPENABLE = {".npz": "model", ".txt": "text"}


def versions() -> dict:
    """Versions of lstmviz and the libraries it draws with."""
    try:
        own = importlib.metadata.version("lstmviz")
    except importlib.metadata.PackageNotFoundError:
        own = "not installed"
    return {"lstmviz": own, "Qt": QtCore.qVersion(), "PySide6": PySide6.__version__,
            "pyqtgraph": pg.__version__, "NumPy": np.__version__}


class MainWindow(QtWidgets.QMainWindow):
    """The viewer window over one Session; ``settings`` is read here and written on close."""

    def __init__(self, session: Session, settings: QtCore.QSettings, parent=None):
        super().__init__(parent)
        self.session = session
        self.settings = settings
        self._close_guards = []  # callables asked in turn when the window is asked to close
        self.setObjectName("MainWindow")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.setCorner(QtCore.Qt.TopLeftCorner, QtCore.Qt.TopDockWidgetArea)
        self.setCorner(QtCore.Qt.TopRightCorner, QtCore.Qt.TopDockWidgetArea)
        self.setCorner(QtCore.Qt.BottomLeftCorner, QtCore.Qt.BottomDockWidgetArea)
        self.setCorner(QtCore.Qt.BottomRightCorner, QtCore.Qt.BottomDockWidgetArea)

        self.text_panel = TextPanel(session)
        self.gates_panel = GatesPanel(session)
        self.step_panel = CurrentStepPanel(session)
        self.transport = TransportPanel(session)
        self.docks = {
            "text": self._dock("text", "Text", self.text_panel, QtCore.Qt.TopDockWidgetArea),
            "gates": self._dock("gates", "Gate heatmaps", self.gates_panel, QtCore.Qt.LeftDockWidgetArea),
            "step": self._dock("step", "Current step", self.step_panel, QtCore.Qt.RightDockWidgetArea),
            "transport": self._dock("transport", "Transport", self.transport, QtCore.Qt.BottomDockWidgetArea),
        }

        self.position_label = Readout()  # changes with every step: must not re-layout the window
        self.statusBar().addPermanentWidget(self.position_label)
        self._build_menus()
        self._build_shortcuts()
        self._default_state = self.saveState()

        for source in (self.gates_panel.status, self.text_panel.status, session.message):
            source.connect(self.show_status)
        session.error.connect(lambda message: dialogs.show_error(self, "lstmviz", message))
        session.stepped.connect(self._update_position)
        session.model_changed.connect(self._update_title)
        session.text_changed.connect(self._update_title)
        session.text_changed.connect(self._update_position)
        self._restore_settings()
        self._update_title()
        self._update_position()

    def _dock(self, name: str, title: str, widget: QtWidgets.QWidget, area,
              panel: QtWidgets.QWidget | None = None) -> QtWidgets.QDockWidget:
        """A dock showing ``widget``; ``panel`` is the panel inside it when ``widget`` wraps it."""
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")
        dock.setWidget(widget)
        panel = widget if panel is None else panel
        if isinstance(panel, RefreshWhenShown):  # a tab brought to the front gets no showEvent
            dock.visibilityChanged.connect(panel.catch_up)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetMovable | QtWidgets.QDockWidget.DockWidgetClosable
                         | QtWidgets.QDockWidget.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def add_panel(self, name: str, title: str, widget: QtWidgets.QWidget, area,
                  scrolled: bool = False) -> QtWidgets.QDockWidget:
        """Add a dock for ``widget`` (object name ``dock_<name>``, so the saved layout finds it),
        listed in the View menu and in ``docks[name]``. For panels installed after the window
        is built (training, lessons); call ``finish_layout`` once they are all in. ``scrolled``:
        inside a scroll area, so a tall or wide form does not set the window's minimum size."""
        shown = widget
        if scrolled:
            shown = QtWidgets.QScrollArea()
            shown.setWidgetResizable(True)
            shown.setWidget(widget)
        dock = self._dock(name, title, shown, area, panel=widget)
        toggle = dock.toggleViewAction()
        toggle.setStatusTip(f"Show or hide the {title} panel")
        self.view_menu.insertAction(self._view_separator, toggle)
        self.docks[name] = dock
        return dock

    def finish_layout(self) -> None:
        """Take the current arrangement as the "Reset layout" default, then restore the saved
        one (it can name docks added after ``__init__``)."""
        if not self._geometry_restored:  # docks added since __init__ have grown the window
            self._resize_to_default()
        self._default_state = self.saveState()
        # Each tabifyDockWidget that extends a tab group leaves the group's previous tab bar
        # visible where the group was (seen with Qt 6 on xcb and offscreen: "Gradient flow |
        # RNN vs LSTM" drawn over the status bar). Hide every dock tab bar; laying the state
        # out again shows the ones in use.
        for tab_bar in self.findChildren(QtWidgets.QTabBar, options=QtCore.Qt.FindDirectChildrenOnly):
            tab_bar.hide()
        state = self.settings.value("window/state", QtCore.QByteArray(), type=QtCore.QByteArray)
        self._sizes_pending = state.isEmpty() or not self.restoreState(state)
        if self._sizes_pending:
            self.restoreState(self._default_state)

    def _resize_to_default(self) -> None:
        """The first-run size: DEFAULT_SIZE, or the screen's free area if that is smaller (the
        docks' minimum sizes still apply)."""
        free = self.screen().availableGeometry()
        self.resize(min(DEFAULT_SIZE[0], free.width()), min(DEFAULT_SIZE[1], free.height()))

    # --- menus --------------------------------------------------------------------------------
    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QtGui.QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.setToolTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self):
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "Open &model…", self.ask_open_model, "Ctrl+O", "Open a trained model (.npz)")
        self._action(file_menu, "Open &text…", self.ask_open_text, "Ctrl+T", "Step through a text file (.txt)")
        self.recent_menu = file_menu.addMenu("&Recent files")
        self.recent_menu.setToolTipsVisible(True)
        file_menu.addSeparator()
        self._action(file_menu, "&Save model as…", self.ask_save_model, "Ctrl+Shift+S",
                     "Save the current model as a checkpoint")
        self.export_menu = file_menu.addMenu("&Export")
        file_menu.addSeparator()
        self.quit_action = self._action(file_menu, "&Quit", self.close, "Ctrl+Q", "Close lstmviz")

        view_menu = self.view_menu = bar.addMenu("&View")
        for dock in self.docks.values():
            toggle = dock.toggleViewAction()
            toggle.setStatusTip(f"Show or hide the {dock.windowTitle()} panel")
            view_menu.addAction(toggle)
        self._view_separator = view_menu.addSeparator()
        self.colorblind_action = self._action(view_menu, "&Colour-blind-safe colormaps",
                                              self.session.set_colorblind, None,
                                              "Use cividis and CET-CBD1 instead of viridis and CET-D1")
        self.colorblind_action.setCheckable(True)
        self.session.colormap_changed.connect(self.colorblind_action.setChecked)
        self._action(view_menu, "&Reset layout", self.reset_layout, None, "Put every panel back in place")

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About lstmviz", self.show_about, None, "Versions and what this is")

    def _build_shortcuts(self):
        """Window-level keys; a focused text editor takes them first (ShortcutOverride)."""
        keys = (("Right", self.session.step), ("Left", self.session.back), ("Space", self.transport.toggle_play),
                ("Home", self.transport.to_start), ("End", self.transport.to_end))
        self.key_actions = {}
        for key, slot in keys:
            action = QtGui.QAction(key, self)
            action.setShortcut(QtGui.QKeySequence(key))
            action.setShortcutContext(QtCore.Qt.WindowShortcut)
            action.triggered.connect(slot)
            self.addAction(action)
            self.key_actions[key] = action

    def _rebuild_recent_menu(self):
        self.recent_menu.clear()
        recent = self.recent_files()
        for path in recent:
            kind = OPENABLE.get(Path(path).suffix.lower(), "text")
            action = self.recent_menu.addAction(f"{Path(path).name}  ({kind})")
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(recent))

    def recent_files(self) -> list:
        value = self.settings.value("recent_files", [], type=list)
        return [str(v) for v in value if v]

    def _remember(self, path: str):
        path = str(Path(path).resolve())
        recent = [path] + [p for p in self.recent_files() if p != path]
        self.settings.setValue("recent_files", recent[:RECENT_MAX])
        self._rebuild_recent_menu()

    # --- opening and saving -------------------------------------------------------------------
    def open_path(self, path: str, kind: str | None = None) -> bool:
        """Open a ``kind`` ("model" or "text"; default from the suffix: .npz is a model) and
        remember it; on failure show why in a dialog and change nothing."""
        kind = kind or OPENABLE.get(Path(path).suffix.lower(), "text")
        try:
            if kind == "model":
                self.session.load_model(path)
            else:
                self.session.load_text(path)
        except (ValueError, OSError) as e:
            dialogs.show_error(self, f"Cannot open this {kind}", str(e))
            return False
        self._remember(path)
        self.show_status(f"Opened {kind} {Path(path).name}")
        return True

    def ask_open_model(self):
        path = dialogs.ask_open_path(self, "Open model", MODEL_FILTER)
        if path:
            self.open_path(path, "model")

    def ask_open_text(self):
        path = dialogs.ask_open_path(self, "Open text", TEXT_FILTER)
        if path:
            self.open_path(path, "text")

    def ask_save_model(self):
        if not self.session.ready:
            dialogs.show_error(self, "Nothing to save", "Open or train a model first.")
            return
        path = dialogs.ask_save_path(self, "Save model as", MODEL_FILTER)
        if not path:
            return
        if not path.lower().endswith(".npz"):
            path += ".npz"
        try:
            self.session.save_model(path)
        except (ValueError, OSError) as e:
            dialogs.show_error(self, "Cannot save the model", str(e))
            return
        self._remember(path)
        self.show_status(f"Saved {path}")

    def dragEnterEvent(self, event: QtGui.QDragEnterEvent):
        if any(Path(u.toLocalFile()).suffix.lower() in OPENABLE for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QtGui.QDropEvent):
        paths = [u.toLocalFile() for u in event.mimeData().urls()]
        paths = sorted((p for p in paths if Path(p).suffix.lower() in OPENABLE),
                       key=lambda p: OPENABLE[Path(p).suffix.lower()] != "model")  # model first
        for path in paths:
            self.open_path(path)
        event.acceptProposedAction()

    # --- view ---------------------------------------------------------------------------------
    def show_status(self, message: str):
        self.statusBar().showMessage(message, 8000)

    def _update_position(self, *_):
        s = self.session
        ch = f" · {s.caption(s.t - 1)}" if 0 < s.t <= s.steps else ""
        seeking = " · catching up…" if s.seeking else ""
        self.position_label.setText(f"step {s.t} / {s.steps}{ch}{seeking}")

    def _update_title(self, *_):
        self.setWindowTitle(f"lstmviz — {self.session.display_name()}")

    def reset_layout(self):
        self.restoreState(self._default_state)
        for dock in self.docks.values():
            dock.show()
        self._apply_default_sizes()

    def about_text(self) -> str:
        v = versions()
        return ("<b>lstmviz</b> steps a NumPy LSTM one character at a time and draws every gate.<br><br>"
                + "<br>".join(f"{name} {version}" for name, version in v.items()))

    def show_about(self):
        dialogs.show_about(self, "About lstmviz", self.about_text())

    # --- settings -----------------------------------------------------------------------------
    def _restore_settings(self):
        s = self.settings
        geometry = s.value("window/geometry", QtCore.QByteArray(), type=QtCore.QByteArray)
        self._geometry_restored = not geometry.isEmpty() and self.restoreGeometry(geometry)
        if not self._geometry_restored:
            self._resize_to_default()
        state = s.value("window/state", QtCore.QByteArray(), type=QtCore.QByteArray)
        self._sizes_pending = state.isEmpty() or not self.restoreState(state)
        self.session.set_colorblind(s.value("view/colorblind", False, type=bool))
        self.colorblind_action.setChecked(self.session.colorblind)
        self.transport.set_speed(s.value("play/speed", DEFAULT_SPEED, type=int))
        quantity = s.value("view/text_quantity", "h", type=str)
        if self.text_panel.quantity_box.findData(quantity) >= 0:
            self.text_panel.set_quantity(quantity)
        self._rebuild_recent_menu()

    def save_settings(self):
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("view/colorblind", self.session.colorblind)
        s.setValue("play/speed", self.transport.speed.value())
        s.setValue("view/text_quantity", self.text_panel.quantity)
        s.sync()

    def _apply_default_sizes(self):
        """Give the heatmaps most of the window (first run and Reset layout)."""
        width, height = self.width(), self.height()
        self.resizeDocks([self.docks["gates"], self.docks["step"]], [int(width * 0.68), int(width * 0.32)],
                         QtCore.Qt.Horizontal)
        self.resizeDocks([self.docks["text"], self.docks["gates"]], [int(height * 0.27), int(height * 0.63)],
                         QtCore.Qt.Vertical)
        if "training" in self.docks:  # the right column: current step above the training controls
            self.resizeDocks([self.docks["step"], self.docks["training"]], [int(height * 0.55), int(height * 0.35)],
                             QtCore.Qt.Vertical)

    def showEvent(self, event: QtGui.QShowEvent):
        super().showEvent(event)
        if self._sizes_pending:
            self._sizes_pending = False
            QtCore.QTimer.singleShot(0, self._apply_default_sizes)

    def add_close_guard(self, may_close: Callable[[], bool]) -> None:
        """Ask ``may_close()`` when the window is asked to close, after the guards added before
        it; the first that returns False keeps the window open, and later guards are not asked.
        (Not an event filter on the window: that runs Python, and so takes the GIL from the
        training thread, for every one of the ~16 events a second the window gets while training.)"""
        self._close_guards.append(may_close)

    def closeEvent(self, event: QtGui.QCloseEvent):
        if not all(may_close() for may_close in self._close_guards):  # stops at the first False
            event.ignore()
            return
        self.transport.pause()
        self.save_settings()
        super().closeEvent(event)
