"""First-order optimizers and gradient clipping, matching ``torch.optim`` update for update.

Every optimizer updates a flat parameter dict (``{name: ndarray}``, e.g. ``SequenceModel.params``)
*in place* from a gradient dict with the same names and shapes. Per-parameter state ("slots")
and scratch buffers are allocated once, on the first step, and every update uses ``out=``
ufuncs, so a step allocates nothing: it sits in the training hot path.

Updates, with ``g`` the gradient, ``t`` the 1-based step count and ``lr`` the learning rate::

    sgd       v = momentum * v + g;                         p -= lr * v   (momentum 0: p -= lr * g)
    adagrad   s = s + g^2;                                  p -= lr * g / (sqrt(s) + eps)
    rmsprop   s = alpha * s + (1 - alpha) * g^2;            p -= lr * g / (sqrt(s) + eps)
    adam      m = m + (1 - b1) * (g - m);  v = b2 * v + (1 - b2) * g^2
              p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

State format (``state_dict`` / ``load_state_dict``, saved in checkpoints; arrays are copies)::

    {"name": "adam", "hyper": {"lr": 0.002, "beta1": 0.9, ...}, "t": 12,
     "slots": {"m": {param_name: ndarray}, "v": {...}}}
"""

from __future__ import annotations

import math

import numpy as np

OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam")


def _check_real(name: str, value, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a float after checking it is a finite real number in the given range."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return value


class Optimizer:
    """Base class: hyperparameters, slot allocation, the step counter and state round trips.

    Subclasses set ``name``, ``slot_names`` and ``defaults`` (hyperparameter -> default) and
    implement ``_validate`` and ``_update(p, g, slots, tmp)`` for one parameter.
    """

    name: str = ""
    slot_names: tuple[str, ...] = ()
    defaults: dict = {}

    def __init__(self, lr: float, **hyper):
        unknown = set(hyper) - set(self.defaults)
        if unknown:
            raise ValueError(f"unknown {self.name} hyperparameter(s) {sorted(unknown)}; "
                             f"expected some of {sorted(self.defaults)}")
        merged = {"lr": lr, **self.defaults, **hyper}
        self.hyper = self._validate(merged)
        self.t = 0  # number of updates applied
        self.slots: dict = {slot: {} for slot in self.slot_names}  # slot -> param name -> array
        self._tmp: dict = {}  # param name -> scratch array
        self._checked = False  # slot names/shapes verified against the params

    @property
    def lr(self) -> float:
        return self.hyper["lr"]

    def _validate(self, hyper: dict) -> dict:
        """Checked hyperparameters (floats); raise ValueError on a bad one."""
        hyper = dict(hyper)
        hyper["lr"] = _check_real("lr", hyper["lr"], low=0.0, low_open=True)
        return hyper

    # --- the update -------------------------------------------------------------------------
    def step(self, params: dict, grads: dict) -> None:
        """Apply one update to every parameter in ``params`` (in place)."""
        if set(grads) != set(params):
            raise ValueError(f"gradients do not match the parameters: {sorted(set(params) ^ set(grads))}")
        self.prepare(params)
        self.t += 1
        self._begin_step()
        for name, p in params.items():
            self._update(p, grads[name], {slot: self.slots[slot][name] for slot in self.slot_names},
                         self._tmp[name])

    def _begin_step(self) -> None:
        """Per-step scalars (e.g. Adam's bias corrections); called after ``t`` is incremented."""

    def _update(self, p: np.ndarray, g: np.ndarray, slots: dict, tmp: np.ndarray) -> None:
        raise NotImplementedError

    def prepare(self, params: dict) -> None:
        """Allocate zero slots and scratch for ``params`` (once), or check that loaded slots
        match their names and shapes. ``step`` calls it; callers may call it earlier to get
        ``slots`` allocated."""
        if self._checked:
            return
        for slot in self.slot_names:
            held = self.slots[slot]
            if not held:
                self.slots[slot] = {name: np.zeros_like(p) for name, p in params.items()}
            elif set(held) != set(params) or any(held[n].shape != p.shape for n, p in params.items()):
                raise ValueError(f"{self.name} state slot {slot!r} does not match the model's parameters")
            else:
                self.slots[slot] = {name: np.ascontiguousarray(held[name], dtype=p.dtype)
                                    for name, p in params.items()}
        self._tmp = {name: np.empty_like(p) for name, p in params.items()}
        self._checked = True

    # --- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """A copy of the full state (see module docstring)."""
        return {
            "name": self.name,
            "hyper": dict(self.hyper),
            "t": int(self.t),
            "slots": {slot: {n: a.copy() for n, a in held.items()} for slot, held in self.slots.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict`` (copied). Raises ValueError if it is for another optimizer
        or malformed; slot shapes are checked against the params on the next ``step``."""
        if not isinstance(state, dict) or state.get("name") != self.name:
            got = state.get("name") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"optimizer state is for {got!r}, not {self.name!r}")
        hyper = state.get("hyper")
        if not isinstance(hyper, dict) or set(hyper) != set(self.hyper):
            raise ValueError(f"{self.name} state must hold hyperparameters {sorted(self.hyper)}")
        t = state.get("t")
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
            raise ValueError(f"optimizer step count must be a non-negative integer, got {t!r}")
        slots = state.get("slots")
        if not isinstance(slots, dict) or set(slots) != set(self.slot_names):
            raise ValueError(f"{self.name} state must hold slots {list(self.slot_names)}")
        copied = {}
        for slot, held in slots.items():
            if not isinstance(held, dict):
                raise ValueError(f"{self.name} state slot {slot!r} must map parameter names to arrays")
            copied[slot] = {}
            for n, a in held.items():
                a = np.array(a, copy=True)
                if a.dtype.kind != "f" or not np.all(np.isfinite(a)):
                    raise ValueError(f"{self.name} state slot {slot!r}[{n!r}] must be finite floats")
                copied[slot][n] = a
        self.hyper = self._validate(hyper)
        self.t = int(t)
        self.slots = copied
        self._checked = False


class SGD(Optimizer):
    """Stochastic gradient descent with optional (heavy-ball) momentum, as ``torch.optim.SGD``."""

    name = "sgd"
    slot_names = ("momentum",)
    defaults = {"momentum": 0.0}

    def _validate(self, hyper: dict) -> dict:
        hyper = super()._validate(hyper)
        hyper["momentum"] = _check_real("momentum", hyper["momentum"], low=0.0, high=1.0, high_open=True)
        return hyper

    def _update(self, p, g, slots, tmp):
        lr, mu = self.hyper["lr"], self.hyper["momentum"]
        if mu:
            v = slots["momentum"]  # (*shape)
            v *= mu
            v += g  # v = mu v + g
            np.multiply(v, lr, out=tmp)  # lr v
        else:
            np.multiply(g, lr, out=tmp)  # lr g
        p -= tmp


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), as ``torch.optim.Adagrad`` with no lr decay."""

    name = "adagrad"
    slot_names = ("sum",)
    defaults = {"eps": 1e-10}

    def _validate(self, hyper: dict) -> dict:
        hyper = super()._validate(hyper)
        hyper["eps"] = _check_real("eps", hyper["eps"], low=0.0, low_open=True)
        return hyper

    def _update(self, p, g, slots, tmp):
        s = slots["sum"]  # (*shape)
        np.multiply(g, g, out=tmp)
        s += tmp  # s = s + g^2
        np.sqrt(s, out=tmp)
        tmp += self.hyper["eps"]  # sqrt(s) + eps
        np.divide(g, tmp, out=tmp)
        tmp *= self.hyper["lr"]
        p -= tmp


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012), as ``torch.optim.RMSprop`` (no momentum, not centered)."""

    name = "rmsprop"
    slot_names = ("square_avg",)
    defaults = {"alpha": 0.99, "eps": 1e-8}

    def _validate(self, hyper: dict) -> dict:
        hyper = super()._validate(hyper)
        hyper["alpha"] = _check_real("alpha", hyper["alpha"], low=0.0, high=1.0, high_open=True)
        hyper["eps"] = _check_real("eps", hyper["eps"], low=0.0, low_open=True)
        return hyper

    def _update(self, p, g, slots, tmp):
        alpha = self.hyper["alpha"]
        s = slots["square_avg"]  # (*shape)
        s *= alpha
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - alpha
        s += tmp  # s = alpha s + (1 - alpha) g^2
        np.sqrt(s, out=tmp)
        tmp += self.hyper["eps"]  # sqrt(s) + eps
        np.divide(g, tmp, out=tmp)
        tmp *= self.hyper["lr"]
        p -= tmp


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, as ``torch.optim.Adam`` (no weight decay)."""

    name = "adam"
    slot_names = ("m", "v")
    defaults = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}

    def _validate(self, hyper: dict) -> dict:
        hyper = super()._validate(hyper)
        for name in ("beta1", "beta2"):
            hyper[name] = _check_real(name, hyper[name], low=0.0, high=1.0, high_open=True)
        hyper["eps"] = _check_real("eps", hyper["eps"], low=0.0, low_open=True)
        return hyper

    def _begin_step(self) -> None:
        h = self.hyper
        self._step_size = h["lr"] / (1.0 - h["beta1"] ** self.t)  # lr / (1 - b1^t)
        self._bc2_sqrt = math.sqrt(1.0 - h["beta2"] ** self.t)  # sqrt(1 - b2^t)

    def _update(self, p, g, slots, tmp):
        b1, b2 = self.hyper["beta1"], self.hyper["beta2"]
        m, v = slots["m"], slots["v"]  # (*shape) each
        np.subtract(g, m, out=tmp)
        tmp *= 1.0 - b1
        m += tmp  # m = m + (1 - b1)(g - m)   (torch's lerp)
        v *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        v += tmp  # v = b2 v + (1 - b2) g^2
        np.sqrt(v, out=tmp)
        tmp /= self._bc2_sqrt
        tmp += self.hyper["eps"]  # sqrt(v_hat) + eps
        np.divide(m, tmp, out=tmp)
        tmp *= self._step_size
        p -= tmp


_CLASSES = {cls.name: cls for cls in (SGD, Adagrad, RMSprop, Adam)}


def make_optimizer(name: str, lr: float, **hyper) -> Optimizer:
    """Build the optimizer ``name`` (one of ``OPTIMIZERS``) with learning rate ``lr`` > 0.

    ``hyper``: ``momentum`` in [0, 1) for sgd; ``eps`` > 0 for adagrad (1e-10), rmsprop (1e-8)
    and adam (1e-8); ``alpha`` in [0, 1) for rmsprop (0.99); ``beta1``, ``beta2`` in [0, 1)
    for adam (0.9, 0.999). Anything else raises ValueError.
    """
    if name not in _CLASSES:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {OPTIMIZERS}")
    return _CLASSES[name](lr, **hyper)


def optimizer_from_state(state: dict) -> Optimizer:
    """Rebuild an optimizer from a ``state_dict`` (its name and hyperparameters included)."""
    if not isinstance(state, dict) or not isinstance(state.get("hyper"), dict):
        raise ValueError("optimizer state must be a dict with 'name' and 'hyper'")
    hyper = dict(state["hyper"])
    opt = make_optimizer(state.get("name"), hyper.pop("lr", None), **hyper)
    opt.load_state_dict(state)
    return opt


def global_norm(grads: dict) -> float:
    """L2 norm of all gradients together, ``sqrt(sum_k ||g_k||^2)``; inf/nan propagate."""
    total = 0.0
    for g in grads.values():
        flat = g.reshape(-1)  # (N,) view
        total += float(np.dot(flat, flat))
    return math.sqrt(total)  # sqrt(nan) is nan, sqrt(inf) is inf


def clip_grads(grads: dict, max_norm: float | None = None, max_value: float | None = None) -> float:
    """Clip gradients in place; return their global L2 norm *before* any clipping.

    ``max_value``: clamp every element to [-max_value, max_value] (``clip_grad_value_``),
    applied first. ``max_norm``: then scale all gradients by
    ``min(1, max_norm / (norm + 1e-6))`` (``clip_grad_norm_``). A non-finite norm is returned
    as is and nothing is scaled: the caller decides what to do.
    """
    if max_norm is not None:
        max_norm = _check_real("max_norm", max_norm, low=0.0, low_open=True)
    if max_value is not None:
        max_value = _check_real("max_value", max_value, low=0.0, low_open=True)
    norm = global_norm(grads)
    if not math.isfinite(norm):
        return norm
    if max_value is not None:
        for g in grads.values():
            np.clip(g, -max_value, max_value, out=g)
    if max_norm is not None:
        clipped = global_norm(grads) if max_value is not None else norm
        coef = max_norm / (clipped + 1e-6)
        if coef < 1.0:
            for g in grads.values():
                g *= coef
    return norm
