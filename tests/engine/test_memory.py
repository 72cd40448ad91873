"""engine.memory: estimates from sizes alone, checked against the parameters a model really has
and against the peak NumPy allocations (tracemalloc) of training, tracing and sampling."""

import tracemalloc

import numpy as np
import pytest

from engine import memory
from engine.data import CharVocab, TextCorpus
from engine.model import ModelConfig, SequenceModel
from engine.sample import sample
from engine.evaluation import eval_chunk_length
from engine.train import TrainConfig, Trainer

V = 60
VOCAB = CharVocab([chr(65 + i) for i in range(V)])
CONFIGS = [("lstm", 256, 2, "float32"), ("rnn", 512, 1, "float64"), ("lstm", 64, 3, "float64")]


def config(cell, H, L, dtype):
    return ModelConfig(V, V, cell=cell, hidden_size=H, num_layers=L, dtype=dtype)


def peak_bytes(work):
    """Peak bytes allocated while ``work()`` runs (NumPy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("cell, H, L, dtype", CONFIGS + [("lstm", 3, 1, "float32")])
def test_parameter_count_matches_a_real_model(cell, H, L, dtype):
    c = config(cell, H, L, dtype)
    model = SequenceModel(c, rng=np.random.default_rng(0))
    assert memory.param_shapes(c) == {name: p.shape for name, p in model.params.items()}
    assert memory.model_bytes(c) == sum(p.nbytes for p in model.params.values())


def test_the_issue_example_hidden_100000():
    c = ModelConfig(65, 65, hidden_size=100_000)
    H = 100_000
    params = (65 + H) * 4 * H + 4 * H + H * 65 + 65  # Wx, Wh, b, head W, head b
    assert memory.model_bytes(c) == 4 * params
    # params, grads, m, v and last-good copies of params, m, v in float32, plus the float64
    # temporary of the largest parameter (Wh) at initialisation
    assert memory.training_state_bytes(c, slots=2) == 7 * 4 * params + 8 * H * 4 * H
    with pytest.raises(memory.NotEnoughMemory) as refused:
        memory.check_fits("a model with hidden size 100000", memory.training_state_bytes(c), 21 * 1024 ** 3,
                          detail="parameters and adam state")
    assert str(refused.value) == ("a model with hidden size 100000 needs about 1.3 TiB (parameters and adam state); "
                                  "this machine has 21.0 GiB available")


def test_check_fits_passes_what_fits_and_skips_when_unknown(monkeypatch):
    memory.check_fits("x", 10, available=10)
    monkeypatch.setattr(memory, "available_bytes", lambda: None)
    memory.check_fits("x", 10 ** 18)  # unknown available memory: no refusal


def test_available_memory_is_read_from_the_system():
    available = memory.available_bytes()
    with open("/proc/meminfo") as f:
        total = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemTotal:"))
    assert 0 < available <= total


def _within(estimate, measured):
    assert 0.5 * measured <= estimate <= 3 * measured, (estimate, measured)


@pytest.mark.parametrize("cell, H, L, dtype", CONFIGS)
def test_training_estimate_brackets_the_measured_peak(cell, H, L, dtype):
    c = config(cell, H, L, dtype)
    corpus = TextCorpus("".join(VOCAB.chars) * 400)
    train = TrainConfig(seq_len=64, batch_size=32, steps=2, eval_every=1)

    def run():
        trainer = Trainer(SequenceModel(c, rng=np.random.default_rng(0)), corpus, train)
        for _ in trainer.run():
            pass

    _within(memory.training_bytes(c, 32, 64, eval_chunk=eval_chunk_length(c, 32)), peak_bytes(run))


@pytest.mark.parametrize("cell, H, L, dtype", CONFIGS)
def test_trace_and_sample_estimates_bracket_the_measured_peaks(cell, H, L, dtype):
    c = config(cell, H, L, dtype)
    model = SequenceModel(c, rng=np.random.default_rng(0))
    _within(memory.trace_bytes(c, 3000), peak_bytes(lambda: model.trace(np.arange(3000) % V)))
    _within(memory.sample_bytes(c, 501), peak_bytes(lambda: sample(model, VOCAB, length=500,
                                                                     rng=np.random.default_rng(0))))


def test_export_image_estimate():
    assert memory.export_image_bytes(800, 400) == 800 * 400 * 4 * 3
    assert memory.export_image_bytes(800, 400, frames=200) == 800 * 400 * 4 * 202
