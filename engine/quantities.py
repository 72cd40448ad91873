"""The one table of the quantities a recurrent layer records, and of the output probabilities.

Per quantity: its name (the field's standard letters: gates i, f, g, o; cell state c; hidden
state h), a title, the activation that produces it, its range, its colormap kind and where it
comes in the display order. LSTM equations (Hochreiter & Schmidhuber 1997, with the forget gate
of Gers et al. 2000; PyTorch's ``nn.LSTM`` docstring), sigma the logistic function::

    i = sigma(z_i)   f = sigma(z_f)   o = sigma(z_o)     in (0, 1)
    g = tanh(z_g)                                        in (-1, 1)
    c_t = f * c_{t-1} + i * g                            unbounded
    h_t = o * tanh(c_t)                                  in (-1, 1)

GRU (Cho et al. 2014, as PyTorch's ``nn.GRU`` docstring: the reset gate multiplies the
recurrent part of the candidate)::

    r = sigma(z_r)   z = sigma(z_z)                      in (0, 1)
    n = tanh(x W_n + b_n + r * (h_{t-1} U_n + b_hn))     in (-1, 1)
    h_t = (1 - z) * n + z * h_{t-1}                      in (-1, 1)

A vanilla (Elman) RNN records h only: ``h_t = tanh(z)``. ``probs`` is the softmax head's output.

Colormap kinds: ``"sequential"`` for values in [0, 1], ``"diverging"`` for values around zero
(``range`` None: unbounded, the levels come from the data).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quantity:
    """One recorded quantity; see the module docstring."""

    name: str  # "i", "f", "g", "o", "c", "r", "z", "n", "h" or "probs"
    title: str  # e.g. "input gate"
    activation: str | None  # "sigmoid", "tanh", "softmax", or None (c: a sum, no activation)
    range: tuple | None  # (lo, hi) of every value, or None (unbounded)
    colormap: str  # "sequential" or "diverging"

    @property
    def label(self) -> str:
        """Title and symbol, e.g. ``"input gate i"`` (``"probabilities"`` for probs)."""
        return self.title if self.name == "probs" else f"{self.title} {self.name}"


QUANTITIES = {q.name: q for q in (
    Quantity("i", "input gate", "sigmoid", (0.0, 1.0), "sequential"),
    Quantity("f", "forget gate", "sigmoid", (0.0, 1.0), "sequential"),
    Quantity("g", "candidate", "tanh", (-1.0, 1.0), "diverging"),
    Quantity("o", "output gate", "sigmoid", (0.0, 1.0), "sequential"),
    Quantity("c", "cell state", None, None, "diverging"),
    Quantity("r", "reset gate", "sigmoid", (0.0, 1.0), "sequential"),
    Quantity("z", "update gate", "sigmoid", (0.0, 1.0), "sequential"),
    Quantity("n", "candidate", "tanh", (-1.0, 1.0), "diverging"),
    Quantity("h", "hidden state", "tanh", (-1.0, 1.0), "diverging"),
    Quantity("probs", "probabilities", "softmax", (0.0, 1.0), "sequential"),
)}

LSTM_DISPLAY_ORDER = ("f", "i", "o", "g", "c", "h")  # gates (forget first), then the states
GRU_DISPLAY_ORDER = ("r", "z", "n", "h")  # gates, candidate, then the state
RNN_DISPLAY_ORDER = ("h",)
DISPLAY_ORDERS = {"lstm": LSTM_DISPLAY_ORDER, "gru": GRU_DISPLAY_ORDER, "rnn": RNN_DISPLAY_ORDER}
RECORDED_NAMES = tuple(dict.fromkeys(n for order in DISPLAY_ORDERS.values() for n in order))  # any cell's


def display_order(cell: str) -> tuple:
    """The quantities one layer of ``cell`` ("lstm", "gru" or "rnn") records, in display order.
    Raises ValueError for another cell type."""
    if cell not in DISPLAY_ORDERS:
        raise ValueError(f"unknown cell type {cell!r}; expected one of {tuple(DISPLAY_ORDERS)}")
    return DISPLAY_ORDERS[cell]


def quantity(name: str) -> Quantity:
    """The table's row for ``name``; ValueError naming the known ones otherwise."""
    if name not in QUANTITIES:
        raise ValueError(f"unknown quantity {name!r}; expected one of {tuple(QUANTITIES)}")
    return QUANTITIES[name]
