"""The main window: menus, docks, window-level shortcuts, status bar, drag and drop, and
settings persistence (geometry, dock layout, recent files, colormaps). It knows no panel's
insides: ``lstmviz.app`` adds every dock through ``add_panel`` and wires panels and services to
the narrow hooks of :class:`WindowHooks` (``window.hooks``)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import PySide6
from PySide6 import QtCore, QtGui, QtWidgets

from engine.checkpoint import load_char_checkpoint

from . import dialogs, threads
from .core.labels import lost_characters, position_label
from .core.sequence import split_known
from .crash_handler import one_line
from .import_dialog import IMPORTABLE, ModelImporter
from .readout import Readout
from .shown import RefreshWhenShown
from .session import Session

DEFAULT_SIZE = (1400, 880)  # first-run window size, logical pixels
RECENT_MAX = 8
LAYOUT_VERSION = 1  # of the saved dock arrangement: a state saved by an older arrangement is not restored
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


class WindowHooks:
    """The part of the window that panel factories and services may use (never the window
    itself): status messages, error dialogs, raising a dock, close guards, window-level keys,
    settings savers, the Export menu, and two registries filled by the factories that own the
    widgets: the gate heatmap views (for export) and the widgets a training refresh repaints
    one per event-loop turn."""

    def __init__(self, window: "MainWindow"):
        self._window = window
        self._heatmaps: dict = {}
        self._paint_later: list = []
        self._demo_corpus: list = []

    @property
    def dialog_parent(self) -> QtWidgets.QWidget:
        """The parent for modal dialogs (and the widget "Export all panels" pictures)."""
        return self._window

    @property
    def export_menu(self) -> QtWidgets.QMenu:
        return self._window.export_menu

    def show_status(self, message: str, msecs: int = 8000) -> None:
        self._window.statusBar().showMessage(message, msecs)

    def show_error(self, title: str, message: str) -> None:
        dialogs.show_error(self._window, title, message)

    def raise_panel(self, name: str) -> None:
        """Bring dock ``name`` to the front of its tab group."""
        self._window.docks[name].raise_()

    def add_close_guard(self, may_close: Callable[[], bool]) -> None:
        self._window.add_close_guard(may_close)

    def on_close(self, slot: Callable[[], None]) -> None:
        """Call ``slot()`` once the window closes (every close guard agreed), before settings are saved."""
        self._window._closing.append(slot)

    def on_save_settings(self, save: Callable[[QtCore.QSettings], None]) -> None:
        """Call ``save(settings)`` whenever the window writes its settings."""
        self._window._settings_savers.append(save)

    def add_shortcut(self, key: str, slot: Callable[[], None]) -> None:
        self._window.add_shortcut(key, slot)

    def add_heatmaps(self, views: dict) -> None:
        self._heatmaps.update(views)

    def heatmaps(self) -> dict:
        """Gate name -> the heatmap view showing it."""
        return dict(self._heatmaps)

    def panels(self) -> dict:
        """Dock name -> ``(title, panel widget)`` of every dock, in the order they were added."""
        return {name: (dock.windowTitle(), self._window.panel(name)) for name, dock in self._window.docks.items()}

    def add_paint_later(self, *widgets: QtWidgets.QWidget) -> None:
        self._paint_later.extend(widgets)

    def paint_later(self) -> tuple:
        return tuple(self._paint_later)

    def on_demo_corpus(self, use: Callable[[str, str], object]) -> None:
        """Call ``use(text, label)`` when the demo opens with its training corpus."""
        self._demo_corpus.append(use)

    def use_demo_corpus(self, text: str, label: str) -> None:
        for use in self._demo_corpus:
            use(text, label)


class MainWindow(QtWidgets.QMainWindow):
    """The viewer window over one Session; ``settings`` is read here and written on close."""

    def __init__(self, session: Session, settings: QtCore.QSettings, parent=None):
        super().__init__(parent)
        self.session = session
        # The window owns its session: deleting the window deletes the session and with it every
        # signal connection into the window's panels, so a closed window's objects are freed.
        session.setParent(self)
        self.settings = settings
        self._close_guards = []  # callables asked in turn when the window is asked to close
        self._closing = []  # callables called once every close guard agreed
        self._settings_savers = []  # callables(settings) called by save_settings
        self.hooks = WindowHooks(self)
        self.docks: dict = {}
        self._panels: dict = {}
        self.setObjectName("MainWindow")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.setCorner(QtCore.Qt.TopLeftCorner, QtCore.Qt.TopDockWidgetArea)
        self.setCorner(QtCore.Qt.TopRightCorner, QtCore.Qt.TopDockWidgetArea)
        self.setCorner(QtCore.Qt.BottomLeftCorner, QtCore.Qt.BottomDockWidgetArea)
        self.setCorner(QtCore.Qt.BottomRightCorner, QtCore.Qt.BottomDockWidgetArea)

        self.position_label = Readout(reserve="step 00000 of 00000 · next -0.00000 · catching up…")  # changes every step
        self.statusBar().addPermanentWidget(self.position_label)
        self._build_menus()
        self._build_shortcuts()
        self._default_state = self.saveState(LAYOUT_VERSION)

        session.message.connect(self.show_status)
        session.error.connect(lambda message: dialogs.show_error(self, "lstmviz", message))
        self._status_before_text = ""  # the status line as the last text was shown, before what showing it said
        session.text_changed.connect(self._note_status_before_text)
        session.text_opened.connect(lambda path: self._opened("text", path, self._status_before_text))
        session.open_failed.connect(self._text_refused)
        session.confirm_dropped = self.confirm_dropped_characters
        session.stepped.connect(self._update_position)
        session.pass_progress.connect(self._update_position)
        session.model_changed.connect(self._update_title)
        session.text_changed.connect(self._update_title)
        session.text_changed.connect(self._update_position)
        self._restore_settings()
        self._update_title()
        self._update_position()

    def add_panel(self, name: str, title: str, widget: QtWidgets.QWidget, area,
                  scrolled: bool = False) -> QtWidgets.QDockWidget:
        """Add a dock for ``widget`` (object name ``dock_<name>``, so the saved layout finds it),
        listed in the View menu and in ``docks[name]``; ``panel(name)`` returns ``widget``. Call
        ``finish_layout`` once every dock is in. ``scrolled``: inside a scroll area, so a tall or
        wide form does not set the window's minimum size."""
        shown = widget
        if scrolled:
            shown = QtWidgets.QScrollArea()
            shown.setWidgetResizable(True)
            shown.setWidget(widget)
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")
        dock.setWidget(shown)
        if isinstance(widget, RefreshWhenShown):  # a tab brought to the front gets no showEvent
            dock.visibilityChanged.connect(widget.catch_up)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetMovable | QtWidgets.QDockWidget.DockWidgetClosable
                         | QtWidgets.QDockWidget.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        toggle = dock.toggleViewAction()
        toggle.setStatusTip(f"Show or hide the {title} panel")
        self.view_menu.insertAction(self._view_separator, toggle)
        self.docks[name] = dock
        self._panels[name] = widget
        return dock

    def panel(self, name: str) -> QtWidgets.QWidget:
        """The panel in dock ``name`` (for tests; the app wires panels where it builds them)."""
        return self._panels[name]

    def finish_layout(self) -> None:
        """Take the current arrangement as the "Reset layout" default, then restore the saved
        one (it can name any dock added since ``__init__``)."""
        self._default_state = self.saveState(LAYOUT_VERSION)
        # Each tabifyDockWidget that extends a tab group leaves the group's previous tab bar
        # visible where the group was (seen with Qt 6 on xcb and offscreen: "Gradient flow |
        # RNN vs LSTM" drawn over the status bar). Hide every dock tab bar; laying the state
        # out again shows the ones in use.
        for tab_bar in self.findChildren(QtWidgets.QTabBar, options=QtCore.Qt.FindDirectChildrenOnly):
            tab_bar.hide()
        state = self.settings.value("window/state", QtCore.QByteArray(), type=QtCore.QByteArray)
        self._sizes_pending = state.isEmpty() or not self.restoreState(state, LAYOUT_VERSION)
        if self._sizes_pending:
            self.restoreState(self._default_state, LAYOUT_VERSION)
        self._laid_out_size = self.size()  # grown by the docks added since __init__: sized again when shown

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
        self.importer = ModelImporter(self.session, self)
        self._action(file_menu, "&Import model…", self.importer.ask, "Ctrl+I",
                     "Open an LSTM or GRU trained with PyTorch, Keras or ONNX (.pt, .safetensors, .keras, .h5, .onnx)")
        self.recent_menu = file_menu.addMenu("&Recent files")
        self.recent_menu.setToolTipsVisible(True)
        file_menu.addSeparator()
        self._action(file_menu, "&Save model as…", self.ask_save_model, "Ctrl+Shift+S",
                     "Save the current model as a checkpoint")
        self.export_menu = file_menu.addMenu("&Export")
        file_menu.addSeparator()
        self.quit_action = self._action(file_menu, "&Quit", self.close, "Ctrl+Q", "Close lstmviz")

        view_menu = self.view_menu = bar.addMenu("&View")
        self._view_separator = view_menu.addSeparator()
        self.colorblind_action = self._action(view_menu, "&Colour-blind-safe colormaps",
                                              self.session.set_colorblind, None,
                                              "Use cividis and CET-CBD1 instead of viridis and CET-D1")
        self.colorblind_action.setCheckable(True)
        self.session.colormap_changed.connect(self.colorblind_action.setChecked)
        self._action(view_menu, "&Reset layout", self.reset_layout, None, "Put every panel back in place")
        from .app import THEME_KEY

        theme_menu = view_menu.addMenu("&Theme")
        self.theme_actions = QtGui.QActionGroup(self)
        chosen = self.settings.value(THEME_KEY, "system", type=str)
        for name, text in (("system", "Follow the &system"), ("dark", "&Dark"), ("light", "&Light")):
            action = self._action(theme_menu, text, lambda _=False, n=name: self.set_theme(n), None,
                                  f"Window colours: {text.replace('&', '').lower()}")
            action.setCheckable(True)
            action.setChecked(name == chosen)
            self.theme_actions.addAction(action)

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&What am I looking at?", self.show_tour, "F1",
                     "A short guided tour of the panels, on the demo")
        self._action(help_menu, "&User guide", self.show_guide, None, "The guide that ships with lstmviz")
        self._action(help_menu, "Open the &demo", self.open_demo, None,
                     "The bundled demo model and text, with unit 50 (bracket depth) selected")
        help_menu.addSeparator()
        self._action(help_menu, "&About lstmviz", self.show_about, None, "Versions and what this is")

    def show_tour(self):
        from .tour import show_tour

        return show_tour(self)

    def show_guide(self):
        from .guide import show_guide

        return show_guide(self)

    def open_demo(self) -> None:
        """Help > Open the demo: its model and text, a little way in, unit 50 selected."""
        from .app import open_demo

        open_demo(self)

    def set_theme(self, choice: str) -> None:
        """Apply theme ``choice`` ("system", "dark", "light") to the app and remember it."""
        from .app import THEME_KEY, apply_theme

        self.settings.setValue(THEME_KEY, choice)
        apply_theme(QtWidgets.QApplication.instance(), choice)

    def _build_shortcuts(self):
        self.key_actions = {}
        self.add_shortcut("Right", self.session.step)
        self.add_shortcut("Left", self.session.back)

    def add_shortcut(self, key: str, slot: Callable[[], None]) -> None:
        """A window-level key; a focused text editor takes it first (ShortcutOverride)."""
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
        before = self.statusBar().currentMessage()
        try:
            if kind == "model":
                ckpt = load_char_checkpoint(path)  # read once: for the question below, then shown
                if not self.confirm_model_vocabulary(ckpt.vocab, Path(path).name):
                    return False
                self.session.open_checkpoint(ckpt, path)
            elif not self.session.open_text(path):
                # declined (it loses characters), or a long text read in the background: text_opened
                # remembers it once it is shown
                return self.session.opening
            else:
                before = self._status_before_text
        except (ValueError, OSError, MemoryError) as e:
            dialogs.show_error(self, f"Cannot open this {kind}", one_line(e))
            return False
        self._opened(kind, path, before)
        return True

    def _note_status_before_text(self) -> None:
        self._status_before_text = self.statusBar().currentMessage()

    def _opened(self, kind: str, path: str, before: str) -> None:
        """The ``kind`` ("model" or "text") at ``path`` is shown: remember it and say so in the
        status line, followed by what opening it said there (e.g. the characters left out) unless
        that is still ``before``, the status line as it was shown."""
        self._remember(path)
        said = self.statusBar().currentMessage()
        opened = f"Opened {kind} {Path(path).name}"
        self.show_status(f"{opened}. {said}" if said and said != before else opened)

    def _text_refused(self, message: str) -> None:
        """A text read in the background is refused: as ``open_path`` refuses one read at once."""
        self.statusBar().clearMessage()  # "Opening …" is over
        dialogs.show_error(self, "Cannot open this text", message)

    def confirm_dropped_characters(self, name: str, known) -> bool:
        """Before showing the text file ``name`` without the characters its model lacks
        (``known``: a ``core.sequence.KnownText``): ask (``dialogs.ask_confirm``, listing them);
        True to open it anyway."""
        return self._confirm_lost("Open a text the model cannot fully read",
                                  f"The model cannot read every character of {name}.", known,
                                  "Cancel keeps the current text.")

    def confirm_model_vocabulary(self, vocab, name: str) -> bool:
        """Before opening the model ``name`` whose vocabulary is ``vocab``: if it lacks characters
        of the shown text, ask (``dialogs.ask_confirm``, listing them) and return the answer;
        True when nothing would be lost."""
        known = split_known(self.session.sequence.parked_text, vocab)
        return not known.dropped or self._confirm_lost(
            "Open a model with a different vocabulary", f"{name} cannot read every character of the text shown.",
            known, "Cancel keeps the current model and text.")

    def _confirm_lost(self, title: str, question: str, known, keeps: str) -> bool:
        """``dialogs.ask_confirm`` listing the characters ``known`` (a ``KnownText``) leaves out."""
        return dialogs.ask_confirm(self, title, question,
                                   f"{lost_characters(known.unknown, known.dropped)}\n{keeps}", confirm="Open anyway")

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
        except (ValueError, OSError, MemoryError) as e:
            dialogs.show_error(self, "Cannot save the model", one_line(e))
            return
        self._remember(path)
        self.show_status(f"Saved {path}")

    def dragEnterEvent(self, event: QtGui.QDragEnterEvent):
        if any(Path(u.toLocalFile()).suffix.lower() in (*OPENABLE, *IMPORTABLE) for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QtGui.QDropEvent):
        paths = [u.toLocalFile() for u in event.mimeData().urls()]
        paths = sorted((p for p in paths if Path(p).suffix.lower() in OPENABLE),
                       key=lambda p: OPENABLE[Path(p).suffix.lower()] != "model")  # model first
        for path in paths:
            self.open_path(path)
        event.acceptProposedAction()
        imports = [u.toLocalFile() for u in event.mimeData().urls()
                   if Path(u.toLocalFile()).suffix.lower() in IMPORTABLE]
        if imports:  # one import at a time: the first dropped model file
            self.importer.start(imports[0])

    # --- view ---------------------------------------------------------------------------------
    def show_status(self, message: str):
        self.statusBar().showMessage(message, 8000)

    def _update_position(self, *_):
        s = self.session
        ch = f" · {s.caption(s.t - 1)}" if 0 < s.t <= s.steps else ""
        if s.waiting:
            seeking = f" · going to {s.target:,}: waiting for the first pass ({s.pass_percent()} %)"
        else:
            seeking = " · catching up…" if s.seeking else ""
        self.position_label.setText(f"{position_label(s.t, s.steps)}{ch}{seeking}")

    def _update_title(self, *_):
        self.setWindowTitle(f"lstmviz — {self.session.display_name()}")

    def reset_layout(self):
        self.restoreState(self._default_state, LAYOUT_VERSION)
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
        self._laid_out_size = None  # the size finish_layout left, until the first show resizes it
        if not self._geometry_restored:
            self._resize_to_default()
        state = s.value("window/state", QtCore.QByteArray(), type=QtCore.QByteArray)
        self._sizes_pending = state.isEmpty() or not self.restoreState(state, LAYOUT_VERSION)
        self.session.set_colorblind(s.value("view/colorblind", False, type=bool))
        self.colorblind_action.setChecked(self.session.colorblind)
        self._rebuild_recent_menu()

    def save_settings(self):
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState(LAYOUT_VERSION))
        s.setValue("view/colorblind", self.session.colorblind)
        for save in self._settings_savers:
            save(s)
        s.sync()

    def _apply_default_sizes(self):
        """Give the heatmaps most of the window (first run and Reset layout)."""
        width, height = self.width(), self.height()
        self.resizeDocks([self.docks["gates"], self.docks["step"]], [int(width * 0.68), int(width * 0.32)],
                         QtCore.Qt.Horizontal)
        column = [self.docks[name] for name in ("text", "gates", "strip") if name in self.docks]
        self.resizeDocks(column, [int(height * share) for share in (0.22, 0.56, 0.22)][:len(column)],
                         QtCore.Qt.Vertical)  # the strip's row also holds the analysis docks
        if "training" in self.docks:  # the right column: current step above the training controls
            self.resizeDocks([self.docks["step"], self.docks["training"]], [int(height * 0.55), int(height * 0.35)],
                             QtCore.Qt.Vertical)

    def showEvent(self, event: QtGui.QShowEvent):
        super().showEvent(event)
        if self._laid_out_size is not None:  # the first show
            untouched = self.size() == self._laid_out_size  # nobody resized the window since finish_layout
            self._laid_out_size = None
            geometry = self.settings.value("window/geometry", QtCore.QByteArray(), type=QtCore.QByteArray)
            if untouched and not (self._geometry_restored and self.restoreGeometry(geometry)):
                self._resize_to_default()
        if self._sizes_pending:
            self._sizes_pending = False
            QtCore.QTimer.singleShot(0, self._apply_default_sizes)

    def add_close_guard(self, may_close: Callable[[], bool]) -> None:
        """Ask ``may_close()`` when the window is asked to close, after the guards added before
        it; the first that returns False keeps the window open, and later guards are not asked."""
        self._close_guards.append(may_close)

    def closeEvent(self, event: QtGui.QCloseEvent):
        if not all(may_close() for may_close in self._close_guards):  # stops at the first False
            event.ignore()
            return
        for slot in self._closing:
            slot()
        threads.stop_all()  # every worker thread still running ends before the window does
        self.save_settings()
        super().closeEvent(event)
