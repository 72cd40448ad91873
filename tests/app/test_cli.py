"""The command line, in-process through ``main([...])`` plus a few real subprocesses."""

import argparse
import json
import re
import os
import signal
import stat
import subprocess
import sys
import types
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from engine.checkpoint import load_checkpoint
from engine.data import TextCorpus
from engine.model import ModelConfig
from engine.sample import sample
from engine.settings import settings_of
from engine.train import TimeEstimate, TrainConfig
from lstmviz.cli import COMMANDS, MODEL_OPTIONS, TRAIN_OPTIONS, _new_trainer, build_parser, estimate_line, main

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--hidden", "8", "--seq-len", "8", "--batch", "4", "--eval-every", "5", "--lr", "0.01"]
JSON_KEYS = {"step", "train_loss", "val_loss", "elapsed_s", "val_bpc", "smooth_loss", "grad_norm"}


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    path.write_text("".join(rng.choice(["abcd ", "abce ", "xyz\n"], size=200)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model_file(corpus_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "model.npz"
    assert main(["train", str(corpus_file), "--out", str(out), "--steps", "30", *TINY]) == 0
    return out


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(capsys, *argv, message=None):
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstmviz: error: "), err
    assert "Traceback" not in err
    if message is not None:
        assert message in lines[0], lines[0]


def test_train_writes_checkpoint_and_json_lines(capsys, corpus_file, tmp_path):
    out = tmp_path / "m.npz"
    code, stdout, err = run(capsys, "train", corpus_file, "--out", out, "--steps", "20", "--json", *TINY)
    assert code == 0, err
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [r["step"] for r in records] == [5, 10, 15, 20]
    for r in records:
        assert JSON_KEYS <= set(r)
        assert r["val_loss"] > 0 and r["elapsed_s"] >= 0
        assert r["val_bpc"] == pytest.approx(r["val_loss"] / np.log(2))
    ckpt = load_checkpoint(out)
    assert ckpt.step == 20 and ckpt.model.config.hidden_size == 8
    assert ckpt.vocab.chars == tuple(sorted(set(corpus_file.read_text(encoding="utf-8"))))
    assert "validation loss" in err and "bits/char" in err  # the final line goes to stderr with --json
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temp files left behind


def test_runaway_training_exits_1_with_one_line_and_the_last_good_weights(capsys, corpus_file, tmp_path):
    out = tmp_path / "m.npz"
    argv = ["train", str(corpus_file), "--out", str(out), "--steps", "50", "--optimizer", "sgd", "--lr", "1e30",
            "--clip", "0", "--dtype", "float64", *[a for a in TINY if a not in ("--lr", "0.01")]]
    initial = _new_trainer(build_parser().parse_args(argv), corpus_file.read_text(encoding="utf-8")).model.params
    code, stdout, err = run(capsys, *argv)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstmviz: error: training diverged at step 2: the loss ran away")
    assert "saved the last good weights (step 0)" in lines[0]
    assert not re.search(r"\d{8}", lines[0].replace(str(out), ""))  # no 30-digit numbers
    ckpt = load_checkpoint(out)
    assert ckpt.step == 0
    for name, value in ckpt.model.params.items():
        np.testing.assert_array_equal(value, initial[name])  # step 1's update made the runaway weights


def test_train_prints_its_time_estimate_first_and_warns_over_five_minutes(capsys, corpus_file, tmp_path):
    code, stdout, err = run(capsys, "train", corpus_file, "--out", tmp_path / "m.npz", "--steps", "10", *TINY)
    assert code == 0, err
    first = stdout.splitlines()[0]
    assert re.fullmatch(r"estimated time: 0:\d\d \(10 steps x \d+ ms \+ 2 evaluations x \d+\.\d\d s\)", first), first
    long = estimate_line(TimeEstimate(steps=5000, step_s=0.45, evaluations=25, eval_s=1.0))  # 2275 s
    assert long.startswith("estimated time: 37:55 (5000 steps x 450 ms + 25 evaluations x 1.00 s); warning: over 5 minutes")
    assert "warning" not in estimate_line(TimeEstimate(steps=100, step_s=2.9, evaluations=1, eval_s=9.0))  # 299 s


def test_resume_continues_exactly(capsys, corpus_file, tmp_path):
    full, half = tmp_path / "full.npz", tmp_path / "half.npz"
    common = ["--steps", "20", "--batching", "random", "--layers", "2", "--dropout", "0.2", *TINY]
    code, expected, _ = run(capsys, "train", corpus_file, "--out", full, "--json", *common)
    assert code == 0
    first_half = [a if a != "20" else "10" for a in common]
    code, first, _ = run(capsys, "train", corpus_file, "--out", half, "--json", *first_half)
    assert code == 0
    code, second, err = run(capsys, "train", corpus_file, "--out", half, "--resume", half, "--steps", 20, "--json")
    assert code == 0, err
    timing = ("elapsed_s", "steps_per_s", "total_steps")

    def losses(lines):
        return [{k: v for k, v in json.loads(line).items() if k not in timing} for line in lines.splitlines()]

    assert [r["step"] for r in losses(first + second)] == [5, 10, 15, 20]
    assert losses(first + second) == losses(expected)  # bitwise: the floats are printed exactly
    a, b = load_checkpoint(full), load_checkpoint(half)
    assert b.step == 20
    for name, p in a.model.params.items():
        np.testing.assert_array_equal(b.model.params[name], p)


def test_sample_greedy_is_deterministic_and_matches_the_engine(capsys, model_file):
    code, first, _ = run(capsys, "sample", model_file, "--greedy", "--prime", "ab", "--length", "30")
    assert code == 0
    assert run(capsys, "sample", model_file, "--greedy", "--prime", "ab", "--length", "30")[1] == first
    ckpt = load_checkpoint(model_file)
    expected = sample(ckpt.model, ckpt.vocab, prime="ab", length=30, greedy=True)
    assert first == expected.text + "\n"
    seeded = [run(capsys, "sample", model_file, "--seed", "5", "--length", "40")[1] for _ in range(2)]
    assert seeded[0] == seeded[1] and len(seeded[0]) >= 40


def test_sample_prime_file(capsys, model_file, tmp_path):
    prime = tmp_path / "prime.txt"
    prime.write_text("xyz\n", encoding="utf-8")
    code, out, _ = run(capsys, "sample", model_file, "--prime-file", prime, "--greedy", "--length", "5")
    assert code == 0 and out.startswith("xyz\n") and len(out) == len("xyz\n") + 5 + 1


def test_trace_file_equals_engine_trace(capsys, model_file, tmp_path):
    out = tmp_path / "trace.npz"
    text = "abcd xyz\nabce"
    code, _, err = run(capsys, "trace", model_file, "--text", text, "--out", out)
    assert code == 0, err
    ckpt = load_checkpoint(model_file)
    trace = ckpt.model.trace(ckpt.vocab.encode(text), text=text)
    with np.load(out, allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    for name in ("i", "f", "g", "o", "c", "h"):
        np.testing.assert_array_equal(data[f"layer0_{name}"], trace.gate(name, 0))
        assert data[f"layer0_{name}"].shape == (len(text), 8)
    np.testing.assert_array_equal(data["probs"], trace.outputs)
    assert "".join(data["chars"].tolist()) == text
    assert tuple(data["vocab"].tolist()) == ckpt.vocab.chars


def test_trace_memory_is_one_chunk_whatever_the_text_length(capsys, model_file, tmp_path, monkeypatch):
    """A text whose whole trace would not fit in the memory available is traced in chunks of
    TRACE_CHUNK steps (its file equals the engine's trace); only one chunk must fit."""
    from engine import memory
    from lstmviz import cli

    config = load_checkpoint(model_file).model.config
    monkeypatch.setattr(cli, "TRACE_CHUNK", 64)
    monkeypatch.setattr(memory, "available_bytes", lambda: 2 * memory.trace_bytes(config, 64))
    chunks, iter_chunks = [], cli.iter_chunks
    monkeypatch.setattr(cli, "iter_chunks", lambda *a, **k: ((t0, chunks.append(tr.steps) or tr)
                                                             for t0, tr in iter_chunks(*a, **k)))
    text = "abcd xyz\nabce" * 150  # 1950 steps: the whole trace needs over 10 times the memory allowed
    assert memory.trace_bytes(config, len(text)) > 10 * memory.available_bytes()
    out = tmp_path / "trace.npz"
    code, _, err = run(capsys, "trace", model_file, "--text", text, "--out", out)
    assert code == 0, err
    assert max(chunks) == 64 and sum(chunks) == len(text)
    ckpt = load_checkpoint(model_file)
    with np.load(out, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["layer0_c"], ckpt.model.trace(ckpt.vocab.encode(text)).gate("c", 0))
    monkeypatch.setattr(memory, "available_bytes", lambda: memory.trace_bytes(config, 64) // 2)
    assert_refused(capsys, "trace", model_file, "--text", text, "--out", tmp_path / "t2.npz",
                   message="needs about")


def test_trace_memory_counts_one_chunk_of_the_range_or_of_the_steps_before_it(capsys, model_file, tmp_path,
                                                                              monkeypatch):
    """Only one chunk's records are alive at a time: a chunk of the range, or of the steps run
    through before ``--start`` (``iter_chunks`` runs them with ``model.trace`` too), never both."""
    from engine import memory
    from lstmviz import cli

    ckpt = load_checkpoint(model_file)
    text = "abcd xyz\nabce" * 150  # 1950 steps
    reference = ckpt.model.trace(ckpt.vocab.encode(text)).gate("h", 0)  # (1950, H)
    monkeypatch.setattr(memory, "available_bytes", lambda: memory.trace_bytes(ckpt.model.config, 1000))
    out = tmp_path / "trace.npz"
    code, _, err = run(capsys, "trace", model_file, "--text", text, "--out", out, "--start", "1000", "--end", "1950")
    assert code == 0, err  # the larger of 1000 steps run through and 950 steps kept fits
    with np.load(out, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["layer0_h"], reference[1000:1950])
    assert_refused(capsys, "trace", model_file, "--text", text, "--out", tmp_path / "t2.npz",
                   "--start", "1001", "--end", "1950",
                   message="for 1001 steps at a time (the steps before --start are run in chunks too)")
    monkeypatch.setattr(cli, "TRACE_CHUNK", 64)  # now both the run-up and the range go 64 steps at a time
    monkeypatch.setattr(memory, "available_bytes", lambda: memory.trace_bytes(ckpt.model.config, 64))
    code, _, err = run(capsys, "trace", model_file, "--text", text, "--out", out, "--start", "1900", "--end", "1950")
    assert code == 0, err
    with np.load(out, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["layer0_h"], reference[1900:1950])


def test_trace_refused_when_its_file_cannot_fit_on_the_disk(capsys, model_file, tmp_path, monkeypatch):
    """The file's size (``trace_file_bytes``; twice that while it is written) is checked against
    the free disk before anything is computed: one line, no file."""
    import engine.atomic
    from engine.memory import trace_file_bytes

    text = "abcd xyz\nabce" * 20
    config = load_checkpoint(model_file).model.config
    out = tmp_path / "trace.npz"
    assert run(capsys, "trace", model_file, "--text", text, "--out", out, "--dtype", "float16")[0] == 0
    real = out.stat().st_size
    assert trace_file_bytes(config, len(text), 2) <= real <= 1.1 * trace_file_bytes(config, len(text), 2)  # + headers
    free = types.SimpleNamespace(f_bavail=2 * trace_file_bytes(config, len(text), 2) - 1, f_frsize=1)
    monkeypatch.setattr(engine.atomic.os, "statvfs", lambda _folder: free)
    out.unlink()
    assert_refused(capsys, "trace", model_file, "--text", text, "--out", out, "--dtype", "float16",
                   message="the disk is full")
    assert not out.exists()


def test_trace_of_rnn_has_only_h(capsys, corpus_file, tmp_path):
    model = tmp_path / "rnn.npz"
    assert run(capsys, "train", corpus_file, "--out", model, "--steps", "3", "--cell", "rnn", *TINY)[0] == 0
    out = tmp_path / "t.npz"
    text_file = tmp_path / "text.txt"
    text_file.write_text("abc", encoding="utf-8")
    assert run(capsys, "trace", model, "--text-file", text_file, "--out", out)[0] == 0
    with np.load(out, allow_pickle=False) as npz:
        assert sorted(k for k in npz.files if k.startswith("layer")) == ["layer0_h"]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, model_file):
    d = tmp_path_factory.mktemp("bad")
    (d / "empty.txt").write_text("", encoding="utf-8")
    (d / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (d / "garbage.npz").write_bytes(b"PK\x03\x04 this is not a zip")
    (d / "truncated.npz").write_bytes(model_file.read_bytes()[:300])
    (d / "short.txt").write_text("abc", encoding="utf-8")
    (d / "other.txt").write_text("QRST " * 100, encoding="utf-8")
    return d


REFUSALS = [
    (["train", "{d}/missing.txt", "--out", "{d}/o.npz"], "no such file"),
    (["train", "{d}/empty.txt", "--out", "{d}/o.npz"], "empty"),
    (["train", "{d}/binary.bin", "--out", "{d}/o.npz"], "binary"),
    (["train", "{d}/short.txt", "--out", "{d}/o.npz"], "needs at least"),
    (["train", "{corpus}", "--out", "{d}/o.npz", "--hidden", "0"], "--hidden"),
    (["train", "{corpus}", "--out", "{d}/o.npz", "--lr", "-1"], "--lr"),
    (["train", "{corpus}", "--out", "{d}/o.npz", "--lr", "nan"], "--lr"),
    (["train", "{corpus}", "--out", "{d}/o.npz", "--dropout", "1.5"], "--dropout"),
    (["train", "{corpus}", "--out", "{d}/o.npz", "--steps", "ten"], "--steps"),
    (["train", "{corpus}", "--out", "{d}/o.npz", "--optimizer", "lbfgs"], "--optimizer"),
    (["train", "{corpus}", "--out", "{d}/o.npz", "--momentum", "0.9"], "momentum"),
    (["train", "{corpus}", "--out", "{d}/o.npz", "--dropout", "1"], "argument --dropout: must be in [0, 1), got '1'"),
    (["train", "{corpus}", "--out", "{d}/o.npz", "--clip", "-1"], "--clip: must be a finite number > 0 or 0 (off)"),
    (["train", "{corpus}", "--out", "{d}/o.npz", "--val-fraction", "0.6"], "--val-fraction: must be in [0, 0.5]"),
    (["train", "{corpus}", "--out", "{d}/o.npz", "--seed", "-1"], "--seed: must be a non-negative integer"),
    (["train", "{corpus}", "--out", "{d}/o.npz", "--resume", "{model}", "--clip", "0"], "--clip cannot be changed"),
    (["train", "{corpus}", "--out", "{d}/no/such/dir/o.npz"], "does not exist"),
    (["train", "{corpus}"], "--out"),
    (["train", "{corpus}", "--out", "{d}/o.npz", "--resume", "{d}/garbage.npz"], "garbage.npz"),
    (["train", "{corpus}", "--out", "{d}/o.npz", "--resume", "{model}", "--hidden", "4"], "--hidden"),
    (["train", "{d}/other.txt", "--out", "{d}/o.npz", "--resume", "{model}"], "vocabulary"),
    (["sample", "{d}/garbage.npz"], "garbage.npz"),
    (["sample", "{d}/truncated.npz"], "truncated.npz"),
    (["sample", "{d}/missing.npz"], "missing.npz"),
    (["sample", "{model}", "--prime", "QZ"], "not in the vocabulary"),
    (["sample", "{model}", "--temperature", "0"], "--temperature"),
    (["sample", "{model}", "--top-k", "1000"], "top_k"),
    (["sample", "{model}", "--prime-file", "{d}/binary.bin"], "binary"),
    (["trace", "{model}", "--text", "", "--out", "{d}/t.npz"], "empty"),
    (["trace", "{model}", "--text", "QQ", "--out", "{d}/t.npz"], "not in the vocabulary"),
    (["trace", "{model}", "--out", "{d}/t.npz"], "--text"),
    (["trace", "{d}/empty.txt", "--text", "ab", "--out", "{d}/t.npz"], "empty.txt"),
    (["trace", "{model}", "--text", "ab", "--out", "{d}/no/dir/t.npz"], "no/dir does not exist"),
    (["gui", "{d}/missing.npz"], "no such file"),
    (["trian"], "invalid choice"),
]


@pytest.mark.parametrize("argv, message", REFUSALS, ids=[" ".join(a[:1] + a[-2:]) for a, _ in REFUSALS])
def test_refusals_exit_2_with_one_line(capsys, bad_files, corpus_file, model_file, argv, message):
    fill = {"d": bad_files, "corpus": corpus_file, "model": model_file}
    assert_refused(capsys, *[a.format(**fill) for a in argv], message=message)
    assert not (bad_files / "o.npz").exists()


# The train options' flag names, written out by hand (the command line keeps these names).
FLAGS = {"cell": "--cell", "hidden_size": "--hidden", "num_layers": "--layers", "dropout": "--dropout",
         "forget_bias": "--forget-bias", "dtype": "--dtype", "steps": "--steps", "seq_len": "--seq-len",
         "batch_size": "--batch", "lr": "--lr", "optimizer": "--optimizer", "momentum": "--momentum",
         "clip_norm": "--clip", "clip_value": "--clip-value", "seed": "--seed", "val_fraction": "--val-fraction",
         "eval_every": "--eval-every", "batching": "--batching", "init": "--init", "init_range": "--init-range",
         "rmsprop_decay": "--rmsprop-decay", "lr_schedule": "--lr-schedule", "lr_decay": "--lr-decay",
         "lr_decay_every": "--lr-decay-every", "lr_decay_start": "--lr-decay-start", "lr_warmup": "--warmup"}
PROBES = ["-1", "0", "0.0", "0.5", "1", "1.0", "2", "64", "1e9", "nan", "inf", "-inf", "x", "lstm", "adam", "random"]


def train_options():
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    return {action.dest: action for action in train._actions if action.dest in {**MODEL_OPTIONS, **TRAIN_OPTIONS}}


def config_accepts(cls, name, value) -> bool:
    needed = {"input_size": 3, "output_size": 3} if cls is ModelConfig else {}
    if name == "momentum":
        needed["optimizer"] = "sgd"  # momentum applies to sgd only
    try:
        cls(**{**needed, name: value})
    except ValueError:
        return False
    return True


def from_text(name, text):
    """What the option's text means for the config, derived by hand: 0 is "off" for the clip
    options; otherwise an int if it reads as one, else a float, else the text."""
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        return None if name in ("clip_norm", "clip_value") and value == 0 else value
    return text


def test_every_train_option_is_a_config_field_with_its_default_and_range():
    options = train_options()
    assert {name: action.option_strings for name, action in options.items()} == {
        name: [flag] for name, flag in FLAGS.items()}
    for name, action in options.items():
        cls = ModelConfig if name in MODEL_OPTIONS else TrainConfig
        default = {f.name: f.default for f in fields(cls)}[name]
        shown = "0 (off)" if default is None else (f"{default:g}" if isinstance(default, float) else str(default))
        assert action.help.startswith(settings_of(cls)[name].help)
        assert action.help.endswith(f"default: {shown})"), (name, action.help)
        if action.choices is not None:
            assert tuple(action.choices) == settings_of(cls)[name].choices
            continue
        for text in PROBES:  # the option takes exactly the values the config takes
            try:
                action.type(text)
            except argparse.ArgumentTypeError as error:
                parsed = False
                assert str(error).endswith(f", got {text!r}") and "must be" in str(error)
            else:
                parsed = True
            assert parsed == config_accepts(cls, name, from_text(name, text)), (name, text)


def test_train_without_options_uses_the_config_defaults():
    args = build_parser().parse_args(["train", "corpus.txt", "--out", "m.npz"])
    text = "abcd efgh\n" * 400
    trainer = _new_trainer(args, text)
    V = len(TextCorpus(text).vocab)
    assert trainer.config == TrainConfig()
    assert trainer.model.config == ModelConfig(V, V)
    args = build_parser().parse_args(["train", "c.txt", "--out", "m.npz", "--clip", "0", "--clip-value", "0.5",
                                      "--hidden", "8", "--seq-len", "8", "--batch", "2"])
    trainer = _new_trainer(args, text)
    assert (trainer.config.clip_norm, trainer.config.clip_value, trainer.model.config.hidden_size) == (None, 0.5, 8)


def test_export_exits_2_when_a_file_cannot_be_written(capsys, model_file, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for gate in "ifgoch":
        (out / f"layer0_{gate}.csv").mkdir()  # a folder where the file should go: os.replace fails
    assert_refused(capsys, "export", model_file, "--text", "ab", "--out", out, "--format", "csv",
                   message="cannot write")


def test_an_output_that_is_not_a_regular_file_is_refused_and_left_as_it_is(capsys, corpus_file, model_file,
                                                                            tmp_path):
    """A FIFO (or folder) where the output would go is never replaced by a file (atomic rename):
    exit 2 with one line naming it (real device nodes such as /dev/full behave alike)."""
    fifo, folder = tmp_path / "pipe.npz", tmp_path / "folder.npz"
    os.mkfifo(fifo)
    folder.mkdir()
    assert_refused(capsys, "trace", model_file, "--text", "ab", "--out", fifo, "--end", "2",
                   message=f"cannot write {fifo}: it is a named pipe (FIFO), not a regular file; choose a file path")
    assert_refused(capsys, "trace", model_file, "--text", "ab", "--out", folder,
                   message=f"cannot write {folder}: it is a folder; give a file name")
    assert_refused(capsys, "train", corpus_file, "--out", fifo, "--steps", "1", *TINY,
                   message=f"cannot write {fifo}: it is a named pipe (FIFO)")
    out = tmp_path / "export"
    out.mkdir()
    os.mkfifo(out / "layer0_h.csv")
    assert_refused(capsys, "export", model_file, "--text", "ab", "--out", out, "--format", "csv", "--panels", "h",
                   message=f"cannot write {out / 'layer0_h.csv'}: it is a named pipe (FIFO), not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_ISFIFO(os.lstat(out / "layer0_h.csv").st_mode)
    assert folder.is_dir() and not any(folder.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "folder.npz", "pipe.npz"]  # no temp files


def test_help_exits_0(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "train" in out and "sample" in out
    assert tuple(build_parser()._subparsers._group_actions[0].choices) == COMMANDS
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("lstmviz ")


def test_default_command_is_gui(monkeypatch, model_file, corpus_file):
    calls = []
    fake = types.ModuleType("lstmviz.app")
    fake.run_app = lambda model_path=None, text_path=None: calls.append((model_path, text_path)) or 0
    monkeypatch.setitem(sys.modules, "lstmviz.app", fake)
    assert main([]) == 0
    assert main([str(model_file), str(corpus_file)]) == 0
    assert main(["gui", str(model_file)]) == 0
    assert calls == [(None, None), (str(model_file), str(corpus_file)), (str(model_file), None)]


def _env():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("QT_QPA_PLATFORM", None)
    return env


@pytest.mark.slow  # a subprocess
def test_python_m_lstmviz_train_without_qt(corpus_file, tmp_path):
    out = tmp_path / "m.npz"
    cmd = [sys.executable, "-m", "lstmviz", "train", str(corpus_file), "--out", str(out), "--steps", "5", *TINY]
    done = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "validation loss" in done.stdout and load_checkpoint(out).step == 5
    script = (
        "import sys; from lstmviz.cli import main\n"
        f"codes = [main(['train', {str(corpus_file)!r}, '--out', {str(out)!r}, '--steps', '2', *{TINY!r}]),\n"
        f"         main(['sample', {str(out)!r}, '--length', '5', '--seed', '1']),\n"
        f"         main(['trace', {str(out)!r}, '--text', 'ab', '--out', {str(tmp_path / 't.npz')!r}])]\n"
        "qt = sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'shiboken6')))\n"
        "print('RESULT', codes, qt)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "RESULT [0, 0, 0] []" in done.stdout


def test_ctrl_c_saves_and_exits_130(corpus_file, tmp_path):
    out = tmp_path / "m.npz"
    cmd = [sys.executable, "-m", "lstmviz", "train", str(corpus_file), "--out", str(out), "--steps", "100000",
           "--json", *TINY[:-4], "--eval-every", "1"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())  # blocks until the first evaluation is out
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted at step" in err and "--resume" in err and "Traceback" not in err
    last_step = json.loads(rest.splitlines()[-1])["step"] if rest.strip() else first["step"]
    ckpt = load_checkpoint(out)
    assert ckpt.step >= last_step >= 1 and ckpt.train_state["step"] == ckpt.step
