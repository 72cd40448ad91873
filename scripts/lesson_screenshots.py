"""Write the README screenshots of the lessons: docs/gradflow.png (gradient flow through time,
vanilla RNN vs LSTM) and docs/inspector.png (equation inspector next to the cell diagram).

The LSTM is the bundled demo model (assets/demo.npz) when present, else one trained here on the
demo corpus; the RNN of the same size is always trained here (same corpus, seed and steps).
Run: ``QT_QPA_PLATFORM=offscreen python scripts/lesson_screenshots.py [--steps 400]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6 import QtWidgets  # noqa: E402

from engine.checkpoint import load_checkpoint  # noqa: E402
from engine.data import TextCorpus, load_text  # noqa: E402
from engine.model import ModelConfig, SequenceModel  # noqa: E402
from engine.train import TrainConfig, Trainer  # noqa: E402

DOCS = ROOT / "docs"
START_STEP = 150  # where the inspector screenshot stands in the demo text


def train(cell: str, corpus: TextCorpus, hidden: int, steps: int) -> SequenceModel:
    """A small character model trained synchronously (no Qt) on ``corpus``."""
    V = len(corpus.vocab)
    model = SequenceModel(ModelConfig(V, V, cell=cell, hidden_size=hidden), rng=np.random.default_rng(0))
    for progress in Trainer(model, corpus, TrainConfig(seq_len=64, batch_size=16, steps=steps, eval_every=steps)).run():
        if progress.done:
            print(f"{cell}: {progress.step} steps, validation loss {progress.val_loss:.3f} nats/char")
    return model


def save_png(widget: QtWidgets.QWidget, path: Path) -> None:
    """Grab ``widget`` and write it to ``path`` atomically (temp file in the same folder)."""
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        if not widget.grab().save(tmp, "PNG"):
            raise OSError(f"could not write {tmp}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print(f"wrote {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps of the models trained here")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units when no demo model is bundled")
    args = parser.parse_args(argv)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])

    from lstmviz.lessons.diagram import CellDiagram
    from lstmviz.lessons.focus import LessonFocus
    from lstmviz.lessons.gradflow_panel import GradientFlowPanel
    from lstmviz.lessons.inspector import EquationInspector
    from lstmviz.session import Session

    demo = ROOT / "assets" / "demo.npz"
    if demo.is_file():
        ckpt = load_checkpoint(demo)
        lstm, vocab = ckpt.model, ckpt.vocab
        corpus = TextCorpus(load_text(ROOT / "assets" / "demo.txt"), vocab=vocab)
    else:
        corpus = TextCorpus(load_text(ROOT / "assets" / "demo.txt"))
        lstm, vocab = train("lstm", corpus, args.hidden, args.steps), corpus.vocab
    rnn = train("rnn", corpus, lstm.config.hidden_size, args.steps)

    session = Session()
    session.set_model(lstm, vocab)
    session.set_text(load_text(ROOT / "assets" / "demo_view.txt"))
    session.seek(min(START_STEP, session.steps))
    while session.seeking:  # long seeks continue in timer-driven chunks
        app.processEvents()
    c = session.trace().gate("c", 0)[-1]  # (H,) pick the unit with the largest cell state
    session.select(0, int(np.argmax(np.abs(c))), -1)

    focus = LessonFocus(session)
    page = QtWidgets.QWidget()
    row = QtWidgets.QHBoxLayout(page)
    inspector, diagram = EquationInspector(session, focus), CellDiagram(session, focus)
    font = inspector.font()
    font.setPointSizeF(font.pointSizeF() * 1.25)  # readable at README width
    inspector.setFont(font)
    row.addWidget(inspector, 1)
    row.addWidget(diagram, 1)
    page.resize(1560, 430)
    page.show()
    app.processEvents()
    save_png(page, DOCS / "inspector.png")

    flow = GradientFlowPanel(session)
    flow.set_comparison({"vanilla RNN": (rnn, vocab), "LSTM": (lstm, vocab)})
    flow.resize(900, 460)
    flow.show()
    app.processEvents()
    save_png(flow, DOCS / "gradflow.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
