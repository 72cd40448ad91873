"""The GUI entry point, ``run_app(model_path, text_path) -> exit code``, and the one place the
window is built: :data:`DOCKS` lists every dock (name, title, area, tab group, factory) and
``create_window`` adds each through ``MainWindow.add_panel``. A factory receives
:class:`Services` (the Session, the settings, the window's narrow ``WindowHooks`` and the
bundles' shared services), never the window or another panel.

With no arguments the window opens on the bundled demo (a small character LSTM and a short text
with quotes and brackets), a little way into the text with an interesting unit selected.

Environment (for the real-window smoke test): ``LSTMVIZ_SMOKE_SCREENSHOT=path.png`` saves a
screenshot of the window once it is shown; ``LSTMVIZ_SMOKE_QUIT_AFTER_MS=n`` quits after n ms.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from engine.data import load_text

from . import xcb_check
from .assets_path import asset_path

ORGANIZATION = "lstmviz"
APPLICATION = "lstmviz"
DEMO_MODEL = "demo.npz"
DEMO_TEXT = "demo_view.txt"
DEMO_CORPUS = "demo.txt"  # what the demo model was trained on; preloaded in the Training data panel
DEMO_START_STEP = 150  # the demo opens this many characters in
DEMO_UNIT = (0, 50)  # (layer, unit) of the demo model that tracks bracket depth (see the README)
TEXT_QUANTITY_KEY = "view/text_quantity"  # QSettings key: the quantity that colours the text
PLAY_SPEED_KEY = "play/speed"  # QSettings key: the transport's play speed, steps per second


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


THEME_KEY = "view/theme"  # QSettings key: "system", "dark" or "light"
THEMES = ("system", "dark", "light")
TOUR_SEEN_KEY = "tour/seen"  # QSettings key: the first-start tour has been shown


def light_palette():
    """An explicit light Fusion palette (the heatmaps keep their black background)."""
    from PySide6 import QtGui

    p = QtGui.QPalette()
    base, window, text, mid = QtGui.QColor(255, 255, 255), QtGui.QColor(239, 239, 241), QtGui.QColor(20, 20, 22), QtGui.QColor(190, 190, 196)
    roles = {
        QtGui.QPalette.Window: window, QtGui.QPalette.WindowText: text, QtGui.QPalette.Base: base,
        QtGui.QPalette.AlternateBase: QtGui.QColor(246, 246, 248), QtGui.QPalette.ToolTipBase: QtGui.QColor(255, 255, 225),
        QtGui.QPalette.ToolTipText: QtGui.QColor(0, 0, 0), QtGui.QPalette.Text: text,
        QtGui.QPalette.Button: window, QtGui.QPalette.ButtonText: text, QtGui.QPalette.Mid: mid,
        QtGui.QPalette.Highlight: QtGui.QColor(42, 110, 200), QtGui.QPalette.HighlightedText: QtGui.QColor(255, 255, 255),
        QtGui.QPalette.Link: QtGui.QColor(20, 90, 190), QtGui.QPalette.PlaceholderText: QtGui.QColor(120, 120, 120),
    }
    for role, colour in roles.items():
        p.setColor(role, colour)
    for role in (QtGui.QPalette.Text, QtGui.QPalette.ButtonText, QtGui.QPalette.WindowText):
        p.setColor(QtGui.QPalette.Disabled, role, QtGui.QColor(150, 150, 150))
    return p


def resolved_theme(choice: str) -> str:
    """"dark" or "light" for a theme ``choice`` of :data:`THEMES`: "system" follows the
    colour scheme Qt reports (``QStyleHints.colorScheme``), dark where it reports none."""
    from PySide6 import QtCore, QtGui

    if choice in ("dark", "light"):
        return choice
    scheme = QtGui.QGuiApplication.styleHints().colorScheme()
    return "light" if scheme == QtCore.Qt.ColorScheme.Light else "dark"


def apply_theme(app, choice: str) -> str:
    """Give ``app`` the Fusion style and the palette of theme ``choice`` (one of
    :data:`THEMES`; anything else is "system"); returns the theme applied, "dark" or "light"."""
    theme = resolved_theme(choice if choice in THEMES else "system")
    app.setStyle("Fusion")
    app.setPalette(light_palette() if theme == "light" else dark_palette())
    return theme


def open_demo(window) -> None:
    """Load the bundled demo model and text, step into it and select the demo unit; the demo
    corpus goes to whatever uses it (``WindowHooks.use_demo_corpus``: the Training data panel)."""
    session = window.session
    model, text = asset_path(DEMO_MODEL), asset_path(DEMO_TEXT)
    if model is None or text is None:
        window.show_status("The demo files are missing from this installation; use File > Open model…")
        return
    session.load_model(model)
    session.load_text(text)
    corpus = asset_path(DEMO_CORPUS)
    if corpus is not None:  # ready to train on the demo corpus
        window.hooks.use_demo_corpus(load_text(corpus), f"the demo corpus ({DEMO_CORPUS})")
    session.seek(min(DEMO_START_STEP, session.steps))
    layer, unit = DEMO_UNIT
    if layer < session.num_layers and unit < session.hidden_size:
        session.select(layer, unit, -1)


class Services:
    """What a panel factory receives: the Session, the settings, the window's ``WindowHooks``,
    and the two bundles' services, each built on first use (a bundle's panels share it)."""

    def __init__(self, session, settings, hooks):
        self.session, self.settings, self.hooks = session, settings, hooks

    @cached_property
    def learning(self):
        from .learn import LearningService

        return LearningService(self.session, self.settings, self.hooks)

    @cached_property
    def lessons(self):
        from .lessons import LessonsService

        return LessonsService(self.session, self.settings, self.hooks)

    @cached_property
    def analysis(self):
        from .analysis import AnalysisService

        return AnalysisService(self.session, self.settings, self.hooks)


def _text_panel(services: Services):
    from .panels import TextPanel

    panel, settings = TextPanel(services.session), services.settings
    panel.status.connect(services.hooks.show_status)
    quantity = settings.value(TEXT_QUANTITY_KEY, "h", type=str)
    if panel.quantity_box.findData(quantity) >= 0:
        panel.set_quantity(quantity)
    services.hooks.on_save_settings(lambda s: s.setValue(TEXT_QUANTITY_KEY, panel.quantity))
    return panel


def _gates_panel(services: Services):
    from .panels import GatesPanel

    panel = GatesPanel(services.session)
    panel.status.connect(services.hooks.show_status)
    services.hooks.add_heatmaps(panel.views)
    services.hooks.add_paint_later(*panel.views.values())
    return panel


def _step_panel(services: Services):
    from .panels import CurrentStepPanel

    panel = CurrentStepPanel(services.session)
    services.hooks.add_paint_later(panel.plots)
    return panel


def _transport_panel(services: Services):
    from .panels import TransportPanel
    from .panels.transport import DEFAULT_SPEED

    panel, hooks = TransportPanel(services.session), services.hooks
    panel.set_speed(services.settings.value(PLAY_SPEED_KEY, DEFAULT_SPEED, type=int))
    for key, slot in (("Space", panel.toggle_play), ("Home", panel.to_start), ("End", panel.to_end)):
        hooks.add_shortcut(key, slot)
    hooks.on_close(panel.pause)
    hooks.on_save_settings(lambda s: s.setValue(PLAY_SPEED_KEY, panel.speed.value()))
    return panel


def _history_panel(services: Services):
    services.analysis.follow_training(services.learning.controller)
    return services.analysis.history


@dataclass(frozen=True)
class Dock:
    """One dock of the window: ``name`` (object name ``dock_<name>``, which saved layouts name),
    ``title``, ``area`` ("top", "left", "right", "bottom"), ``group`` (docks with the same group
    share a place as tabs, the first listed on top; None: alone), ``factory(services)`` building
    its panel, and ``scrolled`` (inside a scroll area)."""

    name: str
    title: str
    area: str
    group: str | None
    factory: Callable[[Services], object]
    scrolled: bool = False


# Every dock of the window, in the order their factories run and they are added (the gate
# heatmaps and the current step come before the training docks, whose refreshes repaint their
# widgets one by one). Tab groups: the current step and the lesson side panels, and the training
# controls, in the right column; the large lesson plots behind the gate heatmaps; the analysis
# docks under them, the loss strip on top (few tabs per group: at the default window size every
# tab shows its whole title). The transport spans the bottom alone.
DOCKS = (
    Dock("text", "Text", "top", None, _text_panel),
    Dock("gates", "Gate heatmaps", "left", "gates", _gates_panel),
    Dock("step", "Current step", "right", "step", _step_panel),
    Dock("transport", "Transport", "bottom", None, _transport_panel),
    Dock("training", "Training", "right", "training", lambda s: s.learning.training_panel),
    Dock("data", "Training data", "right", "training", lambda s: s.learning.data_panel, scrolled=True),
    Dock("model", "Model", "right", "training", lambda s: s.learning.model_panel, scrolled=True),
    Dock("sampling", "Sampling", "right", "training", lambda s: s.learning.sampling_panel, scrolled=True),
    Dock("loss", "Loss", "bottom", "step", lambda s: s.learning.loss_plot),
    Dock("equations", "Equations", "right", "step", lambda s: s.lessons.inspector, scrolled=True),
    Dock("diagram", "Cell diagram", "right", "step", lambda s: s.lessons.diagram, scrolled=True),
    Dock("gradflow", "Gradient flow", "bottom", "gates", lambda s: s.lessons.gradflow, scrolled=True),
    Dock("compare", "RNN vs LSTM", "bottom", "gates", lambda s: s.lessons.compare, scrolled=True),
    Dock("series", "Series", "bottom", "gates", lambda s: s.lessons.series, scrolled=True),
    Dock("strip", "Loss strip", "left", "analysis", lambda s: s.analysis.strip),
    Dock("hypothesis", "Hypotheses", "left", "analysis", lambda s: s.analysis.hypothesis, scrolled=True),
    Dock("probes", "Feature probes", "left", "analysis", lambda s: s.analysis.probes, scrolled=True),
    Dock("saturation", "Saturation", "left", "analysis", lambda s: s.analysis.saturation, scrolled=True),
    Dock("interventions", "Interventions", "left", "analysis", lambda s: s.analysis.interventions, scrolled=True),
    Dock("history", "Training history", "left", "analysis", _history_panel, scrolled=True),
)


def create_window(session, settings):
    """The main window over ``session`` with every dock of :data:`DOCKS`, the export actions,
    the tab groups and the saved (or default) layout; nothing loaded. Needs a QApplication."""
    from PySide6 import QtCore

    from .export_actions import ExportActions
    from .main_window import MainWindow

    areas = {"top": QtCore.Qt.TopDockWidgetArea, "left": QtCore.Qt.LeftDockWidgetArea,
             "right": QtCore.Qt.RightDockWidgetArea, "bottom": QtCore.Qt.BottomDockWidgetArea}
    window = MainWindow(session, settings)
    services = Services(session, settings, window.hooks)
    groups: dict = {}
    for dock in DOCKS:
        window.add_panel(dock.name, dock.title, dock.factory(services), areas[dock.area], dock.scrolled)
        if dock.group is not None:
            groups.setdefault(dock.group, []).append(dock.name)
    ExportActions(session, settings, window.hooks)  # owned by the window
    heads = [window.docks[members[0]] for members in groups.values()]
    for head in heads:  # the right column's groups are stacked one above the other
        if window.dockWidgetArea(head) == QtCore.Qt.RightDockWidgetArea:
            window.addDockWidget(QtCore.Qt.RightDockWidgetArea, head, QtCore.Qt.Vertical)
    for members in groups.values():
        for one, other in zip(members, members[1:]):
            window.tabifyDockWidget(window.docks[one], window.docks[other])
    for head in heads:
        head.raise_()
    window.finish_layout()
    return window


def build_window(model_path: str | None = None, text_path: str | None = None, settings=None):
    """Create the Session and the main window and load the files (or the demo). Errors with
    user-given files are shown in a dialog once the event loop runs. Needs a QApplication."""
    from PySide6 import QtCore

    from . import dialogs
    from .crash_handler import one_line
    from .session import Session

    session = Session()
    window = create_window(session, settings if settings is not None else QtCore.QSettings())
    if model_path is None and text_path is None:
        open_demo(window)
        return window
    failures = []
    for path, kind in ((model_path, "model"), (text_path, "text")):
        if path is None:
            continue
        try:
            (session.load_model if kind == "model" else session.load_text)(path)
        except (ValueError, OSError, MemoryError) as e:
            failures.append((kind, one_line(e)))
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
    from PySide6 import QtCore, QtGui, QtWidgets

    from .tour import show_first_time

    from .crash_handler import install as install_crash_handler

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    apply_theme(app, QtCore.QSettings().value(THEME_KEY, "system", type=str))
    icon = asset_path("icon.svg")
    if icon is not None:
        app.setWindowIcon(QtGui.QIcon(str(icon)))
    holder: dict = {}
    crash = install_crash_handler(lambda: holder.get("window"))  # the relay: referenced until exit
    window = holder["window"] = build_window(model_path, text_path)
    window.show()
    QtCore.QTimer.singleShot(0, lambda: show_first_time(window, window.settings))  # once the window is up
    _install_smoke_hooks(app, window)
    code = app.exec()
    window.deleteLater()
    crash.uninstall()
    return int(code)
