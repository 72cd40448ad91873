"""PyTorch as a training backend (``lstmviz.torch_backend``, ``lstmviz train --backend torch``):
the same step as the engine, the same checkpoint, exact resume across backends, torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.checkpoint import load_char_checkpoint, load_checkpoint  # noqa: E402
from engine.data import TextCorpus  # noqa: E402
from engine.interop.export import state_dict_arrays  # noqa: E402
from engine.model import ModelConfig, SequenceModel  # noqa: E402
from engine.runtime import blas_threads_for  # noqa: E402
from engine.series import SeriesDataset  # noqa: E402
from engine.settings import split_values  # noqa: E402
from engine.train import TrainConfig, Trainer, TrainingDiverged, estimate_time  # noqa: E402
from lstmviz.cli import main  # noqa: E402
from lstmviz.core.presets import preset_named  # noqa: E402
from lstmviz import torch_backend  # noqa: E402
from lstmviz.torch_backend import TorchTrainer, build_module, on_torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def pattern_text(n_words=400, seed=0):
    rng = np.random.default_rng(seed)
    return "".join(rng.choice(["abcd ", "abce ", "xyz ", "the cat "], size=n_words))


@pytest.fixture(scope="module")
def corpus():
    return TextCorpus(pattern_text(), val_fraction=0.1)


def make_pair(corpus, model_values: dict, train_values: dict, seed=3):
    """An engine trainer and a torch trainer with the same weights, data and settings."""
    V = len(corpus.vocab)
    model = SequenceModel(ModelConfig(V, V, **model_values), rng=np.random.default_rng(seed))
    config = TrainConfig(**train_values)
    copy = SequenceModel(model.config, params={n: p.copy() for n, p in model.params.items()})
    return Trainer(model, corpus, config), on_torch(Trainer(copy, corpus, config))


def assert_same_state(engine: Trainer, other: Trainer, rtol: float, atol: float):
    """Parameters, optimizer slots and step count, carried state and data position agree."""
    assert other.step == engine.step and other.batches_taken == engine.batches_taken
    assert other.optimizer.t == engine.optimizer.t
    for name, p in engine.model.params.items():
        np.testing.assert_allclose(other.model.params[name], p, rtol=rtol, atol=atol, err_msg=name)
    for slot, held in engine.optimizer.slots.items():
        for name, a in held.items():
            np.testing.assert_allclose(other.optimizer.slots[slot][name], a, rtol=rtol, atol=atol,
                                       err_msg=f"{slot}/{name}")
    assert (engine.carry is None) == (other.carry is None)
    if engine.carry is not None:
        for ours, theirs in zip(engine.carry, other.carry):
            for a, b in zip(ours, theirs):
                np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)
    assert other.rng.bit_generator.state == engine.rng.bit_generator.state


def char_rnn_values(**small):
    """The char-rnn preset's settings, shrunk by ``small`` (sizes only)."""
    model_values, train_values = split_values(preset_named("char-rnn").values, ModelConfig, TrainConfig)
    sizes = {"hidden_size": 16, "seq_len": 12, "batch_size": 4, **small}
    model_values.update({k: v for k, v in sizes.items() if k in model_values})
    train_values.update({k: v for k, v in sizes.items() if k in train_values})
    return model_values, train_values


def test_module_has_the_documented_names_and_weights(corpus):
    V = len(corpus.vocab)
    model = SequenceModel(ModelConfig(V, V, cell="gru", num_layers=2, hidden_size=8, input_kind="embedding",
                                      embed_size=5), rng=np.random.default_rng(0))
    module = build_module(model)
    expected = state_dict_arrays(model)
    assert set(module.state_dict()) == set(expected)  # embed.weight, rnn.weight_ih_l0, ..., head.bias
    for name, value in module.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), expected[name])
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert "rnn.bias_hh_l1" in trainable  # a GRU trains its bhn there; an LSTM's bias_hh stays zero


@pytest.mark.parametrize("recipe", ["adam", "char-rnn"])
def test_one_step_equals_the_engine_in_float32(corpus, recipe):
    if recipe == "adam":  # the defaults: Adam 2e-3, clip norm 5
        model_values, train_values = {"hidden_size": 16}, {"seq_len": 12, "batch_size": 4}
    else:  # RMSprop decay 0.95, every element clamped to +-5, U(+-0.08), forget bias 1, two layers
        model_values, train_values = char_rnn_values()
        assert train_values["optimizer"] == "rmsprop" and train_values["clip_value"] == 5.0
    engine, other = make_pair(corpus, model_values, {**train_values, "steps": 1})
    before = {n: p.copy() for n, p in engine.model.params.items()}
    engine.train_step()
    other.train_step()
    other._pull()
    assert_same_state(engine, other, rtol=1e-4, atol=2e-6)  # measured: 4e-8 (Adam), 4e-6 (char-rnn) at most
    # one step moved the weights by far more than the agreement asked for
    assert max(float(np.abs(p - before[n]).max()) for n, p in engine.model.params.items()) > 1e-3


VARIANTS = {  # each runs several steps in float64 against the engine
    "gru-embedding-dropout-random-sgd": (dict(cell="gru", num_layers=2, hidden_size=8, input_kind="embedding",
                                              embed_size=6, dropout=0.3),
                                         dict(optimizer="sgd", momentum=0.9, lr=0.05, batching="random")),
    "rnn-scaled-index-adagrad": (dict(cell="rnn", num_layers=2, hidden_size=8, input_kind="scaled_index"),
                                 dict(optimizer="adagrad", lr=0.05, clip_norm=0.5)),
    "lstm-dropout-exponential-warmup": (dict(num_layers=3, hidden_size=8, dropout=0.2, forget_bias=1.0),
                                        dict(lr_schedule="exponential", lr_decay=0.5, lr_warmup=3)),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_steps_equal_the_engine_for_every_part(corpus, variant):
    model_values, train_values = VARIANTS[variant]
    train_values = {"seq_len": 10, "batch_size": 4, "steps": 6, **train_values}
    engine, other = make_pair(corpus, {**model_values, "dtype": "float64"}, train_values)
    for _ in range(6):
        assert other.train_step() == pytest.approx(engine.train_step(), rel=1e-9)
    other._pull()
    assert_same_state(engine, other, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("head", ["linear", "tanh"])
def test_a_series_forecaster_trains_as_in_the_engine(head):
    series = SeriesDataset(np.sin(np.arange(300) * 0.3) + 0.1 * np.cos(np.arange(300) * 1.7), window=3, horizon=2,
                           val_fraction=0.2, dtype="float64")
    config = ModelConfig(3, 2, cell="gru", hidden_size=8, input_kind="dense", head=head, dtype="float64")
    model = SequenceModel(config, rng=np.random.default_rng(5))
    copy = SequenceModel(config, params={n: p.copy() for n, p in model.params.items()})
    train = TrainConfig(seq_len=8, batch_size=4, steps=5, eval_every=5, lr=1e-2)
    engine, other = Trainer(model, series, train), on_torch(Trainer(copy, series, train))
    ours, theirs = list(engine.run()), list(other.run())
    assert [p.train_loss for p in theirs] == pytest.approx([p.train_loss for p in ours], rel=1e-9)
    assert theirs[-1].val_loss == pytest.approx(ours[-1].val_loss, rel=1e-9) and theirs[-1].loss_unit == ours[-1].loss_unit
    assert_same_state(engine, other, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("first", ["torch", "numpy"])
def test_a_run_resumed_in_the_other_backend_continues_exactly(corpus, tmp_path, first):
    # char-rnn's recipe with epochs of 12 batches: the resumed part crosses an epoch (the streams restart
    # from a zero state and the step decay, from epoch 1 here, takes effect)
    model_values, train_values = char_rnn_values(batch_size=4, seq_len=40)
    train_values.update(steps=14, lr_decay_start=1, eval_every=5)
    model_values["dtype"] = "float64"
    assert corpus.batches_per_epoch(4, 40) == 12
    whole, _ = make_pair(corpus, model_values, train_values)
    list(whole.run())
    engine, other = make_pair(corpus, model_values, {**train_values, "steps": 5})
    first_part = other if first == "torch" else engine
    list(first_part.run())
    path = tmp_path / "half.npz"
    first_part.save(path)
    resumed = Trainer.from_checkpoint(load_checkpoint(path), corpus, steps=14)
    if first == "numpy":
        resumed = on_torch(resumed)
    progress = list(resumed.run())
    assert progress[-1].done and progress[-1].step == 14
    assert resumed.optimizer.lr == pytest.approx(2e-3 * 0.97)  # the schedule continued: one decay
    assert_same_state(whole, resumed, rtol=1e-9, atol=1e-12)
    assert resumed.smooth_loss == pytest.approx(whole.smooth_loss, rel=1e-9)


def test_a_runaway_run_stops_with_the_last_good_weights_as_the_engine_does(corpus):
    engine, other = make_pair(corpus, {"hidden_size": 8}, {"optimizer": "sgd", "lr": 1e6, "clip_norm": None,
                                                           "seq_len": 10, "batch_size": 4})
    start = {n: p.copy() for n, p in engine.model.params.items()}
    messages = []
    for trainer in (engine, other):
        with pytest.raises(TrainingDiverged) as caught:
            for _ in range(20):
                trainer.train_step()
        messages.append(str(caught.value))
    assert messages[0].startswith("training diverged at step 2: the loss ran away")
    assert messages[0].endswith("back to step 0 (try a lower learning rate or gradient clipping)")
    assert messages[1].split(":")[:2] == messages[0].split(":")[:2]
    assert messages[1].split("; ")[-1] == messages[0].split("; ")[-1]
    other._pull()
    assert other.step == engine.step == 0 and other.optimizer.t == 0
    for name, p in other.model.params.items():  # the weights before the update that ran away, exactly
        np.testing.assert_array_equal(p, start[name])


def test_the_time_estimate_measures_torch_steps_and_leaves_the_trainer_untouched(corpus, monkeypatch):
    engine, other = make_pair(corpus, {"hidden_size": 8}, {"seq_len": 10, "batch_size": 4, "steps": 45,
                                                           "eval_every": 10})
    for trainer in (engine, other):
        for _ in range(3):
            trainer.train_step()
    calls = {"steps": 0, "evaluations": 0}
    real_step, real_evaluate = TorchTrainer.train_step, TorchTrainer.evaluate

    def counted_step(self):
        calls["steps"] += 1
        return real_step(self)

    def counted_evaluate(self, stop=None):
        calls["evaluations"] += 1
        return real_evaluate(self, stop)

    monkeypatch.setattr(TorchTrainer, "train_step", counted_step)
    monkeypatch.setattr(TorchTrainer, "evaluate", counted_evaluate)
    estimate = estimate_time(other, burst=3, warmup=1)
    assert (estimate.steps, estimate.evaluations) == (42, 5) and estimate.step_s > 0 and estimate.eval_s > 0
    assert calls == {"steps": 4, "evaluations": 2}  # PyTorch steps; one untimed validation pass first
    other._pull()
    assert_same_state(engine, other, rtol=1e-4, atol=2e-6)  # the trainer itself took no step


def write_corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(pattern_text(600), encoding="utf-8")
    return path


def test_cli_trains_with_torch_and_the_app_opens_the_checkpoint(tmp_path, capsys):
    corpus_path, out = write_corpus(tmp_path), tmp_path / "model.npz"
    args = ["train", str(corpus_path), "--out", str(out), "--backend", "torch", "--steps", "6", "--batch", "4",
            "--seq-len", "10", "--hidden", "12", "--eval-every", "3", "--seed", "2"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "estimated time:" in printed and "step 6: validation loss" in printed
    threads = torch.get_num_threads() if "OMP_NUM_THREADS" in os.environ else blas_threads_for(12, 4)
    assert printed.splitlines()[0] == f"backend torch {torch.__version__} on cpu ({threads} thread{'s' * (threads != 1)})"
    ckpt = load_char_checkpoint(out)
    assert ckpt.step == 6 and ckpt.optimizer_state["t"] == 6
    # the NumPy engine trains the same model from the same seed
    numpy_out = tmp_path / "numpy.npz"
    assert main([*args[:3], str(numpy_out), *args[6:]]) == 0
    reference = load_checkpoint(numpy_out)
    for name, p in reference.model.params.items():
        np.testing.assert_allclose(ckpt.model.params[name], p, rtol=1e-3, atol=1e-5, err_msg=name)
    # and resumes it
    assert main(["train", str(corpus_path), "--out", str(out), "--resume", str(out), "--steps", "8"]) == 0
    assert load_checkpoint(out).step == 8


@pytest.mark.parametrize("fails", [False, True], ids=["trained", "failed"])
def test_the_process_group_is_left_after_training_or_an_error(tmp_path, monkeypatch, fails):
    """The process group joined for a run is destroyed before ``main`` returns or raises: no
    gloo thread is left running at interpreter exit (one left there can abort the process)."""
    import torch.distributed as dist

    def join_alone():  # a one-process gloo group, as torchrun's with WORLD_SIZE=1
        dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)

    monkeypatch.setattr(torch_backend, "start_distributed", join_alone)
    if fails:
        monkeypatch.setattr(TorchTrainer, "run", lambda self, stop=None: iter([1 / 0]))
    args = ["train", str(write_corpus(tmp_path)), "--out", str(tmp_path / "m.npz"), "--backend", "torch",
            "--steps", "2", "--batch", "4", "--seq-len", "10", "--hidden", "12", "--eval-every", "2"]
    assert (main(args) != 0) == fails
    assert not dist.is_initialized()


@pytest.mark.parametrize("threads", [1, 2])
def test_the_device_line_names_the_backend_device_and_threads(tmp_path, capsys, monkeypatch, threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(torch_backend, "blas_threads_for", lambda hidden, batch, load=None: threads)
    args = ["train", str(write_corpus(tmp_path)), "--out", str(tmp_path / "m.npz"), "--backend", "torch",
            "--steps", "1", "--batch", "2", "--seq-len", "5", "--hidden", "4", "--json"]
    assert main(args) == 0
    err = capsys.readouterr().err  # --json: the human lines go to stderr
    expected = f"backend torch {torch.__version__} on cpu ({threads} thread{'s' if threads > 1 else ''})"
    assert err.splitlines()[0] == expected


def test_without_torch_the_backend_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    out = tmp_path / "m.npz"
    assert main(["train", str(write_corpus(tmp_path)), "--out", str(out), "--backend", "torch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs PyTorch" in err and "lstmviz[torch]" in err
    assert not out.exists()


def test_the_numpy_engine_under_torchrun_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", str(write_corpus(tmp_path)), "--out", str(tmp_path / "m.npz"), "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--backend torch" in err


def torchrun(tmp_path, *train_args, nproc=2):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "lstmviz", "train", *train_args]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_two_processes_under_torchrun_train_the_single_process_steps(tmp_path):
    corpus_path, out = write_corpus(tmp_path), tmp_path / "ddp.npz"
    settings = ["--steps", "5", "--batch", "4", "--seq-len", "10", "--hidden", "12", "--eval-every", "5",
                "--seed", "4", "--layers", "2", "--dropout", "0.25"]
    done = torchrun(tmp_path, str(corpus_path), "--out", str(out), "--backend", "torch", *settings)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("step 5: validation loss") == 1  # rank 0 alone reports
    assert done.stdout.splitlines()[0] == f"backend torch {torch.__version__} on cpu (1 thread), 2 processes (gloo)"
    ckpt = load_char_checkpoint(out)
    assert ckpt.step == 5 and ckpt.train_state["carry"].shape == (2, 2, 4, 12)  # (L, S, B, H): both ranks' rows
    # one process with the whole batch takes the same steps
    single = tmp_path / "single.npz"
    assert main(["train", str(corpus_path), "--out", str(single), "--backend", "torch", *settings]) == 0
    reference = load_checkpoint(single)
    for name, p in reference.model.params.items():
        np.testing.assert_allclose(ckpt.model.params[name], p, rtol=1e-4, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(ckpt.train_state["carry"], reference.train_state["carry"], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_a_batch_that_does_not_split_over_the_processes_is_refused(tmp_path):
    done = torchrun(tmp_path, str(write_corpus(tmp_path)), "--out", str(tmp_path / "m.npz"), "--backend", "torch",
                    "--batch", "3", "--steps", "2")
    assert done.returncode != 0
    assert "lstmviz: error: --batch 3 does not split evenly over 2 processes" in done.stderr
    assert not (tmp_path / "m.npz").exists()


def test_torch_runs_measure_the_load_once_and_never_split_the_batch(monkeypatch):
    """H=256, B=64 is split by the engine; PyTorch steps are not: no shard worker, one load
    measurement for the torch threads and the engine's validation passes alike."""
    from engine import runtime

    calls = []
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "load_elsewhere", lambda: calls.append(0.0) or 0.0)
    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    monkeypatch.setattr(runtime, "shard_executor", lambda *a: pytest.fail("asked for the shard worker"))
    text = TextCorpus(pattern_text(1500), val_fraction=0.1)
    V = len(text.vocab)
    model = SequenceModel(ModelConfig(V, V, hidden_size=256), rng=np.random.default_rng(0))
    trainer = on_torch(Trainer(model, text, TrainConfig(seq_len=3, batch_size=64, steps=4, eval_every=2)))
    before = torch.get_num_threads()
    seen = [(torch.get_num_threads(), trainer.plan.label, trainer.plan.eval_threads) for p in trainer.run() if not p.done]
    assert calls == [0.0]
    expected = runtime.blas_threads_for(256, 64, cores=2, load=0.0)  # 2: torch and the validation pass alike
    assert seen == [(expected, f"{expected} BLAS threads", expected)] * 4
    assert trainer.shards == 1 and trainer.plan is None and torch.get_num_threads() == before


def test_torch_dropout_masks_are_the_engines(corpus, monkeypatch):
    """``TorchTrainer._dropout_masks`` hands on ``SequenceModel.dropout_masks``, (T, B, H) -> (B, T, H)."""
    V = len(corpus.vocab)
    model = SequenceModel(ModelConfig(V, V, hidden_size=5, num_layers=3, dropout=0.5), rng=np.random.default_rng(0))
    trainer = on_torch(Trainer(model, corpus, TrainConfig(seq_len=4, batch_size=3)))
    masks = [None] + [np.arange(4 * 3 * 5, dtype=np.float32).reshape(4, 3, 5) + k for k in (1, 2)]  # (T, B, H)
    monkeypatch.setattr(trainer.model, "dropout_masks", lambda T, B, rng: masks if (T, B, rng) == (4, 3, trainer.rng) else None)
    got = trainer._dropout_masks((3, 4))
    assert got[0] is None and len(got) == 3
    for k in (1, 2):
        np.testing.assert_array_equal(got[k].numpy(), masks[k].swapaxes(0, 1))


def _interrupted_run(tmp_path, env: dict, group: bool = False, nproc: int = 0):
    """Start ``train --backend torch`` (under torchrun with ``nproc`` processes), send SIGINT once
    its first progress line is out (to the process group, as a terminal's Ctrl+C, with ``group``)
    and return ``(process, send)``: ``send`` sends it again."""
    import signal

    cmd = ["-m", "lstmviz", "train", str(write_corpus(tmp_path)), "--out", str(tmp_path / "m.npz"), "--backend",
           "torch", "--steps", "20000", "--batch", "4", "--seq-len", "10", "--hidden", "12", "--eval-every", "20",
           "--json"]
    if nproc:
        cmd = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *cmd]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.Popen([sys.executable, *cmd], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=group)

    def send():
        if group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)

    assert '"step": 20' in proc.stdout.readline()  # blocks until the first evaluation is out
    send()
    return proc, send


def _finish(proc, seen: str = "") -> str:
    """``proc``'s stderr once it ended: ``seen`` (read from its file descriptor) and the rest."""
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return seen + err


@pytest.mark.slow
@pytest.mark.parametrize("torchrun", [False, True], ids=["alone", "under torchrun"])
def test_ctrl_c_saves_and_exits_130_as_the_engine_does(tmp_path, torchrun):
    """The first SIGINT stops after the current step: "interrupted at step N; saved ...", exit
    130, the checkpoint at step N. Under torchrun (its agent sets TORCHELASTIC_RUN_ID) the
    agent's copy of the terminal's Ctrl+C is the same Ctrl+C, not a second one that quits
    without saving."""
    env = {"TORCHELASTIC_RUN_ID": "test"} if torchrun else {}
    proc, send = _interrupted_run(tmp_path, env)
    seen = ""
    if torchrun:  # the handler says it stops; then the agent's copy arrives
        while "stopping after this step to save" not in seen:
            chunk = os.read(proc.stderr.fileno(), 4096)  # unbuffered: ``communicate`` reads the rest
            assert chunk, seen
            seen += chunk.decode()
        assert "again" not in seen
        send()
    err = _finish(proc, seen)
    assert proc.returncode == 130, err
    [line] = [line for line in err.splitlines() if "interrupted" in line]
    step = int(line.split("interrupted at step ")[1].split(";")[0])
    assert f"saved {tmp_path / 'm.npz'}" in line and "Traceback" not in err
    ckpt = load_char_checkpoint(tmp_path / "m.npz")
    assert ckpt.step == step >= 20 and ckpt.train_state["step"] == step


@pytest.mark.slow
def test_ctrl_c_under_a_two_process_torchrun_saves_on_rank_0(tmp_path):
    """A terminal's Ctrl+C (SIGINT to torchrun's process group): rank 0 says where it stopped and
    saves the checkpoint of that step, which both processes reached; torchrun itself exits 1 with
    its own SignalException traceback (as the README says)."""
    proc, _ = _interrupted_run(tmp_path, {}, group=True, nproc=2)
    err = _finish(proc)
    assert proc.returncode == 1 and "SignalException" in err, err[-3000:]
    [line] = [line for line in err.splitlines() if "interrupted at step" in line]
    step = int(line.split("interrupted at step ")[1].split(";")[0])
    assert load_char_checkpoint(tmp_path / "m.npz").step == step >= 20


@pytest.mark.parametrize("forwarded", [False, True], ids=["alone", "under torchrun"])
def test_after_a_ctrl_c_under_torchrun_a_late_copy_of_it_is_ignored_while_the_process_exits(forwarded):
    """The Ctrl+C handler's scope ends after the last save. Under torchrun the agent's copy of
    the same Ctrl+C can arrive after that, while the process exits with 130: it is ignored (a
    KeyboardInterrupt in the interpreter's finalisers printed a traceback). Alone, the handler
    that was there before comes back."""
    import signal
    import threading

    from lstmviz.cli import _StopOnSigint

    before = signal.getsignal(signal.SIGINT)
    stop = threading.Event()
    try:
        with _StopOnSigint(stop, forwarded):
            signal.raise_signal(signal.SIGINT)  # the first Ctrl+C: stop after this step
            assert stop.is_set()
        assert signal.getsignal(signal.SIGINT) is (signal.SIG_IGN if forwarded else before)
    finally:
        signal.signal(signal.SIGINT, before)
