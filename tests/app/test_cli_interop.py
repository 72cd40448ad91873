"""``lstmviz import`` and ``lstmviz export-weights`` through ``main([...])``: the report and
checkpoint on success; one line, exit 2 and nothing written on bad input."""

import os
import re

import numpy as np
import pytest

from engine import ModelConfig, SequenceModel, memory
from engine.checkpoint import load_char_checkpoint, save_checkpoint
from engine.data import CharVocab
from lstmviz.cli import main
from lstmviz.notebook import trace

torch = pytest.importorskip("torch")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def state_dict_file(tmp_path):
    torch.manual_seed(0)
    modules = {"embed": torch.nn.Embedding(4, 3), "rnn": torch.nn.GRU(3, 5, 2, batch_first=True),
               "head": torch.nn.Linear(5, 4)}
    state = {f"{m}.{k}": v for m, module in modules.items() for k, v in module.state_dict().items()}
    torch.save(state, tmp_path / "m.pt")
    return tmp_path / "m.pt"


def test_import_prints_the_parity_line_and_writes_a_viewable_checkpoint(capsys, tmp_path, state_dict_file):
    (tmp_path / "vocab.json").write_text('{"b": 0, "a": 1, "d": 2, "c": 3}', encoding="utf-8")
    code, out, err = run(capsys, "import", state_dict_file, "--out", tmp_path / "m.npz", "--vocab", tmp_path / "vocab.json")
    assert (code, err) == (0, "")
    assert "2 x GRU(5), input embedding 4x3, softmax head of 4" in out
    assert "parity with torch" in out and f"wrote {tmp_path / 'm.npz'}" in out
    ckpt = load_char_checkpoint(tmp_path / "m.npz")
    assert ckpt.vocab.chars == ("a", "b", "c", "d")
    assert run(capsys, "trace", tmp_path / "m.npz", "--text", "abcd", "--out", tmp_path / "t.npz")[0] == 0


def test_import_without_a_vocabulary_says_what_the_checkpoint_can_do_in_one_line(capsys, tmp_path, state_dict_file):
    out = tmp_path / "m.npz"
    code, stdout, err = run(capsys, "import", state_dict_file, "--out", out)
    assert code == 0 and f"wrote {out}" in stdout
    assert err.count("\n") == 1 and err.startswith("lstmviz: note: m.pt was imported without a vocabulary: "
                                                     "the model reads token ids 0..3, not characters")
    assert "lstmviz.trace(MODEL, inputs=...)" in err and "--vocab FILE or --vocab-chars STRING" in err
    for refused in ("viewer", "sample", "trace", "export"):
        assert refused in err
    # as it says: the gates trace from token ids; sample refuses the checkpoint
    gates = trace(out, inputs=np.array([0, 1, 2, 3])).gate("z", 1)
    assert gates.shape == (4, 5) and np.all((gates > 0) & (gates < 1))
    code, _, err = run(capsys, "sample", out)
    assert code == 2 and "not a character model" in err
    # a one-hot first layer without its characters is read as numbers per step
    torch.save(torch.nn.LSTM(4, 3).state_dict(), tmp_path / "onehot.pt")
    code, _, err = run(capsys, "import", tmp_path / "onehot.pt", "--out", tmp_path / "onehot.npz")
    assert code == 0 and "onehot.pt was imported without a vocabulary: the model reads 4 numbers per step" in err


@pytest.mark.parametrize("extra,message", [
    (["--vocab-chars", "abc"], "vocabulary has 3 characters but the embedding has 4 rows"),
    (["--vocab-chars", "aabc"], "repeated"),
])
def test_import_refusals_are_one_line_exit_2_and_write_nothing(capsys, tmp_path, state_dict_file, extra, message):
    code, out, err = run(capsys, "import", state_dict_file, "--out", tmp_path / "m.npz", *extra)
    assert code == 2 and err.startswith("lstmviz: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "m.npz").exists()


def test_import_of_a_missing_or_foreign_file(capsys, tmp_path):
    code, _, err = run(capsys, "import", tmp_path / "none.pt", "--out", tmp_path / "m.npz")
    assert code == 2 and err == f"lstmviz: error: {tmp_path / 'none.pt'}: no such model file\n"
    os.mkfifo(tmp_path / "pipe.onnx")  # opening it would block: refused by its kind, unopened
    (tmp_path / "folder.keras").mkdir()
    for name, what in (("pipe.onnx", "is a named pipe (FIFO), not a regular file"), ("folder.keras", "is a folder")):
        code, _, err = run(capsys, "import", tmp_path / name, "--out", tmp_path / "m.npz")
        assert code == 2 and err.startswith(f"lstmviz: error: {tmp_path / name} {what}") and err.count("\n") == 1
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    code, _, err = run(capsys, "import", tmp_path / "notes.txt", "--out", tmp_path / "m.npz")
    assert code == 2 and "unknown model file type '.txt'" in err


def test_an_import_that_cannot_fit_in_memory_is_refused_before_reading(capsys, tmp_path, state_dict_file,
                                                                         monkeypatch):
    size = os.path.getsize(state_dict_file)
    monkeypatch.setattr(memory, "available_bytes", lambda: 4 * size - 1)  # the import needs 4 times the file
    code, _, err = run(capsys, "import", state_dict_file, "--out", tmp_path / "m.npz")
    assert code == 2 and err.startswith(f"lstmviz: error: importing {state_dict_file} needs about ")
    assert "(4 times the file's size); this machine has" in err and not (tmp_path / "m.npz").exists()
    monkeypatch.setattr(memory, "available_bytes", lambda: 4 * size)
    assert run(capsys, "import", state_dict_file, "--out", tmp_path / "m.npz")[0] == 0


@pytest.mark.parametrize("fmt", ("torch", "safetensors", "onnx"))
def test_export_weights_writes_each_format(capsys, tmp_path, fmt):
    vocab = CharVocab.from_text("abcd")
    model = SequenceModel(ModelConfig(4, 4, cell="lstm", hidden_size=5), rng=np.random.default_rng(0))
    save_checkpoint(tmp_path / "m.npz", model, vocab=vocab)
    out = tmp_path / ("w.pt" if fmt == "torch" else f"w.{fmt}")
    code, stdout, err = run(capsys, "export-weights", tmp_path / "m.npz", "--format", fmt, "--out", out)
    assert (code, err) == (0, "") and out.stat().st_size > 0
    code, _, err = run(capsys, "import", out, "--out", tmp_path / "back.npz", "--vocab-chars", "abcd")
    assert code == 0, err
    back = load_char_checkpoint(tmp_path / "back.npz").model
    ids = np.array([[0, 1, 2, 3, 1]])  # (B, T)
    np.testing.assert_allclose(back.forward(ids).outputs, model.forward(ids).outputs, atol=1e-6)


def test_export_weights_refuses_a_bad_checkpoint_and_a_bad_format(capsys, tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    code, _, err = run(capsys, "export-weights", tmp_path / "bad.npz", "--format", "onnx", "--out", tmp_path / "w.onnx")
    assert code == 2 and "not an .npz (zip) archive" in err and not (tmp_path / "w.onnx").exists()
    code, _, err = run(capsys, "export-weights", tmp_path / "bad.npz", "--format", "tflite", "--out", tmp_path / "w")
    assert code == 2 and "invalid choice: 'tflite'" in err


@pytest.mark.parametrize("framework", ("torch", "keras", "onnx"))
def test_several_recurrent_stacks_are_listed_then_chosen_with_layer_prefix(capsys, tmp_path, framework):
    from .interop_files import BRANCH_UNITS, two_stacks

    path, candidates = two_stacks(framework, tmp_path, 4)
    code, _, err = run(capsys, "import", path, "--out", tmp_path / "m.npz", "--vocab-chars", "abcd")
    assert code == 2 and err.count("\n") == 1 and "--layer-prefix" in err
    assert ", ".join(repr(c) for c in candidates) in err and not (tmp_path / "m.npz").exists()
    for branch, chosen in zip("ab", candidates):
        out_file = tmp_path / f"{branch}.npz"
        code, out, err = run(capsys, "import", path, "--out", out_file, "--vocab-chars", "abcd",
                             "--layer-prefix", chosen)
        assert (code, err) == (0, ""), err
        assert chosen in next(line for line in out.splitlines() if line.startswith("recurrent: "))
        parity = next(line for line in out.splitlines() if line.startswith("parity with"))
        assert max(float(x) for x in re.findall(r"= ([0-9.e+-]+)", parity)) <= 1e-5
        model = load_char_checkpoint(out_file).model
        assert (model.config.hidden_size, model.config.output_size) == (BRANCH_UNITS[branch], 4)
