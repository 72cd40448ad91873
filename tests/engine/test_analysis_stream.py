"""engine.analysis.stream: chunked forward equals the whole-sequence trace."""

import numpy as np
import pytest

from engine.analysis.stream import final_state, iter_chunks, quantity

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
