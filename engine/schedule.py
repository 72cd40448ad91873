"""Learning-rate schedules: the learning rate of every optimizer step, from the epoch it is in.

An epoch is one pass over the training data: ``steps_per_epoch`` batches (the dataset's
``batches_per_epoch``). For the step numbered ``s`` (1-based, the step about to be taken),
``E = (s - 1) // steps_per_epoch`` epochs are complete and ``e = (s - 1) / steps_per_epoch``
have passed. With the base rate ``lr``, the factor ``d``, every ``N`` epochs from epoch ``M``::

    none         lr
    step         lr * d ** n,  n = floor((E - M) / N) + 1 when E >= M, else 0
                 (the rate is multiplied by d at the end of epoch M, M + N, M + 2N, ...;
                 char-rnn's train.lua: d = 0.97, N = 1, M = 10; PyTorch's StepLR(N, d): M = N)
    exponential  lr * d ** (max(0, e - M + N) / N)
                 (the step schedule made continuous: equal to it at its decay points;
                 M = N gives lr * d ** (e / N), Keras' ExponentialDecay per N epochs)

and a linear warm-up over the first ``W`` steps multiplies any of them by ``min(1, s / W)``
(Goyal et al. 2017). Pure functions of the step: a resumed run continues the same schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULES = ("none", "step", "exponential")


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule (see the module docstring). ``lr`` > 0; ``decay`` in (0, 1];
    ``every`` (N) and ``start`` (M) in epochs, >= 1; ``warmup`` (W) steps >= 0;
    ``steps_per_epoch`` >= 1. ValueError for anything else."""

    lr: float
    kind: str = "none"
    decay: float = 1.0
    every: int = 1
    start: int = 1
    warmup: int = 0
    steps_per_epoch: int = 1

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {self.kind!r}; expected one of {SCHEDULES}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if not (0 < self.decay <= 1):
            raise ValueError(f"the decay factor must be in (0, 1], got {self.decay!r}")
        for name in ("every", "start", "steps_per_epoch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be a non-negative integer, got {self.warmup!r}")

    def rate(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (1-based)."""
        if step < 1:
            raise ValueError(f"steps are numbered from 1, got {step!r}")
        lr = self.lr
        if self.kind == "step":
            done = (step - 1) // self.steps_per_epoch  # E: complete epochs
            if done >= self.start:
                lr *= self.decay ** ((done - self.start) // self.every + 1)
        elif self.kind == "exponential":
            passed = (step - 1) / self.steps_per_epoch  # e: epochs passed
            lr *= self.decay ** (max(0.0, passed - self.start + self.every) / self.every)
        if step < self.warmup:
            lr *= step / self.warmup
        return lr
