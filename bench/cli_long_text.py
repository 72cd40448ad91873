"""Benchmark: the command line on a long text (``lstmviz trace`` and ``lstmviz export``).

    python bench/cli_long_text.py TEXT_FILE [--hidden 128] [--layers 1] [--model CKPT]
                                  [--trace-dtype float16]

Runs ``python -m lstmviz trace MODEL --text-file TEXT_FILE --out TRACE.npz --dtype DTYPE`` (the
whole text; float16 by default: a 10 MB text's float32 trace file takes about 37 GB, and twice
that of free disk while it is written) and ``python -m
lstmviz export MODEL --text-file TEXT_FILE --out DIR`` (defaults) in subprocesses with a freshly
initialised character model over the text's characters (or ``--model``), each under
``/usr/bin/time -v``, and prints one figure per line:

- ``trace_s`` and ``trace_peak_rss_mb``: wall seconds and peak resident memory (MB) of the
  ``trace`` process, and the size of the file it wrote;
- ``export_s`` and ``export_peak_rss_mb``: the same for ``export``.

Issue-15 targets for a 10 MB text (H=128, 1 layer): trace peak RSS <= 500 MB; export <= 500 MB
and <= 30 s.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import add_text_model_args, model_for_text  # noqa: E402

TIME = "/usr/bin/time"


def run_measured(args: list) -> tuple[float, float]:
    """Run ``python -m lstmviz ARGS`` from the repository root; ``(wall s, peak RSS MB)``.
    Raises RuntimeError with the process's stderr when it fails."""
    start = time.perf_counter()
    done = subprocess.run([TIME, "-v", sys.executable, "-m", "lstmviz", *args], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"lstmviz {args[0]} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return wall, rss_kb / 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_text_model_args(parser)
    parser.add_argument("--trace-dtype", default="float16", choices=("float16", "float32", "float64"))
    args = parser.parse_args(argv)
    if not os.access(TIME, os.X_OK):
        print(f"cli_long_text: needs {TIME} (GNU time) for the peak memory", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as folder:
        model_path = model_for_text(args.text_file, folder, args.hidden, args.layers, args.model)
        size = Path(args.text_file).stat().st_size
        print(f"cli_long_text: {Path(args.text_file).name}, {size / 1e6:.1f} MB, "
              f"{args.layers} layer(s) x H={args.hidden}")
        out = Path(folder) / "trace.npz"
        wall, rss = run_measured(["trace", model_path, "--text-file", args.text_file, "--out", str(out),
                                  "--dtype", args.trace_dtype])
        print(f"trace_s {wall:.1f} ({args.trace_dtype} file of {out.stat().st_size / 1e9:,.2f} GB)")
        print(f"trace_peak_rss_mb {rss:.0f}")
        out.unlink()
        wall, rss = run_measured(["export", model_path, "--text-file", args.text_file,
                                  "--out", str(Path(folder) / "export")])
        print(f"export_s {wall:.1f}")
        print(f"export_peak_rss_mb {rss:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
