"""The training loop: a generator of progress snapshots, cancellable, pausable and NaN-safe.

``Trainer.run()`` yields a ``Progress`` after every optimizer step and a final one with
``done=True``; it knows nothing about its caller (the CLI prints, the GUI relays at <= 20 Hz).
One step (truncated BPTT, Williams & Peng 1990)::

    batch  = next window of every stream (sequential) or random windows (random)
    state  = zeros if batch.reset else the final state of the previous batch   (no gradient
             flows across chunks: the carried state is a constant input)
    loss, grads = model.loss_and_grads(x, y, state)     in the dataset's loss_unit
    norm   = clip_grads(grads, clip_norm, clip_value)   global L2 norm before clipping
    optimizer.lr = schedule.rate(step)                  engine.schedule (constant by default)
    optimizer.step(params, grads); model.params_changed()

Divergence safety: after every good step the parameters, the optimizer state, the carried
state, the RNG state, the data position and the loss statistics are copied into one of two
preallocated snapshots (alternately, so the one before it is kept too). Then:

- NaN or infinity in the loss, the gradient norm or the updated parameters, or a gradient norm
  above ``GRAD_EXPLOSION_FACTOR`` x its running mean (EMA with the loss's ``smoothing``): the
  parameters are fine but the step is not; the trainer restores the latest snapshot (the state
  after the previous step);
- a runaway loss, finite but above ``RUNAWAY_FACTOR`` x the running minimum of the training loss
  *and* above the first step's loss (worse than the untrained model): the previous update made
  these weights, so the trainer restores the snapshot before it.

Either way it raises ``TrainingDiverged`` naming the step, the reason and the step it went back
to: nothing learned before the blow-up is lost. (The rules: a loss 10x its best and worse than
at the start is no longer training, for cross-entropies, whose minimum is bounded away from 0
in practice, and for mean squared errors alike; clipping keeps healthy gradient spikes far below
1e5x their mean.)

Exact resume: ``Trainer.save(path)`` writes the model, the optimizer state and ``train_state``
(step, RNG state, data position, carried state, smoothed loss, elapsed time) through
``engine.checkpoint``; ``Trainer.from_checkpoint`` continues bit for bit.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import asdict, dataclass, fields
from time import monotonic
from typing import Iterator

import numpy as np

from .checkpoint import Checkpoint, save_checkpoint
from .data import BATCH_MODES, Dataset, TextCorpus
from .model import SequenceModel
from .optim import OPTIMIZERS, clip_grads, make_optimizer
from .runtime import TrainingPlan, batch_shards, blas_threads, training_plan, usable_cores
from .schedule import SCHEDULES, Schedule
from .settings import VAL_FRACTION, check_fields, setting, setting_field

PAUSE_POLL_S = 0.05  # how often a paused loop re-checks its events, seconds
PLAN_RECHECK_S = 10.0  # least time between two load measurements of one run (_recheck_plan), seconds
RUNAWAY_FACTOR = 10.0  # a loss above this x its running minimum (and above the first loss) ran away
GRAD_EXPLOSION_FACTOR = 1e5  # a gradient norm above this x its running mean exploded


class TrainingDiverged(RuntimeError):
    """The loss, gradient norm or parameters became NaN or infinite, the loss ran away or the
    gradient norm exploded; the trainer has restored the last good weights, optimizer state and
    data position before raising (see the module docstring)."""


@dataclass(frozen=True)
class TrainConfig:
    """Training hyperparameters (saved in checkpoints as ``to_dict()``).

    Each field's default, range, label and help are its ``Setting`` (``engine.settings``); a
    value out of range raises ValueError naming the field, its range and the value, and a
    momentum with another optimizer than sgd is refused.
    """

    seq_len: int = setting(64, low=1, form_high=100_000, label="Sequence length",
                           help="Timesteps per training window (T; characters of a text): gradients flow back "
                                "through this many steps (truncated backpropagation through time).")
    batch_size: int = setting(32, low=1, form_high=4096, label="Batch size",
                              help="Windows trained in parallel per step (B).")
    steps: int = setting(2000, low=1, label="Steps",
                         help="Total optimizer steps to train for (a resumed run continues up to this).")
    lr: float = setting(2e-3, low=0.0, low_inclusive=False, step=1e-4, decimals=6, label="Learning rate",
                        help="The step size of each update.")
    optimizer: str = setting("adam", choices=OPTIMIZERS, label="Optimizer",
                             choice_labels={"adam": "Adam", "rmsprop": "RMSprop", "adagrad": "Adagrad", "sgd": "SGD"},
                             help="Update rule: SGD (with optional momentum), Adagrad, RMSprop or Adam.")
    momentum: float = setting(0.0, low=0.0, high=1.0, high_inclusive=False, step=0.05, decimals=2, label="Momentum",
                              help="SGD momentum (sgd only).")
    clip_norm: float | None = setting(5.0, low=0.0, low_inclusive=False, off=True, step=0.5, decimals=2,
                                      label="Clip gradient norm",
                                      help="Rescale the gradients when their global L2 norm exceeds this value.")
    clip_value: float | None = setting(None, kind=float, low=0.0, low_inclusive=False, off=True, step=0.5, decimals=2,
                                       label="Clip gradient value",
                                       help="Clip every gradient element to [-value, value].")
    rmsprop_decay: float = setting(0.99, low=0.0, high=1.0, high_inclusive=False, step=0.01, decimals=3,
                                   label="RMSprop decay",
                                   help="RMSprop's decay of the mean squared gradient (alpha; rmsprop only): "
                                        "0.99 in PyTorch, 0.95 in char-rnn, 0.9 in Keras.")
    lr_schedule: str = setting("none", choices=SCHEDULES, label="LR schedule",
                               choice_labels={"none": "Constant", "step": "Step decay per epoch",
                                              "exponential": "Exponential decay"},
                               help="How the learning rate changes with the epochs (passes over the training "
                                    "data): constant; multiplied by the decay factor at the end of epoch "
                                    "'decay from' and every 'decay every' epochs after (step); or the same, "
                                    "continuously (exponential).")
    lr_decay: float = setting(0.97, low=0.0, low_inclusive=False, high=1.0, step=0.01, decimals=4,
                              label="LR decay factor", help="Multiplies the learning rate at each decay (char-rnn: 0.97).")
    lr_decay_every: int = setting(1, low=1, form_high=10_000, label="Decay every",
                                  help="Epochs between two decays of the learning rate.")
    lr_decay_start: int = setting(1, low=1, form_high=10_000, label="Decay from epoch",
                                  help="The first decay happens at the end of this epoch (char-rnn: 10).")
    lr_warmup: int = setting(0, low=0, label="Warm-up steps",
                             help="Raise the learning rate linearly from lr/W to lr over the first W steps (0: off).")
    seed: int = setting(0, low=0, label="Seed",
                        help="Random seed for the initial weights, batch order and dropout: the same seed and "
                             "settings train the same model.")
    val_fraction: float = setting_field(VAL_FRACTION)
    eval_every: int = setting(100, low=1, label="Evaluate every",
                              help="Compute the validation loss every this many steps.")
    batching: str = setting("sequential", choices=BATCH_MODES, label="Batching",
                            choice_labels={"sequential": "Sequential (carry state)", "random": "Random windows"},
                            help="Sequential: each batch row continues the previous batch's data and the hidden "
                                 "state is carried over (char-rnn). Random: windows at random offsets, state "
                                 "reset every step.")
    smoothing: float = setting(0.95, low=0.0, high=1.0, high_inclusive=False, label="Loss smoothing",
                               help="EMA factor of the smoothed loss: a mean until step 1/(1-s), then about "
                                    "1/(1-s) steps of memory.")

    def __post_init__(self):
        check_fields(self)
        if self.momentum and self.optimizer != "sgd":
            raise ValueError(f"momentum applies only to the sgd optimizer, not {self.optimizer!r}")

    def optimizer_hyper(self) -> dict:
        """Keyword arguments for ``make_optimizer`` beyond the learning rate."""
        return {"sgd": {"momentum": self.momentum}, "rmsprop": {"alpha": self.rmsprop_decay}}.get(self.optimizer, {})

    def schedule(self, steps_per_epoch: int) -> Schedule:
        """The learning-rate schedule of this config for epochs of ``steps_per_epoch`` batches."""
        return Schedule(self.lr, self.lr_schedule, self.lr_decay, self.lr_decay_every, self.lr_decay_start,
                        self.lr_warmup, steps_per_epoch)

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


@dataclass(frozen=True)
class Progress:
    """A snapshot after one optimizer step (or the final one, ``done=True``).

    Losses are in ``loss_unit``, the dataset's: mean cross-entropies in nats per character for
    a text (``val_bpc`` is then ``val_loss`` in bits per character), mean squared errors in
    scaled units for a series (``val_bpc`` None). ``val_loss``/``val_bpc`` are None unless the
    validation split was evaluated at this step. ``grad_norm`` is the global L2 norm before
    clipping. ``steps_per_s`` is the average rate of this ``run`` call; ``elapsed_s`` the
    training time summed over resumes; ``lr`` the learning rate of this step (the schedule's).
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
    loss_unit: str = "nats/char"
    paused: bool = False
    lr: float = math.nan


class Trainer:
    """Trains ``model`` on ``corpus`` with ``config``; see the module docstring.

    ``corpus`` is an ``engine.data.Dataset``: a ``TextCorpus`` (one-hot inputs, softmax head;
    losses in nats per character) or a ``SeriesDataset`` (dense windows, linear/tanh head; mean squared
    errors in scaled units, ``val_bpc`` None). ValueError if the model does not fit the
    dataset, ``DataError`` if the dataset is too small for one batch. ``rng`` defaults to
    ``np.random.Generator(np.random.PCG64(config.seed))``; it draws the random batch offsets
    and the dropout masks.
    """

    # untimed validation passes estimate_time runs before the timed one: a backend whose steps
    # leave the engine's validation pass cold sets 1
    EVALUATION_WARMUP = 0

    def __init__(self, model: SequenceModel, corpus: Dataset, config: TrainConfig,
                 rng: np.random.Generator | None = None):
        corpus.check_model(model)
        corpus.check_trainable(config.seq_len, config.batch_size)
        self.model = model
        self.corpus = corpus
        self.config = config
        self.rng = rng if rng is not None else np.random.Generator(np.random.PCG64(config.seed))
        self.optimizer = make_optimizer(config.optimizer, config.lr, **config.optimizer_hyper())
        self.schedule = config.schedule(corpus.batches_per_epoch(config.batch_size, config.seq_len))
        self.step = 0  # optimizer steps taken
        self.batches_taken = 0  # data position: batches drawn so far
        self.carry = None  # per layer state tuple of (B, H), carried between sequential batches
        self.smooth_loss = math.nan  # EMA of the training loss, started at the first loss
        self.min_loss = math.inf  # running minimum of the training loss (runaway check)
        self.first_loss = math.nan  # the first step's training loss (runaway check)
        self.norm_mean = math.nan  # EMA of the gradient norm before clipping (explosion check)
        self.elapsed_s = 0.0  # training time over all runs, seconds
        self._batch_iter = None
        self._good = None  # last good params / optimizer buffers, made on first run
        self.shards = batch_shards(model.config.hidden_size, config.batch_size)  # data-parallel parts of a batch
        self.plan: TrainingPlan | None = None  # how steps and evaluations run, inside _threads (else as they are)
        self._plan_made_at = 0.0  # time.monotonic() when self.plan last measured the load, seconds

    # --- one step -----------------------------------------------------------------------------
    def _next_batch(self):
        if self._batch_iter is None:
            self._batch_iter = self.corpus.batches(self.config.batch_size, self.config.seq_len, self.rng,
                                                   mode=self.config.batching, start=self.batches_taken)
        batch = next(self._batch_iter)
        self.batches_taken += 1
        return batch

    def train_step(self) -> tuple[float, float]:
        """One optimizer step; returns ``(loss in the dataset's loss_unit, grad_norm before clipping)``.

        Raises ``TrainingDiverged`` (after restoring the last good state) on a non-finite
        loss, gradient norm or parameter, a runaway loss or an exploding gradient norm. The
        rules and the bookkeeping are here; a backend replaces the three steps that touch the
        weights: ``_gradients``, ``_update`` and ``_keep_carry`` (``lstmviz.torch_backend``).
        """
        if self._good is None:
            self._snapshot_init()
        batch = self._next_batch()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # handled just below
            loss, norm, grads, final = self._gradients(batch)
            problem, back = self._check_step(loss, norm), 0
            if problem is None:
                self.optimizer.hyper["lr"] = self.schedule.rate(self.step + 1)
                bad = self._update(grads)
                if bad:
                    problem = f"the update made parameter(s) {', '.join(bad)} non-finite"
            elif problem.startswith("the loss ran away"):
                back = 1  # the previous update made these weights
        if problem is not None:
            failed = self.step + 1
            self._restore_good(back)
            raise TrainingDiverged(
                f"training diverged at step {failed}: {problem}; the weights and optimizer state "
                f"are back to step {self.step} (try a lower learning rate or gradient clipping)")
        self._keep_carry(final)
        self.step += 1
        # A running mean over the first steps, then an EMA: no long memory of the first losses.
        s = min(self.config.smoothing, 1.0 - 1.0 / self.step)
        self.smooth_loss = loss if math.isnan(self.smooth_loss) else s * self.smooth_loss + (1.0 - s) * loss
        self.norm_mean = norm if math.isnan(self.norm_mean) else s * self.norm_mean + (1.0 - s) * norm
        self.first_loss = loss if math.isnan(self.first_loss) else self.first_loss
        self.min_loss = min(self.min_loss, loss)
        self._save_good()
        return loss, norm

    def _gradients(self, batch) -> tuple:
        """``(loss, grad norm before clipping, grads, final state)`` of ``batch`` from the carried
        state (zeros on ``batch.reset``); the grads are clipped (``engine.optim.clip_grads``)."""
        state = None if batch.reset else self.carry
        loss, grads, final = self.model.loss_and_grads(batch.x, batch.y, state, rng=self.rng, train=True,
                                                       shards=self.shards,
                                                       executor=None if self.plan is None else self.plan.executor)
        return loss, clip_grads(grads, self.config.clip_norm, self.config.clip_value), grads, final

    def _update(self, grads) -> list[str]:
        """Apply ``grads`` at ``optimizer.hyper["lr"]``; return the names of the parameters the
        update made non-finite (empty when all are finite)."""
        self.optimizer.step(self.model.params, grads)
        self.model.params_changed()
        return [n for n, p in self.model.params.items() if not np.isfinite(p).all()]

    def _keep_carry(self, final) -> None:
        """Carry ``final`` (per layer state tuple of (B, H)) to the next batch when sequential."""
        self.carry = final if self.config.batching == "sequential" else None

    def _check_step(self, loss: float, norm: float) -> str | None:
        """Why this step's loss or gradient norm stops training (see the module docstring), or None."""
        if not math.isfinite(loss):
            return f"the training loss is {loss}"
        if not math.isfinite(norm):
            return f"the gradient norm is {norm}"
        if loss > RUNAWAY_FACTOR * self.min_loss and loss > self.first_loss:
            return (f"the loss ran away to {loss:.4g}, more than {RUNAWAY_FACTOR:g} x its minimum "
                    f"{self.min_loss:.4g} and above the first step's {self.first_loss:.4g}")
        if norm > GRAD_EXPLOSION_FACTOR * self.norm_mean:
            return f"the gradient norm exploded to {norm:.4g}, over {GRAD_EXPLOSION_FACTOR:g} x its mean {self.norm_mean:.4g}"
        return None

    # --- last-good snapshots (divergence safety) ----------------------------------------------
    def _snapshot_init(self) -> None:
        """Allocate the optimizer's slots and both snapshots, then fill them with the current state."""
        self.optimizer.prepare(self.model.params)
        self._good = [{
            "params": {n: np.empty_like(p) for n, p in self.model.params.items()},
            "slots": {s: {n: np.empty_like(a) for n, a in held.items()} for s, held in self.optimizer.slots.items()},
        } for _ in range(2)]
        self._save_good()
        self._save_good()

    def _save_good(self) -> None:
        """Overwrite the older snapshot with the current state; it becomes the latest."""
        self._good.reverse()
        good = self._good[0]
        for n, p in self.model.params.items():
            np.copyto(good["params"][n], p)
        for s, held in self.optimizer.slots.items():
            for n, a in held.items():
                np.copyto(good["slots"][s][n], a)
        good.update(t=self.optimizer.t, step=self.step, batches_taken=self.batches_taken,
                    rng=self.rng.bit_generator.state, carry=self.carry, smooth_loss=self.smooth_loss,
                    min_loss=self.min_loss, first_loss=self.first_loss, norm_mean=self.norm_mean)

    def _restore_good(self, back: int = 0) -> None:
        """Restore the latest snapshot (``back`` 0) or the one before it (1); both stay held."""
        good = self._good[back]
        for n, p in self.model.params.items():
            np.copyto(p, good["params"][n])
        for s, held in self.optimizer.slots.items():
            for n, a in held.items():
                np.copyto(a, good["slots"][s][n])
        self.optimizer.t = good["t"]
        self.rng.bit_generator.state = good["rng"]
        self.step, self.batches_taken, self.carry = good["step"], good["batches_taken"], good["carry"]
        self.smooth_loss, self.min_loss = good["smooth_loss"], good["min_loss"]
        self.first_loss, self.norm_mean = good["first_loss"], good["norm_mean"]
        self._batch_iter = None
        self.model.params_changed()
        if back:  # both snapshots now hold the restored state
            self._save_good()
            self._save_good()

    # --- the loop -----------------------------------------------------------------------------
    def evaluate(self, stop: threading.Event | None = None) -> float | None:
        """Validation loss over the whole validation split, in the dataset's ``loss_unit``
        (nats/char for text, mean squared error in scaled units for a series); None without a
        validation split or when ``stop`` was set during the evaluation. Inside a run it uses the
        run's plan (``plan.eval_threads`` BLAS threads: a forward-only pass is not split), else the
        BLAS threads as they are."""
        with contextlib.nullcontext() if self.plan is None else blas_threads(self.plan.eval_threads):
            return self.corpus.validation_loss(self.model, self.config.batch_size, stop=stop)

    def _recheck_plan(self) -> None:
        """At an evaluation: a split batch whose parts run in turn although the process has two
        cores (the machine was busy when the plan was made) measures the load again, and its
        parts run at once from the next step if a core has come free (the same figures either
        way). A plan already at its best is kept unmeasured, and a measurement (0.2 s) is made at
        most once per PLAN_RECHECK_S seconds since the last (``run`` asks at every evaluation but
        the last), so a machine that stays busy does not slow frequent evaluations."""
        if self.plan is not None and self.plan.shards > 1 and self.plan.executor is None and usable_cores() > 1:
            now = monotonic()
            if now - self._plan_made_at >= PLAN_RECHECK_S:
                self.plan = training_plan(self.model.config.hidden_size, self.config.batch_size, shards=self.shards)
                self._plan_made_at = now

    def run(self, stop: threading.Event | None = None, pause: threading.Event | None = None) -> Iterator[Progress]:
        """Train up to ``config.steps`` steps, yielding a ``Progress`` after every step and a
        final one with ``done=True`` (also when ``stop`` is set; checked between steps). When
        ``pause`` is found set between two steps, the loop yields the last step's ``Progress``
        again with ``paused=True`` (no step taken; the weights are those of that step), then
        waits while ``pause`` stays set (polling every PAUSE_POLL_S s, waking at once on stop).
        Raises ``TrainingDiverged`` on NaN/inf (see the module docstring). Runs inside
        ``_threads()``."""
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
                            val_loss=val, val_bpc=self.corpus.loss_bits(val), grad_norm=norm, loss_unit=self.corpus.loss_unit,
                            steps_per_s=rate, elapsed_s=self.elapsed_s, done=done, lr=self.optimizer.lr)

        with self._threads():
            while self.step < total and not (stop is not None and stop.is_set()):
                if pause is not None and pause.is_set():
                    held = last if last is not None else snapshot(math.nan, math.nan, None)
                    yield Progress(**{**asdict(held), "paused": True})
                while pause is not None and pause.is_set() and not (stop is not None and stop.is_set()):
                    (stop if stop is not None else idle).wait(PAUSE_POLL_S)
                if stop is not None and stop.is_set():
                    break
                loss, norm = self.train_step()
                val = None
                if self.step % self.config.eval_every == 0 or self.step == total:
                    val = self.evaluate(stop)
                    if self.step < total:
                        self._recheck_plan()
                last = snapshot(loss, norm, val)
                yield last
            if last is None:  # nothing to do (already at total steps) or stopped at once
                last = snapshot(math.nan, math.nan, self.evaluate(stop) if self.step >= total else None)
        yield Progress(**{**asdict(last), "done": True, "elapsed_s": self.elapsed_s})

    @contextlib.contextmanager
    def _threads(self):
        """The context that ``run`` and ``estimate_time`` train and evaluate in: ``self.plan``,
        made once on entry by ``engine.runtime.training_plan`` (one load measurement at most,
        re-made only by ``_recheck_plan``): a batch split into ``shards`` parts runs with one BLAS
        thread per part, its parts at once on ``engine.runtime.shard_executor``'s worker thread
        when the machine has a free core, else one after another (the same figures either way);
        an unsplit batch runs with ``engine.runtime.blas_threads_for`` BLAS threads. The BLAS
        thread count before is restored after, and ``plan`` is None again."""
        self.plan = training_plan(self.model.config.hidden_size, self.config.batch_size, shards=self.shards)
        self._plan_made_at = monotonic()
        try:
            with blas_threads(self.plan.blas_threads):
                yield
        finally:
            self.plan = None

    def _scratch(self) -> "Trainer":
        """A trainer of this class on a copy of the current weights, with the same data and
        config and its own RNG (``PCG64(0)``): what ``estimate_time`` measures on."""
        model = SequenceModel(self.model.config, params={n: p.copy() for n, p in self.model.params.items()})
        return type(self)(model, self.corpus, self.config, rng=np.random.Generator(np.random.PCG64(0)))

    # --- saving and resuming ------------------------------------------------------------------
    def train_state(self) -> dict:
        """Everything beyond the weights and optimizer that an exact resume needs."""
        state = {
            "step": self.step,
            "batches_taken": self.batches_taken,
            "rng": self.rng.bit_generator.state,
            "smooth_loss": None if math.isnan(self.smooth_loss) else self.smooth_loss,
            "elapsed_s": self.elapsed_s,
            "min_loss": None if math.isinf(self.min_loss) else self.min_loss,
            "first_loss": None if math.isnan(self.first_loss) else self.first_loss,
            "norm_mean": None if math.isnan(self.norm_mean) else self.norm_mean,
        }
        if self.carry is not None:
            state["carry"] = np.stack([np.stack(layer) for layer in self.carry])  # (L, S, B, H)
        return state

    def save(self, path, extra: dict | None = None) -> None:
        """Write a checkpoint (model, vocab, optimizer, train state and config) atomically."""
        extra = {**(extra or {}), **self.corpus.checkpoint_extra()}
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
            # loss statistics of the divergence checks (absent from earlier checkpoints: start afresh)
            trainer.min_loss = math.inf if ts.get("min_loss") is None else float(ts["min_loss"])
            trainer.first_loss = math.nan if ts.get("first_loss") is None else float(ts["first_loss"])
            trainer.norm_mean = math.nan if ts.get("norm_mean") is None else float(ts["norm_mean"])
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


LONG_RUN_S = 300  # a run estimated longer than this, seconds, is asked or warned about before it starts


@dataclass(frozen=True)
class TimeEstimate:
    """How long a run will take: ``steps`` training steps of ``step_s`` seconds each and
    ``evaluations`` validation passes of ``eval_s`` seconds each (wall-clock, measured)."""

    steps: int
    step_s: float
    evaluations: int
    eval_s: float

    @property
    def total_s(self) -> float:
        """The estimated wall-clock time of the run, seconds."""
        return self.steps * self.step_s + self.evaluations * self.eval_s


def estimate_time(trainer: Trainer, burst: int = 4, warmup: int = 1,
                  stop: threading.Event | None = None) -> TimeEstimate | None:
    """Estimate the time of ``trainer.run()`` from a measured burst, without changing ``trainer``.

    A scratch trainer (``trainer._scratch()``: of the same class, so the PyTorch backend is
    measured as it runs; a copy of the weights, the same data and config, its own RNG) takes
    ``warmup`` untimed steps (first-touch allocations), then ``burst`` timed ones (their median
    is the step time; a step that diverges counts as the step it cost); then one full validation
    pass is timed if the run evaluates (after the engine's steps it needs no warm-up pass: a
    first pass measured within 1 % of the next ones for every preset on 1 MB of text; a class
    with ``EVALUATION_WARMUP`` 1 gets one untimed pass first). All of it runs in the trainer's
    ``_threads()``, as ``run`` does. Costs about ``warmup + burst`` steps and one evaluation.
    None once ``stop`` (a ``threading.Event``, checked between steps and inside the validation
    pass) is set. Raises ValueError unless ``burst`` >= 1 and ``warmup`` >= 0.
    """
    if burst < 1 or warmup < 0:
        raise ValueError(f"burst must be >= 1 and warmup >= 0, got {burst!r} and {warmup!r}")
    scratch = trainer._scratch()
    times = []
    steps = max(trainer.config.steps - trainer.step, 0)
    evaluations = (trainer.config.steps // trainer.config.eval_every - trainer.step // trainer.config.eval_every
                   + (trainer.config.steps % trainer.config.eval_every != 0 and steps > 0))
    eval_s = 0.0
    with scratch._threads():
        for k in range(warmup + burst):
            if stop is not None and stop.is_set():
                return None
            start = time.perf_counter()
            try:
                scratch.train_step()
            except TrainingDiverged:
                pass
            if k >= warmup:
                times.append(time.perf_counter() - start)
        if evaluations:
            for _ in range(scratch.EVALUATION_WARMUP):
                scratch.evaluate(stop)
            start = time.perf_counter()
            scratch.evaluate(stop)
            eval_s = time.perf_counter() - start
    if stop is not None and stop.is_set():
        return None
    return TimeEstimate(steps=steps, step_s=float(np.median(times)), evaluations=int(evaluations), eval_s=eval_s)
