"""Benchmark: the whole-text analysis jobs on a long text, sequential vs from the first pass's checkpoints.

    python bench/analysis_jobs.py TEXT_FILE [--hidden 128] [--layers 1] [--jobs strip,saturation,probe,hypothesis]

A freshly initialised character model (seed 0) over the text's characters; the first pass
(``Stepper.run_pass``) is timed, then each job function of ``lstmviz/analysis`` runs twice on
the same ids: ``sequential`` (plain ids: ``iter_chunks``) and ``segments`` (``KnownIds`` with
the checkpoints, as ``jobs.text_source`` hands them after the pass: ``iter_segments``). Prints
one line per job: seconds each way and the largest difference of the results.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `python -m lstmviz` sets it
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from engine import ModelConfig, SequenceModel  # noqa: E402
from engine.analysis.features import feature  # noqa: E402
from engine.data import CharVocab, load_text  # noqa: E402
from engine.stepper import Stepper  # noqa: E402
from lstmviz.analysis.hypothesis_panel import run_hypothesis  # noqa: E402
from lstmviz.analysis.jobs import KnownIds  # noqa: E402
from lstmviz.analysis.probe_panel import run_probe  # noqa: E402
from lstmviz.analysis.saturation_panel import run_saturation  # noqa: E402
from lstmviz.analysis.strip_panel import run_losses  # noqa: E402


def difference(a, b) -> float:
    """Largest absolute difference between two job results (arrays, or nested sequences /
    objects of them)."""
    if isinstance(a, np.ndarray):
        return float(np.nanmax(np.abs(a.astype(np.float64) - b))) if a.size else 0.0
    if isinstance(a, (list, tuple)):
        return max([difference(x, y) for x, y in zip(a, b)], default=0.0)
    if hasattr(a, "__dict__"):
        return difference(list(vars(a).values()), list(vars(b).values()))
    if isinstance(a, float):
        return abs(a - b)
    return 0.0 if a == b else float("inf")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text_file")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--jobs", default="strip,saturation,probe,hypothesis")
    args = parser.parse_args(argv)
    text = load_text(args.text_file)
    vocab = CharVocab.from_text(text)
    cfg = ModelConfig(input_size=len(vocab), output_size=len(vocab), hidden_size=args.hidden, num_layers=args.layers)
    model = SequenceModel(cfg, rng=np.random.default_rng(0))
    ids = vocab.encode(text)  # (T,)
    stepper = Stepper(model, ids, text)
    start = time.perf_counter()
    stepper.run_pass()
    took = time.perf_counter() - start
    print(f"analysis_jobs: {Path(args.text_file).name}, {len(text):,} steps, {args.layers} layer(s) x H={args.hidden}")
    print(f"first_pass_s {took:.2f} ({len(text) / took:,.0f} characters/s, in this thread)")
    known = ids.copy().view(KnownIds)  # (T,)
    known.checkpoints, known.every = stepper.known_checkpoints(), stepper.every
    mid = len(text) // 2
    jobs = {
        "strip": lambda x: run_losses(model, x, lambda f: None),
        "saturation": lambda x: run_saturation(model, x, lambda f: None),
        "probe": lambda x: run_probe(model, x, feature(text, "depth"), lambda f: None),
        "hypothesis": lambda x: run_hypothesis(model, x, mid, mid + 20, 0, "h", 0.3, 3, 0.5, lambda f: None),
    }
    for name in args.jobs.split(","):
        t0 = time.perf_counter()
        plain = jobs[name](ids)
        t1 = time.perf_counter()
        fast = jobs[name](known)
        t2 = time.perf_counter()
        print(f"{name}: sequential_s {t1 - t0:.2f} segments_s {t2 - t1:.2f} (x{(t1 - t0) / (t2 - t1):.1f}) "
              f"max_difference {difference(plain, fast):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
