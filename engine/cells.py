"""LSTM and vanilla-RNN cells: parameters, one step, sequence forward and BPTT backward.

LSTM (Hochreiter & Schmidhuber 1997, with forget gate; PyTorch's ``nn.LSTM`` equations)::

    i_t = sigmoid(x_t Wx_i + h_{t-1} Wh_i + b_i)      input gate,      in (0, 1)
    f_t = sigmoid(x_t Wx_f + h_{t-1} Wh_f + b_f)      forget gate,     in (0, 1)
    g_t = tanh   (x_t Wx_g + h_{t-1} Wh_g + b_g)      candidate,       in (-1, 1)
    o_t = sigmoid(x_t Wx_o + h_{t-1} Wh_o + b_o)      output gate,     in (0, 1)
    c_t = f_t * c_{t-1} + i_t * g_t                   cell state,      unbounded
    h_t = o_t * tanh(c_t)                             hidden state,    in (-1, 1)

Vanilla RNN (Elman)::

    h_t = tanh(x_t Wx + h_{t-1} Wh + b)

Public parameter layout (one fused matrix per input, PyTorch's gate order i, f, g, o):
``Wx (D, 4H)``, ``Wh (H, 4H)``, ``b (4H,)``; batches are rows, ``x (B, D) @ Wx``.
PyTorch mapping: ``Wx = weight_ih_l0.T``, ``Wh = weight_hh_l0.T``, ``b = bias_ih_l0 + bias_hh_l0``.

Speed: the hot loops work on *prepared* weights (``Prepared``): LSTM columns reordered to
i, f, o, g so the three sigmoid gates form one contiguous slice, and the sigmoid columns
pre-scaled by 0.5 so that a single ``tanh`` over all 4H columns computes every gate
(``sigmoid(z) = 0.5 + 0.5 * tanh(0.5 z)``). Gradients come back in the public layout.
Sequence internals are time-major ``(T, B, ...)``; the public wrappers take ``(B, T, ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GATES = ("i", "f", "g", "o")
CELL_TYPES = ("lstm", "rnn")


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function in (0, 1) via tanh: never overflows, for any finite or infinite input."""
    return 0.5 + 0.5 * np.tanh(0.5 * z)  # same shape as z


def check_finite(name: str, a: np.ndarray) -> None:
    """Raise ValueError if ``a`` holds NaN or infinity."""
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinity; expected finite values")


def _check_array(name: str, a: np.ndarray, shape: tuple, dtype: np.dtype) -> None:
    """Validate a float array's shape (None = any size) and dtype, and that it is finite."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a NumPy array of shape {shape}, got {type(a).__name__}")
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        expected = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {expected}, got {a.shape}")
    if a.dtype != dtype:
        raise ValueError(f"{name} must have dtype {np.dtype(dtype).name}, got {a.dtype.name}")
    check_finite(name, a)


@dataclass(frozen=True)
class Prepared:
    """Weights rearranged for the hot loops (see module docstring). Never edited in place.

    ``Wx_s (D, G)``, ``Wh_s (H, G)``, ``b_s (G,)``: internal column order, sigmoid columns x0.5.
    ``Wx_u (D, G)``, ``Wh_u (H, G)``: internal order, unscaled (for the backward products).
    """

    Wx_s: np.ndarray  # (D, G)
    Wh_s: np.ndarray  # (H, G)
    b_s: np.ndarray  # (G,)
    Wx_u: np.ndarray  # (D, G)
    Wh_u: np.ndarray  # (H, G)


class _Cell:
    """Shared shape checks and the public batch-major wrappers around the time-major core."""

    kind: str
    state_names: tuple[str, ...]
    record_names: tuple[str, ...]
    gate_count: int

    def __init__(self, input_size: int, hidden_size: int):
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.input_size = int(input_size)  # D
        self.hidden_size = int(hidden_size)  # H
        self.width = self.gate_count * self.hidden_size  # G

    # --- parameters -------------------------------------------------------------------------
    def init_params(self, rng: np.random.Generator, dtype=np.float32, forget_bias: float = 1.0) -> dict:
        """Uniform(-1/sqrt(H), 1/sqrt(H)) weights and biases (PyTorch's default), plus
        ``forget_bias`` added to the LSTM forget-gate bias (0 to switch it off)."""
        k = 1.0 / np.sqrt(self.hidden_size)
        D, H, G = self.input_size, self.hidden_size, self.width
        params = {
            "Wx": rng.uniform(-k, k, size=(D, G)).astype(dtype),  # (D, G)
            "Wh": rng.uniform(-k, k, size=(H, G)).astype(dtype),  # (H, G)
            "b": rng.uniform(-k, k, size=(G,)).astype(dtype),  # (G,)
        }
        self._add_forget_bias(params["b"], forget_bias)
        return params

    def _add_forget_bias(self, b: np.ndarray, forget_bias: float) -> None:
        """Only the LSTM has a forget gate."""

    def check_params(self, params: dict) -> np.dtype:
        """Validate the parameter dict; return its dtype."""
        dtype = np.asarray(params.get("Wh")).dtype
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"parameters must be float32 or float64, got {dtype}")
        D, H, G = self.input_size, self.hidden_size, self.width
        for name, shape in (("Wx", (D, G)), ("Wh", (H, G)), ("b", (G,))):
            if name not in params:
                raise ValueError(f"missing parameter {name!r} of shape {shape}")
            _check_array(name, params[name], shape, dtype)
        return dtype

    def zero_state(self, batch: int, dtype=np.float32) -> tuple:
        """All-zero state: one ``(B, H)`` array per name in ``state_names``."""
        return tuple(np.zeros((batch, self.hidden_size), dtype) for _ in self.state_names)

    def check_state(self, state, batch: int, dtype, label: str = "state") -> tuple:
        if state is None:
            return self.zero_state(batch, dtype)
        state = tuple(state)
        if len(state) != len(self.state_names):
            raise ValueError(f"{label} must be a tuple {self.state_names} of (B, H) arrays")
        for name, s in zip(self.state_names, state):
            _check_array(f"{label} {name}0", s, (batch, self.hidden_size), dtype)
        return state

    # --- public one-step API ------------------------------------------------------------------
    def step(self, params: dict, x: np.ndarray, state=None):
        """Advance one timestep.

        ``x (B, D)``, ``state`` a tuple of ``(B, H)`` arrays (None = zeros). Returns
        ``(new_state, record)`` where ``record`` maps each of ``record_names`` to ``(B, H)``
        and ``"pre"`` to the pre-activations ``(B, G)`` in the public gate order.
        """
        dtype = self.check_params(params)
        _check_array("x", x, (None, self.input_size), dtype)
        state = self.check_state(state, x.shape[0], dtype)
        prep = self.prepare(params)
        xp = x @ prep.Wx_s + prep.b_s  # (B, G)
        return self.step_projected(prep, xp, state)

    # --- public sequence API ------------------------------------------------------------------
    def forward(self, params: dict, x: np.ndarray, state=None):
        """Run a sequence. ``x (B, T, D)``; returns ``(hs (B, T, H), final_state, cache)``."""
        dtype = self.check_params(params)
        _check_array("x", x, (None, None, self.input_size), dtype)
        B, T, _ = x.shape
        if T < 1:
            raise ValueError("x must have at least one timestep (T >= 1)")
        state = self.check_state(state, B, dtype)
        prep = self.prepare(params)
        x_tm = np.ascontiguousarray(x.transpose(1, 0, 2))  # (T, B, D)
        xp = x_tm @ prep.Wx_s + prep.b_s  # (T, B, G)
        hs, final, cache = self.forward_tm(prep, xp, state)
        cache["x_tm"] = x_tm  # (T, B, D)
        cache["prep"] = prep
        return np.ascontiguousarray(hs.transpose(1, 0, 2)), final, cache  # (B, T, H)

    def backward(self, params: dict, cache: dict, dhs: np.ndarray, dstate=None):
        """BPTT through a ``forward`` call; never mutates its inputs.

        ``dhs (B, T, H)`` is dLoss/dh_t from above; ``dstate`` the gradient w.r.t. the final
        state (None = zeros, use it to carry truncated-BPTT gradients). Returns
        ``(grads {"Wx", "Wh", "b"}, dx (B, T, D), dstate0)``.
        """
        prep = cache["prep"]
        x_tm = cache["x_tm"]  # (T, B, D)
        T, B, D = x_tm.shape
        _check_array("dhs", dhs, (B, T, self.hidden_size), x_tm.dtype)
        if dstate is not None:
            self.check_state(dstate, B, x_tm.dtype, label="dstate")
        dhs_tm = np.ascontiguousarray(dhs.transpose(1, 0, 2))  # (T, B, H)
        dz, dWh, dstate0 = self.backward_tm(prep, cache, dhs_tm, dstate)
        dz2 = dz.reshape(T * B, self.width)  # (T*B, G)
        grads = {
            "Wx": self.to_public(x_tm.reshape(T * B, D).T @ dz2),  # (D, G)
            "Wh": dWh,  # (H, G)
            "b": self.to_public(dz2.sum(axis=0)),  # (G,)
        }
        dx = (dz2 @ prep.Wx_u.T).reshape(T, B, D).transpose(1, 0, 2)  # (B, T, D)
        return grads, np.ascontiguousarray(dx), dstate0


class LSTMCell(_Cell):
    """Long short-term memory cell; state ``(h, c)``; records i, f, g, o, c, h."""

    kind = "lstm"
    state_names = ("h", "c")
    record_names = ("i", "f", "g", "o", "c", "h")
    gate_count = 4

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        H = self.hidden_size
        # internal order i, f, o, g: internal column j holds public column _perm[j]
        self._perm = np.concatenate([np.arange(0, 2 * H), np.arange(3 * H, 4 * H), np.arange(2 * H, 3 * H)])  # (G,)
        self._inv = np.argsort(self._perm)  # (G,)
        self._scale = np.concatenate([np.full(3 * H, 0.5), np.ones(H)])  # (G,) internal order

    def _add_forget_bias(self, b: np.ndarray, forget_bias: float) -> None:
        H = self.hidden_size
        b[H : 2 * H] += forget_bias  # (H,) the f block

    def prepare(self, params: dict) -> Prepared:
        """Reorder to internal i, f, o, g and pre-scale the sigmoid columns by 0.5."""
        dtype = params["Wh"].dtype
        scale = self._scale.astype(dtype)  # (G,)
        Wx_u = np.ascontiguousarray(params["Wx"][:, self._perm])  # (D, G)
        Wh_u = np.ascontiguousarray(params["Wh"][:, self._perm])  # (H, G)
        return Prepared(
            Wx_s=Wx_u * scale,  # (D, G)
            Wh_s=Wh_u * scale,  # (H, G)
            b_s=params["b"][self._perm] * scale,  # (G,)
            Wx_u=Wx_u,
            Wh_u=Wh_u,
        )

    def to_public(self, a: np.ndarray) -> np.ndarray:
        """Reorder the last axis from internal (i, f, o, g) to public (i, f, g, o) columns."""
        return np.ascontiguousarray(a[..., self._inv])  # (..., G)

    def pre_activations(self, zs: np.ndarray) -> np.ndarray:
        """True pre-activations in public order from the scaled internal ones."""
        return self.to_public(zs / self._scale.astype(zs.dtype))  # (..., G)

    def step_projected(self, prep: Prepared, xp: np.ndarray, state: tuple):
        """One step from the projected input ``xp = x Wx_s + b_s (B, G)``; see ``step``."""
        h_prev, c_prev = state  # (B, H), (B, H)
        H = self.hidden_size
        zs = h_prev @ prep.Wh_s  # (B, G)
        zs += xp  # (B, G) scaled pre-activations
        a = np.tanh(zs)  # (B, G)
        a[:, : 3 * H] *= 0.5  # (B, 3H)
        a[:, : 3 * H] += 0.5  # (B, 3H) i, f, o now sigmoids
        i, f, o, g = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]  # (B, H) each
        c = f * c_prev + i * g  # (B, H)
        h = o * np.tanh(c)  # (B, H)
        record = {"i": i, "f": f, "g": g, "o": o, "c": c, "h": h, "pre": self.pre_activations(zs)}
        return (h, c), record

    def forward_tm(self, prep: Prepared, xp: np.ndarray, state: tuple, keep_pre: bool = False):
        """Time-major forward. ``xp (T, B, G)`` projected inputs (scaled, internal order).

        Returns ``(hs (T, B, H), (h_T, c_T), cache)``; the cache holds the gate activations,
        cell states and tanh(c) that ``backward_tm`` consumes (and ``pre`` if ``keep_pre``).
        """
        T, B, G = xp.shape
        H = self.hidden_size
        dtype = xp.dtype
        acts = np.empty((T, B, G), dtype)  # (T, B, G) i, f, o, g after activation
        hs = np.empty((T + 1, B, H), dtype)  # (T+1, B, H) hs[0] = h0
        cs = np.empty((T + 1, B, H), dtype)  # (T+1, B, H) cs[0] = c0
        tc = np.empty((T, B, H), dtype)  # (T, B, H) tanh(c_t)
        ig = np.empty((B, H), dtype)  # (B, H) scratch for i * g
        hs[0], cs[0] = state
        Wh_s = prep.Wh_s
        pre = np.empty((T, B, G), dtype) if keep_pre else None  # (T, B, G)
        for t in range(T):
            a = acts[t]  # (B, G)
            np.matmul(hs[t], Wh_s, out=a)  # (B, G)
            a += xp[t]  # (B, G) scaled pre-activation
            if keep_pre:
                pre[t] = a  # (B, G)
            np.tanh(a, out=a)  # (B, G)
            s = a[:, : 3 * H]  # (B, 3H) view
            s *= 0.5
            s += 0.5  # (B, 3H) i, f, o
            np.multiply(a[:, H : 2 * H], cs[t], out=cs[t + 1])  # (B, H) f * c_prev
            np.multiply(a[:, :H], a[:, 3 * H :], out=ig)  # (B, H) i * g
            cs[t + 1] += ig  # (B, H)
            np.tanh(cs[t + 1], out=tc[t])  # (B, H)
            np.multiply(a[:, 2 * H : 3 * H], tc[t], out=hs[t + 1])  # (B, H) o * tanh(c)
        cache = {"acts": acts, "hs": hs, "cs": cs, "tc": tc, "pre": pre}
        return hs[1:], (hs[T].copy(), cs[T].copy()), cache

    def backward_tm(self, prep: Prepared, cache: dict, dhs: np.ndarray, dstate=None, record: dict | None = None):
        """Time-major BPTT. ``dhs (T, B, H)``; returns ``(dz (T, B, G), dWh (H, G) public,
        (dh0, dc0))`` where ``dz`` is dLoss/d(pre-activation) in the internal order.

        If ``record`` is a dict, it receives ``"dh" (T, B, H)``, the total dLoss/dh_t, and
        ``"dc" (T, B, H)``, the total dLoss/dc_t (before the product with f_t)."""
        acts, hs, cs, tc = cache["acts"], cache["hs"], cache["cs"], cache["tc"]
        T, B, G = acts.shape
        H = self.hidden_size
        dtype = acts.dtype
        deriv = np.empty_like(acts)  # (T, B, G) d(activation)/d(pre-activation)
        np.subtract(1.0, acts, out=deriv)  # (T, B, G)
        deriv[..., : 3 * H] *= acts[..., : 3 * H]  # (T, B, 3H) s (1 - s)
        np.multiply(acts[..., 3 * H :], acts[..., 3 * H :], out=deriv[..., 3 * H :])  # (T, B, H) g^2
        np.subtract(1.0, deriv[..., 3 * H :], out=deriv[..., 3 * H :])  # (T, B, H) 1 - g^2
        dtc = np.multiply(tc, tc)  # (T, B, H)
        np.subtract(1.0, dtc, out=dtc)  # (T, B, H) 1 - tanh(c)^2
        dz = np.empty((T, B, G), dtype)  # (T, B, G)
        if dstate is None:
            dh_rec = np.zeros((B, H), dtype)  # (B, H)
            dc = np.zeros((B, H), dtype)  # (B, H)
        else:
            dh_rec = np.array(dstate[0], dtype=dtype)  # (B, H) copy: never mutate inputs
            dc = np.array(dstate[1], dtype=dtype)  # (B, H)
        dh = np.empty((B, H), dtype)  # (B, H)
        tmp = np.empty((B, H), dtype)  # (B, H)
        WhT = prep.Wh_u.T  # (G, H) view
        if record is not None:
            rec_dh = record["dh"] = np.empty((T, B, H), dtype)  # (T, B, H)
            rec_dc = record["dc"] = np.empty((T, B, H), dtype)  # (T, B, H)
        for t in range(T - 1, -1, -1):
            a = acts[t]  # (B, G)
            d = dz[t]  # (B, G)
            np.add(dhs[t], dh_rec, out=dh)  # (B, H)
            np.multiply(dh, tc[t], out=d[:, 2 * H : 3 * H])  # (B, H) dL/do
            np.multiply(dh, a[:, 2 * H : 3 * H], out=tmp)  # (B, H) dL/dtanh(c)
            tmp *= dtc[t]  # (B, H)
            dc += tmp  # (B, H) dL/dc_t
            if record is not None:
                rec_dh[t] = dh  # (B, H)
                rec_dc[t] = dc  # (B, H)
            np.multiply(dc, a[:, 3 * H :], out=d[:, :H])  # (B, H) dL/di = dc * g
            np.multiply(dc, cs[t], out=d[:, H : 2 * H])  # (B, H) dL/df = dc * c_prev
            np.multiply(dc, a[:, :H], out=d[:, 3 * H :])  # (B, H) dL/dg = dc * i
            dc *= a[:, H : 2 * H]  # (B, H) dL/dc_{t-1}
            d *= deriv[t]  # (B, G) dL/dz
            np.matmul(d, WhT, out=dh_rec)  # (B, H) dL/dh_{t-1}
        dWh = hs[:-1].reshape(T * B, H).T @ dz.reshape(T * B, G)  # (H, G)
        return dz, self.to_public(dWh), (dh_rec, dc)


class RNNCell(_Cell):
    """Vanilla (Elman) RNN cell; state ``(h,)``; records h only."""

    kind = "rnn"
    state_names = ("h",)
    record_names = ("h",)
    gate_count = 1

    def prepare(self, params: dict) -> Prepared:
        Wx = np.ascontiguousarray(params["Wx"])  # (D, H)
        Wh = np.ascontiguousarray(params["Wh"])  # (H, H)
        return Prepared(Wx_s=Wx, Wh_s=Wh, b_s=params["b"], Wx_u=Wx, Wh_u=Wh)

    def to_public(self, a: np.ndarray) -> np.ndarray:
        return a

    def pre_activations(self, zs: np.ndarray) -> np.ndarray:
        return zs.copy()  # (..., H)

    def step_projected(self, prep: Prepared, xp: np.ndarray, state: tuple):
        (h_prev,) = state  # (B, H)
        z = h_prev @ prep.Wh_s  # (B, H)
        z += xp  # (B, H)
        h = np.tanh(z)  # (B, H)
        return (h,), {"h": h, "pre": z}

    def forward_tm(self, prep: Prepared, xp: np.ndarray, state: tuple, keep_pre: bool = False):
        T, B, H = xp.shape
        hs = np.empty((T + 1, B, H), xp.dtype)  # (T+1, B, H) hs[0] = h0
        hs[0] = state[0]
        pre = np.empty((T, B, H), xp.dtype) if keep_pre else None  # (T, B, H)
        for t in range(T):
            z = hs[t + 1]  # (B, H)
            np.matmul(hs[t], prep.Wh_s, out=z)  # (B, H)
            z += xp[t]  # (B, H)
            if keep_pre:
                pre[t] = z
            np.tanh(z, out=z)  # (B, H)
        cache = {"hs": hs, "pre": pre}
        return hs[1:], (hs[T].copy(),), cache

    def backward_tm(self, prep: Prepared, cache: dict, dhs: np.ndarray, dstate=None, record: dict | None = None):
        """Time-major BPTT; see ``LSTMCell.backward_tm`` (``record`` receives ``"dh"`` only)."""
        hs = cache["hs"]  # (T+1, B, H)
        T, B, H = dhs.shape
        deriv = np.multiply(hs[1:], hs[1:])  # (T, B, H)
        np.subtract(1.0, deriv, out=deriv)  # (T, B, H) 1 - h^2
        dz = np.empty((T, B, H), dhs.dtype)  # (T, B, H)
        dh_rec = np.zeros((B, H), dhs.dtype) if dstate is None else np.array(dstate[0], dtype=dhs.dtype)  # (B, H)
        WhT = prep.Wh_u.T  # (H, H) view
        if record is not None:
            rec_dh = record["dh"] = np.empty((T, B, H), dhs.dtype)  # (T, B, H)
        for t in range(T - 1, -1, -1):
            np.add(dhs[t], dh_rec, out=dz[t])  # (B, H)
            if record is not None:
                rec_dh[t] = dz[t]  # (B, H) total dL/dh_t
            dz[t] *= deriv[t]  # (B, H)
            np.matmul(dz[t], WhT, out=dh_rec)  # (B, H)
        dWh = hs[:-1].reshape(T * B, H).T @ dz.reshape(T * B, H)  # (H, H)
        return dz, dWh, (dh_rec,)


def make_cell(kind: str, input_size: int, hidden_size: int) -> _Cell:
    """Build a cell by name: ``"lstm"`` or ``"rnn"``."""
    if kind == "lstm":
        return LSTMCell(input_size, hidden_size)
    if kind == "rnn":
        return RNNCell(input_size, hidden_size)
    raise ValueError(f"unknown cell type {kind!r}; expected one of {CELL_TYPES}")
