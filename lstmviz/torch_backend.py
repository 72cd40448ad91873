"""PyTorch as a training backend: ``lstmviz train --backend torch`` (``pip install ".[torch]"``).

``TorchTrainer`` is an ``engine.train.Trainer`` whose steps run in PyTorch, on ``cuda:LOCAL_RANK``
when a GPU is present (else the CPU), in one process or in several started by ``torchrun``
(``DistributedDataParallel``; gloo on the CPU, nccl on GPUs). Everything around the step is the
engine's: the batches (``Dataset.batches`` with the trainer's ``np.random.Generator``), the
learning-rate schedule (``engine.schedule``), the step's divergence rules and loss bookkeeping
(``Trainer.train_step``, of which PyTorch runs ``_gradients``, ``_update`` and ``_keep_carry``),
the validation loss (the engine's ``Dataset.validation_loss``, on rank 0), ``train_state``,
``save`` and ``from_checkpoint``. So a checkpoint is the engine's own format and a run resumes
in either backend, continuing exactly (to float round-off).

The same model, the same step. The module is ``embed`` (``nn.Embedding``), ``rnn``
(``nn.LSTM``/``nn.GRU``/``nn.RNN``, ``batch_first``) and ``head`` (``nn.Linear``), built by
``engine.interop.export.torch_modules`` (the names of the README's export snippet); weights and
optimizer slots cross over with ``engine.interop`` (``state_dict_arrays`` / ``layout.from_torch``).
The engine has one bias per gate where PyTorch has two (``b = bias_ih + bias_hh``): ``bias_hh`` is
held at zero and not trained (a GRU trains only its n part, the engine's ``bhn``), so each update
moves the bias exactly as the engine's does. Inputs: one-hot (``one_hot(ids, V)``), embedding,
scaled index (``ids / V``) or dense values; heads: softmax with the mean cross-entropy, linear
and tanh with the mean squared error, as ``engine.model``. Dropout between stacked layers uses
the engine's masks, drawn from the trainer's generator in the engine's order
(``rng.random((T, B, H)) >= p``, scaled by ``1 / (1 - p)``). Optimizers: ``torch.optim``'s SGD
(momentum), Adagrad, RMSprop and Adam with the engine's hyperparameters (``engine.optim`` matches
them update for update); clipping: every element to ``[-clip_value, clip_value]`` first, then the
global norm to ``clip_norm`` (``clip_grad_value_``, ``clip_grad_norm_``, as ``engine.optim.clip_grads``).

Several processes: ``--batch B`` is the batch of the whole run; each of the ``W`` processes
takes its own ``B / W`` rows of every batch (rank r: rows ``r B/W .. (r+1) B/W``), DDP averages
the gradients and the loss is averaged over the processes, so a run on W processes computes the
steps of one process with batch B (and its checkpoint resumes on one). Rank 0 evaluates, prints
and writes the checkpoint; every process reads the corpus itself.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys

import numpy as np

from engine.checkpoint import Checkpoint
from engine.interop.export import state_dict_arrays, torch_modules
from engine.interop.layout import from_torch
from engine.model import SequenceModel
from engine.runtime import blas_threads_for
from engine.train import Trainer

from .cli_args import UsageError

# torch.optim state entry -> engine.optim slot, per optimizer
SLOT_KEYS = {"sgd": {"momentum_buffer": "momentum"}, "adagrad": {"sum": "sum"},
             "rmsprop": {"square_avg": "square_avg"}, "adam": {"exp_avg": "m", "exp_avg_sq": "v"}}


def require_torch():
    """The ``torch`` module; ``UsageError`` (exit 2, one line) when it is not installed."""
    try:
        import torch
    except ImportError:
        raise UsageError("--backend torch needs PyTorch, which is not installed "
                         "(pip install \"lstmviz[torch]\")") from None
    return torch


def world_size() -> int:
    """The number of processes ``torchrun`` started (its ``WORLD_SIZE``; 1 outside torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise UsageError(f"WORLD_SIZE must be an integer, got {os.environ['WORLD_SIZE']!r}") from None


def under_torchrun() -> bool:
    """True in a process ``torchrun`` started (its agent sets ``TORCHELASTIC_RUN_ID``). Its agent
    passes a Ctrl+C on to every process, which the terminal signals too: each gets it twice."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def default_device():
    """``cuda:LOCAL_RANK`` when CUDA is available, else the CPU."""
    torch = require_torch()
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def start_distributed() -> None:
    """Join the process group ``torchrun`` set up (``WORLD_SIZE`` > 1): nccl on GPUs, gloo on
    the CPU. Processes other than rank 0 print nothing from then on (rank 0 reports)."""
    torch = require_torch()
    import torch.distributed as dist

    if world_size() <= 1 or dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(default_device())
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.get_rank() != 0:
        sys.stdout = sys.stderr = open(os.devnull, "w")


def stop_distributed() -> None:
    """Leave the process group ``start_distributed`` joined, if any: its gloo (or nccl) threads
    end here, not at interpreter exit, where a thread still running aborts the process
    ("terminate called without an active exception")."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def cpu_thread_count(torch, hidden_size: int, batch_size: int, load: float | None = None) -> int:
    """The PyTorch threads a CPU run uses: ``torch.get_num_threads()`` when ``OMP_NUM_THREADS``
    is set (torchrun sets it), else ``engine.runtime.blas_threads_for`` at ``load`` cores busy
    elsewhere (measured when None and the size calls for it; see ``cpu_threads``)."""
    if "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()
    return blas_threads_for(hidden_size, batch_size, load=load)


def device_line(trainer: "TorchTrainer") -> str:
    """Where ``trainer`` runs, for the start of a run: ``backend torch 2.13.0 on cpu (2 threads)``
    or ``... on cuda:0 (NVIDIA A100)``, followed by ``, 2 processes (gloo)`` under torchrun."""
    torch, device = trainer.torch, trainer.device
    if device.type == "cuda":
        where = f"{device} ({torch.cuda.get_device_name(device)})"
    else:
        threads = cpu_thread_count(torch, trainer.model.config.hidden_size, trainer.share)
        where = f"cpu ({threads} thread{'s' * (threads != 1)})"
    line = f"backend torch {torch.__version__} on {where}"
    if trainer.world > 1:
        line += f", {trainer.world} processes ({torch.distributed.get_backend()})"
    return line


@contextlib.contextmanager
def cpu_threads(torch, device, hidden_size: int, batch_size: int, load: float | None = None):
    """Run the body with ``cpu_thread_count`` PyTorch threads on the CPU (problem size and
    machine load: PyTorch's default of one thread per core lost 5-10x per step on a busy 2-core
    machine at H=128, B=32), unless ``OMP_NUM_THREADS`` is set (as torchrun sets it); the count
    before is restored after. No change on a GPU."""
    if device.type != "cpu" or "OMP_NUM_THREADS" in os.environ:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(cpu_thread_count(torch, hidden_size, batch_size, load))
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --- weights and optimizer slots across the two layouts ------------------------------------------
def torch_arrays(config, arrays: dict) -> dict:
    """``{torch name: ndarray}`` for arrays in the engine's names and shapes (parameters or an
    optimizer slot), through ``engine.interop.export.state_dict_arrays``."""
    return state_dict_arrays(SequenceModel(config, params=arrays))


def engine_arrays(config, tensors: dict) -> dict:
    """The inverse of ``torch_arrays``: ``{engine name: ndarray}`` from ``{torch name: ndarray}``
    (``layout.from_torch`` per layer, ``head.weight`` transposed)."""
    out = {}
    if config.input_kind == "embedding":
        out["embed.E"] = tensors["embed.weight"]  # (V, E)
    for k in range(config.num_layers):
        layer = from_torch(config.cell, *(tensors[f"rnn.{s}_l{k}"] for s in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        out.update({f"l{k}.{name}": value for name, value in layer.items()})
    if config.head != "none":
        out["head.W"] = tensors["head.weight"].T  # (H, O)
        out["head.b"] = tensors["head.bias"]  # (O,)
    return {name: np.ascontiguousarray(value) for name, value in out.items()}


def build_module(model: SequenceModel):
    """The trainable ``nn.Module`` for ``model`` (its weights loaded; see the module docstring):
    ``forward(inputs (B, T), state, masks)`` returns ``(scores (B, T, O), final state)``, the state
    being ``(h, c)`` (LSTM) or ``(h,)``, each ``(L, B, H)``, and ``masks`` None or per layer
    ``k >= 1`` a ``(B, T, H)`` dropout mask for that layer's input."""
    torch = require_torch()
    cfg = model.config
    dtype = getattr(torch, cfg.dtype)

    class TorchSequenceModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for name, child in torch_modules(model).named_children():  # embed, rnn, head
                self.add_module(name, child)
            self.__dict__["_layers"] = None  # single-layer views of rnn's weights (dropout), unregistered

        def encode(self, inputs):
            if cfg.input_kind == "embedding":
                return self.embed(inputs)  # (B, T, E)
            if cfg.input_kind == "onehot":
                return torch.nn.functional.one_hot(inputs, cfg.input_size).to(dtype)  # (B, T, V)
            if cfg.input_kind == "scaled_index":
                return (inputs.to(torch.float64) / cfg.input_size).to(dtype)[..., None]  # (B, T, 1)
            return inputs.to(dtype)  # (B, T, D)

        def layers(self):
            """Per layer, a one-layer module sharing ``rnn``'s parameters of that layer."""
            if self._layers is None:
                views = []
                for k in range(cfg.num_layers):
                    view = type(self.rnn)(self.rnn.input_size if k == 0 else cfg.hidden_size, cfg.hidden_size, 1,
                                          batch_first=True, dtype=dtype, device=self.rnn.weight_hh_l0.device)
                    for s in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                        setattr(view, f"{s}_l0", getattr(self.rnn, f"{s}_l{k}"))
                    views.append(view)
                self.__dict__["_layers"] = views
            return self._layers

        def forward(self, inputs, state=None, masks=None):
            x = self.encode(inputs)  # (B, T, D)
            hx = None if state is None else (state if cfg.cell == "lstm" else state[0])
            if masks is None:
                hs, final = self.rnn(x, hx)  # (B, T, H)
                final = final if isinstance(final, tuple) else (final,)
            else:
                finals = []
                for k, layer in enumerate(self.layers()):
                    if k > 0:
                        x = x * masks[k]  # (B, T, H)
                    part = None if state is None else tuple(s[k : k + 1] for s in state)  # (1, B, H) each
                    x, last = layer(x, None if part is None else (part if cfg.cell == "lstm" else part[0]))
                    finals.append(last if isinstance(last, tuple) else (last,))
                hs = x  # (B, T, H)
                final = tuple(torch.cat([f[j] for f in finals]) for j in range(len(finals[0])))  # (L, B, H) each
            return (hs if cfg.head == "none" else self.head(hs)), final  # (B, T, O)

    module = TorchSequenceModel()
    state = {name: torch.from_numpy(value) for name, value in torch_arrays(cfg, model.params).items()}
    module.load_state_dict(state, strict=True)
    for k in range(cfg.num_layers):  # the engine's single bias lives in bias_ih (a GRU's bhn in bias_hh)
        getattr(module.rnn, f"bias_hh_l{k}").requires_grad_(cfg.cell == "gru")
    return module


def head_loss(torch, cfg, scores, targets):
    """The engine's loss (``engine.model``): mean cross-entropy over the ``(B, T)`` positions
    (softmax head) or mean squared error per element of ``(tanh)(scores)`` (linear, tanh)."""
    if cfg.head == "softmax":
        return torch.nn.functional.cross_entropy(scores.reshape(-1, cfg.output_size), targets.reshape(-1))
    outputs = torch.tanh(scores) if cfg.head == "tanh" else scores  # (B, T, O)
    return torch.nn.functional.mse_loss(outputs, targets)


def make_torch_optimizer(torch, name: str, params, hyper: dict):
    """The ``torch.optim`` optimizer matching ``engine.optim.make_optimizer(name, **hyper)``."""
    lr = hyper["lr"]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=hyper["momentum"])
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, eps=hyper["eps"])
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=hyper["alpha"], eps=hyper["eps"])
    return torch.optim.Adam(params, lr=lr, betas=(hyper["beta1"], hyper["beta2"]), eps=hyper["eps"])


class _SyncedStop:
    """A stop event all processes agree on: ``is_set`` is true on every rank once any rank's
    ``local`` event is set (one all-reduce per call), and then sets ``local`` too."""

    def __init__(self, local, torch, device):
        self.local, self._torch, self._device = local, torch, device

    def is_set(self) -> bool:
        flag = self._torch.tensor([1.0 if self.local.is_set() else 0.0], device=self._device)
        self._torch.distributed.all_reduce(flag, op=self._torch.distributed.ReduceOp.MAX)
        if flag.item() > 0:
            self.local.set()
            return True
        return False

    def wait(self, timeout: float) -> bool:
        return self.local.wait(timeout)


class TorchTrainer(Trainer):
    """``engine.train.Trainer`` with each step run in PyTorch (module docstring). Same
    constructor; ``ValueError`` when the batch does not split evenly over the processes. The
    PyTorch state is built from the engine's (``model.params``, ``optimizer``, ``carry``) at the
    first step and copied back by ``save``, ``evaluate`` and at the end of ``run``."""

    def __init__(self, model, corpus, config, rng=None):
        super().__init__(model, corpus, config, rng)
        self.torch = require_torch()
        dist = self.torch.distributed
        on = dist.is_available() and dist.is_initialized()
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if on else (0, 1)
        if config.batch_size % self.world:
            raise ValueError(f"--batch {config.batch_size} does not split evenly over {self.world} processes; "
                             f"use a multiple of {self.world}")
        self.share = config.batch_size // self.world  # rows of every batch this process trains on
        self.rows = slice(self.rank * self.share, (self.rank + 1) * self.share)
        self.device = default_device()
        self.module = None  # the nn.Module (built on the first step)
        self.shards = 1  # PyTorch steps run the batch whole: no engine data parallelism, no shard thread

    # --- the PyTorch state -----------------------------------------------------------------------
    def _build(self) -> None:
        torch = self.torch
        self.module = build_module(self.model).to(self.device)
        self.net = self.module
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.module, device_ids=ids)
        self.trainable = [(n, p) for n, p in self.module.named_parameters() if p.requires_grad]
        self.topt = make_torch_optimizer(torch, self.config.optimizer, [p for _, p in self.trainable],
                                         self.optimizer.hyper)
        self.optimizer.prepare(self.model.params)  # zero slots when the run is fresh
        if self.optimizer.t > 0:  # continue the engine's state: slots in torch's names and shapes
            slots = {slot: torch_arrays(self.model.config, held) for slot, held in self.optimizer.slots.items()}
            keys = SLOT_KEYS[self.config.optimizer]
            if self.config.optimizer == "sgd" and not self.optimizer.hyper["momentum"]:
                keys = {}  # plain SGD keeps no state
            for n, p in self.trainable:
                state = {key: torch.from_numpy(slots[slot][n].copy()).to(self.device) for key, slot in keys.items()}
                if self.config.optimizer != "sgd":
                    state["step"] = torch.tensor(float(self.optimizer.t))  # torch counts steps per parameter
                self.topt.state[p] = state
        self.tcarry = None if self.carry is None else tuple(
            torch.from_numpy(np.stack([layer[j] for layer in self.carry])[:, self.rows].copy()).to(self.device)
            for j in range(len(self.carry[0])))  # (L, B/W, H) each

    def _pull(self) -> None:
        """Copy the PyTorch weights, optimizer slots and carried state (gathered from every
        process: a collective call) back into the engine's objects."""
        if self.module is None:
            return
        torch, cfg = self.torch, self.model.config
        named = dict(self.module.named_parameters())
        self.model.set_params(engine_arrays(cfg, {n: p.detach().cpu().numpy() for n, p in named.items()}))
        slots = {}
        for key, slot in SLOT_KEYS[self.config.optimizer].items():
            held = {n: self.topt.state.get(p, {}).get(key) for n, p in named.items()}
            slots[slot] = engine_arrays(cfg, {n: np.zeros(tuple(named[n].shape), self.model.dtype) if t is None
                                              else t.detach().cpu().numpy() for n, t in held.items()})
        self.optimizer.load_state_dict({**self.optimizer.state_dict(), "slots": slots})
        if self.tcarry is None:
            self.carry = None
            return
        parts = self.tcarry
        if self.world > 1:
            parts = []
            for t in self.tcarry:
                gathered = [torch.empty_like(t) for _ in range(self.world)]
                torch.distributed.all_gather(gathered, t.contiguous())
                parts.append(torch.cat(gathered, dim=1))  # (L, B, H)
        arrays = [t.detach().cpu().numpy() for t in parts]  # (L, B, H) each
        self.carry = [tuple(a[k].copy() for a in arrays) for k in range(cfg.num_layers)]  # per layer (B, H) each

    # --- one step --------------------------------------------------------------------------------
    def _dropout_masks(self, shape: tuple):
        """The engine's dropout masks (``SequenceModel.dropout_masks``, drawn from ``self.rng``)
        for a batch of ``shape`` (B, T): None without dropout, else per layer ``(B/W, T, H)``
        tensors of this process's rows (layer 0: None)."""
        cfg = self.model.config
        if cfg.dropout == 0 or cfg.num_layers == 1:
            return None
        B, T = shape
        return [None if mask is None else
                self.torch.from_numpy(np.ascontiguousarray(mask[:, self.rows].swapaxes(0, 1))).to(self.device)  # (B/W, T, H)
                for mask in self.model.dropout_masks(T, B, self.rng)]  # (T, B, H) each

    def _clip(self) -> float:
        """Clip the gradients as ``engine.optim.clip_grads``; return their global norm before."""
        torch = self.torch
        grads = [p.grad for _, p in self.trainable]
        norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
        if not math.isfinite(norm):
            return norm
        params = [p for _, p in self.trainable]
        if self.config.clip_value is not None:
            torch.nn.utils.clip_grad_value_(params, self.config.clip_value)
        if self.config.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, self.config.clip_norm)
        return norm

    def train_step(self) -> tuple[float, float]:
        """``Trainer.train_step`` (the same rules, return value and ``TrainingDiverged``) with
        ``_gradients``, ``_update`` and ``_keep_carry`` run in PyTorch."""
        if self.module is None:
            self._build()
        return super().train_step()

    def _gradients(self, batch) -> tuple:
        """``(loss averaged over the processes, grad norm before clipping, None, final state)``:
        the gradients stay in the module's ``.grad``, clipped."""
        torch, cfg = self.torch, self.model.config
        masks = self._dropout_masks(batch.x.shape)
        state = None if batch.reset else self.tcarry
        x = torch.from_numpy(np.ascontiguousarray(batch.x[self.rows])).to(self.device)  # (B/W, T)
        y = torch.from_numpy(np.ascontiguousarray(batch.y[self.rows])).to(self.device)  # (B/W, T) or (B/W, T, O)
        if y.is_floating_point():
            y = y.to(getattr(torch, cfg.dtype))
        self.topt.zero_grad(set_to_none=False)
        self.net.train()
        scores, final = self.net(x, state, masks)  # (B/W, T, O)
        loss_t = head_loss(torch, cfg, scores, y)
        loss_t.backward()
        if cfg.cell == "gru":  # bias_hh trains only its n part (the engine's bhn)
            for k in range(cfg.num_layers):
                getattr(self.module.rnn, f"bias_hh_l{k}").grad[: 2 * cfg.hidden_size] = 0
        loss_t = loss_t.detach()
        if self.world > 1:
            torch.distributed.all_reduce(loss_t)
            loss_t /= self.world
        return float(loss_t), self._clip(), None, final

    def _update(self, grads) -> list[str]:
        """``torch.optim``'s step at ``optimizer.hyper["lr"]``; the names of non-finite parameters."""
        for group in self.topt.param_groups:
            group["lr"] = self.optimizer.hyper["lr"]
        self.topt.step()
        self.optimizer.t += 1
        finite = self.torch.stack([self.torch.isfinite(p).all() for _, p in self.trainable])
        return [n for (n, _), ok in zip(self.trainable, finite.tolist()) if not ok]

    def _keep_carry(self, final) -> None:
        self.tcarry = tuple(s.detach() for s in final) if self.config.batching == "sequential" else None
        self.carry = None  # the engine's copy is stale until _pull

    # --- last-good snapshots (the engine's rules, on the PyTorch tensors) ------------------------
    def _snapshot_init(self) -> None:
        self._good = [{"params": {}, "opt": {}}, {"params": {}, "opt": {}}]
        self._save_good()
        self._save_good()

    def _save_good(self) -> None:
        self._good.reverse()
        good = self._good[0]
        with self.torch.no_grad():
            for n, p in self.trainable:
                _copy_into(good["params"], n, p)
            kept = {}
            for n, p in self.trainable:
                for key, t in self.topt.state.get(p, {}).items():
                    _copy_into(good["opt"], (n, key), t)
                    kept[(n, key)] = True
            good["opt_keys"] = kept
        good.update(t=self.optimizer.t, step=self.step, batches_taken=self.batches_taken,
                    rng=self.rng.bit_generator.state, smooth_loss=self.smooth_loss, min_loss=self.min_loss,
                    first_loss=self.first_loss, norm_mean=self.norm_mean,
                    tcarry=None if self.tcarry is None else tuple(t.clone() for t in self.tcarry))

    def _restore_good(self, back: int = 0) -> None:
        good = self._good[back]
        with self.torch.no_grad():
            for n, p in self.trainable:
                p.copy_(good["params"][n])
                self.topt.state[p] = {key: good["opt"][(m, key)].clone() for (m, key) in good["opt_keys"] if m == n}
        self.optimizer.t = good["t"]
        self.rng.bit_generator.state = good["rng"]
        self.step, self.batches_taken = good["step"], good["batches_taken"]
        self.tcarry = None if good["tcarry"] is None else tuple(t.clone() for t in good["tcarry"])
        self.smooth_loss, self.min_loss = good["smooth_loss"], good["min_loss"]
        self.first_loss, self.norm_mean = good["first_loss"], good["norm_mean"]
        self._batch_iter = None
        if back:
            self._save_good()
            self._save_good()

    # --- the loop, evaluation, saving --------------------------------------------------------------
    def run(self, stop=None, pause=None):
        """``Trainer.run``; with several processes the stop event is agreed on by all of them
        (and ``pause`` is refused: ValueError). The engine's objects hold the final state when
        the ``done`` progress is yielded."""
        if self.world > 1:
            if pause is not None:
                raise ValueError("pausing is not supported with several processes")
            if stop is not None:
                stop = _SyncedStop(stop, self.torch, self.device if self.device.type == "cuda" else "cpu")
        for progress in super().run(stop, pause):
            if progress.done:
                self._pull()
            yield progress

    # the engine's validation pass after PyTorch steps runs on untouched NumPy buffers: a first
    # pass measured 1.2-1.6 x the next ones (H 128 and 256, B 32, 40 kB of validation text)
    EVALUATION_WARMUP = 1

    @contextlib.contextmanager
    def _threads(self):
        """``Trainer._threads`` with ``shards`` 1 (the engine's validation pass at
        ``blas_threads_for`` BLAS threads, no shard worker), and ``cpu_threads`` (PyTorch's threads
        on the CPU) at the load that plan measured: one measurement at most."""
        with super()._threads():
            with cpu_threads(self.torch, self.device, self.model.config.hidden_size, self.share, self.plan.load):
                yield

    def _scratch(self) -> "TorchTrainer":
        """``Trainer._scratch`` of the PyTorch weights (copied back first: a collective call)."""
        self._pull()
        return super()._scratch()

    def evaluate(self, stop=None):
        """The engine's validation loss of the current weights (``Dataset.validation_loss``),
        computed on rank 0 and shared with every process."""
        local = stop.local if isinstance(stop, _SyncedStop) else stop
        value = None
        if self.rank == 0:
            if self.module is not None:
                torch_state = {n: p.detach().cpu().numpy() for n, p in self.module.named_parameters()}
                self.model.set_params(engine_arrays(self.model.config, torch_state))
            value = super().evaluate(local)
        if self.world > 1:
            shared = self.torch.tensor([math.nan if value is None else value], dtype=self.torch.float64,
                                       device=self.device if self.device.type == "cuda" else "cpu")
            self.torch.distributed.broadcast(shared, src=0)
            value = None if math.isnan(shared.item()) else shared.item()
        return value

    def save(self, path, extra: dict | None = None) -> None:
        """``Trainer.save`` of the PyTorch state (every process must call it; rank 0 writes)."""
        self._pull()
        if self.rank == 0:
            super().save(path, extra)


def _copy_into(store: dict, key, tensor) -> None:
    """``store[key] = tensor`` by copying into the tensor held there (allocated on first use)."""
    held = store.get(key)
    if held is None or held.shape != tensor.shape:
        store[key] = tensor.detach().clone()
    else:
        held.copy_(tensor)


def on_torch(trainer: Trainer) -> TorchTrainer:
    """A ``TorchTrainer`` continuing ``trainer`` exactly (weights, optimizer, data position,
    RNG, carried state and statistics), through ``Trainer.from_checkpoint``. Joins the
    ``torchrun`` process group first when there is one."""
    start_distributed()
    ckpt = Checkpoint(model=trainer.model, vocab=getattr(trainer.corpus, "vocab", None), step=trainer.step,
                      optimizer_state=trainer.optimizer.state_dict(), train_state=trainer.train_state(),
                      train_config=trainer.config.to_dict())
    return TorchTrainer.from_checkpoint(ckpt, trainer.corpus)
