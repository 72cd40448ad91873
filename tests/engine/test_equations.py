"""engine.equations: the equation breakdown and the diagram wires equal the recorded trace."""

import numpy as np
import pytest

from engine.cells import GATES
from engine.equations import decompose, diagram_values
from engine.model import ModelConfig, SequenceModel

TEXT = "ab c\nba"


def make_model(cell="lstm", layers=2, dtype="float64", input_kind="onehot", seed=0):
    config = ModelConfig(input_size=5 if input_kind == "onehot" else 3, output_size=5, cell=cell, hidden_size=4,
                         num_layers=layers, input_kind=input_kind, dtype=dtype,
                         head="softmax" if input_kind == "onehot" else "linear")
    return SequenceModel(config, rng=np.random.default_rng(seed))


def make_trace(model, seed=1):
    rng = np.random.default_rng(seed)
    if model.config.input_kind == "onehot":
        ids = np.array(["abc \n".index(ch) for ch in TEXT])  # (T,)
        # a non-zero initial state so that h_prev/c_prev at step 0 are exercised too
        state = [tuple(rng.uniform(-0.5, 0.5, (1, 4)) .astype(model.dtype) for _ in cell.state_names)
                 for cell in model.cells]
        return model.trace(ids, state=state, text=TEXT)
    return model.trace(rng.normal(size=(6, 3)).astype(model.dtype))  # (T, D)


def all_positions(trace):
    return [(k, t, u) for k in range(trace.num_layers) for t in range(trace.steps) for u in range(trace.hidden_size)]


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
@pytest.mark.parametrize("input_kind", ["onehot", "dense"])
def test_breakdown_equals_trace_float64(cell, input_kind):
    model = make_model(cell, input_kind=input_kind)
    trace = make_trace(model)
    for k, t, u in all_positions(trace):
        b = decompose(model, trace, k, t, u)
        names = GATES if cell == "lstm" else ("h",)
        assert tuple(b.gates) == names
        G = len(names)
        for j, name in enumerate(names):
            term = b.gates[name]
            recorded_pre = trace.layers[k]["pre"][t, j * 4 + u]
            assert term.pre == pytest.approx(recorded_pre, abs=1e-12)
            assert term.pre == pytest.approx(term.input_part + term.recurrent_part + term.bias, abs=1e-15)
            assert term.value == pytest.approx(trace.layers[k][name][t, u], abs=1e-12)
            assert term.activation == ("tanh" if name in ("g", "h") else "sigmoid")
        assert G == len(b.gates)
        assert b.h == pytest.approx(trace.layers[k]["h"][t, u], abs=1e-12)
        assert b.h_prev == trace.previous("h", k, t)[u]
        if cell == "lstm":
            assert b.c == pytest.approx(trace.layers[k]["c"][t, u], abs=1e-12)
            assert b.c_prev == trace.previous("c", k, t)[u]
            assert b.c == pytest.approx(b.kept + b.written, abs=1e-15)
            assert b.tanh_c == pytest.approx(np.tanh(trace.layers[k]["c"][t, u]), abs=1e-12)
        else:
            assert b.c is None and b.kept is None


def test_input_part_of_one_hot_is_the_token_row():
    model = make_model("lstm", layers=1)
    trace = make_trace(model)
    Wx = model.params["l0.Wx"]  # (V, 4H)
    b = decompose(model, trace, 0, 3, 3)  # step 3 is "c" (id 2)
    assert b.gates["g"].input_part == Wx[2, 2 * 4 + 3]
    assert b.gates["i"].bias == model.params["l0.b"][3]


def test_layer_above_reads_the_layer_below():
    model = make_model("lstm", layers=2)
    trace = make_trace(model)
    x = trace.layers[0]["h"][4]  # (H,) layer 0's h_t is layer 1's x_t
    expected = float(x @ model.params["l1.Wx"][:, 1 * 4 + 2])
    assert decompose(model, trace, 1, 4, 2).gates["f"].input_part == pytest.approx(expected, abs=1e-15)


def test_breakdown_float32_model_within_float32_precision():
    """float32 model: the float64 breakdown agrees with the float32 trace to 1e-5 absolute
    (gates in (-1, 1), pre-activations of order 1: a few float32 ulps)."""
    model = make_model("lstm", dtype="float32")
    trace = make_trace(model)
    worst = 0.0
    for k, t, u in all_positions(trace):
        b = decompose(model, trace, k, t, u)
        for j, name in enumerate(GATES):
            worst = max(worst, abs(b.gates[name].value - trace.layers[k][name][t, u]),
                        abs(b.gates[name].pre - trace.layers[k]["pre"][t, j * 4 + u]))
        worst = max(worst, abs(b.c - trace.layers[k]["c"][t, u]), abs(b.h - trace.layers[k]["h"][t, u]))
    assert worst < 1e-5


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_diagram_values_equal_trace(cell):
    model = make_model(cell, dtype="float32")
    trace = make_trace(model)
    for k, t, u in all_positions(trace):
        d = diagram_values(trace, k, t, u)
        rec = trace.layers[k]
        assert d["h_prev"] == trace.previous("h", k, t)[u]
        assert d["h_t"] == rec["h"][t, u]
        if cell == "rnn":
            assert set(d) == {"x_t", "h_prev", "pre", "h_t"}
            assert d["pre"] == rec["pre"][t, u]
            continue
        assert set(d) == {"x_t", "h_prev", "c_prev", "f", "i", "g", "o", "f*c_prev", "i*g", "c_t", "tanh(c_t)", "h_t"}
        for name in GATES:
            assert d[name] == rec[name][t, u]
        assert d["c_prev"] == trace.previous("c", k, t)[u]
        assert d["c_t"] == rec["c"][t, u]
        # the diagram's wires obey the cell equations to float32 precision
        assert d["f*c_prev"] + d["i*g"] == pytest.approx(d["c_t"], abs=1e-6)
        assert d["o"] * d["tanh(c_t)"] == pytest.approx(d["h_t"], abs=1e-6)


def test_diagram_input_labels():
    model = make_model("lstm", layers=2)
    trace = make_trace(model)
    labels = [diagram_values(trace, 0, t, 0)["x_t"] for t in range(trace.steps)]
    assert labels == ["a", "b", "␣", "c", "\\n", "b", "a"]
    no_text = model.trace(trace.inputs)
    assert diagram_values(no_text, 0, 1, 0)["x_t"] == "#1"
    upper = diagram_values(trace, 1, 0, 0)["x_t"]
    assert upper.startswith("[") and upper.endswith(", …]")  # layer 0's h_t, H=4 > 3 shown
    dense = make_trace(make_model("lstm", input_kind="dense"))
    assert diagram_values(dense, 0, 0, 0)["x_t"] == "[" + ", ".join(f"{v:.3g}" for v in dense.inputs[0]) + "]"


@pytest.mark.parametrize("bad", [dict(layer=2), dict(step=7), dict(unit=-1), dict(unit=1.5)])
def test_bad_positions_raise_value_error(bad):
    model = make_model("lstm")
    trace = make_trace(model)
    where = dict(layer=0, step=0, unit=0) | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        decompose(model, trace, **where)
    with pytest.raises(ValueError, match=next(iter(bad))):
        diagram_values(trace, **where)


def test_trace_from_another_architecture_is_refused():
    trace = make_trace(make_model("lstm"))
    with pytest.raises(ValueError, match="does not match the model"):
        decompose(make_model("rnn"), trace, 0, 0, 0)


def _gru_unit_by_hand(model, trace, k, t, u):
    """r, z, n, h of unit ``u`` written out from nn.GRU's equations on the model's parameters."""
    H = trace.hidden_size
    P = {name: model.params[f"l{k}.{name}"] for name in ("Wx", "Wh", "b", "bhn")}
    x = trace.layers[k - 1]["h"][t] if k else np.eye(5)[trace.inputs[t]]  # (D,)
    h_prev = trace.previous("h", k, t)  # (H,)
    col = {name: j * H + u for j, name in enumerate(("r", "z", "n"))}
    r = 1 / (1 + np.exp(-(x @ P["Wx"][:, col["r"]] + h_prev @ P["Wh"][:, col["r"]] + P["b"][col["r"]])))
    z = 1 / (1 + np.exp(-(x @ P["Wx"][:, col["z"]] + h_prev @ P["Wh"][:, col["z"]] + P["b"][col["z"]])))
    n = np.tanh(x @ P["Wx"][:, col["n"]] + P["b"][col["n"]] + r * (h_prev @ P["Wh"][:, col["n"]] + P["bhn"][u]))
    return r, z, n, (1 - z) * n + z * h_prev[u]


def test_gru_breakdown_equals_trace_and_the_equations_float64():
    model = make_model("gru")
    trace = make_trace(model)
    for k, t, u in all_positions(trace):
        b = decompose(model, trace, k, t, u)
        assert b.cell == "gru" and tuple(b.gates) == ("r", "z", "n") and b.c is None
        for j, name in enumerate(("r", "z", "n")):
            term = b.gates[name]
            assert term.pre == pytest.approx(trace.layers[k]["pre"][t, j * 4 + u], abs=1e-12)
            assert term.pre == pytest.approx(term.input_part + term.recurrent_part + term.bias, abs=1e-15)
            assert term.value == pytest.approx(trace.layers[k][name][t, u], abs=1e-12)
        r, z, n, h = _gru_unit_by_hand(model, trace, k, t, u)
        assert (b.gates["r"].value, b.gates["z"].value, b.gates["n"].value) == pytest.approx((r, z, n), abs=1e-12)
        assert b.gates["n"].recurrent_part == pytest.approx(r * b.reset_input, abs=1e-15)
        assert b.kept == pytest.approx(z * b.h_prev, abs=1e-15) and b.written == pytest.approx((1 - z) * n, abs=1e-15)
        assert b.h == pytest.approx(h, abs=1e-12) and b.h == pytest.approx(trace.layers[k]["h"][t, u], abs=1e-12)


def test_gru_diagram_values_equal_trace():
    model = make_model("gru", dtype="float32")
    trace = make_trace(model)
    for k, t, u in all_positions(trace):
        d = diagram_values(trace, k, t, u)
        rec = trace.layers[k]
        assert set(d) == {"x_t", "h_prev", "r", "z", "n", "1-z", "z*h_prev", "(1-z)*n", "h_t"}
        assert (d["r"], d["z"], d["n"], d["h_t"]) == (rec["r"][t, u], rec["z"][t, u], rec["n"][t, u], rec["h"][t, u])
        assert d["h_prev"] == trace.previous("h", k, t)[u]
        assert d["(1-z)*n"] + d["z*h_prev"] == pytest.approx(d["h_t"], abs=1e-6)
