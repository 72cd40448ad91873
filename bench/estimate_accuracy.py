"""How close ``engine.train.estimate_time`` (the figure the app and the CLI show before a run)
comes to the run's actual wall-clock time, for every training preset.

Each preset trains a fresh model on the first ``--chars`` characters of the Python standard
library's sources (``bench.learning_parity.stdlib_text``) for ``--steps`` steps with a validation
pass every ``--eval-every`` (the presets' own budgets run for minutes to hours; the estimate is
per step and per evaluation, so a shorter run checks it the same way). Printed per preset: the
estimate (steps x step time + evaluations x evaluation time), the measured time of
``Trainer.run()`` to the end, and the estimate's error relative to it.

Run from the repository root:  ``python bench/estimate_accuracy.py [--steps 200] [--chars 300000]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `python -m lstmviz` sets it (the trainer raises it)

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import machine_lines  # noqa: E402  (keeps freed memory, as the app does)
from bench.learning_parity import stdlib_text  # noqa: E402
from engine.data import TextCorpus  # noqa: E402
from engine.model import ModelConfig, SequenceModel  # noqa: E402
from engine.settings import split_values  # noqa: E402
from engine.train import TrainConfig, Trainer, estimate_time  # noqa: E402
from lstmviz.core.presets import PRESETS  # noqa: E402


def preset_trainer(values: dict, corpus: TextCorpus, steps: int, eval_every: int) -> Trainer:
    """A fresh trainer of a preset (as the model panel builds it), with the run shortened."""
    model_values, train_values = split_values(values, ModelConfig, TrainConfig)
    V = len(corpus.vocab)
    model_config = ModelConfig(input_size=V, output_size=V, **model_values)
    train_config = TrainConfig(**{**train_values, "steps": steps, "eval_every": eval_every},
                               val_fraction=corpus.val_fraction)
    rng = np.random.Generator(np.random.PCG64(train_config.seed))
    return Trainer(SequenceModel(model_config, rng=rng), corpus, train_config)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="steps per run (default 200)")
    parser.add_argument("--eval-every", type=int, default=50, help="steps between validation passes (default 50)")
    parser.add_argument("--chars", type=int, default=300_000, help="characters of text (default 300,000)")
    args = parser.parse_args(argv)
    for line in machine_lines():
        print(line)
    corpus = TextCorpus(stdlib_text(args.chars))
    print(f"text: {len(corpus.text):,} chars of stdlib sources, V={len(corpus.vocab)}; {args.steps} steps, "
          f"evaluation every {args.eval_every}")
    print(f"{'preset':42s} | {'estimate s':>10} {'(step ms, eval s)':>18} | {'actual s':>8} | {'error':>6}")
    for preset in PRESETS:
        trainer = preset_trainer(preset.values, corpus, args.steps, args.eval_every)
        estimate = estimate_time(trainer)
        start = time.perf_counter()
        for _ in trainer.run():
            pass
        actual = time.perf_counter() - start
        parts = f"({estimate.step_s * 1e3:.1f}, {estimate.eval_s:.2f})"
        print(f"{preset.name:42s} | {estimate.total_s:10.1f} {parts:>18} | {actual:8.1f} | "
              f"{(estimate.total_s - actual) / actual:+6.1%}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
