"""Benchmark: does training inside the app keep the window responsive, and how fast does it train?

While the app trains at full speed (offscreen, the real MainWindow with the learning docks, the
gate heatmaps following the weights), a 16 ms QTimer measures how late it fires (event-loop
stall: p50/p95/p99/max of lateness, ms). The same Trainer configuration is run headless in the
same process, interleaved with the in-app runs.
Targets: p99 stall <= 30 ms; in-app throughput >= 90 % of headless. The worst tick in the
first ``START_S`` of each run (Train's answer, the untrained model swapped in) is printed too.

    python bench/ui_latency.py [--steps 300] [--repeats 7] [--hidden 128] [--layers 1] [--seq-len 64]
                               [--batch 32] [--no-live-heatmaps]

Runs alternate (headless, in app, headless, ..., headless) so both see the same background load.
This machine is shared and its speed drifts by 10-20 % within minutes, so three ratios are
printed: each in-app run against the mean of the headless runs just before and after it
("paired", the median over runs; the target is judged on it, since it cancels slow drift), the
best in-app run against the best headless one, and median against median.
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PySide6.QtCore import QEventLoop, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from engine.data import load_text  # noqa: E402
from engine.model import SequenceModel  # noqa: E402
from engine.train import Trainer  # noqa: E402
from lstmviz import dialogs, threads  # noqa: E402
from lstmviz.app import asset_path, build_window  # noqa: E402
from lstmviz.learn import LearningService  # noqa: E402
from engine.runtime import keep_freed_memory  # noqa: E402

TICK_MS = 16
START_S = 1.0  # the start of a run: Train's answer, the untrained model swapped in and painted
keep_freed_memory()  # as `python -m lstmviz` does


def training_text(chars: int) -> str:
    demo = asset_path("demo.txt")
    if demo is not None:
        return load_text(demo)[:chars]
    stdlib = Path(os.__file__).parent  # fallback: Python sources, deterministic order
    return "".join(p.read_text(encoding="utf-8", errors="ignore") for p in sorted(stdlib.glob("*.py")))[:chars]


def headless_rate(model_config, corpus, train_config) -> float:
    """Steps per second of a fresh Trainer run in this thread (the trainer's own measure)."""
    model = SequenceModel(model_config, rng=np.random.Generator(np.random.PCG64(train_config.seed)))
    last = None
    for last in Trainer(model, corpus, train_config).run():
        pass
    return last.steps_per_s


def lateness_while(loop_done, timeout_s: float, times: list | None = None) -> np.ndarray:
    """Run the event loop until ``loop_done()`` (checked every tick); lateness of each tick, ms
    (``times``: gets each tick's time since the start, s)."""
    loop, timer = QEventLoop(), QTimer()
    timer.setInterval(TICK_MS)
    late, last = [], [time.perf_counter()]
    start = last[0]
    deadline = time.perf_counter() + timeout_s

    def tick():
        now = time.perf_counter()
        late.append((now - last[0]) * 1e3 - TICK_MS)
        if times is not None:
            times.append(now - start)
        last[0] = now
        if loop_done() or now > deadline:
            loop.quit()

    timer.timeout.connect(tick)
    timer.start()
    loop.exec()
    timer.stop()
    return np.maximum(np.array(late), 0.0)


def describe(name: str, late: np.ndarray) -> str:
    p50, p95, p99 = np.percentile(late, [50, 95, 99])
    return (f"{name:<22} ticks {late.size:5d}  lateness ms: p50 {p50:6.1f}  p95 {p95:6.1f}  "
            f"p99 {p99:6.1f}  max {late.max():6.1f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--chars", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=7, help="in-app runs (each between two headless runs)")
    parser.add_argument("--no-live-heatmaps", action="store_true",
                        help="uncheck the training panel's Live heatmaps (the viewer catches up at the end)")
    args = parser.parse_args(argv)

    answered = []  # the questions Train asks (replace the demo model shown, a long run): the bench answers Train
    dialogs.ask_confirm = lambda parent, title, *rest, **kw: answered.append(title) or True
    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "bench.ini"), QSettings.IniFormat)
        window = build_window(settings=settings)
        panels = window.panel("training").findChild(LearningService)
        window.resize(1400, 900)
        window.show()
        panels.model_panel.set_values(dict(cell="lstm", hidden_size=args.hidden, num_layers=args.layers,
                                           dropout=0.0, seq_len=args.seq_len, batch_size=args.batch,
                                           optimizer="adam", lr=2e-3, momentum=0.0, clip_norm=5.0,
                                           clip_value=None, seed=0, steps=args.steps, eval_every=args.steps,
                                           batching="sequential"))
        text = training_text(args.chars)
        panels.data_panel.val_fraction.setValue(0.0)  # time training steps only, no evaluation
        panels.training_panel.live_view.setChecked(not args.no_live_heatmaps)
        if not panels.data_panel.use_text(text, "benchmark text"):
            print("the benchmark text was refused", file=sys.stderr)
            return 1
        corpus = panels.data_panel.corpus
        model_config, train_config = panels.model_panel.build(corpus)
        print(f"model: {args.layers} x {model_config.cell} H={args.hidden}, V={len(corpus.vocab)}; "
              f"batch {args.batch} x seq {args.seq_len}; {args.steps} steps; {len(text):,} chars")

        idle = lateness_while(lambda: False, timeout_s=1.5)
        done = []
        panels.controller.finished_training.connect(done.append)
        panels.controller.failed.connect(lambda message: print("training failed:", message, file=sys.stderr))
        refreshes = []
        window.session.model_changed.connect(lambda: refreshes.append(time.perf_counter()))
        headless, in_app, busy, refresh, gui_share, rates, starts = [], [], [], [], [], [], []
        for _ in range(args.repeats):  # interleaved, so both see the same background load
            headless.append(headless_rate(model_config, corpus, train_config))
            done.clear()
            cpu, wall = time.thread_time(), time.perf_counter()
            panels.training_panel.train()
            refreshes.clear()
            times = []
            busy.append(lateness_while(lambda: bool(done), timeout_s=3600, times=times))
            starts.append(busy[-1][np.array(times) <= START_S].max(initial=0.0))
            elapsed = time.perf_counter() - wall
            gui_share.append((time.thread_time() - cpu) / elapsed)
            rates.append(len(refreshes) / elapsed)
            in_app.append(done[0].progress.steps_per_s if done[0] is not None else float("nan"))
            lateness_while(lambda: not panels.viewer_sync.painting, timeout_s=5)  # the last refresh's repaint
            refresh.append(panels.viewer_sync.last_cost_s)
        headless.append(headless_rate(model_config, corpus, train_config))
        busy = np.concatenate(busy)
        if answered:
            print("answered Train to: " + ", ".join(sorted(set(answered))))
        print(describe("idle window", idle))
        print(describe("while training", busy))
        print(f"worst tick in the first {START_S:g} s of each run (the untrained model swapped in), ms: "
              + ", ".join(f"{w:.1f}" for w in starts))
        print(f"viewer: {window.session.steps} characters shown, at step {window.session.t}; heatmaps "
              "refreshed " + ", ".join(f"{r:.1f}" for r in rates) + " times per second; last refresh "
              f"cost (swap + repaint) {1e3 * max(refresh):.0f} ms (max over runs); OPENBLAS_NUM_THREADS="
              f"{os.environ.get('OPENBLAS_NUM_THREADS')}")
        print("GUI thread CPU while training: " + ", ".join(f"{100 * g:.0f} %" for g in gui_share))
        print("throughput steps/s: headless " + ", ".join(f"{r:.1f}" for r in headless)
              + "; in app " + ", ".join(f"{r:.1f}" for r in in_app))
        paired = np.array(in_app) / ((np.array(headless[:-1]) + np.array(headless[1:])) / 2)  # (repeats,)
        ratio_paired = float(np.median(paired))
        ratio_best = max(in_app) / max(headless)
        ratio_median = float(np.median(in_app) / np.median(headless))
        print(f"in app / headless: paired {100 * ratio_paired:.1f} % (median; runs "
              + ", ".join(f"{100 * r:.0f}" for r in paired) + f" %), best vs best {100 * ratio_best:.1f} %, "
              f"median vs median {100 * ratio_median:.1f} %")
        p99 = np.percentile(busy, 99)
        print(f"targets: p99 stall {p99:.1f} ms <= 30 ms: {'OK' if p99 <= 30 else 'MISSED'}; "
              f"throughput >= 90 % (paired): {'OK' if ratio_paired >= 0.9 else 'MISSED'}")
        threads.stop_all()
        window.close()
        window.deleteLater()
        app.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
