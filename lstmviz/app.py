"""The GUI entry point: ``run_app(model_path, text_path) -> exit code``.

With no arguments the window opens on the bundled demo (a small character LSTM and a short text
with quotes and brackets), a little way into the text with an interesting unit selected.

Environment (for the real-window smoke test): ``LSTMVIZ_SMOKE_SCREENSHOT=path.png`` saves a
screenshot of the window once it is shown; ``LSTMVIZ_SMOKE_QUIT_AFTER_MS=n`` quits after n ms.
"""

from __future__ import annotations

import importlib.resources
import os
import sys
from pathlib import Path

from engine.data import load_text

from . import xcb_check

ORGANIZATION = "lstmviz"
APPLICATION = "lstmviz"
DEMO_MODEL = "demo.npz"
DEMO_TEXT = "demo_view.txt"
DEMO_CORPUS = "demo.txt"  # what the demo model was trained on; preloaded in the Training data panel
DEMO_START_STEP = 150  # the demo opens this many characters in
DEMO_UNIT = (0, 50)  # (layer, unit) of the demo model that tracks bracket depth (see the README)


def asset_path(name: str) -> Path | None:
    """A bundled asset: from the installed ``lstmviz.assets`` package, else the source tree's
    ``assets/`` folder; None if it is in neither."""
    try:
        candidate = importlib.resources.files("lstmviz.assets") / name
        if candidate.is_file():
            return Path(str(candidate))
    except ModuleNotFoundError:
        pass
    candidate = Path(__file__).resolve().parent.parent / "assets" / name
    return candidate if candidate.is_file() else None


def dark_palette():
    """An explicit dark Fusion palette that matches the heatmaps' black background."""
    from PySide6 import QtGui

    p = QtGui.QPalette()
    base, window, text, mid = QtGui.QColor(30, 30, 32), QtGui.QColor(43, 43, 46), QtGui.QColor(225, 225, 225), QtGui.QColor(70, 70, 74)
    roles = {
        QtGui.QPalette.Window: window, QtGui.QPalette.WindowText: text, QtGui.QPalette.Base: base,
        QtGui.QPalette.AlternateBase: window, QtGui.QPalette.ToolTipBase: QtGui.QColor(250, 250, 220),
        QtGui.QPalette.ToolTipText: QtGui.QColor(0, 0, 0), QtGui.QPalette.Text: text,
        QtGui.QPalette.Button: window, QtGui.QPalette.ButtonText: text, QtGui.QPalette.Mid: mid,
        QtGui.QPalette.Highlight: QtGui.QColor(42, 130, 218), QtGui.QPalette.HighlightedText: QtGui.QColor(0, 0, 0),
        QtGui.QPalette.Link: QtGui.QColor(90, 160, 240), QtGui.QPalette.PlaceholderText: QtGui.QColor(140, 140, 140),
    }
    for role, colour in roles.items():
        p.setColor(role, colour)
    p.setColor(QtGui.QPalette.Disabled, QtGui.QPalette.Text, QtGui.QColor(120, 120, 120))
    p.setColor(QtGui.QPalette.Disabled, QtGui.QPalette.ButtonText, QtGui.QColor(120, 120, 120))
    p.setColor(QtGui.QPalette.Disabled, QtGui.QPalette.WindowText, QtGui.QColor(120, 120, 120))
    return p


def open_demo(window) -> None:
    """Load the bundled demo model and text, step into it and select the demo unit."""
    session = window.session
    model, text = asset_path(DEMO_MODEL), asset_path(DEMO_TEXT)
    if model is None or text is None:
        window.show_status("The demo files are missing from this installation; use File > Open model…")
        return
    session.load_model(model)
    session.load_text(text)
    corpus = asset_path(DEMO_CORPUS)
    if corpus is not None and hasattr(window, "learning"):  # ready to train on the demo corpus
        window.learning.data_panel.use_text(load_text(corpus), f"the demo corpus ({DEMO_CORPUS})")
    session.seek(min(DEMO_START_STEP, session.steps))
    layer, unit = DEMO_UNIT
    if layer < session.num_layers and unit < session.hidden_size:
        session.select(layer, unit, -1)


# Docks that share a place as tabs (the first of each group is shown on top): two groups in
# the right column, and the large lesson plots behind the gate heatmaps.
RIGHT_GROUPS = (("step", "loss", "equations", "diagram"), ("training", "data", "model", "sampling"))
TAB_GROUPS = RIGHT_GROUPS + (("gates", "gradflow", "compare", "series"),)


def install_panels(window) -> None:
    """Add the export actions, the training docks and the lesson docks to ``window``, group
    them as tabs and restore the saved layout (which can name any of them)."""
    from PySide6 import QtCore

    from .export_actions import install_export_actions
    from .learn import install_learning_panels
    from .lessons import install_lessons

    session, settings = window.session, window.settings
    window.export_actions = install_export_actions(window, session, settings)
    window.learning = install_learning_panels(window, session, settings)
    window.lessons = install_lessons(window, session, settings)
    for group in RIGHT_GROUPS:  # the transport spans the bottom alone
        window.addDockWidget(QtCore.Qt.RightDockWidgetArea, window.docks[group[0]], QtCore.Qt.Vertical)
    for group in TAB_GROUPS:
        docks = [window.docks[name] for name in group]
        for first, second in zip(docks, docks[1:]):
            window.tabifyDockWidget(first, second)
        docks[0].raise_()
    window.finish_layout()


def build_window(model_path: str | None = None, text_path: str | None = None, settings=None):
    """Create the Session and the main window and load the files (or the demo). Errors with
    user-given files are shown in a dialog once the event loop runs. Needs a QApplication."""
    from PySide6 import QtCore

    from . import dialogs
    from .main_window import MainWindow
    from .session import Session

    session = Session()
    window = MainWindow(session, settings if settings is not None else QtCore.QSettings())
    install_panels(window)
    if model_path is None and text_path is None:
        open_demo(window)
        return window
    failures = []
    for path, kind in ((model_path, "model"), (text_path, "text")):
        if path is None:
            continue
        try:
            (session.load_model if kind == "model" else session.load_text)(path)
        except (ValueError, OSError) as e:
            failures.append((kind, str(e)))
    if not session.ready:  # no usable model given: the demo's, on the given text if it opened
        demo = asset_path(DEMO_MODEL)
        if not session.text:
            open_demo(window)
        elif demo is not None:
            session.load_model(demo)  # keeps the text (characters the demo does not know are reported)
    for kind, message in failures:
        QtCore.QTimer.singleShot(0, lambda k=kind, m=message: dialogs.show_error(window, f"Cannot open this {k}", m))
    return window


def _install_smoke_hooks(app, window) -> None:
    from PySide6 import QtCore

    shot = os.environ.get("LSTMVIZ_SMOKE_SCREENSHOT")
    quit_ms = os.environ.get("LSTMVIZ_SMOKE_QUIT_AFTER_MS")
    if shot:
        QtCore.QTimer.singleShot(300, lambda: window.grab().save(shot))
    if quit_ms:
        QtCore.QTimer.singleShot(max(int(quit_ms), 400 if shot else 0), window.close)


def run_app(model_path: str | None = None, text_path: str | None = None) -> int:
    """Open the viewer (on the demo without arguments) and run the event loop; the exit code."""
    if xcb_check.check_or_explain() != 0:
        return 1
    from PySide6 import QtGui, QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    icon = asset_path("icon.svg")
    if icon is not None:
        app.setWindowIcon(QtGui.QIcon(str(icon)))
    window = build_window(model_path, text_path)
    window.show()
    _install_smoke_hooks(app, window)
    code = app.exec()
    window.deleteLater()
    return int(code)
