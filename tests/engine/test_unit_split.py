"""Every LSTM time step split by hidden units (``LSTMCell.forward_tm(pair=...)``, ``loss_and_grads(units=2)``):
the two blocks of units give the unsplit results to round-off, run in turn or at once on the
partner thread (``engine.runtime.StepPartner``) with the same bits, and the partner hands on
errors and never keeps the interpreter alive.

The expected values come from the unsplit path (itself checked against a naive reference, by
finite differences and against PyTorch in test_speed_paths.py, test_gradcheck.py and
test_torch_parity.py), from finite differences of the loss, and from PyTorch directly.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import runtime
from engine.cells import LSTMCell
from engine.data import TextCorpus
from engine.model import ModelConfig, SequenceModel
from engine.train import TrainConfig, Trainer

from .helpers import assert_gradients, make_problem
from .test_data_parallel import REL, relative

ROOT = Path(__file__).resolve().parents[2]  # the repository root: the child imports engine from it
PAIRS = {"in turn": lambda: runtime.IN_TURN, "at once": lambda: runtime.shard_executor(cores=2, load=0.0)}


@pytest.mark.parametrize("how", PAIRS)
@pytest.mark.parametrize("H", [6, 7])
def test_cell_split_by_units_equals_the_unsplit_cell(how, H):
    """Float64, odd and even H (blocks of 3 + 4 units), initial state, final-state gradient,
    recorded dh/dc and pre-activations: every output within 1e-12 of the unsplit cell's."""
    rng = np.random.default_rng(H)
    T, B, D = 6, 5, 3
    cell = LSTMCell(D, H)
    prep = cell.prepare(cell.init_params(rng, np.float64))
    xp = rng.standard_normal((T, B, D)) @ prep.Wx_s + prep.b_s  # (T, B, G)
    state = (rng.standard_normal((B, H)), rng.standard_normal((B, H)))  # (B, H) each
    dhs = rng.standard_normal((T, B, H))  # (T, B, H)
    dstate = (rng.standard_normal((B, H)), rng.standard_normal((B, H)))  # (B, H) each
    runs = []
    for pair in (None, PAIRS[how]()):
        hs, final, cache = cell.forward_tm(prep, xp, state, keep_pre=True, pair=pair)
        record = {}
        dz, dWh, dstate0 = cell.backward_tm(prep, cache, dhs, dstate, record=record)
        runs.append([hs, *final, cache["acts"], cache["cs"], cache["tc"], cache["pre"], dz, dWh, *dstate0,
                     record["dh"], record["dc"]])
    for whole, split in zip(*runs):
        assert split.shape == whole.shape
        assert relative(split, whole) <= REL


CASES = [
    ("lstm", 1, "softmax", "onehot", 0.0),
    ("lstm", 2, "linear", "dense", 0.3),
    ("gru", 2, "tanh", "onehot", 0.4),  # GRU and RNN layers run unsplit
    ("rnn", 1, "softmax", "onehot", 0.0),
]


@pytest.mark.parametrize("how", PAIRS)
@pytest.mark.parametrize("cell,layers,head,input_kind,dropout", CASES)
def test_training_batch_split_by_units_equals_the_whole_batch(cell, layers, head, input_kind, dropout, how):
    model, inputs, targets, state, _ = make_problem(cell, layers, head, input_kind, D=4, H=7, T=5, B=3, O=4,
                                                    dropout=dropout, seed=layers)
    loss, grads, final = model.loss_and_grads(inputs, targets, state, rng=np.random.default_rng(5))
    partner = None if how == "in turn" else PAIRS[how]()
    split_loss, split_grads, split_final = model.loss_and_grads(inputs, targets, state, rng=np.random.default_rng(5),
                                                                units=2, partner=partner)
    assert abs(split_loss - loss) <= REL * abs(loss)
    assert set(split_grads) == set(grads)
    for name, g in grads.items():
        assert split_grads[name].dtype == g.dtype and split_grads[name].shape == g.shape
        assert relative(split_grads[name], g) <= REL, name
    for layer, split_layer in zip(final, split_final):
        for s, split_s in zip(layer, split_layer):
            assert relative(split_s, s) <= REL


def test_unit_split_gradients_match_finite_differences():
    """Two LSTM layers with dropout: the split step's gradients against finite differences of
    the loss (the fixed rng seed gives every evaluation the same masks)."""
    model, inputs, targets, state, _ = make_problem("lstm", 2, "softmax", "dense", D=3, H=5, T=4, B=3, O=3,
                                                    dropout=0.3, seed=4)
    _, grads, _ = model.loss_and_grads(inputs, targets, state, rng=np.random.default_rng(8), units=2,
                                       partner=PAIRS["at once"]())

    def f() -> float:
        return model.forward(inputs, state, targets, train=True, rng=np.random.default_rng(8)).loss

    assert_gradients(f, dict(model.params), grads)


def test_unit_split_matches_torch():
    """Steps split by units give PyTorch's float64 loss, gradients and final state."""
    torch = pytest.importorskip("torch")
    from .test_torch_parity import torch_twin

    model, inputs, targets, state, _ = make_problem("lstm", 2, "softmax", "onehot", D=5, H=7, T=6, B=4, O=5, seed=2)
    loss, grads, final = model.loss_and_grads(inputs, targets, state, units=2, partner=PAIRS["at once"]())
    rnn, head = torch_twin(model, np.random.default_rng(9))
    x = torch.nn.functional.one_hot(torch.from_numpy(inputs), 5).double()  # (B, T, V)
    h0, c0 = (torch.from_numpy(np.stack([s[j] for s in state])) for j in (0, 1))  # (L, B, H)
    hs, (hn, cn) = rnn(x, (h0, c0))
    torch_loss = torch.nn.CrossEntropyLoss()(head(hs).reshape(-1, 5), torch.from_numpy(targets).reshape(-1))
    torch_loss.backward()
    assert loss == pytest.approx(torch_loss.item(), rel=1e-12)
    for k in range(2):
        np.testing.assert_allclose(grads[f"l{k}.Wh"], getattr(rnn, f"weight_hh_l{k}").grad.T.numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(grads[f"l{k}.Wx"], getattr(rnn, f"weight_ih_l{k}").grad.T.numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(grads[f"l{k}.b"], getattr(rnn, f"bias_hh_l{k}").grad.numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(final[k][0], hn[k].detach().numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(final[k][1], cn[k].detach().numpy(), rtol=0, atol=1e-12)


def test_unit_blocks_at_once_give_the_bits_of_blocks_in_turn():
    """Two threads stepping in lockstep many times over (float32, products large enough to
    overlap): every run gives exactly the figures of the blocks run in turn."""
    model = SequenceModel(ModelConfig(input_size=20, output_size=20, hidden_size=96, num_layers=2),
                          rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 20, (16, 24)), rng.integers(0, 20, (16, 24))  # (B, T) ids
    partner = PAIRS["at once"]()
    with runtime.blas_threads(1):
        loss, grads, final = model.loss_and_grads(x, y, units=2)
        for _ in range(30):
            at_once = model.loss_and_grads(x, y, units=2, partner=partner)
            assert at_once[0] == loss
            for name, g in grads.items():
                np.testing.assert_array_equal(at_once[1][name], g, err_msg=name)
            for layer, layer_at_once in zip(final, at_once[2]):
                for s, s_at_once in zip(layer, layer_at_once):
                    np.testing.assert_array_equal(s_at_once, s)


def steps(log: list, name: str, n: int, fail_at: int | None = None, value=None):
    """A generator of ``n`` steps appending ``(name, k)`` to ``log``; raises at step ``fail_at``."""
    for k in range(n):
        if k == fail_at:
            raise ValueError(f"{name} failed at step {k}")
        log.append((name, k))
        yield
    return value


@pytest.mark.parametrize("runner", ["in turn", "at once"])
def test_run_pair_keeps_both_sides_in_lockstep_and_returns_their_values(runner):
    """After each step both sides wait for the other: no side is ever two steps ahead."""
    log = []
    values = PAIRS[runner]().run_pair(steps(log, "a", 50, value=1), steps(log, "b", 50, value=2))
    assert values == (1, 2)
    assert sorted(log) == sorted([(name, k) for name in "ab" for k in range(50)])
    position = {entry: n for n, entry in enumerate(log)}
    for k in range(1, 50):
        for name, other in (("a", "b"), ("b", "a")):
            assert position[(name, k)] > position[(other, k - 1)]


@pytest.mark.parametrize("failing", ["first", "second"])
def test_an_error_on_either_side_reaches_the_caller_and_the_partner_serves_on(failing):
    partner = PAIRS["at once"]()
    log = []
    first = steps(log, "first", 20, fail_at=5 if failing == "first" else None)
    second = steps(log, "second", 20, fail_at=5 if failing == "second" else None)
    with pytest.raises(ValueError, match=f"{failing} failed at step 5"):
        partner.run_pair(first, second)
    other = "second" if failing == "first" else "first"
    assert max(k for name, k in log if name == other) <= 5  # stopped at its next barrier
    assert partner.run_pair(steps([], "a", 3, value="a"), steps([], "b", 3, value="b")) == ("a", "b")


def test_a_run_split_by_units_repeats_exactly_and_equals_the_unsplit_run(monkeypatch):
    """Float64, 12 Adam steps with dropout and carried state at once on the partner: the same
    seed gives the same weights bit for bit run to run, and the unsplit run's to round-off."""
    partner = PAIRS["at once"]()
    runs = []
    for units in (2, 2, 1):
        monkeypatch.setattr("engine.train.unit_blocks", lambda hidden, batch, units=units: units)
        monkeypatch.setattr("engine.train.training_plan", lambda hidden, batch, shards=1, units=units:
                            runtime.TrainingPlan(1, 1, partner if units > 1 else None, 1, unit_blocks=units))
        rng = np.random.default_rng(0)
        corpus = TextCorpus("".join(rng.choice(["abcd ", "abce ", "xyz "], size=400)), val_fraction=0.1)
        V = len(corpus.vocab)
        model = SequenceModel(ModelConfig(V, V, hidden_size=11, num_layers=2, dropout=0.2, dtype="float64"),
                              rng=np.random.default_rng(0))
        trainer = Trainer(model, corpus, TrainConfig(seq_len=8, batch_size=4, steps=12, eval_every=4))
        labels = {trainer.plan.label for p in trainer.run() if not p.done}
        runs.append((labels, model.params))
    (labels, params), (_, params_again), (unsplit_labels, params_unsplit) = runs
    assert labels == {"2 unit blocks at once"} and unsplit_labels == {"1 BLAS thread"}
    for name, p in params.items():
        np.testing.assert_array_equal(params_again[name], p)
        assert relative(p, params_unsplit[name]) <= 1e-10, name  # Adam divides by sqrt(v): round-off grows a little


def test_the_plan_splits_large_steps_by_units_at_once_or_in_turn_by_the_load():
    at_once = runtime.training_plan(512, 32, cores=2, load=0.0)
    assert (at_once.shards, at_once.unit_blocks, at_once.blas_threads, at_once.label) == (
        1, 2, 1, "2 unit blocks at once")
    assert at_once.partner is runtime.shard_executor(cores=2, load=0.0)
    busy = runtime.training_plan(512, 32, cores=2, load=1.5)
    assert (busy.unit_blocks, busy.partner, busy.label) == (2, None, "2 unit blocks in turn")
    assert runtime.training_plan(512, 32, cores=1).label == "2 unit blocks in turn"


def test_an_idle_partner_never_keeps_the_interpreter_alive():
    """A process that trained with the partner thread exits at once when its main thread ends."""
    code = ("import numpy as np\n"
            "from engine import runtime\n"
            "from engine.model import ModelConfig, SequenceModel\n"
            "m = SequenceModel(ModelConfig(5, 5, hidden_size=8), rng=np.random.default_rng(0))\n"
            "ids = np.zeros((2, 3), int)\n"
            "m.loss_and_grads(ids, ids, units=2, partner=runtime.shard_executor(cores=2, load=0.0))\n"
            "print('trained')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert done.returncode == 0 and done.stdout == "trained\n", done.stderr
