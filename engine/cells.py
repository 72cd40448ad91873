"""LSTM, GRU and vanilla-RNN cells: parameters, one step, sequence forward and BPTT backward.

LSTM (Hochreiter & Schmidhuber 1997, with forget gate; PyTorch's ``nn.LSTM`` equations)::

    i_t = sigmoid(x_t Wx_i + h_{t-1} Wh_i + b_i)      input gate,      in (0, 1)
    f_t = sigmoid(x_t Wx_f + h_{t-1} Wh_f + b_f)      forget gate,     in (0, 1)
    g_t = tanh   (x_t Wx_g + h_{t-1} Wh_g + b_g)      candidate,       in (-1, 1)
    o_t = sigmoid(x_t Wx_o + h_{t-1} Wh_o + b_o)      output gate,     in (0, 1)
    c_t = f_t * c_{t-1} + i_t * g_t                   cell state,      unbounded
    h_t = o_t * tanh(c_t)                             hidden state,    in (-1, 1)

GRU (Cho et al. 2014; PyTorch's ``nn.GRU`` equations, the reset gate multiplying the whole
recurrent term of n including its bias ``bhn``)::

    r_t = sigmoid(x_t Wx_r + h_{t-1} Wh_r + b_r)      reset gate,      in (0, 1)
    z_t = sigmoid(x_t Wx_z + h_{t-1} Wh_z + b_z)      update gate,     in (0, 1)
    n_t = tanh(x_t Wx_n + b_n + r_t * (h_{t-1} Wh_n + bhn))   candidate, in (-1, 1)
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}             hidden state,    in (-1, 1)

Vanilla RNN (Elman)::

    h_t = tanh(x_t Wx + h_{t-1} Wh + b)

Public parameter layout (one fused matrix per input, PyTorch's gate order i, f, g, o):
``Wx (D, 4H)``, ``Wh (H, 4H)``, ``b (4H,)``; batches are rows, ``x (B, D) @ Wx``.
PyTorch mapping: ``Wx = weight_ih_l0.T``, ``Wh = weight_hh_l0.T``, ``b = bias_ih_l0 + bias_hh_l0``.
GRU layout (PyTorch's gate order r, z, n): ``Wx (D, 3H)``, ``Wh (H, 3H)``, ``b (3H,)`` the input-side
bias with the recurrent r and z biases folded in, ``bhn (H,)`` the recurrent bias of n (it sits
inside the product with r, so it cannot be folded). PyTorch mapping: ``Wx = weight_ih_l0.T``,
``Wh = weight_hh_l0.T``, ``b = bias_ih_l0 + [bias_hh_l0[:2H], 0]``, ``bhn = bias_hh_l0[2H:]``.

Speed: the hot loops work on *prepared* weights (``Prepared``): LSTM columns reordered to
g, i, f, o so the three sigmoid gates form one contiguous slice, and the sigmoid columns
pre-scaled by 0.5 so that a single ``tanh`` over all 4H columns computes every gate
(``sigmoid(z) = 0.5 + 0.5 * tanh(0.5 z)``). The same order puts the three gates whose
gradient is ``dc * coefficient`` (g, i, f) side by side, so the BPTT loop does six ufunc calls
and one product per step; the coefficients (local derivatives) are computed beforehand in
cache-sized blocks of steps.
The LSTM loops run feature-major: per step the product ``Wh_s.T (G, H) @ h_{t-1} (H, B)`` fills
a ``(G, B)`` block whose gates are contiguous ``(H, B)`` slices (the transposed product runs
measurably faster in OpenBLAS than ``h (B, H) @ Wh_s``), and the hidden states and ``dz`` are
stored ``(H, T+1, B)`` and ``(G, T, B)`` so that each weight gradient is one product over all
steps; the arrays they hand out are ``(T, B, ...)`` views of them.
Gradients come back in the public layout. Sequence interfaces are time-major ``(T, B, ...)``;
the public wrappers take ``(B, T, ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GATES = ("i", "f", "g", "o")
GRU_GATES = ("r", "z", "n")
CELL_TYPES = ("lstm", "rnn", "gru")
INIT_SCHEMES = ("default", "pytorch", "uniform")  # see _Cell.init_params
_CACHE_BLOCK = 1 << 17  # elements (512 KiB in float32) of per-block scratch in the BPTT loop
_TRANSPOSE_ROWS = 16  # rows per band of the transposing copy in LSTMCell._scaled_transposed
_ROW_PAD = 16  # extra elements per row of the (features, steps x batch) arrays (see _padded_rows)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function in (0, 1) via tanh: never overflows, for any finite or infinite input."""
    return 0.5 + 0.5 * np.tanh(0.5 * z)  # same shape as z


def _padded_rows(rows: int, cols: int, dtype) -> np.ndarray:
    """An uninitialised ``(rows, cols)`` array whose rows lie ``_ROW_PAD`` elements further apart
    than ``cols``: rows spaced by a power of two bytes (e.g. T*B = 64*32 floats) fall into the
    same cache sets, and a per-step ``(H, B)`` column block of them would evict itself."""
    return np.empty((rows, cols + _ROW_PAD), dtype)[:, :cols]  # (rows, cols) view


def check_finite(name: str, a: np.ndarray) -> None:
    """Raise ValueError if ``a`` holds NaN or infinity."""
    if not np.isfinite(a).all():
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
    ``bhn (H,)``: the GRU's recurrent bias of n (None for the other cells).
    """

    Wx_s: np.ndarray  # (D, G)
    Wh_s: np.ndarray  # (H, G)
    b_s: np.ndarray  # (G,)
    Wx_u: np.ndarray  # (D, G)
    Wh_u: np.ndarray  # (H, G)
    bhn: np.ndarray | None = None  # (H,)


class _Cell:
    """Shared shape checks and the public batch-major wrappers around the time-major core."""

    kind: str
    state_names: tuple[str, ...]
    record_names: tuple[str, ...]
    gate_count: int
    paired_bias_gates: int  # leading gate blocks of b that PyTorch holds as b_ih + b_hh

    def __init__(self, input_size: int, hidden_size: int):
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.input_size = int(input_size)  # D
        self.hidden_size = int(hidden_size)  # H
        self.width = self.gate_count * self.hidden_size  # G

    # --- parameters -------------------------------------------------------------------------
    def param_shapes(self) -> dict:
        """Shape of each parameter by name: ``Wx (D, G)``, ``Wh (H, G)``, ``b (G,)``."""
        D, H, G = self.input_size, self.hidden_size, self.width
        return {"Wx": (D, G), "Wh": (H, G), "b": (G,)}

    def init_params(self, rng: np.random.Generator, dtype=np.float32, forget_bias: float = 1.0,
                    scheme: str = "default", init_range: float = 0.08) -> dict:
        """Fresh parameters by ``scheme`` (one of ``INIT_SCHEMES``), plus ``forget_bias`` added
        to the LSTM forget-gate bias (0 to switch it off):

        - ``default``: every weight and bias U(-1/sqrt(H), 1/sqrt(H));
        - ``pytorch``: as ``default``, and the gate biases PyTorch sums (``b_ih + b_hh``; for a
          GRU those of r and z, ``bhn`` stays its own) get a second U(-1/sqrt(H), 1/sqrt(H))
          draw: PyTorch's ``nn.LSTM``/``nn.GRU``/``nn.RNN`` initialisation in distribution;
        - ``uniform``: every weight and bias U(-init_range, init_range) (char-rnn: 0.08).
        """
        if scheme not in INIT_SCHEMES:
            raise ValueError(f"unknown init {scheme!r}; expected one of {INIT_SCHEMES}")
        k = init_range if scheme == "uniform" else 1.0 / np.sqrt(self.hidden_size)
        params = {name: rng.uniform(-k, k, size=shape).astype(dtype) for name, shape in self.param_shapes().items()}
        if scheme == "pytorch":
            paired = params["b"][: self.paired_bias_gates * self.hidden_size]  # (P H,) view
            paired += rng.uniform(-k, k, size=paired.shape).astype(dtype)  # b_ih + b_hh
        self._add_forget_bias(params["b"], forget_bias)
        return params

    def _add_forget_bias(self, b: np.ndarray, forget_bias: float) -> None:
        """Only the LSTM has a forget gate."""

    def check_params(self, params: dict) -> np.dtype:
        """Validate the parameter dict; return its dtype."""
        dtype = np.asarray(params.get("Wh")).dtype
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"parameters must be float32 or float64, got {dtype}")
        for name, shape in self.param_shapes().items():
            if name not in params:
                raise ValueError(f"missing parameter {name!r} of shape {shape}")
            _check_array(name, params[name], shape, dtype)
        return dtype

    def recurrent_grads(self, drec) -> dict:
        """Name the recurrent-side gradients ``backward_tm`` returns: ``{"Wh": (H, G)}``."""
        return {"Wh": drec}

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

    def project(self, prep: Prepared, x_tm: np.ndarray, onehot: bool) -> np.ndarray:
        """``x_t Wx_s + b_s`` for every step ``(T, B, G)``, the input of ``forward_tm``. ``x_tm``:
        token ids ``(T, B)`` (``onehot``: a row gather of ``Wx_s``) or vectors ``(T, B, D)``."""
        xp = prep.Wx_s[x_tm] if onehot else x_tm @ prep.Wx_s  # (T, B, G)
        xp += prep.b_s  # (T, B, G)
        return xp

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
        ``(grads {name: array} for every parameter, dx (B, T, D), dstate0)``.
        """
        prep = cache["prep"]
        x_tm = cache["x_tm"]  # (T, B, D)
        T, B, D = x_tm.shape
        _check_array("dhs", dhs, (B, T, self.hidden_size), x_tm.dtype)
        if dstate is not None:
            self.check_state(dstate, B, x_tm.dtype, label="dstate")
        dhs_tm = np.ascontiguousarray(dhs.transpose(1, 0, 2))  # (T, B, H)
        dz, drec, dstate0 = self.backward_tm(prep, cache, dhs_tm, dstate)
        dz2 = dz.reshape(T * B, self.width)  # (T*B, G)
        grads = {
            "Wx": self.to_public(x_tm.reshape(T * B, D).T @ dz2),  # (D, G)
            "b": self.to_public(dz2.sum(axis=0)),  # (G,)
            **self.recurrent_grads(drec),
        }
        dx = (dz2 @ prep.Wx_u.T).reshape(T, B, D).transpose(1, 0, 2)  # (B, T, D)
        return grads, np.ascontiguousarray(dx), dstate0


class LSTMCell(_Cell):
    """Long short-term memory cell; state ``(h, c)``; records i, f, g, o, c, h."""

    kind = "lstm"
    state_names = ("h", "c")
    record_names = ("i", "f", "g", "o", "c", "h")
    gate_count = 4
    paired_bias_gates = 4

    internal_gates = ("g", "i", "f", "o")  # column blocks of the prepared weights, acts and dz

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)

    def gate_views(self, a: np.ndarray) -> dict:
        """Views ``{"g", "i", "f", "o"} -> (..., H)`` of an internal-order array ``(..., G)``."""
        H = self.hidden_size
        return {name: a[..., k * H : (k + 1) * H] for k, name in enumerate(self.internal_gates)}

    def _add_forget_bias(self, b: np.ndarray, forget_bias: float) -> None:
        H = self.hidden_size
        b[H : 2 * H] += forget_bias  # (H,) the f block

    def _reorder(self, a: np.ndarray, source: tuple, target: tuple) -> np.ndarray:
        """Copy of ``a (..., G)`` with its H-column gate blocks moved from ``source`` order to
        ``target`` order (block copies: several times faster than a column gather)."""
        H = self.hidden_size
        start = {name: k * H for k, name in enumerate(source)}
        return np.concatenate([a[..., start[name] : start[name] + H] for name in target], axis=-1)  # (..., G)

    def _scaled(self, a: np.ndarray) -> np.ndarray:
        """Copy of an internal-order ``a (..., G)`` with the sigmoid blocks (i, f, o) x0.5."""
        scaled = a.copy()  # (..., G)
        scaled[..., self.hidden_size :] *= 0.5  # (..., 3H) exact: a power of two
        return scaled

    def _scaled_transposed(self, a: np.ndarray) -> np.ndarray:
        """``_scaled(a)`` for an internal-order ``a (D, G)``, stored transposed: a view
        ``(D, G)`` of a C-ordered ``(G, D)`` array (the feature-major products read it so)."""
        D, G = a.shape
        scaled_t = np.empty((G, D), a.dtype)  # (G, D)
        for start in range(0, D, _TRANSPOSE_ROWS):  # a band of rows at a time: measured 2.3x a whole transposing copy
            scaled_t[:, start : start + _TRANSPOSE_ROWS] = a[start : start + _TRANSPOSE_ROWS].T  # (G, <=16)
        scaled_t[self.hidden_size :] *= 0.5  # (3H, D) exact: a power of two
        return scaled_t.T  # (D, G) view

    def prepare(self, params: dict) -> Prepared:
        """Reorder to internal g, i, f, o and pre-scale the sigmoid columns by 0.5; the scaled
        matrices ``Wx_s``, ``Wh_s`` are transposed views of C-ordered ``(G, D)``, ``(G, H)``."""
        Wx_u = self._reorder(params["Wx"], GATES, self.internal_gates)  # (D, G)
        Wh_u = self._reorder(params["Wh"], GATES, self.internal_gates)  # (H, G)
        b_u = self._reorder(params["b"], GATES, self.internal_gates)  # (G,)
        return Prepared(Wx_s=self._scaled_transposed(Wx_u), Wh_s=self._scaled_transposed(Wh_u), b_s=self._scaled(b_u),
                        Wx_u=Wx_u, Wh_u=Wh_u)

    def to_public(self, a: np.ndarray) -> np.ndarray:
        """Reorder the last axis from internal (g, i, f, o) to public (i, f, g, o) columns."""
        return self._reorder(a, self.internal_gates, GATES)  # (..., G)

    def pre_activations(self, zs: np.ndarray) -> np.ndarray:
        """True pre-activations in public order from the scaled internal ones."""
        H = self.hidden_size
        pre = self.to_public(zs)  # (..., G) public order i, f, g, o
        pre[..., : 2 * H] *= 2  # (..., 2H) i, f: undo the 0.5 pre-scale (exact)
        pre[..., 3 * H :] *= 2  # (..., H) o
        return pre

    def step_projected(self, prep: Prepared, xp: np.ndarray, state: tuple):
        """One step from the projected input ``xp = x Wx_s + b_s (B, G)``; see ``step``."""
        h_prev, c_prev = state  # (B, H), (B, H)
        H = self.hidden_size
        zs = h_prev @ prep.Wh_s  # (B, G)
        zs += xp  # (B, G) scaled pre-activations
        a = np.tanh(zs)  # (B, G)
        a[:, H:] *= 0.5  # (B, 3H)
        a[:, H:] += 0.5  # (B, 3H) i, f, o now sigmoids
        gates = self.gate_views(a)  # (B, H) each
        c = gates["f"] * c_prev + gates["i"] * gates["g"]  # (B, H)
        h = gates["o"] * np.tanh(c)  # (B, H)
        record = {**gates, "c": c, "h": h, "pre": self.pre_activations(zs)}
        return (h, c), record

    def project(self, prep: Prepared, x_tm: np.ndarray, onehot: bool) -> np.ndarray:
        """``x_t Wx_s + b_s`` for every step, as a ``(T, B, G)`` view of a feature-major
        ``(T, G, B)`` array (what ``forward_tm`` reads fastest). ``x_tm``: token ids ``(T, B)``
        (``onehot``: a column gather of ``Wx_s.T``) or vectors ``(T, B, D)``."""
        T, B = x_tm.shape[:2]
        xp_f = np.empty((T, self.width, B), prep.b_s.dtype)  # (T, G, B)
        if onehot:
            table = prep.Wx_s.T + prep.b_s[:, None]  # (G, V) column v = e_v Wx_s + b_s, each sum rounded once as below
            if B == 1:  # one sequence: (T, G, 1) is (T, G) in memory, one gather of rows
                np.take(table.T, x_tm[:, 0], axis=0, out=xp_f[:, :, 0], mode="clip")  # (T, G)
            else:
                for t in range(T):
                    np.take(table, x_tm[t], axis=1, out=xp_f[t], mode="clip")  # (G, B) ids checked by the caller
        else:
            np.matmul(prep.Wx_s.T, x_tm.transpose(0, 2, 1), out=xp_f)  # (T, G, B) one product per step
            xp_f += prep.b_s[:, None]  # (T, G, B)
        return xp_f.transpose(0, 2, 1)  # (T, B, G) view

    def forward_tm(self, prep: Prepared, xp: np.ndarray, state: tuple, keep_pre: bool = False):
        """Time-major forward. ``xp (T, B, G)`` projected inputs (scaled, internal order); fastest
        as ``project`` returns them.

        Returns ``(hs (T, B, H), (h_T, c_T), cache)``; the cache holds the gate activations
        ``acts (T, B, G)``, hidden states ``hs (T+1, B, H)``, cell states ``cs (T+1, B, H)`` and
        ``tc (T, B, H)`` = tanh(c) (and ``pre (T, B, G)`` if ``keep_pre``), all views of the
        feature-major arrays the loops work on: per step a ``(G, B)`` block is the product
        ``Wh_s.T (G, H) @ h_{t-1} (H, B)`` and every gate a contiguous ``(H, B)`` slice of it.
        """
        T, B, G = xp.shape
        H = self.hidden_size
        dtype = xp.dtype
        acts_f = np.empty((T, G, B), dtype)  # (T, G, B) g, i, f, o after activation
        hs_h = _padded_rows(H, (T + 1) * B, dtype).reshape(H, T + 1, B)  # (H, T+1, B) hs_h[:, 0] = h0
        cs_f = np.empty((T + 1, H, B), dtype)  # (T+1, H, B) cs_f[0] = c0
        tc_f = np.empty((T, H, B), dtype)  # (T, H, B) tanh(c_t)
        ig = np.empty((H, B), dtype)  # (H, B) scratch for i * g
        hs_h[:, 0] = state[0].T  # (H, B)
        cs_f[0] = state[1].T  # (H, B)
        Wh_t = prep.Wh_s.T  # (G, H) C-ordered (prepare)
        pre_f = np.empty((T, G, B), dtype) if keep_pre else None  # (T, G, B)
        for t in range(T):
            a = acts_f[t]  # (G, B)
            np.matmul(Wh_t, hs_h[:, t], out=a)  # (G, B)
            a += xp[t].T  # (G, B) scaled pre-activation
            if keep_pre:
                pre_f[t] = a  # (G, B)
            np.tanh(a, out=a)  # (G, B)
            s = a[H:]  # (3H, B) view
            s *= 0.5
            s += 0.5  # (3H, B) i, f, o
            np.multiply(a[2 * H : 3 * H], cs_f[t], out=cs_f[t + 1])  # (H, B) f * c_prev
            np.multiply(a[H : 2 * H], a[:H], out=ig)  # (H, B) i * g
            cs_f[t + 1] += ig  # (H, B)
            np.tanh(cs_f[t + 1], out=tc_f[t])  # (H, B)
            np.multiply(a[3 * H :], tc_f[t], out=hs_h[:, t + 1])  # (H, B) o * tanh(c)
        hs = hs_h.transpose(1, 2, 0)  # (T+1, B, H) view
        cache = {"acts": acts_f.transpose(0, 2, 1), "hs": hs, "cs": cs_f.transpose(0, 2, 1),
                 "tc": tc_f.transpose(0, 2, 1), "pre": None if pre_f is None else pre_f.transpose(0, 2, 1),
                 "feature_major": (acts_f, hs_h, cs_f, tc_f)}
        return hs[1:], (hs[T].copy(), cs_f[T].T.copy()), cache

    def _local_derivatives(self, acts: np.ndarray, c_prev: np.ndarray, tc: np.ndarray, out: np.ndarray) -> None:
        """For ``n`` steps, write into ``out (n, 5, H, B)`` the factors that turn dc into
        dz_g, dz_i, dz_f (blocks 0-2) and dh into dz_o and dc's dh part (blocks 3-4).

        Feature-major: ``acts (n, G, B)`` internal order, ``c_prev (n, H, B)`` = c_{t-1},
        ``tc (n, H, B)`` = tanh(c_t).
        """
        n, G, B = acts.shape
        H = self.hidden_size
        g, i, o = acts[:, :H], acts[:, H : 2 * H], acts[:, 3 * H :]  # (n, H, B) each
        s = acts[:, H:].reshape(n, 3, H, B)  # (n, 3, H, B) i, f, o view
        ds = out[:, 1:4]  # (n, 3, H, B) view
        np.subtract(1.0, s, out=ds)  # 1 - s
        ds *= s  # s (1 - s), sigmoid'
        ds[:, 0] *= g  # (n, H, B) dz_i / dc = g i (1 - i)
        ds[:, 1] *= c_prev  # (n, H, B) dz_f / dc = c_{t-1} f (1 - f)
        ds[:, 2] *= tc  # (n, H, B) dz_o / dh = tanh(c) o (1 - o)
        np.multiply(g, g, out=out[:, 0])  # (n, H, B) g^2
        np.subtract(1.0, out[:, 0], out=out[:, 0])  # (n, H, B) tanh'
        out[:, 0] *= i  # (n, H, B) dz_g / dc = i (1 - g^2)
        np.multiply(tc, tc, out=out[:, 4])  # (n, H, B) tanh(c)^2
        np.subtract(1.0, out[:, 4], out=out[:, 4])  # (n, H, B)
        out[:, 4] *= o  # (n, H, B) dc / dh = o (1 - tanh(c)^2)

    def backward_tm(self, prep: Prepared, cache: dict, dhs: np.ndarray, dstate=None, record: dict | None = None):
        """Time-major BPTT. ``dhs (T, B, H)``; returns ``(dz (T, B, G), dWh (H, G) public,
        (dh0, dc0))`` where ``dz`` is dLoss/d(pre-activation) in the internal order (a view of a
        ``(G, T, B)`` array: ``dz.reshape(T * B, G)`` is a view too).

        If ``record`` is a dict, it receives ``"dh" (T, B, H)``, the total dLoss/dh_t, and
        ``"dc" (T, B, H)``, the total dLoss/dc_t (before the product with f_t).

        The loop runs feature-major like ``forward_tm`` (``(H, B)`` blocks, the product
        ``Wh_u (H, G) @ dz_t (G, B)`` per step). The local derivatives are computed in blocks of
        ``chunk`` steps small enough to stay in cache, then the loop runs over the block.
        """
        acts_f, hs_h, cs_f, tc_f = cache["feature_major"]  # (T, G, B), (H, T+1, B), (T+1, H, B), (T, H, B)
        T, G, B = acts_f.shape
        H = self.hidden_size
        dtype = acts_f.dtype
        dhs_f = dhs.transpose(0, 2, 1)  # (T, H, B) view
        if dhs_f.strides[-1] != dhs_f.itemsize:
            dhs_f = np.ascontiguousarray(dhs_f)  # (T, H, B) one transposing copy instead of one per step
        f = acts_f[:, 2 * H : 3 * H]  # (T, H, B) view
        chunk = max(1, min(T, _CACHE_BLOCK // (5 * B * H)))  # steps per block of local derivatives
        local = np.empty((chunk, 5, H, B), dtype)  # (chunk, 5, H, B) see _local_derivatives
        dz_g = _padded_rows(G, T * B, dtype).reshape(G, T, B)  # (G, T, B): (G, T*B) rows for the weight gradients
        dz4 = dz_g.reshape(4, H, T, B)  # (4, H, T, B) view: blocks g, i, f, o
        dh_rec = np.zeros((H, B), dtype)  # (H, B) dL/dh_t through the gates of step t+1
        if dstate is None:
            dc = np.zeros((H, B), dtype)  # (H, B)
        else:
            dh_rec[...] = np.asarray(dstate[0]).T  # (H, B)
            dc = np.array(np.asarray(dstate[1]).T, dtype=dtype, order="C")  # (H, B) copy: never mutate inputs
        dh = np.empty((H, B), dtype)  # (H, B)
        tmp = np.empty((H, B), dtype)  # (H, B)
        Wh = prep.Wh_u  # (H, G)
        if record is not None:
            rec_dh = record["dh"] = np.empty((T, B, H), dtype)  # (T, B, H)
            rec_dc = record["dc"] = np.empty((T, B, H), dtype)  # (T, B, H)
        for stop in range(T, 0, -chunk):
            start = max(0, stop - chunk)
            self._local_derivatives(acts_f[start:stop], cs_f[start:stop], tc_f[start:stop], local[: stop - start])
            for t in range(stop - 1, start - 1, -1):
                k = local[t - start]  # (5, H, B)
                np.add(dhs_f[t], dh_rec, out=dh)  # (H, B) dL/dh_t
                np.multiply(dh, k[3], out=dz4[3, :, t])  # (H, B) dz_o
                np.multiply(dh, k[4], out=tmp)  # (H, B)
                dc += tmp  # (H, B) dL/dc_t
                if record is not None:
                    rec_dh[t] = dh.T  # (B, H)
                    rec_dc[t] = dc.T  # (B, H)
                np.multiply(dc, k[:3], out=dz4[:3, :, t])  # (3, H, B) dz_g, dz_i, dz_f
                dc *= f[t]  # (H, B) dL/dc_{t-1} through the cell path
                np.matmul(Wh, dz_g[:, t], out=dh_rec)  # (H, B) dL/dh_{t-1} through the gates
        dWh = hs_h[:, :T].reshape(H, T * B) @ dz_g.reshape(G, T * B).T  # (H, G) one product over all steps
        return dz_g.transpose(1, 2, 0), self.to_public(dWh), (dh_rec.T.copy(), dc.T.copy())


class RNNCell(_Cell):
    """Vanilla (Elman) RNN cell; state ``(h,)``; records h only."""

    kind = "rnn"
    state_names = ("h",)
    record_names = ("h",)
    gate_count = 1
    paired_bias_gates = 1

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
        dh_rec_t = np.zeros((H, B), dhs.dtype)  # (H, B) transposed, as in LSTMCell.backward_tm
        if dstate is not None:
            dh_rec_t[...] = np.asarray(dstate[0]).T  # (H, B)
        dh_rec = dh_rec_t.T  # (B, H) view
        if record is not None:
            rec_dh = record["dh"] = np.empty((T, B, H), dhs.dtype)  # (T, B, H)
        for t in range(T - 1, -1, -1):
            np.add(dhs[t], dh_rec, out=dz[t])  # (B, H)
            if record is not None:
                rec_dh[t] = dz[t]  # (B, H) total dL/dh_t
            dz[t] *= deriv[t]  # (B, H)
            np.matmul(prep.Wh_u, dz[t].T, out=dh_rec_t)  # (H, B)
        dWh = hs[:-1].reshape(T * B, H).T @ dz.reshape(T * B, H)  # (H, H)
        return dz, dWh, (np.ascontiguousarray(dh_rec),)


class GRUCell(_Cell):
    """Gated recurrent unit (PyTorch's ``nn.GRU``); state ``(h,)``; records r, z, n, h.

    Parameters ``Wx (D, 3H)``, ``Wh (H, 3H)``, ``b (3H,)``, ``bhn (H,)`` in gate order r, z, n
    (module docstring). The prepared weights are the public ones (no reordering or scaling).
    """

    kind = "gru"
    state_names = ("h",)
    record_names = ("r", "z", "n", "h")
    gate_count = 3
    paired_bias_gates = 2  # r and z: PyTorch sums their two biases; n keeps b_hn apart (bhn)

    def param_shapes(self) -> dict:
        """``Wx (D, 3H)``, ``Wh (H, 3H)``, ``b (3H,)`` and the recurrent bias of n, ``bhn (H,)``."""
        return {**super().param_shapes(), "bhn": (self.hidden_size,)}

    def gate_views(self, a: np.ndarray) -> dict:
        """Views ``{"r", "z", "n"} -> (..., H)`` of an array ``(..., 3H)``."""
        H = self.hidden_size
        return {name: a[..., k * H : (k + 1) * H] for k, name in enumerate(GRU_GATES)}

    def prepare(self, params: dict) -> Prepared:
        Wx = np.ascontiguousarray(params["Wx"])  # (D, 3H)
        Wh = np.ascontiguousarray(params["Wh"])  # (H, 3H)
        return Prepared(Wx_s=Wx, Wh_s=Wh, b_s=params["b"], Wx_u=Wx, Wh_u=Wh, bhn=params["bhn"])

    def to_public(self, a: np.ndarray) -> np.ndarray:
        return a

    def pre_activations(self, zs: np.ndarray) -> np.ndarray:
        """The recorded pre-activations are already the true ones (r, z, and n's tanh argument)."""
        return zs.copy()  # (..., 3H)

    def recurrent_grads(self, drec) -> dict:
        """``{"Wh": (H, 3H), "bhn": (H,)}`` from ``backward_tm``'s ``(dWh, dbhn)``."""
        dWh, dbhn = drec
        return {"Wh": dWh, "bhn": dbhn}

    def _gates(self, prep: Prepared, xp: np.ndarray, h_prev: np.ndarray, a: np.ndarray, hn: np.ndarray,
               pre: np.ndarray | None) -> None:
        """Write r, z, n into ``a (B, 3H)`` and ``h_prev Wh_n + bhn`` into ``hn (B, H)``
        (and the pre-activations into ``pre (B, 3H)`` if given) for the projected input ``xp (B, 3H)``."""
        H = self.hidden_size
        hp = h_prev @ prep.Wh_s  # (B, 3H)
        np.add(xp[:, : 2 * H], hp[:, : 2 * H], out=a[:, : 2 * H])  # (B, 2H) r, z pre-activations
        np.add(hp[:, 2 * H :], prep.bhn, out=hn)  # (B, H) h_{t-1} Wh_n + bhn
        if pre is not None:
            pre[:, : 2 * H] = a[:, : 2 * H]  # (B, 2H)
        a[:, : 2 * H] = sigmoid(a[:, : 2 * H])  # (B, 2H) r, z
        n = a[:, 2 * H :]  # (B, H) view
        np.multiply(a[:, :H], hn, out=n)  # (B, H) r * (h Wh_n + bhn)
        n += xp[:, 2 * H :]  # (B, H) + x Wx_n + b_n
        if pre is not None:
            pre[:, 2 * H :] = n  # (B, H)
        np.tanh(n, out=n)  # (B, H)

    def step_projected(self, prep: Prepared, xp: np.ndarray, state: tuple):
        """One step from the projected input ``xp = x Wx + b (B, 3H)``; see ``step``."""
        (h_prev,) = state  # (B, H)
        B = xp.shape[0]
        a = np.empty((B, self.width), xp.dtype)  # (B, 3H)
        hn = np.empty((B, self.hidden_size), xp.dtype)  # (B, H)
        pre = np.empty((B, self.width), xp.dtype)  # (B, 3H)
        self._gates(prep, xp, h_prev, a, hn, pre)
        gates = self.gate_views(a)  # (B, H) each
        h = gates["n"] + gates["z"] * (h_prev - gates["n"])  # (B, H) = (1 - z) n + z h_prev
        return (h,), {**gates, "h": h, "pre": pre}

    def forward_tm(self, prep: Prepared, xp: np.ndarray, state: tuple, keep_pre: bool = False):
        """Time-major forward. ``xp (T, B, 3H)`` projected inputs. Returns ``(hs (T, B, H),
        (h_T,), cache)``; the cache holds the gates (``acts``), ``hn`` = h_{t-1} Wh_n + bhn and
        the hidden states that ``backward_tm`` consumes (and ``pre`` if ``keep_pre``)."""
        T, B, G = xp.shape
        H = self.hidden_size
        dtype = xp.dtype
        acts = np.empty((T, B, G), dtype)  # (T, B, 3H) r, z, n
        hn = np.empty((T, B, H), dtype)  # (T, B, H)
        hs = np.empty((T + 1, B, H), dtype)  # (T+1, B, H) hs[0] = h0
        hs[0] = state[0]
        pre = np.empty((T, B, G), dtype) if keep_pre else None  # (T, B, 3H)
        gates = self.gate_views(acts)  # (T, B, H) views
        z, n = gates["z"], gates["n"]  # (T, B, H) each
        for t in range(T):
            self._gates(prep, xp[t], hs[t], acts[t], hn[t], None if pre is None else pre[t])
            np.subtract(hs[t], n[t], out=hs[t + 1])  # (B, H) h_prev - n
            hs[t + 1] *= z[t]  # (B, H)
            hs[t + 1] += n[t]  # (B, H) (1 - z) n + z h_prev
        cache = {"acts": acts, "hn": hn, "hs": hs, "pre": pre}
        return hs[1:], (hs[T].copy(),), cache

    def backward_tm(self, prep: Prepared, cache: dict, dhs: np.ndarray, dstate=None, record: dict | None = None):
        """Time-major BPTT. ``dhs (T, B, H)``; returns ``(dz (T, B, 3H), (dWh (H, 3H), dbhn (H,)),
        (dh0,))`` where ``dz`` is dLoss/d(x Wx + b) per gate block r, z, n. ``record``: as in
        ``LSTMCell.backward_tm`` (``"dh"`` only).

        With ``a_n`` the tanh argument of n and ``hn = h_{t-1} Wh_n + bhn``:
        ``da_n = dh (1 - z)(1 - n^2)``, ``da_z = dh (h_{t-1} - n) z (1 - z)``,
        ``da_r = da_n hn r (1 - r)``; the recurrent side sees ``(da_r, da_z, da_n r)``.
        """
        acts, hn, hs = cache["acts"], cache["hn"], cache["hs"]
        T, B, G = acts.shape
        H = self.hidden_size
        dtype = acts.dtype
        gates = self.gate_views(acts)  # (T, B, H) views
        r, z, n = gates["r"], gates["z"], gates["n"]  # (T, B, H) each
        dz = np.empty((T, B, G), dtype)  # (T, B, 3H) input side
        dzh = np.empty((T, B, G), dtype)  # (T, B, 3H) recurrent side
        dh_rec = np.zeros((B, H), dtype) if dstate is None else np.array(dstate[0], dtype=dtype)  # (B, H)
        if record is not None:
            rec_dh = record["dh"] = np.empty((T, B, H), dtype)  # (T, B, H)
        Wh = prep.Wh_u  # (H, 3H)
        for t in range(T - 1, -1, -1):
            dh = dhs[t] + dh_rec  # (B, H) total dL/dh_t
            if record is not None:
                rec_dh[t] = dh  # (B, H)
            da_n = dh * (1.0 - z[t]) * (1.0 - n[t] * n[t])  # (B, H)
            da_z = dh * (hs[t] - n[t]) * z[t] * (1.0 - z[t])  # (B, H)
            da_r = da_n * hn[t] * r[t] * (1.0 - r[t])  # (B, H)
            dz[t, :, :H], dz[t, :, H : 2 * H], dz[t, :, 2 * H :] = da_r, da_z, da_n  # (B, H) each
            dzh[t, :, : 2 * H] = dz[t, :, : 2 * H]  # (B, 2H)
            np.multiply(da_n, r[t], out=dzh[t, :, 2 * H :])  # (B, H)
            dh_rec = dh * z[t] + dzh[t] @ Wh.T  # (B, H) dL/dh_{t-1}
        dWh = hs[:-1].reshape(T * B, H).T @ dzh.reshape(T * B, G)  # (H, 3H)
        dbhn = dzh[..., 2 * H :].sum(axis=(0, 1))  # (H,)
        return dz, (dWh, dbhn), (dh_rec,)


CELL_CLASSES = {"lstm": LSTMCell, "rnn": RNNCell, "gru": GRUCell}  # in CELL_TYPES' order


def _cell_class(kind: str) -> type:
    if kind not in CELL_CLASSES:
        raise ValueError(f"unknown cell type {kind!r}; expected one of {CELL_TYPES}")
    return CELL_CLASSES[kind]


def make_cell(kind: str, input_size: int, hidden_size: int) -> _Cell:
    """Build a cell by name: ``"lstm"``, ``"rnn"`` or ``"gru"``. Raises ValueError otherwise."""
    return _cell_class(kind)(input_size, hidden_size)


def record_names(kind: str) -> tuple:
    """What one step of a ``kind`` cell records, in record order (LSTM i, f, g, o, c, h; GRU r,
    z, n, h; RNN h). Raises ValueError for an unknown cell type."""
    return _cell_class(kind).record_names
