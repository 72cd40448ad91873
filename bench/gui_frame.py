"""Benchmark: time to update every panel per playback step (2-layer H=256, 200-step window).

    python bench/gui_frame.py [--steps 200] [--hidden 256] [--layers 2] [--play SECONDS]
    xvfb-run -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb python bench/gui_frame.py --play 10

Runs offscreen, in the window the app builds (every dock). For each step it times
``Session.step()`` (the engine step plus every panel's update slot, all synchronous) and then
one turn of the event loop, in which Qt paints what the step changed (what a running window
does per frame); their sum is the frame. Prints the median and 95th percentile of each, in
milliseconds, and of the process's CPU time per frame (less sensitive than wall time to other
processes on a shared machine). For reference, it also times a repaint of the whole window
(every visible child, changed or not) after each frame.

``--play SECONDS`` then plays the text with the Transport panel at its top speed (60 steps/s,
its timer on the GUI thread, as a user does) for that long and prints the steps per second
achieved: run it in a real window (``QT_QPA_PLATFORM=xcb``, e.g. under Xvfb) to include the
window system's share.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `python -m lstmviz` sets it
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402

from engine import ModelConfig, SequenceModel  # noqa: E402
from engine.data import CharVocab  # noqa: E402
from lstmviz.app import create_window  # noqa: E402
from lstmviz.panels.gates import WINDOW  # noqa: E402
from lstmviz.panels.transport import SPEED_RANGE  # noqa: E402
from lstmviz.session import Session  # noqa: E402


def percentiles(ms: list) -> str:
    a = np.asarray(ms)
    return f"median {np.median(a):6.2f} ms   p95 {np.percentile(a, 95):6.2f} ms"


def play(app, window, seconds: float) -> tuple:
    """Play with the Transport panel at its top speed for ``seconds``: (steps, seconds, CPU seconds)."""
    transport, session = window.panel("transport"), window.session
    transport.set_speed(SPEED_RANGE[1])
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(int(seconds * 1000), loop.quit)
    first, c0, t0 = session.t, time.process_time(), time.perf_counter()
    transport.play()
    loop.exec()
    transport.pause()
    return session.t - first, time.perf_counter() - t0, time.process_time() - c0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--play", type=float, default=0.0, help="then play this many seconds at top speed")
    args = parser.parse_args(argv)

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    text = (Path(__file__).resolve().parent.parent / "assets" / "demo.txt").read_text(encoding="utf-8")
    text = text[: WINDOW + args.steps + int(SPEED_RANGE[1] * args.play) + 10]
    vocab = CharVocab.from_text(text)
    cfg = ModelConfig(input_size=len(vocab), output_size=len(vocab), hidden_size=args.hidden, num_layers=args.layers)
    model = SequenceModel(cfg, rng=np.random.default_rng(0))
    with tempfile.TemporaryDirectory() as folder:
        settings = QtCore.QSettings(str(Path(folder) / "bench.ini"), QtCore.QSettings.IniFormat)
        session = Session()
        window = create_window(session, settings)  # every dock, as the app builds it
        window.resize(1400, 880)
        window.show()
        session.set_model(model, vocab)
        session.set_text(text)
        session.seek(WINDOW)  # the heatmap window is full from here on
        session.select(args.layers - 1, 3, -1)  # text colouring on: the slowest path
        app.processEvents()
        update_ms, paint_ms, cpu_ms, full_ms = [], [], [], []
        for _ in range(args.steps):
            c0 = time.process_time()
            t0 = time.perf_counter()
            session.step()
            t1 = time.perf_counter()
            app.processEvents()  # Qt paints what the step changed, as in a running window
            t2 = time.perf_counter()
            update_ms.append((t1 - t0) * 1e3)
            paint_ms.append((t2 - t1) * 1e3)
            cpu_ms.append((time.process_time() - c0) * 1e3)
            t0 = time.perf_counter()
            window.repaint()  # every visible child, changed or not (not part of a frame)
            full_ms.append((time.perf_counter() - t0) * 1e3)
        played = play(app, window, args.play) if args.play > 0 else None
        window.close()
    print(f"gui_frame: {args.layers} layers x H={args.hidden}, {WINDOW}-step window, {args.steps} steps, "
          f"{QtWidgets.QApplication.platformName()}")
    print(f"  update every panel (Session.step): {percentiles(update_ms)}")
    print(f"  paint what changed (event loop)  : {percentiles(paint_ms)}")
    print(f"  total per frame                  : {percentiles([a + b for a, b in zip(update_ms, paint_ms)])}")
    print(f"  CPU time per frame (this process): {percentiles(cpu_ms)}")
    print(f"  repaint the whole window (ref.)  : {percentiles(full_ms)}")
    if played is not None:
        steps, seconds, cpu = played
        print(f"  playback at {SPEED_RANGE[1]} steps/s for {seconds:.1f} s: {steps / seconds:.1f} steps/s achieved "
              f"({steps} steps; CPU {cpu / seconds * 100:.0f} % of a core)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
