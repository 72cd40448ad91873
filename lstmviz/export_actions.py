"""The app's export commands: File > Export entries, "Export…" on each heatmap's right-click menu,
and the small dialogs they open.

What is exported is what the viewer holds: the selected layer, the steps taken so far
(``Session.trace()``), the current colormaps and the levels the heatmaps use. Panel pictures go
through ``lstmviz.export.export_panel_image``, the same code as ``lstmviz export``, so the app and
the CLI give the same pixels for the same panel and width. Settings: ``export/last_dir`` (last
folder used), ``export/png_width`` (last PNG width), ``export/all_format`` (last "Export all"
format). Every modal dialog goes through the ``ask_*`` functions below (tests replace them).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from PySide6 import QtCore, QtGui, QtWidgets

from engine import memory

from . import dialogs, export
from .crash_handler import one_line
from .plots import GATE_STYLE

LAST_DIR_KEY = "export/last_dir"
WIDTH_KEY = "export/png_width"
ALL_FORMAT_KEY = "export/all_format"
STYLE_KEY = "export/style"  # "dark" or "light": the style of panel pictures
IMAGE_FILTER = "PNG image (*.png);;SVG drawing (*.svg)"
PNG_FILTER = "PNG image (*.png)"
SVG_FILTER = "SVG drawing (*.svg)"
CSV_FILTER = "CSV table (*.csv)"
NPZ_FILTER = "NumPy archive (*.npz)"
ALL_FORMATS = ("png", "svg", "csv")  # "Export all panels" formats (one file per panel)
WINDOW_FILE = "window"  # "Export all panels" as one picture: DIR/window.{png,svg}


# --- dialogs (module functions so tests can replace them) ---------------------------------------
def _check_picture(width: int, height: int) -> None:
    """Refuse (``engine.memory.NotEnoughMemory``) a picture of ``width x height`` pixels that
    cannot be rendered in the memory available, before rendering it."""
    memory.check_fits(f"exporting a picture {width} pixels wide", memory.export_image_bytes(width, height))


def _suffix(file_filter: str) -> str:
    return re.search(r"\*\.(\w+)", file_filter).group(1)


def ask_save_path(parent, title: str, file_filter: str, start: str) -> str | None:
    """A file to write, starting in ``start``; the suffix of the chosen filter is added when the
    name has none; the dialog asks before overwriting. None if cancelled."""
    dialog = QtWidgets.QFileDialog(parent, title, start, file_filter)
    dialog.setAcceptMode(QtWidgets.QFileDialog.AcceptSave)
    dialog.setDefaultSuffix(_suffix(file_filter))
    dialog.filterSelected.connect(lambda chosen: dialog.setDefaultSuffix(_suffix(chosen)))
    if dialog.exec() != QtWidgets.QDialog.Accepted or not dialog.selectedFiles():
        return None
    return dialog.selectedFiles()[0]


def ask_folder(parent, title: str, start: str) -> str | None:
    """An existing folder, starting in ``start``; None if cancelled."""
    return QtWidgets.QFileDialog.getExistingDirectory(parent, title, start) or None


def ask_item(parent, title: str, label: str, items: list) -> str | None:
    """One of ``items`` chosen from a list, or None if the user cancelled."""
    item, ok = QtWidgets.QInputDialog.getItem(parent, title, label, items, 0, False)
    return item if ok else None


def _width_box(width: int) -> QtWidgets.QSpinBox:
    box = QtWidgets.QSpinBox()
    box.setRange(export.MIN_WIDTH_PX, export.MAX_WIDTH_PX)
    box.setSingleStep(100)
    box.setSuffix(" px")
    box.setValue(min(max(int(width), export.MIN_WIDTH_PX), export.MAX_WIDTH_PX))
    box.setToolTip("Width of the PNG in pixels; the height follows the picture's proportions")
    return box


def _panel_box(names, current: str) -> QtWidgets.QComboBox:
    box = QtWidgets.QComboBox()
    for name in names:
        box.addItem(GATE_STYLE[name].label, name)
    box.setCurrentIndex(max(0, box.findData(current)))
    return box


def _buttons(dialog: QtWidgets.QDialog) -> QtWidgets.QDialogButtonBox:
    buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.Ok | QtWidgets.QDialogButtonBox.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    return buttons


class PanelDialog(QtWidgets.QDialog):
    """Which panel to export and, for a PNG, how wide (``width=None``: no width box)."""

    def __init__(self, parent, title: str, names, current: str | None, width: int | None):
        super().__init__(parent)
        self.setWindowTitle(title)
        form = QtWidgets.QFormLayout(self)
        self.panel = _panel_box(names, current) if current is not None else None
        if self.panel is not None:
            form.addRow("Panel", self.panel)
        self.width_box = _width_box(width) if width is not None else None
        if self.width_box is not None:
            form.addRow("Width", self.width_box)
        form.addRow(_buttons(self))

    def choice(self) -> tuple:
        """``(panel name or None, width or None)``."""
        return (None if self.panel is None else self.panel.currentData(),
                None if self.width_box is None else self.width_box.value())


def ask_panel(parent, title: str, names, current: str | None, width: int | None) -> tuple | None:
    """``(panel, width)`` from a ``PanelDialog``; None if cancelled."""
    dialog = PanelDialog(parent, title, names, current, width)
    return dialog.choice() if dialog.exec() == QtWidgets.QDialog.Accepted else None


@dataclass(frozen=True)
class AllPanelsChoice:
    """What "Export all panels…" writes: ``folder``, ``fmt`` (png/svg/csv), PNG ``width``, and
    ``whole_window`` (one picture of the window instead of one file per panel)."""

    folder: str
    fmt: str
    width: int
    whole_window: bool


class AllPanelsDialog(QtWidgets.QDialog):
    """Folder, format, PNG width, and one file per panel or the whole window as one picture."""

    def __init__(self, parent, folder: str, fmt: str, width: int):
        super().__init__(parent)
        self.setWindowTitle("Export all panels")
        self.folder = QtWidgets.QLineEdit(folder)
        browse = QtWidgets.QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.format = QtWidgets.QComboBox()
        for name, label in (("png", "PNG images"), ("svg", "SVG drawings"), ("csv", "CSV tables")):
            self.format.addItem(label, name)
        self.format.setCurrentIndex(max(0, self.format.findData(fmt)))
        self.width_box = _width_box(width)
        self.per_panel = QtWidgets.QRadioButton("One file per panel: layer{N}_{gate}.{ext}")
        self.whole = QtWidgets.QRadioButton(f"The whole window as one picture: {WINDOW_FILE}.{{png,svg}}")
        self.per_panel.setChecked(True)
        form = QtWidgets.QFormLayout(self)
        form.addRow("Folder", row)
        form.addRow("Format", self.format)
        form.addRow("PNG width", self.width_box)
        form.addRow(self.per_panel)
        form.addRow(self.whole)
        form.addRow(QtWidgets.QLabel("Existing files with these names are replaced."))
        form.addRow(_buttons(self))
        self.format.currentIndexChanged.connect(self._update)
        self.whole.toggled.connect(self._update)
        self._update()

    def _browse(self):
        folder = ask_folder(self, "Export to folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _update(self, *_):
        fmt = self.format.currentData()
        self.width_box.setEnabled(fmt == "png")
        self.whole.setEnabled(fmt != "csv")
        if fmt == "csv":
            self.per_panel.setChecked(True)

    def choice(self) -> AllPanelsChoice:
        return AllPanelsChoice(self.folder.text().strip(), self.format.currentData(), self.width_box.value(),
                               self.whole.isChecked())


def ask_all_panels(parent, folder: str, fmt: str, width: int) -> AllPanelsChoice | None:
    """The user's ``AllPanelsChoice``; None if cancelled."""
    dialog = AllPanelsDialog(parent, folder, fmt, width)
    return dialog.choice() if dialog.exec() == QtWidgets.QDialog.Accepted else None


# --- the actions ----------------------------------------------------------------------------------
class ExportActions(QtCore.QObject):
    """Owns the export actions of one main window (see the module docstring)."""

    def __init__(self, session, settings: QtCore.QSettings, hooks):
        """``hooks``: the window's ``WindowHooks`` (Export menu, heatmap views, dialog parent, status)."""
        super().__init__(hooks.dialog_parent)
        self.window, self.session, self.settings = hooks.dialog_parent, session, settings
        self.hooks = hooks
        menu = hooks.export_menu
        self.panel_png = self._add(menu, "Export panel as &PNG…", self.export_panel_png,
                                   "Save one heatmap of the selected layer as a PNG image")
        self.panel_svg = self._add(menu, "Export panel as &SVG…", self.export_panel_svg,
                                   "Save one heatmap of the selected layer as an SVG drawing")
        self.all_panels = self._add(menu, "Export &all panels…", self.export_all_panels,
                                    "Save every heatmap of the selected layer (or the whole window) to a folder")
        self.panel_png.setShortcut(QtGui.QKeySequence("Ctrl+E"))
        self.all_panels.setShortcut(QtGui.QKeySequence("Ctrl+Shift+E"))
        self.dock_picture = self._add(menu, "Export a p&anel's picture…", self.export_dock_picture,
                                      "Save any panel (the dock as shown) as a PNG image or SVG drawing")
        self.dock_data = self._add(menu, "Export a panel's &data (CSV)…", self.export_dock_data,
                                   "Save the numbers a panel shows (curves, vectors, equations) as a table")
        self.light_style = self._add(menu, "&Light pictures (for print)", self._remember_style,
                                     "Panel pictures on a white background with dark axes and text")
        self.light_style.setCheckable(True)
        self.light_style.setChecked(self.settings.value(STYLE_KEY, "dark", type=str) == "light")
        menu.addSeparator()
        self.trace_npz = self._add(menu, "Export trace data (&NPZ)…", self.export_trace_npz,
                                   "Save every gate and state of every layer, for the steps taken, as NumPy arrays")
        self.gate_csv = self._add(menu, "Export gate &CSV…", self.export_gate_csv,
                                  "Save one gate of the selected layer as a table: one row per step")
        self.view_actions = {}
        for name, view in hooks.heatmaps().items():
            action = QtGui.QAction("Export…", view)
            action.setStatusTip(f"Save the {GATE_STYLE[name].label} heatmap as a PNG or SVG file")
            action.triggered.connect(lambda _=False, name=name: self.export_view(name))
            view.add_context_action(action)
            self.view_actions[name] = action

    def _add(self, menu, text: str, slot, tip: str) -> QtGui.QAction:
        action = QtGui.QAction(text, self.window)
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # --- settings -------------------------------------------------------------------------------
    def last_dir(self) -> str:
        folder = self.settings.value(LAST_DIR_KEY, "", type=str)
        return folder if folder and os.path.isdir(folder) else os.path.expanduser("~")

    def _remember_dir(self, path: str) -> None:
        folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        self.settings.setValue(LAST_DIR_KEY, folder)

    @property
    def style(self) -> str:
        """The style of panel pictures: "light" while "Light pictures" is checked, else "dark"."""
        return "light" if self.light_style.isChecked() else "dark"

    def _remember_style(self) -> None:
        self.settings.setValue(STYLE_KEY, self.style)

    def png_width(self) -> int:
        """The remembered PNG width, else the current width of the gate heatmaps."""
        default = self.hooks.heatmaps()["h"].width()
        return self.settings.value(WIDTH_KEY, max(default, export.MIN_WIDTH_PX), type=int)

    # --- what is exported ----------------------------------------------------------------------
    def _trace(self):
        """The steps taken so far, or None (after telling the user) when there is nothing yet."""
        if not self.session.ready or self.session.t == 0:
            dialogs.show_error(self.window, "Nothing to export",
                               "Open a model and a text, and step through at least one character first.")
            return None
        try:
            return self.session.trace()
        except ValueError as error:  # more steps than the records kept in memory (engine.stepper)
            dialogs.show_error(self.window, "Cannot export this many steps",
                               f"{error}. Step back, or export a range from a terminal with "
                               "lstmviz export MODEL --text-file TEXT --start N --end M.")
            return None

    def _write_panel(self, trace, path: str, name: str, fmt: str, width: int | None) -> None:
        s = self.session
        if width is not None:
            _check_picture(width, round(width * export.FIGURE_ASPECT))
        export.export_panel_image(path, trace, name, s.layer, fmt, width, colorblind=s.colorblind,
                                  levels=s.levels(name, s.layer), style=self.style)

    def _run(self, title: str, write) -> None:
        """Call ``write()``, which returns a status message; errors (the file or folder that
        cannot be written and why, not enough memory) go to a message box."""
        try:
            message = write()
        except (OSError, ValueError, MemoryError) as error:
            dialogs.show_error(self.window, title, one_line(error))
            return
        self.hooks.show_status(message)

    # --- commands ---------------------------------------------------------------------------------
    def export_panel_png(self) -> None:
        self._export_panel("png")

    def export_panel_svg(self) -> None:
        self._export_panel("svg")

    def _export_panel(self, fmt: str) -> None:
        trace = self._trace()
        if trace is None:
            return
        title = f"Export panel as {fmt.upper()}"
        choice = ask_panel(self.window, title, self.session.names, self.session.names[0],
                           self.png_width() if fmt == "png" else None)
        if choice is None:
            return
        name, width = choice
        start = export.panel_path(self.last_dir(), self.session.layer, name, fmt)
        path = ask_save_path(self.window, title, PNG_FILTER if fmt == "png" else SVG_FILTER, start)
        if path is None:
            return
        self._save_panel(trace, title, path, name, fmt, width)

    def _save_panel(self, trace, title: str, path: str, name: str, fmt: str, width: int | None) -> None:
        if width is not None:
            self.settings.setValue(WIDTH_KEY, width)
        self._remember_dir(path)

        def write():
            self._write_panel(trace, path, name, fmt, width)
            return f"Exported {path}"

        self._run(title, write)

    def export_view(self, name: str) -> None:
        """Right-click "Export…" on heatmap ``name``: PNG or SVG by the chosen file's suffix."""
        trace = self._trace()
        if trace is None:
            return
        title = f"Export {GATE_STYLE[name].label}"
        start = export.panel_path(self.last_dir(), self.session.layer, name, "png")
        path = ask_save_path(self.window, title, IMAGE_FILTER, start)
        if path is None:
            return
        fmt = os.path.splitext(path)[1].lower().lstrip(".")
        if fmt not in ("png", "svg"):
            dialogs.show_error(self.window, title, f"{path}: choose a file name ending in .png or .svg")
            return
        width = None
        if fmt == "png":
            choice = ask_panel(self.window, title, self.session.names, None, self.png_width())
            if choice is None:
                return
            width = choice[1]
        self._save_panel(trace, title, path, name, fmt, width)

    def export_all_panels(self) -> None:
        trace = self._trace()
        if trace is None:
            return
        fmt = self.settings.value(ALL_FORMAT_KEY, "png", type=str)
        choice = ask_all_panels(self.window, self.last_dir(), fmt if fmt in ALL_FORMATS else "png", self.png_width())
        if choice is None:
            return
        title = "Export all panels"
        if not choice.folder or not os.path.isdir(choice.folder):
            dialogs.show_error(self.window, title, f"{choice.folder or '(no folder)'}: not an existing folder")
            return
        self.settings.setValue(ALL_FORMAT_KEY, choice.fmt)
        if choice.fmt == "png":
            self.settings.setValue(WIDTH_KEY, choice.width)
        self._remember_dir(choice.folder)
        width = choice.width if choice.fmt == "png" else None

        def write():
            if choice.whole_window:
                path = os.path.join(choice.folder, f"{WINDOW_FILE}.{choice.fmt}")
                if choice.fmt == "png":
                    _check_picture(width, round(width * self.window.height() / max(self.window.width(), 1)))
                    export.export_png(self.window, path, width)
                else:
                    export.export_svg(self.window, path)
                return f"Exported the window to {path}"
            names = self.session.names
            for name in names:
                path = export.panel_path(choice.folder, self.session.layer, name, choice.fmt)
                if choice.fmt == "csv":
                    export.export_gate_csv(path, trace, name, self.session.layer)
                else:
                    self._write_panel(trace, path, name, choice.fmt, width)
            return f"Exported {len(names)} file{'s' * (len(names) != 1)} to {choice.folder}"

        self._run(title, write)

    def _ask_dock(self, title: str, names: list) -> str | None:
        panels = self.hooks.panels()
        titles = [panels[name][0] for name in names]
        chosen = ask_item(self.window, title, "Panel:", titles)
        return None if chosen is None else names[titles.index(chosen)]

    def export_dock_picture(self) -> None:
        """Any dock's panel as shown (brought to the front first), PNG or SVG by the file's suffix."""
        title = "Export a panel's picture"
        name = self._ask_dock(title, list(self.hooks.panels()))
        if name is None:
            return
        path = ask_save_path(self.window, title, IMAGE_FILTER, os.path.join(self.last_dir(), f"{name}.png"))
        if path is None:
            return
        fmt = os.path.splitext(path)[1].lower().lstrip(".")
        if fmt not in ("png", "svg"):
            dialogs.show_error(self.window, title, f"{path}: choose a file name ending in .png or .svg")
            return
        self._remember_dir(path)
        self.hooks.raise_panel(name)
        QtWidgets.QApplication.processEvents()  # a panel that was behind a tab catches up and lays out
        widget = self.hooks.panels()[name][1]

        def write():
            (export.export_png if fmt == "png" else export.export_svg)(widget, path)
            return f"Exported {path}"

        self._run(title, write)

    def step_table(self) -> tuple | None:
        """The current step's vectors: ``unit,<quantity>...`` of the selected layer at the last
        step taken (the Current step panel's strips), None before the first step."""
        s = self.session
        if not s.ready or s.t == 0:
            return None
        step = s.records(s.t - 1, s.t)  # row 0 is the last step taken
        columns = [step.gate(name, s.layer)[0] for name in s.names]  # each (H,)
        rows = [[unit] + [format(float(c[unit]), ".17g") for c in columns] for unit in range(len(columns[0]))]
        return ["unit"] + list(s.names), rows

    def export_dock_data(self) -> None:
        """The numbers a dock shows (``export.panel_table``; the Current step: ``step_table``)."""
        title = "Export a panel's data"
        panels = self.hooks.panels()
        tables = {name: (self.step_table() if name == "step" else export.panel_table(widget))
                  for name, (_, widget) in panels.items() if name != "gates"}  # gates: Export gate CSV
        names = [name for name, table in tables.items() if table is not None]
        if not names:
            dialogs.show_error(self.window, title, "No panel shows any data yet: step through the text or train first.")
            return
        name = self._ask_dock(title, names)
        if name is None:
            return
        path = ask_save_path(self.window, title, CSV_FILTER, os.path.join(self.last_dir(), f"{name}.csv"))
        if path is None:
            return
        self._remember_dir(path)

        def write():
            export.export_table_csv(path, *tables[name])
            return f"Exported {path}"

        self._run(title, write)

    def export_trace_npz(self) -> None:
        trace = self._trace()
        if trace is None:
            return
        title = "Export trace data"
        path = ask_save_path(self.window, title, NPZ_FILTER, os.path.join(self.last_dir(), "trace.npz"))
        if path is None:
            return
        self._remember_dir(path)

        def write():
            export.export_trace_npz(path, trace, self.session.vocab)
            return f"Exported {path}"

        self._run(title, write)

    def export_gate_csv(self) -> None:
        trace = self._trace()
        if trace is None:
            return
        title = "Export gate CSV"
        choice = ask_panel(self.window, title, self.session.names, self.session.names[0], None)
        if choice is None:
            return
        name = choice[0]
        layer = self.session.layer
        path = ask_save_path(self.window, title, CSV_FILTER, export.panel_path(self.last_dir(), layer, name, "csv"))
        if path is None:
            return
        self._remember_dir(path)

        def write():
            export.export_gate_csv(path, trace, name, layer)
            return f"Exported {path}"

        self._run(title, write)
