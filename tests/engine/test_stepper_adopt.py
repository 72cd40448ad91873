"""Stepper.adopt keeps the records of the blocks a whole-sequence trace covers: reading them
runs no forward, and they equal those a fresh stepper computes."""

import numpy as np
import pytest

from engine import ModelConfig, SequenceModel
from engine.stepper import Stepper


@pytest.fixture
def model():
    cfg = ModelConfig(input_size=7, output_size=7, hidden_size=5, num_layers=2, dtype="float64")
    return SequenceModel(cfg, rng=np.random.default_rng(0))


@pytest.mark.parametrize("T, traced", [(40, 40), (40, 20), (37, 37)])
def test_adopted_blocks_need_no_forward(model, monkeypatch, T, traced):
    ids = np.random.default_rng(1).integers(0, 7, T)  # (T,)
    whole = model.trace(ids[:traced])
    fresh = Stepper(model, ids, every=8).records(0, T)
    stepper = Stepper(model, ids, every=8)
    stepper.adopt(whole)
    covered = traced if traced == T else traced - traced % 8  # whole blocks, or up to the end
    forwards = []
    monkeypatch.setattr(model, "trace", lambda *a, **k: forwards.append(a) or SequenceModel.trace(model, *a, **k))
    got = stepper.records(0, covered)
    assert forwards == []
    for k in range(model.config.num_layers):
        for name in got.names:
            np.testing.assert_allclose(got.gate(name, k), fresh.gate(name, k)[:covered], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.outputs, fresh.outputs[:covered], rtol=0, atol=1e-12)
    if covered < T:  # beyond the adopted blocks the stepper computes, from the adopted checkpoint
        rest = stepper.records(covered, T)
        assert len(forwards) >= 1
        np.testing.assert_allclose(rest.gate("h", 1), fresh.gate("h", 1)[covered:], rtol=0, atol=1e-12)
