"""The one table of the quantities a recurrent layer records, and of the output probabilities.

Per quantity: its name (the field's standard letters: gates i, f, g, o; cell state c; hidden
state h), a title, the activation that produces it, its range, its colormap kind and where it
comes in the display order. LSTM equations (Hochreiter & Schmidhuber 1997, with the forget gate
of Gers et al. 2000; PyTorch's ``nn.LSTM`` docstring), sigma the logistic function::

    i = sigma(z_i)   f = sigma(z_f)   o = sigma(z_o)     in (0, 1)
    g = tanh(z_g)                                        in (-1, 1)
    c_t = f * c_{t-1} + i * g                            unbounded
    h_t = o * tanh(c_t)                                  in (-1, 1)

A vanilla (Elman) RNN records h only: ``h_t = tanh(z)``. ``probs`` is the softmax head's output.

Colormap kinds: ``"sequential"`` for values in [0, 1], ``"diverging"`` for values around zero
(``range`` None: unbounded, the levels come from the data).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quantity:
    """One recorded quantity; see the module docstring."""

    name: str  # "i", "f", "g", "o", "c", "h" or "probs"
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
    Quantity("h", "hidden state", "tanh", (-1.0, 1.0), "diverging"),
    Quantity("probs", "probabilities", "softmax", (0.0, 1.0), "sequential"),
)}

LSTM_DISPLAY_ORDER = ("f", "i", "o", "g", "c", "h")  # gates (forget first), then the states
RNN_DISPLAY_ORDER = ("h",)


def display_order(cell: str) -> tuple:
    """The quantities one layer of ``cell`` ("lstm" or "rnn") records, in display order.
    Raises ValueError for another cell type."""
    if cell == "lstm":
        return LSTM_DISPLAY_ORDER
    if cell == "rnn":
        return RNN_DISPLAY_ORDER
    raise ValueError(f"unknown cell type {cell!r}; expected 'lstm' or 'rnn'")


def quantity(name: str) -> Quantity:
    """The table's row for ``name``; ValueError naming the known ones otherwise."""
    if name not in QUANTITIES:
        raise ValueError(f"unknown quantity {name!r}; expected one of {tuple(QUANTITIES)}")
    return QUANTITIES[name]
