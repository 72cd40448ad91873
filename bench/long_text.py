"""Benchmark: the real window on a long text (open, first pass, seek to the end, step there).

    python bench/long_text.py TEXT_FILE [--hidden 128] [--layers 1] [--model CKPT] [--limit-s 120]

Builds the window offscreen with ``lstmviz.app.build_window`` with a freshly initialised
character model over the text's characters (or ``--model``), then prints one figure per line:

- ``open_s``: ``MainWindow.open_path(TEXT_FILE, "text")`` (File > Open text) until the event
  loop answers (a zero-delay timer fires), and until the text is shown (a long file is read in
  a worker thread);
- ``first_pass_s`` and characters/s: until the session's first pass is over (and the CPU
  seconds the process spent meanwhile: characters per CPU second say what a busy shared machine
  hides);
- ``stall_p99_ms``: 99th percentile of how late a 16 ms timer fires during that pass;
- ``seek_end_ms``: ``Session.seek(T)`` after the pass, until the cursor is there;
- ``step_ms_busy``: the same steps as ``step_ms`` right after the pass, while the whole-text
  analysis jobs (e.g. the visible Loss strip's losses) still run in their worker threads (how
  many of the steps had a job running, and how long the jobs took after the seek);
- ``step_ms``: median and p95 of one step at the end of the text, the text coloured by a unit
  (``Session.step()`` and one turn of the event loop, in which Qt paints what the step changed),
  once every analysis job has finished (idle);
- ``peak_rss_mb``: the process's peak resident memory.

Anything not done within ``--limit-s`` seconds is printed as ``> limit``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `python -m lstmviz` sets it
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402

from bench.common import add_text_model_args, model_for_text  # noqa: E402
from engine.data import load_text  # noqa: E402
from lstmviz.app import build_window  # noqa: E402
from lstmviz.analysis.jobs import JobRunner  # noqa: E402

TICK_MS = 16


def wait(app, done, limit_s: float) -> float | None:
    """Run the event loop until ``done()`` (checked every millisecond: the loop sleeps between
    events, as the application's does, leaving the CPU to worker threads); seconds taken, or
    None past ``limit_s``."""
    start = time.perf_counter()
    loop, poll = QtCore.QEventLoop(), QtCore.QTimer()
    poll.setInterval(1)
    poll.timeout.connect(lambda: (done() or time.perf_counter() - start > limit_s) and loop.quit())
    if not done():
        poll.start()
        loop.exec()
        poll.stop()
    return time.perf_counter() - start if done() else None


def steps(app, s, n: int = 100, during=lambda: False) -> tuple[list, list, int]:
    """``n`` steps from the cursor (each ``Session.step()`` and one turn of the event loop):
    wall and CPU milliseconds per step, and how many of them saw ``during()`` true."""
    step_ms, cpu_ms, seen = [], [], 0
    for _ in range(n):
        c0, t0 = time.process_time(), time.perf_counter()
        if not s.step():
            break
        app.processEvents()
        step_ms.append((time.perf_counter() - t0) * 1e3)
        cpu_ms.append((time.process_time() - c0) * 1e3)
        seen += bool(during())
    return step_ms, cpu_ms, seen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_text_model_args(parser)
    parser.add_argument("--limit-s", type=float, default=120.0)
    args = parser.parse_args(argv)

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    with tempfile.TemporaryDirectory() as folder:
        model_path = model_for_text(args.text_file, folder, args.hidden, args.layers, args.model)
        settings = QtCore.QSettings(str(Path(folder) / "bench.ini"), QtCore.QSettings.IniFormat)

        late_ms, last = [], [time.perf_counter()]
        ticker = QtCore.QTimer()
        ticker.setInterval(TICK_MS)

        def tick():
            now = time.perf_counter()
            late_ms.append(max(0.0, (now - last[0]) * 1e3 - TICK_MS))
            last[0] = now

        ticker.timeout.connect(tick)

        short = Path(folder) / "short.txt"
        short.write_text(load_text(args.text_file)[:200], encoding="utf-8")
        start = time.perf_counter()
        window = build_window(model_path, str(short), settings)
        window.resize(1400, 880)
        window.show()
        app.processEvents()
        built = time.perf_counter() - start
        s = window.session
        start = time.perf_counter()
        window.open_path(args.text_file, "text")  # File > Open text
        answered = []
        QtCore.QTimer.singleShot(0, lambda: answered.append(time.perf_counter()))
        wait(app, lambda: answered, args.limit_s)
        wait(app, lambda: not getattr(s, "opening", False), args.limit_s)
        shown = time.perf_counter()
        T = s.steps
        print(f"long_text: {Path(args.text_file).name}, {T:,} steps, {args.layers} layer(s) x H={args.hidden}, "
              f"{QtWidgets.QApplication.platformName()}; window built in {built:.2f} s")
        print(f"open_s {answered[0] - start:.2f} (text shown after {shown - start:.2f} s)")

        passing = getattr(s, "passing", None)
        if passing is None:
            print("first_pass_s n/a (no first pass)")
        else:
            last[0] = time.perf_counter()
            cpu = time.process_time()
            ticker.start()
            took = wait(app, lambda: not s.passing, args.limit_s)
            ticker.stop()
            whole = time.perf_counter() - shown  # the pass starts when the text is shown
            cpu = time.process_time() - cpu
            print(f"first_pass_s {whole:.2f} ({T / whole:,.0f} characters/s; {cpu:.1f} s CPU, "
                  f"{T / cpu:,.0f} characters per CPU second)" if took is not None
                  else f"first_pass_s > {args.limit_s:.0f} (reached {s.stepper.computed:,} of {T:,} steps)")
            print(f"stall_p99_ms {np.percentile(late_ms, 99):.1f} (median {np.median(late_ms):.1f}, "
                  f"{len(late_ms)} ticks)" if late_ms else "stall_p99_ms n/a (no tick)")

        t0 = time.perf_counter()
        s.seek(T)
        took = wait(app, lambda: not s.seeking, args.limit_s)
        print(f"seek_end_ms {(time.perf_counter() - t0) * 1e3:.1f}" if took is not None
              else f"seek_end_ms > {args.limit_s * 1e3:.0f} (reached step {s.t:,} of {T:,})")

        s.select(0, 3, -1)  # the text coloured by a unit: the slowest path
        runners = window.findChildren(JobRunner)
        jobs = lambda: any(r.busy for r in runners)  # noqa: E731
        s.seek(max(0, s.t - 120))
        wait(app, lambda: not s.seeking, args.limit_s)
        app.processEvents()
        step_ms, cpu_ms, seen = steps(app, s, during=jobs)
        print(f"step_ms_busy median {np.median(step_ms):.2f} p95 {np.percentile(step_ms, 95):.2f} (analysis jobs "
              f"running during {seen} of {len(step_ms)} steps; CPU time median {np.median(cpu_ms):.2f})")
        took = wait(app, lambda: not jobs(), args.limit_s)
        print(f"analysis_s {time.perf_counter() - t0:.2f} (the whole-text jobs, from the seek to the end)"
              if took is not None else f"analysis_s > {args.limit_s:.0f}")
        s.seek(max(0, s.t - 100))
        wait(app, lambda: not s.seeking, args.limit_s)
        app.processEvents()
        step_ms, cpu_ms, _ = steps(app, s)
        print(f"step_ms median {np.median(step_ms):.2f} p95 {np.percentile(step_ms, 95):.2f} (at step {s.t:,}; "
              f"CPU time median {np.median(cpu_ms):.2f})")
        print(f"peak_rss_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
        window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
