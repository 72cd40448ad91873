"""Write the README screenshots of the unit-analysis docks on the bundled demo:
docs/analysis_hypothesis.png, analysis_probes.png, analysis_saturation.png,
analysis_interventions.png, analysis_strip.png and analysis_history.png (each a grab of the
real window with that dock in front).

Run: ``QT_QPA_PLATFORM=offscreen python scripts/analysis_screenshots.py``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402

from engine.analysis.intervene import Intervention  # noqa: E402
import numpy as np  # noqa: E402

from engine.data import TextCorpus, load_text  # noqa: E402
from engine.model import SequenceModel  # noqa: E402
from engine.train import TrainConfig, Trainer  # noqa: E402
from lstmviz.app import build_window  # noqa: E402

DOCS = ROOT / "docs"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from lesson_screenshots import save_png  # noqa: E402


def settle(app, panel=None, timeout: float = 60.0) -> None:
    """Process events until ``panel``'s job (if any) is done."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.processEvents()
        if panel is None or not (panel.runner.busy or getattr(panel, "window_runner", panel.runner).busy):
            break
        time.sleep(0.01)
    for _ in range(10):
        app.processEvents()


def train_snapshots(config, vocab, steps: int = 300, every: int = 75):
    """``(step, copy of the model)`` every ``every`` steps of a fresh run on the demo corpus
    (synchronous, no Qt), as the training relay would hand them to the history."""
    corpus = TextCorpus(load_text(ROOT / "assets" / "demo.txt"), vocab=vocab)
    model = SequenceModel(config, rng=np.random.default_rng(0))
    snaps = []
    for progress in Trainer(model, corpus, TrainConfig(seq_len=64, batch_size=16, steps=steps, eval_every=steps)).run():
        if progress.step % every == 0 or progress.done:
            snaps.append((progress.step, SequenceModel(config, params={n: v.copy() for n, v in model.params.items()})))
    return snaps


def main() -> int:
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    from lstmviz.app import dark_palette

    app.setPalette(dark_palette())
    settings = QtCore.QSettings(str(DOCS / ".screenshot_settings.ini"), QtCore.QSettings.IniFormat)
    settings.clear()
    window = build_window(settings=settings)
    window.resize(1500, 950)
    window.show()
    settle(app)
    s = window.session
    text = s.text
    quote = text.index('"')
    close = text.index('"', quote + 1)

    def shot(name: str, dock: str, panel=None, height: int = 430) -> None:
        window.hooks.raise_panel(dock)
        window.resizeDocks([window.docks[dock]], [height], QtCore.Qt.Vertical)  # the analysis row
        settle(app, panel)  # dragged taller, as a user reading these docks would
        save_png(window, DOCS / f"analysis_{name}.png")

    hyp = window.panel("hypothesis")
    window.hooks.raise_panel("hypothesis")
    editor = window.panel("text").editor
    cursor = editor.textCursor()  # select the quoted words as a user would: that brushes them
    cursor.setPosition(quote + 1)
    cursor.setPosition(close, QtGui.QTextCursor.KeepAnchor)
    editor.setTextCursor(cursor)
    editor.ensureCursorVisible()
    shot("hypothesis", "hypothesis", hyp)
    probes = window.panel("probes")
    window.hooks.raise_panel("probes")
    probes.feature_box.setCurrentText("depth")
    shot("probes", "probes", probes)
    shot("saturation", "saturation", window.panel("saturation"))
    iv = window.panel("interventions")
    window.hooks.raise_panel("interventions")
    iv.shown.setCurrentText("c")
    iv.add(Intervention(0, "c", 50, "zero", 0.0, 100, None))
    shot("interventions", "interventions", iv)
    strip = window.panel("strip")
    settle(app, strip)
    window.panel("gates").views["f"].plot.setXRange(s.t - 20, s.t, padding=0)
    shot("strip", "strip", strip, height=260)  # room for the five rows
    history = window.panel("history")
    for step, model in train_snapshots(s.model.config, s.vocab):  # a fresh run of the demo's size
        history.record(model, s.vocab, step)
    history.slider.setValue(1)
    shot("history", "history")
    window.close()
    settle(app)
    os.remove(DOCS / ".screenshot_settings.ini")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
