"""The app's export commands: menus, right-click entry, dialogs' choices, files, errors, and the
same pixels as the CLI. Dialogs are replaced through the ``ask_*`` functions of export_actions and
the ``errors`` fixture (tests/app/conftest.py); no modal dialog is ever opened."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtGui

from lstmviz import export, export_actions
from lstmviz.export_actions import AllPanelsChoice, AllPanelsDialog, PanelDialog

from .conftest import TEXT

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("f", "i", "o", "g", "c", "h")


@pytest.fixture
def actions(window, qtbot):
    """The window's export actions, with the whole text stepped through."""
    acts = window.findChild(export_actions.ExportActions)
    window.session.seek(len(TEXT))
    qtbot.waitUntil(lambda: window.session.t == len(TEXT))
    return acts


@pytest.fixture
def answers(monkeypatch):
    """Set ``answers.save``, ``answers.panel``, ``answers.all`` to script the dialogs; each call
    is recorded in ``answers.asked`` as (function, title, start)."""
    a = types.SimpleNamespace(save=None, panel=None, all=None, asked=[])

    def ask_save_path(parent, title, file_filter, start):
        a.asked.append(("save", title, start))
        return a.save

    def ask_panel(parent, title, names, current, width):
        a.asked.append(("panel", title, width))
        return a.panel

    def ask_all_panels(parent, folder, fmt, width):
        a.asked.append(("all", folder, width))
        return a.all

    monkeypatch.setattr(export_actions, "ask_save_path", ask_save_path)
    monkeypatch.setattr(export_actions, "ask_panel", ask_panel)
    monkeypatch.setattr(export_actions, "ask_all_panels", ask_all_panels)
    return a


@pytest.fixture
def out(tmp_path):
    """An empty folder for the exports (tmp_path also holds the conftest's model and text)."""
    folder = tmp_path / "exports"
    folder.mkdir()
    return folder


def reference(window):
    s = window.session
    return s.model.trace(s.vocab.encode(TEXT), text=TEXT)


def test_menu_entries_and_right_click_entry(window, actions):
    texts = [a.text() for a in window.export_menu.actions() if not a.isSeparator()]
    assert texts == ["Export panel as &PNG…", "Export panel as &SVG…", "Export &all panels…",
                     "Export a p&anel's picture…", "Export a panel's &data (CSV)…", "&Light pictures (for print)",
                     "Export trace data (&NPZ)…", "Export gate &CSV…"]
    for name in NAMES:
        view = window.panel("gates").views[name]
        vb = view.plot.vb
        menu = view.scene().addParentContextMenus(vb, vb.getMenu(None), types.SimpleNamespace(acceptedItem=vb))
        entries = [a.text() for a in menu.actions()]
        assert "Export..." not in entries  # pyqtgraph's own (broken SVG) exporter is unreachable
        assert entries.count("Export…") == 1


@pytest.mark.slow  # a subprocess
def test_panel_png_equals_the_cli_output(window, actions, answers, out, model_path):
    """The app's PNG of a panel and the headless CLI's (another process) are the same pixels."""
    answers.panel, answers.save = ("c", 640), str(out / "app.png")
    actions.panel_png.trigger()
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    cli = subprocess.run([sys.executable, "-m", "lstmviz", "export", str(model_path), "--text", TEXT,
                          "--out", str(out / "cli"), "--panels", "c", "--layer", "0", "--width", "640"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    app_image = QtGui.QImage(str(out / "app.png")).convertToFormat(QtGui.QImage.Format_RGB32)
    cli_image = QtGui.QImage(str(out / "cli" / "layer0_c.png")).convertToFormat(QtGui.QImage.Format_RGB32)
    assert app_image.width() == 640 and app_image.size() == cli_image.size()
    assert app_image == cli_image
    assert window.settings.value(export_actions.WIDTH_KEY, type=int) == 640
    assert window.settings.value(export_actions.LAST_DIR_KEY, type=str) == str(out)


def test_width_defaults_to_the_view_then_is_remembered(window, actions, answers, out):
    view_width = window.panel("gates").views["f"].width()
    answers.panel, answers.save = ("f", 333), str(out / "f.png")
    actions.panel_png.trigger()
    answers.save = str(out / "g.png")
    actions.panel_png.trigger()
    assert [w for kind, _, w in answers.asked if kind == "panel"] == [view_width, 333]
    assert QtGui.QImage(str(out / "g.png")).width() == 333
    # The next save dialog starts in the remembered folder, named predictably.
    assert answers.asked[-1] == ("save", "Export panel as PNG", str(out / "layer0_f.png"))


def test_panel_svg(window, actions, answers, out):
    answers.panel, answers.save = ("g", None), str(out / "g.svg")
    actions.panel_svg.trigger()
    root = ET.parse(out / "g.svg").getroot()
    T, H = len(TEXT), window.session.hidden_size
    images = [e for e in root.iter("{http://www.w3.org/2000/svg}image")
              if (e.get("width"), e.get("height")) == (str(T), str(H))]
    assert len(images) == 1 and "image-rendering:pixelated" in images[0].get("style")


def test_right_click_export_by_suffix(window, actions, answers, errors, out):
    answers.save = str(out / "h.svg")
    actions.view_actions["h"].trigger()
    assert ET.parse(out / "h.svg").getroot().get("viewBox")
    answers.save, answers.panel = str(out / "h.png"), (None, 250)
    actions.view_actions["h"].trigger()
    assert QtGui.QImage(str(out / "h.png")).width() == 250
    answers.save = str(out / "h.jpg")
    actions.view_actions["h"].trigger()
    assert errors and "h.jpg" in errors[-1][1] and ".png or .svg" in errors[-1][1]
    assert sorted(os.listdir(out)) == ["h.png", "h.svg"]


def test_all_panels_one_file_each(window, actions, answers, out):
    answers.all = AllPanelsChoice(str(out), "png", 300, False)
    actions.all_panels.trigger()
    assert sorted(os.listdir(out)) == sorted(f"layer0_{n}.png" for n in NAMES)
    assert all(QtGui.QImage(str(out / f"layer0_{n}.png")).width() == 300 for n in NAMES)
    assert window.statusBar().currentMessage() == f"Exported 6 files to {out}"
    assert window.settings.value(export_actions.LAST_DIR_KEY, type=str) == str(out)
    assert window.settings.value(export_actions.ALL_FORMAT_KEY, type=str) == "png"
    answers.all = AllPanelsChoice(str(out), "csv", 300, False)
    actions.all_panels.trigger()
    with open(out / "layer0_i.csv", newline="", encoding="utf-8") as f:
        values = np.array([[float(x) for x in row[2:]] for row in list(csv.reader(f))[1:]])  # (T, H)
    assert np.array_equal(values, reference(window).gate("i", 0))  # float64 model: 17 digits


def test_all_panels_as_the_whole_window(window, actions, answers, out):
    answers.all = AllPanelsChoice(str(out), "png", 700, True)
    actions.all_panels.trigger()
    image = QtGui.QImage(str(out / "window.png"))
    assert image.width() == 700 and image.height() == round(window.height() * 700 / window.width())
    answers.all = AllPanelsChoice(str(out), "svg", 700, True)
    actions.all_panels.trigger()
    root = ET.parse(out / "window.svg").getroot()
    assert root.get("viewBox") == f"0 0 {window.width()} {window.height()}"
    T, H = len(TEXT), window.session.hidden_size
    heatmaps = [e for e in root.iter("{http://www.w3.org/2000/svg}image")
                if (e.get("width"), e.get("height")) == (str(T), str(H))]
    assert len(heatmaps) == 6
    assert window.statusBar().currentMessage() == f"Exported the window to {out / 'window.svg'}"


def test_trace_npz_and_gate_csv(window, actions, answers, out):
    window.session.select(1, -1)
    answers.save = str(out / "trace.npz")
    actions.trace_npz.trigger()
    expected = reference(window)
    with np.load(out / "trace.npz", allow_pickle=False) as npz:
        for name in NAMES:
            assert np.array_equal(npz[f"layer1_{name}"], expected.gate(name, 1))
    answers.panel, answers.save = ("o", None), str(out / "o.csv")
    actions.gate_csv.trigger()
    with open(out / "o.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0][:3] == ["step", "char", "unit0"]
    assert "".join(r[1] for r in rows[1:]) == TEXT.replace("\n", "\\n")
    assert np.array_equal(np.array([[float(x) for x in r[2:]] for r in rows[1:]]), expected.gate("o", 1))


def test_only_the_steps_taken_are_exported(window, actions, answers, out):
    window.session.seek(7)
    answers.panel, answers.save = ("h", None), str(out / "h.csv")
    actions.gate_csv.trigger()
    with open(out / "h.csv", newline="", encoding="utf-8") as f:
        assert len(list(csv.reader(f))) == 1 + 7


def test_write_errors_are_shown_and_leave_nothing(window, actions, answers, errors, out):
    blocker = out / "file"
    blocker.write_text("x")
    for action, panel in ((actions.panel_png, ("f", 200)), (actions.panel_svg, ("f", None)),
                          (actions.trace_npz, None), (actions.gate_csv, ("f", None))):
        answers.panel, answers.save = panel, str(blocker / "out.bin")
        errors.clear()
        action.trigger()
        assert len(errors) == 1 and errors[0][1].startswith(f"cannot write {blocker / 'out.bin'}: ")
    answers.all = AllPanelsChoice(str(out / "missing"), "png", 300, False)
    actions.all_panels.trigger()
    assert "not an existing folder" in errors[-1][1]
    assert os.listdir(out) == ["file"]


def test_cancelled_dialogs_write_nothing(window, actions, answers, errors, out):
    settings_before = window.settings.allKeys()
    for action in (actions.panel_png, actions.panel_svg, actions.all_panels, actions.trace_npz, actions.gate_csv,
                   actions.view_actions["f"]):
        action.trigger()
    answers.panel = ("f", 300)  # panel chosen, file dialog cancelled
    actions.panel_png.trigger()
    assert errors == [] and os.listdir(out) == []
    assert window.settings.allKeys() == settings_before


def test_nothing_to_export_before_the_first_step(window, actions, answers, errors):
    window.session.seek(0)
    actions.panel_png.trigger()
    assert errors and errors[0][0] == "Nothing to export"
    assert not [kind for kind, *_ in answers.asked]


def test_dialogs_offer_the_right_choices(window, qtbot):
    dialog = PanelDialog(window, "t", ("f", "h"), "h", 512)
    qtbot.addWidget(dialog)
    assert dialog.choice() == ("h", 512)
    assert (dialog.width_box.minimum(), dialog.width_box.maximum()) == (export.MIN_WIDTH_PX, export.MAX_WIDTH_PX)
    no_panel = PanelDialog(window, "t", ("f",), None, 90000)
    qtbot.addWidget(no_panel)
    assert no_panel.choice() == (None, export.MAX_WIDTH_PX)
    all_dialog = AllPanelsDialog(window, "/tmp", "csv", 640)
    qtbot.addWidget(all_dialog)
    assert not all_dialog.width_box.isEnabled() and not all_dialog.whole.isEnabled()
    all_dialog.format.setCurrentIndex(all_dialog.format.findData("svg"))
    all_dialog.whole.setChecked(True)
    assert all_dialog.choice() == AllPanelsChoice("/tmp", "svg", 640, True)


def test_every_panel_exports_as_png_and_svg(window, actions, answers, out, monkeypatch, errors):
    titles = {name: dock.windowTitle() for name, dock in window.docks.items()}
    for name, title in titles.items():
        monkeypatch.setattr(export_actions, "ask_item", lambda parent, t, label, items, title=title: title)
        for fmt in ("png", "svg"):
            answers.save = str(out / f"{name}.{fmt}")
            actions.dock_picture.trigger()
            assert errors == [], (name, errors)
        panel = window.panel(name)
        image = QtGui.QImage(str(out / f"{name}.png"))
        assert (image.width(), image.height()) == (panel.width(), panel.height()), name
        root = ET.parse(out / f"{name}.svg").getroot()
        assert root.get("viewBox") == f"0 0 {panel.width()} {panel.height()}", name
        assert list(root.iter("{http://www.w3.org/2000/svg}text")), name  # every panel has some words


def test_panel_data_of_the_current_step_and_the_equations(window, actions, answers, out, monkeypatch):
    s = window.session
    s.select(0, 3, -1)
    window.docks["equations"].raise_()
    window.panel("equations").refresh()
    offered = []

    def choose(title):
        def ask(parent, t, label, items):
            offered.append(list(items))
            return title
        return ask

    monkeypatch.setattr(export_actions, "ask_item", choose("Current step"))
    answers.save = str(out / "step.csv")
    actions.dock_data.trigger()
    with open(out / "step.csv", newline="") as f:
        rows = list(csv.reader(f))
    trace = s.trace()
    assert rows[0] == ["unit", *s.names]
    for unit in (0, 7):
        expected = [trace.gate(name, s.layer)[s.t - 1, unit] for name in s.names]
        assert [float(v) for v in rows[1 + unit][1:]] == [float(e) for e in expected]
    assert len(rows) == 1 + s.hidden_size
    assert "Equations" in offered[0] and "Gate heatmaps" not in offered[0]

    monkeypatch.setattr(export_actions, "ask_item", choose("Equations"))
    answers.save = str(out / "equations.csv")
    actions.dock_data.trigger()
    with open(out / "equations.csv", newline="") as f:
        table = dict(list(csv.reader(f))[1:])
    assert float(table["c_t"]) == trace.layers[0]["c"][s.t - 1, 3]


def test_panel_data_of_curves(window, actions, answers, out, monkeypatch):
    """A plot's curves (here the Loss panel's, fed three points) as plot,curve,x,y rows."""
    loss = window.panel("loss")
    loss.smooth_curve.setData([1, 2, 3], [2.5, 2.25, 2.0])
    header, rows = export.panel_table(loss)
    assert header == ["plot", "curve", "x", "y"]
    smoothed = [(float(x), float(y)) for _, curve, x, y in rows if curve == "smoothed"]
    assert smoothed == [(1.0, 2.5), (2.0, 2.25), (3.0, 2.0)]


def test_light_pictures_are_remembered_and_used(window, actions, answers, out):
    from PySide6 import QtCore

    assert actions.style == "dark"
    actions.light_style.trigger()
    assert actions.style == "light" and window.settings.value(export_actions.STYLE_KEY) == "light"
    answers.panel, answers.save = ("c", 300), str(out / "light.png")
    actions.panel_png.trigger()
    image = QtGui.QImage(str(out / "light.png"))
    assert QtGui.QColor(image.pixel(1, 1)).lightness() == 255  # white paper
    again = export_actions.ExportActions(window.session, window.settings, window.hooks)
    assert again.light_style.isChecked()  # the next window starts light
    QtCore.QCoreApplication.processEvents()
