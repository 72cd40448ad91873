"""engine.analysis.stream: chunked forward equals the whole-sequence trace."""

import numpy as np
import pytest

from engine.analysis.stream import checkpoint_states, final_state, iter_chunks, iter_segments, quantity

from .analysis_helpers import tiny_inputs, tiny_model


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
@pytest.mark.parametrize("chunk, start, end", [(7, 0, None), (50, 0, None), (4, 9, 31), (1000, 13, 14)])
def test_chunks_equal_the_whole_trace(cell, chunk, start, end):
    model, ids = tiny_model(cell), tiny_inputs(50)
    whole = model.trace(ids)
    end_ = 50 if end is None else end
    seen = start
    for t0, tr in iter_chunks(model, ids, start, end, chunk):
        assert t0 == seen and 1 <= tr.steps <= chunk
        for k in range(2):
            for name in tr.names:
                assert np.array_equal(tr.gate(name, k), whole.gate(name, k)[t0 : t0 + tr.steps])  # bit for bit
        np.testing.assert_allclose(tr.outputs, whole.outputs[t0 : t0 + tr.steps], rtol=0, atol=1e-14)
        seen += tr.steps
    assert seen == end_


def test_final_state_continues_the_sequence():
    model, ids = tiny_model(), tiny_inputs(20)
    head = model.trace(ids[:8])
    tail = model.trace(ids[8:], final_state(head))
    assert np.array_equal(tail.gate("c", 1), model.trace(ids).gate("c", 1)[8:])


def test_tanh_c_quantity():
    tr = tiny_model().trace(tiny_inputs(10))
    assert np.array_equal(quantity(tr, "tanh_c", 1), np.tanh(tr.gate("c", 1)))


@pytest.mark.parametrize("start, end, chunk", [(5, 5, 4), (-1, None, 4), (0, 51, 4), (0, None, 0)])
def test_bad_ranges_raise(start, end, chunk):
    with pytest.raises(ValueError):
        list(iter_chunks(tiny_model(), tiny_inputs(50), start, end, chunk))


def _checkpoints(model, ids, every, known=None):
    """``(J, L, S, H)`` checkpoints from ``model.trace``: row j the state after j * every steps."""
    whole = model.trace(ids)
    names = ("h", "c") if whole.cell == "lstm" else ("h",)
    J = ids.shape[0] // every + 1 if known is None else known
    rows = [[[np.zeros(whole.hidden_size) if j == 0 else layer[name][j * every - 1] for name in names]
             for layer in whole.layers] for j in range(J)]
    return np.array(rows)  # (J, L, S, H)


@pytest.mark.parametrize("cell", ["lstm", "rnn", "gru"])
def test_checkpoint_states_are_the_traces_states(cell):
    model, ids = tiny_model(cell), tiny_inputs(50)
    expected = _checkpoints(model, ids, 8)[1:]  # after 8, 16, ..., 48 steps
    got = checkpoint_states(model, ids, None, 8)
    assert got.shape == expected.shape == (6, 2, 2 if cell == "lstm" else 1, model.config.hidden_size)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    later = checkpoint_states(model, ids[16:], [tuple(a[None] for a in layer) for layer in expected[1]], 8)
    np.testing.assert_allclose(later, expected[2:], rtol=0, atol=1e-12)  # from the state after 16 steps on


def test_checkpoint_states_hand_out_every_cell_state_of_the_trace():
    """``cells`` receives c after every step of the whole blocks (the colour levels' sample)."""
    model, ids = tiny_model(), tiny_inputs(50)
    whole = model.trace(ids)
    cells = np.full((48, 2, model.config.hidden_size), np.nan)  # (48, L, H): 6 blocks of 8
    got = checkpoint_states(model, ids, None, 8, cells)
    np.testing.assert_allclose(got, checkpoint_states(model, ids, None, 8), rtol=0, atol=0)
    for k in range(2):
        np.testing.assert_allclose(cells[:, k], whole.gate("c", k)[:48], rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell, shape", [("lstm", (50, 2, 6)), ("lstm", (48, 1, 6)), ("rnn", (48, 2, 6))])
def test_checkpoint_states_refuse_a_cell_state_array_that_does_not_fit(cell, shape):
    with pytest.raises(ValueError, match="cells must be"):
        checkpoint_states(tiny_model(cell), tiny_inputs(50), None, 8, np.empty(shape))


@pytest.mark.parametrize("cell", ["lstm", "rnn", "gru"])
@pytest.mark.parametrize("segments, start, end, known", [(3, 0, None, None), (2, 9, 47, None), (4, 13, 14, None),
                                                         (2, 0, None, 3), (5, 30, None, 2), (1, 0, 48, None)])
def test_segments_equal_the_chunks(cell, segments, start, end, known):
    """Batched checkpoint segments (the known ones; the rest sequential) give iter_chunks's
    records in time order, each chunk from the true state before it."""
    model, ids = tiny_model(cell), tiny_inputs(50)
    whole = model.trace(ids)
    end_ = 50 if end is None else end
    seen = start
    for t0, tr in iter_segments(model, ids, _checkpoints(model, ids, 8, known), 8, start, end, segments):
        assert t0 == seen and 1 <= tr.steps <= segments * 8 and tr.start == t0
        for k in range(2):
            for name in tr.names:
                np.testing.assert_allclose(tr.gate(name, k), whole.gate(name, k)[t0 : t0 + tr.steps], rtol=0,
                                           atol=1e-12, err_msg=name)
            if t0:
                np.testing.assert_allclose(tr.initial_state[k][0], whole.gate("h", k)[t0 - 1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(tr.outputs, whole.outputs[t0 : t0 + tr.steps], rtol=0, atol=1e-12)
        seen += tr.steps
    assert seen == end_


def test_segments_refuse_bad_arguments():
    model, ids = tiny_model(), tiny_inputs(50)
    for kwargs in ({"every": 0}, {"segments": 0}, {"start": 50}):
        with pytest.raises(ValueError):
            list(iter_segments(model, ids, _checkpoints(model, ids, 8), **{"every": 8, **kwargs}))
    with pytest.raises(ValueError):
        list(iter_segments(model, ids, _checkpoints(model, ids, 8)[:0], 8))
