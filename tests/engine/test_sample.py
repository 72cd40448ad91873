"""engine.sample: greedy / seeded / top-k / temperature sampling and the trace it returns."""

import numpy as np
import pytest

from engine import ModelConfig, SequenceModel
from engine.data import CharVocab
from engine.errors import DataError
from engine.sample import MAX_SAMPLE_LENGTH, next_distribution, sample, start_char, trace_from_records

VOCAB = CharVocab.from_text("abcdefgh \n")


def make_model(cell="lstm", dtype="float32", layers=2, seed=0, vocab=VOCAB):
    config = ModelConfig(input_size=len(vocab), output_size=len(vocab), cell=cell, hidden_size=12,
                         num_layers=layers, dtype=dtype)
    return SequenceModel(config, rng=np.random.default_rng(seed))


def test_greedy_is_deterministic_and_takes_the_argmax():
    model = make_model()
    a = sample(model, VOCAB, prime="abc", length=40, greedy=True)
    b = sample(model, VOCAB, prime="abc", length=40, greedy=True)
    assert a.text == b.text == "abc" + a.generated and len(a.generated) == 40
    ids = VOCAB.encode(a.text)
    probs = model.trace(ids).outputs  # (T, V): the model's distribution after each character
    np.testing.assert_array_equal(ids[3:], np.argmax(probs[2:-1], axis=1))


def test_seeded_sampling_is_reproducible():
    model = make_model()
    a = sample(model, VOCAB, prime="ab", length=60, rng=np.random.default_rng(5))
    b = sample(model, VOCAB, prime="ab", length=60, rng=np.random.default_rng(5))
    c = sample(model, VOCAB, prime="ab", length=60, rng=np.random.default_rng(6))
    assert a.text == b.text and a.text != c.text


def test_top_k_one_equals_greedy():
    model = make_model(seed=3)
    greedy = sample(model, VOCAB, prime="fa", length=50, greedy=True)
    top1 = sample(model, VOCAB, prime="fa", length=50, top_k=1, temperature=2.5, rng=np.random.default_rng(0))
    assert top1.text == greedy.text


def test_top_k_only_draws_from_the_k_most_likely():
    model = make_model(seed=4)
    result = sample(model, VOCAB, prime="a", length=200, top_k=3, rng=np.random.default_rng(1))
    ids = VOCAB.encode(result.text)
    probs = result.trace.outputs  # (T, V)
    for t in range(1, len(ids)):
        top3 = np.argsort(-probs[t - 1], kind="stable")[:3]
        assert ids[t] in top3


def test_low_temperature_concentrates():
    model = make_model(seed=2)
    probs = model.trace(VOCAB.encode("abc")).outputs[-1]  # (V,)
    cold = next_distribution(probs, temperature=0.05)
    hot = next_distribution(probs, temperature=5.0)
    assert cold.max() > probs.max() > hot.max()
    assert cold.argmax() == probs.argmax()
    np.testing.assert_allclose(next_distribution(probs, 1.0), probs, rtol=1e-5)
    reference = probs.astype(np.float64) ** 2  # p ** (1 / 0.5), computed independently
    np.testing.assert_allclose(next_distribution(probs, 0.5), reference / reference.sum(), rtol=1e-5)
    entropy = lambda p: -np.sum(p[p > 0] * np.log(p[p > 0]))  # noqa: E731
    cold_text = sample(model, VOCAB, prime="a", length=300, temperature=0.1, rng=np.random.default_rng(0)).generated
    hot_text = sample(model, VOCAB, prime="a", length=300, temperature=3.0, rng=np.random.default_rng(0)).generated
    counts = lambda s: np.bincount(VOCAB.encode(s), minlength=len(VOCAB)) / len(s)  # noqa: E731
    assert entropy(counts(cold_text)) < entropy(counts(hot_text))


def test_extreme_temperatures_stay_finite():
    probs = np.array([1e-30, 0.5, 0.5 - 1e-30, 0.0], dtype=np.float32)
    for temperature in (1e-4, 1e4):
        q = next_distribution(probs, temperature)
        assert np.all(np.isfinite(q)) and q.sum() == pytest.approx(1.0) and q[3] == 0.0


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sample_trace_equals_model_trace(cell, dtype):
    model = make_model(cell, dtype)
    result = sample(model, VOCAB, prime="bad cab", length=25, rng=np.random.default_rng(9))
    expected = model.trace(VOCAB.encode(result.text), text=result.text)
    got = result.trace
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert got.cell == cell and got.steps == len(result.text) == 32 and got.text == result.text
    np.testing.assert_array_equal(got.inputs, expected.inputs)
    np.testing.assert_allclose(got.outputs, expected.outputs, atol=tol)
    assert got.outputs.dtype == np.dtype(dtype)
    for k in range(2):
        assert set(got.layers[k]) == set(expected.layers[k])
        for name, value in expected.layers[k].items():
            np.testing.assert_allclose(got.layers[k][name], value, atol=tol, err_msg=f"layer {k} {name}")
        for s_got, s_exp in zip(got.initial_state[k], expected.initial_state[k]):
            np.testing.assert_array_equal(s_got, s_exp)


def test_empty_prime_starts_with_the_start_char():
    model = make_model()
    result = sample(model, VOCAB, length=5, greedy=True)
    assert start_char(VOCAB) == "\n" and result.text[0] == "\n" and len(result.text) == 6
    assert result.generated == result.text[1:] and result.trace.steps == 6
    no_newline = CharVocab.from_text("xyz")
    assert start_char(no_newline) == "x"
    only_prime = sample(make_model(vocab=no_newline), no_newline, length=0, greedy=True)
    assert only_prime.text == "x" and only_prime.generated == "" and only_prime.trace.steps == 1


def test_trace_from_records_needs_a_step():
    with pytest.raises(ValueError, match="at least one step"):
        trace_from_records("lstm", [], [], np.zeros(0, np.int64), "")


def test_the_prime_runs_in_one_forward_and_no_trace_is_kept_when_not_asked(monkeypatch):
    """Without a trace only the generated characters are stepped one at a time, and the text is
    the one sampled with a trace (which equals ``model.trace`` of it)."""
    model = make_model(dtype="float64")
    prime = "abc defgh\n" * 300
    steps = []
    one_step = model.step
    monkeypatch.setattr(model, "step", lambda *a: steps.append(1) or one_step(*a))
    bare = sample(model, VOCAB, prime=prime, length=25, rng=np.random.default_rng(4), keep_trace=False)
    assert len(steps) == 25
    kept = sample(model, VOCAB, prime=prime, length=25, rng=np.random.default_rng(4))
    assert bare.trace is None and bare.text == kept.text and bare.generated == kept.generated
    reference = model.trace(VOCAB.encode(kept.text))
    np.testing.assert_allclose(kept.trace.gate("c", 1), reference.gate("c", 1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"temperature": 0.0}, "temperature"),
    ({"temperature": -1.0}, "temperature"),
    ({"temperature": float("nan")}, "temperature"),
    ({"temperature": float("inf")}, "temperature"),
    ({"top_k": 0}, "top_k"),
    ({"top_k": len(VOCAB) + 1}, "top_k"),
    ({"length": -1}, "length"),
    ({"length": MAX_SAMPLE_LENGTH + 1}, "length"),
    ({"rng": None}, "Generator"),
])
def test_bad_options_are_refused(kwargs, pattern):
    options = {"prime": "ab", "length": 5, "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(ValueError, match=pattern):
        sample(make_model(layers=1), VOCAB, **options)


def test_prime_outside_the_vocab_is_listed():
    with pytest.raises(DataError, match=r"prime has characters not in the vocabulary: 'X', 'Z'"):
        sample(make_model(layers=1), VOCAB, prime="aZbX", greedy=True)


def test_vocab_must_fit_the_model():
    with pytest.raises(ValueError, match="vocabulary has 3 characters"):
        sample(make_model(layers=1), CharVocab.from_text("abc"), greedy=True)
