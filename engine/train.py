"""The training loop: a generator of progress snapshots, cancellable, pausable and NaN-safe.

``Trainer.run()`` yields a ``Progress`` after every optimizer step and a final one with
``done=True``; it knows nothing about its caller (the CLI prints, the GUI relays at <= 20 Hz).
One step (truncated BPTT, Williams & Peng 1990)::

    batch  = next window of every stream (sequential) or random windows (random)
    state  = zeros if batch.reset else the final state of the previous batch   (no gradient
             flows across chunks: the carried state is a constant input)
    loss, grads = model.loss_and_grads(x, y, state)     mean cross-entropy, nats per character
    norm   = clip_grads(grads, clip_norm, clip_value)   global L2 norm before clipping
    optimizer.step(params, grads); model.params_changed()

NaN safety: after every good step the parameters and the optimizer state are copied into
preallocated buffers ("last good"). If the loss, the gradient norm or the updated parameters
are not finite, the trainer restores the last good parameters, optimizer state, carried state,
RNG state and data position, then raises ``TrainingDiverged``: nothing learned is lost.

Exact resume: ``Trainer.save(path)`` writes the model, the optimizer state and ``train_state``
(step, RNG state, data position, carried state, smoothed loss, elapsed time) through
``engine.checkpoint``; ``Trainer.from_checkpoint`` continues bit for bit.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, fields
from typing import Iterator

import numpy as np

from .checkpoint import Checkpoint, save_checkpoint
from .data import BATCH_MODES, TextCorpus
from .model import SequenceModel
from .optim import OPTIMIZERS, clip_grads, make_optimizer
from .series import SeriesDataset

LN2 = math.log(2.0)
PAUSE_POLL_S = 0.05  # how often a paused loop re-checks its events, seconds
EVAL_CHUNK = 256  # timesteps per forward call when evaluating (bounds memory)


class TrainingDiverged(RuntimeError):
    """The loss, gradient norm or parameters became NaN or infinite; the trainer has restored
    the last finite weights and optimizer state before raising."""


@dataclass(frozen=True)
class TrainConfig:
    """Training hyperparameters (saved in checkpoints as ``to_dict()``)."""

    seq_len: int = 64  # T, characters per truncated-BPTT chunk, >= 1
    batch_size: int = 32  # B, streams per batch, >= 1
    steps: int = 2000  # total optimizer steps (a resumed run continues up to this), >= 1
    lr: float = 2e-3  # learning rate, > 0 and finite
    optimizer: str = "adam"  # one of OPTIMIZERS
    momentum: float = 0.0  # SGD momentum in [0, 1) (sgd only)
    clip_norm: float | None = 5.0  # clip the global gradient norm to this (> 0); None = off
    clip_value: float | None = None  # clamp every gradient element to +-this (> 0); None = off
    seed: int = 0  # seeds the trainer's RNG (batch offsets, dropout masks), >= 0
    val_fraction: float = 0.1  # last share of the text held out for validation, in [0, 0.5]
    eval_every: int = 100  # evaluate on the whole validation split every this many steps, >= 1
    batching: str = "sequential"  # "sequential" (carried state) or "random" windows
    smoothing: float = 0.95  # EMA factor of the smoothed loss, in [0, 1): a mean until step 1/(1-s), ~20-step memory

    def __post_init__(self):
        for name in ("seq_len", "batch_size", "steps", "eval_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not _is_real(self.lr) or not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; expected one of {OPTIMIZERS}")
        if not _is_real(self.momentum) or not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.momentum and self.optimizer != "sgd":
            raise ValueError(f"momentum applies only to the sgd optimizer, not {self.optimizer!r}")
        for name in ("clip_norm", "clip_value"):
            value = getattr(self, name)
            if value is not None and (not _is_real(value) or not (math.isfinite(value) and value > 0)):
                raise ValueError(f"{name} must be a finite number > 0 or None (off), got {value!r}")
        if not _is_real(self.val_fraction) or not 0.0 <= self.val_fraction <= 0.5:
            raise ValueError(f"val_fraction must be in [0, 0.5], got {self.val_fraction!r}")
        if self.batching not in BATCH_MODES:
            raise ValueError(f"unknown batching {self.batching!r}; expected one of {BATCH_MODES}")
        if not _is_real(self.smoothing) or not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {self.smoothing!r}")

    def optimizer_hyper(self) -> dict:
        """Keyword arguments for ``make_optimizer`` beyond the learning rate."""
        return {"momentum": self.momentum} if self.optimizer == "sgd" else {}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        if not isinstance(data, dict):
            raise ValueError(f"train config must be a dict, got {type(data).__name__}")
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown train config keys: {sorted(unknown)}")
        return cls(**data)


def _is_real(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


@dataclass(frozen=True)
class Progress:
    """A snapshot after one optimizer step (or the final one, ``done=True``).

    Losses are mean cross-entropies in nats per character; ``val_bpc`` is ``val_loss`` in bits
    per character. ``val_loss``/``val_bpc`` are None unless the validation split was evaluated
    at this step. ``grad_norm`` is the global L2 norm before clipping. ``steps_per_s`` is the
    average rate of this ``run`` call; ``elapsed_s`` the training time summed over resumes.
    ``paused`` marks the repeat of the last step that ``Trainer.run`` yields when a pause takes hold.
    """

    step: int
    total_steps: int
    train_loss: float
    smooth_loss: float
    val_loss: float | None
    val_bpc: float | None
    grad_norm: float
    steps_per_s: float
    elapsed_s: float
    done: bool = False
    paused: bool = False


def evaluate(model: SequenceModel, ids: np.ndarray, batch_size: int = 32, chunk: int = EVAL_CHUNK) -> float:
    """Mean cross-entropy, nats per character, of predicting ``ids[1:]`` from ``ids[:-1]``.

    Every character after the first is predicted exactly once. The ``N = M - 1`` predictions
    are cut into ``S = min(batch_size, N)`` contiguous streams of ``L = N // S`` positions, run
    side by side from a zero state in chunks of ``chunk`` timesteps with the state carried
    between chunks; the ``N - S * L`` leftover positions continue the last stream's state.
    ``ids (M,)`` int token ids, M >= 2. Streams start from a zero state, so the result depends
    (slightly) on ``batch_size``; ``batch_size=1`` is the exact single-stream loss.
    """
    ids = np.asarray(ids)  # (M,)
    if ids.ndim != 1 or ids.size < 2:
        raise ValueError(f"evaluation needs a 1-D array of at least 2 token ids, got shape {ids.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    N = ids.size - 1
    S = min(int(batch_size), N)
    L = N // S
    x = ids[: S * L].reshape(S, L)  # (S, L) inputs, one stream per row
    y = ids[1 : S * L + 1].reshape(S, L)  # (S, L) targets
    total, state = 0.0, None
    for j in range(0, L, chunk):
        result = model.forward(x[:, j : j + chunk], state, y[:, j : j + chunk])
        total += result.loss * result.outputs.shape[0] * result.outputs.shape[1]  # mean -> sum
        state = result.state
    rest = N - S * L
    if rest:
        last = [tuple(s[S - 1 : S] for s in layer) for layer in state]  # per layer (1, H)
        for j in range(S * L, N, chunk):
            stop = min(j + chunk, N)
            result = model.forward(ids[None, j:stop], last, ids[None, j + 1 : stop + 1])
            total += result.loss * (stop - j)
            last = result.state
    return total / N


class Trainer:
    """Trains ``model`` on ``corpus`` with ``config``; see the module docstring.

    ``corpus`` is a ``TextCorpus`` (one-hot inputs, softmax head; losses in nats per character)
    or an ``engine.series.SeriesDataset`` (dense windows, linear/tanh head; losses are mean
    squared errors in scaled units and ``val_bpc`` is None). ``rng`` defaults to
    ``np.random.Generator(np.random.PCG64(config.seed))``; it draws the random batch offsets
    and the dropout masks.
    """

    def __init__(self, model: SequenceModel, corpus: TextCorpus | SeriesDataset, config: TrainConfig,
                 rng: np.random.Generator | None = None):
        self.is_text = isinstance(corpus, TextCorpus)
        if self.is_text:
            cfg = model.config
            if cfg.input_kind != "onehot" or cfg.head != "softmax":
                raise ValueError("the text trainer needs a model with one-hot inputs and a softmax head")
            V = len(corpus.vocab)
            if cfg.input_size != V or cfg.output_size != V:
                raise ValueError(f"the model is for {cfg.input_size} characters but the text's vocabulary has {V}")
        else:
            corpus.check_model(model)
        corpus.check_trainable(config.seq_len, config.batch_size)
        self.model = model
        self.corpus = corpus
        self.config = config
        self.rng = rng if rng is not None else np.random.Generator(np.random.PCG64(config.seed))
        self.optimizer = make_optimizer(config.optimizer, config.lr, **config.optimizer_hyper())
        self.step = 0  # optimizer steps taken
        self.batches_taken = 0  # data position: batches drawn so far
        self.carry = None  # per layer state tuple of (B, H), carried between sequential batches
        self.smooth_loss = math.nan  # EMA of the training loss, started at the first loss
        self.elapsed_s = 0.0  # training time over all runs, seconds
        self._batch_iter = None
        self._good = None  # last good params / optimizer buffers, made on first run

    # --- one step -----------------------------------------------------------------------------
    def _next_batch(self):
        if self._batch_iter is None:
            self._batch_iter = self.corpus.batches(self.config.batch_size, self.config.seq_len, self.rng,
                                                   mode=self.config.batching, start=self.batches_taken)
        batch = next(self._batch_iter)
        self.batches_taken += 1
        return batch

    def train_step(self) -> tuple[float, float]:
        """One optimizer step; returns ``(loss nats/char, grad_norm before clipping)``.

        Raises ``TrainingDiverged`` (after restoring the last good state) on a non-finite
        loss, gradient norm or parameter.
        """
        if self._good is None:
            self._snapshot_init()
        rng_state = self.rng.bit_generator.state
        position, carry = self.batches_taken, self.carry
        batch = self._next_batch()
        state = None if batch.reset else self.carry
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # handled just below
            loss, grads, final = self.model.loss_and_grads(batch.x, batch.y, state, rng=self.rng, train=True)
            norm = clip_grads(grads, self.config.clip_norm, self.config.clip_value)
            problem = None
            if not math.isfinite(loss):
                problem = f"the training loss is {loss}"
            elif not math.isfinite(norm):
                problem = f"the gradient norm is {norm}"
            else:
                self.optimizer.step(self.model.params, grads)
                self.model.params_changed()
                bad = [n for n, p in self.model.params.items() if not np.isfinite(p).all()]
                if bad:
                    problem = f"the update made parameter(s) {', '.join(bad)} non-finite"
        if problem is not None:
            self._restore_good()
            self.rng.bit_generator.state = rng_state
            self.batches_taken, self.carry, self._batch_iter = position, carry, None
            raise TrainingDiverged(
                f"training diverged at step {self.step + 1}: {problem}; the weights and optimizer state "
                f"are back to step {self.step} (try a lower learning rate or gradient clipping)")
        self._save_good()
        self.carry = final if self.config.batching == "sequential" else None
        self.step += 1
        # A running mean over the first steps, then an EMA: no long memory of the first losses.
        s = min(self.config.smoothing, 1.0 - 1.0 / self.step)
        self.smooth_loss = loss if math.isnan(self.smooth_loss) else s * self.smooth_loss + (1.0 - s) * loss
        return loss, norm

    # --- last-good snapshot (NaN safety) ------------------------------------------------------
    def _snapshot_init(self) -> None:
        """Allocate the optimizer's slots and the last-good buffers, then fill them."""
        self.optimizer.prepare(self.model.params)
        self._good = {
            "params": {n: np.empty_like(p) for n, p in self.model.params.items()},
            "slots": {s: {n: np.empty_like(a) for n, a in held.items()} for s, held in self.optimizer.slots.items()},
            "t": 0,
        }
        self._save_good()

    def _save_good(self) -> None:
        good = self._good
        for n, p in self.model.params.items():
            np.copyto(good["params"][n], p)
        for s, held in self.optimizer.slots.items():
            for n, a in held.items():
                np.copyto(good["slots"][s][n], a)
        good["t"] = self.optimizer.t

    def _restore_good(self) -> None:
        good = self._good
        for n, p in self.model.params.items():
            np.copyto(p, good["params"][n])
        for s, held in self.optimizer.slots.items():
            for n, a in held.items():
                np.copyto(a, good["slots"][s][n])
        self.optimizer.t = good["t"]
        self.model.params_changed()

    # --- the loop -----------------------------------------------------------------------------
    def evaluate(self) -> float | None:
        """Validation loss over the whole validation split (nats/char for text, mean squared
        error in scaled units for a series); None without a validation split."""
        if not self.is_text:
            return self.corpus.validation_loss(self.model, self.config.batch_size)
        if len(self.corpus.val_ids) < 2:
            return None
        return evaluate(self.model, self.corpus.val_ids, self.config.batch_size)

    def run(self, stop: threading.Event | None = None, pause: threading.Event | None = None) -> Iterator[Progress]:
        """Train up to ``config.steps`` steps, yielding a ``Progress`` after every step and a
        final one with ``done=True`` (also when ``stop`` is set; checked between steps). When
        ``pause`` is found set between two steps, the loop yields the last step's ``Progress``
        again with ``paused=True`` (no step taken; the weights are those of that step), then
        waits while ``pause`` stays set (polling every PAUSE_POLL_S s, waking at once on stop).
        Raises ``TrainingDiverged`` on NaN/inf (see the module docstring)."""
        total = self.config.steps
        start_step, started = self.step, time.perf_counter()
        elapsed_before = self.elapsed_s
        last = None
        idle = threading.Event()  # never set: a plain timed wait when there is no stop event

        def snapshot(loss, norm, val, done=False):
            ran = time.perf_counter() - started
            self.elapsed_s = elapsed_before + ran
            rate = (self.step - start_step) / ran if ran > 0 else 0.0
            return Progress(step=self.step, total_steps=total, train_loss=loss, smooth_loss=self.smooth_loss,
                            val_loss=val, val_bpc=None if val is None or not self.is_text else val / LN2, grad_norm=norm,
                            steps_per_s=rate, elapsed_s=self.elapsed_s, done=done)

        while self.step < total and not (stop is not None and stop.is_set()):
            if pause is not None and pause.is_set():
                held = last if last is not None else snapshot(math.nan, math.nan, None)
                yield Progress(**{**asdict(held), "paused": True})
            while pause is not None and pause.is_set() and not (stop is not None and stop.is_set()):
                (stop if stop is not None else idle).wait(PAUSE_POLL_S)
            if stop is not None and stop.is_set():
                break
            loss, norm = self.train_step()
            val = self.evaluate() if self.step % self.config.eval_every == 0 or self.step == total else None
            last = snapshot(loss, norm, val)
            yield last
        if last is None:  # nothing to do (already at total steps) or stopped at once
            yield snapshot(math.nan, math.nan, self.evaluate() if self.step >= total else None, done=True)
        else:
            yield Progress(**{**asdict(last), "done": True, "elapsed_s": self.elapsed_s})

    # --- saving and resuming ------------------------------------------------------------------
    def train_state(self) -> dict:
        """Everything beyond the weights and optimizer that an exact resume needs."""
        state = {
            "step": self.step,
            "batches_taken": self.batches_taken,
            "rng": self.rng.bit_generator.state,
            "smooth_loss": None if math.isnan(self.smooth_loss) else self.smooth_loss,
            "elapsed_s": self.elapsed_s,
        }
        if self.carry is not None:
            state["carry"] = np.stack([np.stack(layer) for layer in self.carry])  # (L, S, B, H)
        return state

    def save(self, path, extra: dict | None = None) -> None:
        """Write a checkpoint (model, vocab, optimizer, train state and config) atomically."""
        if not self.is_text:
            extra = {**(extra or {}), "series": self.corpus.describe()}
        save_checkpoint(path, self.model, vocab=getattr(self.corpus, "vocab", None), step=self.step,
                        optimizer_state=self.optimizer.state_dict(), train_state=self.train_state(),
                        train_config=self.config.to_dict(), extra=extra)

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint, corpus: TextCorpus, steps: int | None = None) -> "Trainer":
        """A trainer that continues ``ckpt`` exactly on ``corpus`` (built with ``ckpt.vocab`` and
        the saved ``val_fraction``); ``steps`` replaces the total step count if given.
        Raises ValueError if the checkpoint has no training state or does not fit the corpus."""
        if ckpt.train_config is None or ckpt.train_state is None or ckpt.optimizer_state is None:
            raise ValueError(f"{ckpt.path or 'the checkpoint'} holds a model only, no training state to resume")
        if ckpt.vocab is not None and ckpt.vocab != getattr(corpus, "vocab", None):
            raise ValueError("the text's vocabulary differs from the checkpoint's")
        config = TrainConfig.from_dict(ckpt.train_config)
        if steps is not None:
            config = TrainConfig.from_dict({**config.to_dict(), "steps": steps})
        trainer = cls(ckpt.model, corpus, config)
        ts = ckpt.train_state
        try:
            trainer.rng.bit_generator.state = ts["rng"]
            trainer.step = int(ts["step"])
            trainer.batches_taken = int(ts["batches_taken"])
            trainer.smooth_loss = math.nan if ts["smooth_loss"] is None else float(ts["smooth_loss"])
            trainer.elapsed_s = float(ts["elapsed_s"])
            carry = ts.get("carry")
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"the checkpoint's training state is incomplete or invalid ({e})") from None
        if carry is not None:
            model = ckpt.model
            expected = (model.config.num_layers, len(model.cells[0].state_names), config.batch_size,
                        model.config.hidden_size)
            if not isinstance(carry, np.ndarray) or carry.shape != expected or carry.dtype != model.dtype:
                raise ValueError(f"the checkpoint's carried state must be {model.dtype} {expected}")
            trainer.carry = [tuple(layer) for layer in carry]  # per layer (B, H) each
        trainer.optimizer.load_state_dict(ckpt.optimizer_state)
        return trainer
