"""The numbers behind the equation inspector and the cell diagram, for one unit at one step.

``decompose`` rebuilds one unit's equations from the model's parameters and a ``Trace``, in
float64, term by term (LSTM, public gate order i, f, g, o; see ``engine.cells``)::

    z_gate = x_t . Wx[:, col] + h_{t-1} . Wh[:, col] + b[col]     input + recurrent + bias
    i, f, o = sigmoid(z)    in (0, 1);     g = tanh(z)    in (-1, 1)
    c_t = f * c_{t-1} + i * g                                     kept + written
    h_t = o * tanh(c_t)                                           in (-1, 1)

(vanilla RNN: one gate ``h = tanh(z)``), where ``col = gate_index * H + unit``. GRU (public
gate order r, z, n; PyTorch's ``nn.GRU``, see ``engine.cells``)::

    z_r = x_t . Wx[:, r] + h_{t-1} . Wh[:, r] + b[r]           r = sigmoid(z_r)   in (0, 1)
    z_z = x_t . Wx[:, z] + h_{t-1} . Wh[:, z] + b[z]           z = sigmoid(z_z)   in (0, 1)
    z_n = x_t . Wx[:, n] + r * (h_{t-1} . Wh[:, n] + bhn) + b[n]   n = tanh(z_n)  in (-1, 1)
    h_t = (1 - z) * n + z * h_{t-1}                            written + kept

so n's ``recurrent_part`` is the reset-gated ``r * (h_{t-1} . Wh[:, n] + bhn)``. The layer input
``x_t`` is the one-hot token (so ``x_t . Wx[:, col]`` is the row ``Wx[token, col]``) or the
dense vector for layer 0, and the layer below's ``h_t`` for layer > 0 (no dropout: traces are
recorded without it). ``diagram_values`` reads the wire values of the classic cell diagram
straight from the trace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cells import GATES, GRU_GATES, sigmoid
from .data import display_char
from .quantities import QUANTITIES
from .trace import Trace

ACTIVATIONS = {name: QUANTITIES[name].activation for name in (*GATES, *GRU_GATES, "h")}  # gate -> "sigmoid" | "tanh"
_ACTIVATION_FUNCTIONS = {"sigmoid": sigmoid, "tanh": np.tanh}


@dataclass(frozen=True)
class GateTerm:
    """One gate of one unit: ``pre = input_part + recurrent_part + bias``, ``value = act(pre)``."""

    name: str  # "i", "f", "g", "o" (LSTM), "r", "z", "n" (GRU) or "h" (RNN)
    input_part: float  # x_t . Wx[:, col]
    recurrent_part: float  # h_{t-1} . Wh[:, col] (GRU n: r * (h_{t-1} . Wh[:, col] + bhn))
    bias: float  # b[col]
    pre: float  # pre-activation, unbounded
    activation: str  # "sigmoid" (value in (0, 1)) or "tanh" (value in (-1, 1))
    value: float  # activation(pre)


@dataclass(frozen=True)
class GateBreakdown:
    """Every term of one unit's update at one step, in float64.

    ``gates`` maps i, f, g, o (LSTM), r, z, n (GRU) or h (RNN) to its ``GateTerm``. The
    cell-state fields are None for an RNN, whose ``h`` is ``gates["h"].value``, and for a GRU,
    whose ``kept`` is ``z * h_{t-1}``, ``written`` is ``(1 - z) * n`` and ``h`` their sum;
    ``reset_input`` is what the reset gate multiplies, ``h_{t-1} . Wh[:, n] + bhn``.
    """

    cell: str  # "lstm", "gru" or "rnn"
    layer: int
    step: int
    unit: int
    gates: dict  # name -> GateTerm
    h_prev: float  # h_{t-1}[unit], in (-1, 1)
    h: float  # h_t[unit], in (-1, 1)
    c_prev: float | None = None  # c_{t-1}[unit], unbounded
    kept: float | None = None  # f * c_{t-1} (GRU: z * h_{t-1})
    written: float | None = None  # i * g (GRU: (1 - z) * n)
    c: float | None = None  # c_t = kept + written
    tanh_c: float | None = None  # tanh(c_t), in (-1, 1)
    reset_input: float | None = None  # GRU: h_{t-1} . Wh[:, n] + bhn, unbounded


def _check_position(trace: Trace, layer: int, step: int, unit: int) -> None:
    """Raise ValueError unless layer, step and unit index into the trace."""
    for name, value, size in (("layer", layer, trace.num_layers), ("step", step, trace.steps),
                              ("unit", unit, trace.hidden_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < size:
            raise ValueError(f"{name} must be an integer in [0, {size - 1}], got {value!r}")


def _check_model_matches(model, trace: Trace) -> None:
    """Raise ValueError if the trace was not recorded with a model of this architecture."""
    config = model.config
    if (trace.cell, trace.num_layers, trace.hidden_size) != (config.cell, config.num_layers, config.hidden_size):
        raise ValueError(
            f"trace ({trace.cell}, {trace.num_layers} layer(s), H={trace.hidden_size}) does not match the model "
            f"({config.cell}, {config.num_layers} layer(s), H={config.hidden_size})")


def decompose(model, trace: Trace, layer: int, step: int, unit: int) -> GateBreakdown:
    """Break unit ``unit`` of ``layer`` at step ``step`` into its terms (module docstring).

    ``model`` is the ``SequenceModel`` that recorded ``trace``; all arithmetic is float64.
    """
    _check_model_matches(model, trace)
    _check_position(trace, layer, step, unit)
    H = trace.hidden_size
    names = {"lstm": GATES, "gru": GRU_GATES}.get(trace.cell, ("h",))
    cols = np.arange(len(names)) * H + unit  # (n_gates,) public columns of this unit
    # Only this unit's columns, in float64: (D, n_gates), (H, n_gates), (n_gates,)
    Wx, Wh, b = (np.asarray(a[..., cols], np.float64) for a in
                 (model.params[f"l{layer}.Wx"], model.params[f"l{layer}.Wh"], model.params[f"l{layer}.b"]))
    h_prev = np.asarray(trace.previous("h", layer, step), np.float64)  # (H,)
    if layer == 0 and model.config.input_kind == "onehot":
        input_parts = Wx[int(trace.inputs[step])]  # (n_gates,) one-hot row
    else:
        if layer > 0:
            x = trace.layers[layer - 1]["h"][step]  # (H,)
        elif model.config.input_kind == "dense":
            x = trace.inputs[step]  # (D,)
        else:
            x = model.encode_tokens(trace.inputs[step])  # (E,) embedding row or (1,) scaled index
        input_parts = np.asarray(x, np.float64) @ Wx  # (n_gates,)
    recurrent_parts = h_prev @ Wh  # (n_gates,)
    biases = b  # (n_gates,)
    reset_input = None
    if trace.cell == "gru":
        reset_input = float(recurrent_parts[2] + model.params[f"l{layer}.bhn"][unit])  # h_{t-1} . Wh_n + bhn
        r = float(sigmoid(input_parts[0] + recurrent_parts[0] + biases[0]))
        recurrent_parts = np.array([recurrent_parts[0], recurrent_parts[1], r * reset_input])  # (3,)
    gates = {}
    for k, name in enumerate(names):
        pre = input_parts[k] + recurrent_parts[k] + biases[k]
        act = ACTIVATIONS[name]
        gates[name] = GateTerm(name, float(input_parts[k]), float(recurrent_parts[k]), float(biases[k]),
                               float(pre), act, float(_ACTIVATION_FUNCTIONS[act](pre)))
    if trace.cell == "rnn":
        return GateBreakdown("rnn", layer, step, unit, gates, float(h_prev[unit]), gates["h"].value)
    if trace.cell == "gru":
        z, n = gates["z"].value, gates["n"].value
        kept, written = z * float(h_prev[unit]), (1.0 - z) * n
        return GateBreakdown("gru", layer, step, unit, gates, float(h_prev[unit]), written + kept,
                             kept=kept, written=written, reset_input=reset_input)
    c_prev = float(trace.previous("c", layer, step)[unit])
    kept = gates["f"].value * c_prev
    written = gates["i"].value * gates["g"].value
    c = kept + written
    tanh_c = float(np.tanh(c))
    return GateBreakdown("lstm", layer, step, unit, gates, float(h_prev[unit]), gates["o"].value * tanh_c,
                         c_prev=c_prev, kept=kept, written=written, c=c, tanh_c=tanh_c)


def input_label(trace: Trace, layer: int, step: int, max_values: int = 3) -> str:
    """A short label for the layer input at ``step``: the character for one-hot input with
    text (as ``engine.data.display_char`` shows it), ``#id`` without text, else the
    first ``max_values`` numbers of the vector (the layer below's h_t for layer > 0)."""
    if layer == 0 and trace.inputs.ndim == 1:
        if trace.text is not None and step < len(trace.text):
            return display_char(trace.text[step])
        return f"#{int(trace.inputs[step])}"
    x = trace.inputs[step] if layer == 0 else trace.layers[layer - 1]["h"][step]  # (D,)
    shown = ", ".join(f"{v:.3g}" for v in x[:max_values])
    return f"[{shown}{', …' if x.size > max_values else ''}]"


def diagram_values(trace: Trace, layer: int, step: int, unit: int) -> dict:
    """Wire values of the classic cell diagram for one unit at one step, read from the trace.

    LSTM keys: ``x_t`` (a short label, see ``input_label``), ``h_prev``, ``c_prev``, ``f``,
    ``i``, ``g``, ``o``, ``f*c_prev``, ``i*g``, ``c_t``, ``tanh(c_t)``, ``h_t``; GRU keys:
    ``x_t``, ``h_prev``, ``r``, ``z``, ``n``, ``1-z``, ``z*h_prev``, ``(1-z)*n``, ``h_t``; RNN
    keys: ``x_t``, ``h_prev``, ``pre``, ``h_t``. Values are Python floats (gates in their
    ranges as in ``decompose``; c unbounded).
    """
    _check_position(trace, layer, step, unit)
    values = {"x_t": input_label(trace, layer, step),
              "h_prev": float(trace.previous("h", layer, step)[unit])}
    record = trace.layers[layer]
    if trace.cell == "rnn":
        values["pre"] = float(record["pre"][step, unit])
        values["h_t"] = float(record["h"][step, unit])
        return values
    if trace.cell == "gru":
        gate = {name: float(record[name][step, unit]) for name in GRU_GATES}
        values.update(gate)
        values["1-z"] = 1.0 - gate["z"]
        values["z*h_prev"] = gate["z"] * values["h_prev"]
        values["(1-z)*n"] = values["1-z"] * gate["n"]
        values["h_t"] = float(record["h"][step, unit])
        return values
    gate = {name: float(record[name][step, unit]) for name in GATES}
    c_prev = float(trace.previous("c", layer, step)[unit])
    values.update(c_prev=c_prev, f=gate["f"], i=gate["i"], g=gate["g"], o=gate["o"])
    values["f*c_prev"] = gate["f"] * c_prev
    values["i*g"] = gate["i"] * gate["g"]
    values["c_t"] = float(record["c"][step, unit])
    values["tanh(c_t)"] = float(np.tanh(record["c"][step, unit]))
    values["h_t"] = float(record["h"][step, unit])
    return values
