"""PyTorch import and export: state_dicts from ``torch.save`` and ``.safetensors`` (LSTM and GRU,
1-3 layers, with and without nn.Embedding / nn.Linear, several module prefixes), training
checkpoints holding a state_dict, round trips, every refusal, and a malicious pickle that must
never run."""

import pickle
import re
import warnings
import zipfile

import numpy as np
import pytest

from engine import ModelConfig, SequenceModel
from engine.interop import AmbiguousModules, InteropError, import_model
from engine.interop import torch_import
from engine.interop.export import export_weights, state_dict_arrays

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

CHARS = "hex wordq!"[:9]  # 9 distinct characters in id order (not sorted)


def build(cell, layers, *, embed=True, head=True, V=9, E=4, H=6, seed=0):
    """A torch model as users write them: optional nn.Embedding, nn.LSTM/nn.GRU, optional nn.Linear."""
    torch.manual_seed(seed)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(V, E) if embed else None
            self.lstm = getattr(torch.nn, cell)(E if embed else V, H, layers, batch_first=True)
            self.fc = torch.nn.Linear(H, V) if head else None

        def forward(self, ids):
            x = self.emb(ids) if embed else torch.nn.functional.one_hot(ids, V).float()
            hs, finals = self.lstm(x)
            return (torch.softmax(self.fc(hs), -1) if head else hs), finals

    return Net().eval()


def prefixed(state: dict, prefix: str) -> dict:
    return {prefix + k: v for k, v in state.items()}


def parity_numbers(report) -> list:
    line = next(line for line in report if line.startswith("parity with torch"))
    return [float(x) for x in re.findall(r"= ([0-9.e+-]+)", line)]


@pytest.mark.parametrize("cell", ("LSTM", "GRU"))
@pytest.mark.parametrize("layers", (1, 2, 3))
@pytest.mark.parametrize("prefix,suffix", [("", ".pt"), ("model.", ".safetensors"), ("encoder.deep.", ".pth")])
def test_import_matches_the_torch_model(tmp_path, cell, layers, prefix, suffix):
    net = build(cell, layers, seed=layers)
    path = tmp_path / f"m{suffix}"
    state = prefixed(net.state_dict(), prefix)
    if suffix == ".safetensors":
        safetensors_torch.save_file(state, str(path))
    else:
        torch.save(state, path)
    result = import_model(path, vocab_chars=CHARS)
    assert result.model.config.cell == cell.lower() and result.model.config.num_layers == layers
    assert result.model.config.input_kind == "embedding" and result.model.config.head == "softmax"
    assert max(parity_numbers(result.report)) <= 1e-5
    ids = np.random.default_rng(1).integers(0, 9, (3, 8))  # (B, T) ids in the source's order
    with torch.no_grad():
        expected, finals = net(torch.from_numpy(ids))
    sorted_ids = np.vectorize(lambda i: result.vocab.chars.index(CHARS[i]))(ids)  # (B, T)
    ours = result.model.forward(sorted_ids)
    columns = [CHARS.index(c) for c in result.vocab.chars]  # sorted id -> source id
    np.testing.assert_allclose(ours.outputs, expected.numpy()[..., columns], atol=1e-6)
    h_n = finals[0] if cell == "LSTM" else finals  # (L, B, H)
    np.testing.assert_allclose(ours.state[-1][0], h_n[-1].numpy(), atol=1e-6)


def test_one_hot_input_and_no_head(tmp_path):
    net = build("GRU", 2, embed=False, head=False)
    torch.save(net.state_dict(), tmp_path / "m.pt")
    result = import_model(tmp_path / "m.pt", vocab_chars="".join(sorted(CHARS)))
    cfg = result.model.config
    assert (cfg.input_kind, cfg.head, cfg.output_size) == ("onehot", "none", 6)
    ids = np.random.default_rng(2).integers(0, 9, (2, 5))  # (B, T)
    with torch.no_grad():
        hs, _ = net(torch.from_numpy(ids))
    np.testing.assert_allclose(result.model.forward(ids).outputs, hs.numpy(), atol=1e-6)


def test_without_a_vocabulary_the_input_is_dense(tmp_path):
    net = build("LSTM", 1, embed=False)
    torch.save(net.state_dict(), tmp_path / "m.pt")
    cfg = import_model(tmp_path / "m.pt").model.config
    assert (cfg.input_kind, cfg.input_size, cfg.head) == ("dense", 9, "linear")


@pytest.mark.parametrize("cell", ("lstm", "gru", "rnn"))
@pytest.mark.parametrize("input_kind", ("embedding", "onehot", "scaled_index"))
def test_export_loads_into_torch_modules_with_the_documented_names(tmp_path, cell, input_kind):
    config = ModelConfig(7, 7, cell=cell, hidden_size=5, num_layers=2, input_kind=input_kind,
                         embed_size=3 if input_kind == "embedding" else 0)
    model = SequenceModel(config, rng=np.random.default_rng(3))
    export_weights(model, tmp_path / "w.pt", "torch")
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](
        config.layer0_size, 5, 2, batch_first=True)
    rnn.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("rnn.")})
    head = torch.nn.Linear(5, 7)
    head.load_state_dict({"weight": state["head.weight"], "bias": state["head.bias"]})
    ids = np.random.default_rng(4).integers(0, 7, (2, 6))  # (B, T)
    t_ids = torch.from_numpy(ids)
    with torch.no_grad():
        if input_kind == "embedding":
            emb = torch.nn.Embedding(7, 3)
            emb.load_state_dict({"weight": state["embed.weight"]})
            x = emb(t_ids)
        elif input_kind == "onehot":
            x = torch.nn.functional.one_hot(t_ids, 7).float()
        else:
            x = (t_ids.double() / 7).float()[..., None]
        probs = torch.softmax(head(rnn(x)[0]), -1).numpy()
    np.testing.assert_allclose(model.forward(ids).outputs, probs, atol=1e-6)
    export_weights(model, tmp_path / "w.safetensors", "safetensors")
    from safetensors.numpy import load_file

    same = load_file(str(tmp_path / "w.safetensors"))
    assert set(same) == set(state)
    for name, value in same.items():
        np.testing.assert_array_equal(value, state[name].numpy())


@pytest.mark.parametrize("cell", ("LSTM", "GRU"))
def test_torch_import_export_round_trip_keeps_the_tensors(tmp_path, cell):
    """torch -> import -> export gives the same tensors, up to the bias split: biases that
    only add (LSTM; GRU r, z) come back summed in bias_ih, a GRU's n biases stay apart."""
    net = build(cell, 2)
    torch.save(net.state_dict(), tmp_path / "m.pt")
    result = import_model(tmp_path / "m.pt", vocab_chars="".join(sorted(CHARS)))
    back = state_dict_arrays(result.model)
    src = {k: v.numpy() for k, v in net.state_dict().items()}
    np.testing.assert_array_equal(back["embed.weight"], src["emb.weight"])
    np.testing.assert_array_equal(back["head.weight"], src["fc.weight"])
    np.testing.assert_array_equal(back["head.bias"], src["fc.bias"])
    for k in range(2):
        for s in ("weight_ih", "weight_hh"):
            np.testing.assert_array_equal(back[f"rnn.{s}_l{k}"], src[f"lstm.{s}_l{k}"])
        total = back[f"rnn.bias_ih_l{k}"] + back[f"rnn.bias_hh_l{k}"]
        np.testing.assert_allclose(total, src[f"lstm.bias_ih_l{k}"] + src[f"lstm.bias_hh_l{k}"], atol=1e-7)
        if cell == "GRU":
            np.testing.assert_array_equal(back[f"rnn.bias_hh_l{k}"][12:], src[f"lstm.bias_hh_l{k}"][12:])
            np.testing.assert_array_equal(back[f"rnn.bias_ih_l{k}"][12:], src[f"lstm.bias_ih_l{k}"][12:])


def test_layer_prefix_chooses_among_several_modules_and_stacks_them(tmp_path):
    a, b = torch.nn.LSTM(3, 4), torch.nn.LSTM(4, 4)
    state = {**prefixed(a.state_dict(), "first."), **prefixed(b.state_dict(), "second.")}
    torch.save(state, tmp_path / "m.pt")
    with pytest.raises(AmbiguousModules, match=r"several recurrent modules: 'first', 'second'.*--layer-prefix") as e:
        import_model(tmp_path / "m.pt")
    assert (e.value.role, e.value.candidates) == ("recurrent", ["first", "second"])
    result = import_model(tmp_path / "m.pt", prefixes=["first", "second"])
    assert result.model.config.num_layers == 2
    x = np.random.default_rng(5).standard_normal((1, 4, 3)).astype(np.float32)  # (B, T, D)
    with torch.no_grad():
        expected = b(a(torch.from_numpy(x).transpose(0, 1))[0])[0].transpose(0, 1).numpy()
    np.testing.assert_allclose(result.model.forward(x).outputs, expected, atol=1e-6)
    only = import_model(tmp_path / "m.pt", prefixes=["second"])
    assert only.model.config.num_layers == 1
    assert any("ignored: first." in line for line in only.report)


@pytest.mark.parametrize("second,message", [
    ((5, 4), r"recurrent layer 1 does not take layer 0's output \(5 inputs, 4 expected\)"),
    ((4, 6), r"recurrent layer 1 has 6 units and layer 0 has 4; an lstmviz model has one hidden size"),
])
def test_stacked_modules_that_do_not_chain_are_refused_saying_why(tmp_path, second, message):
    state = {**prefixed(torch.nn.LSTM(3, 4).state_dict(), "first."),
             **prefixed(torch.nn.LSTM(*second).state_dict(), "second.")}
    torch.save(state, tmp_path / "m.pt")
    with pytest.raises(InteropError, match=message):
        import_model(tmp_path / "m.pt", prefixes=["first", "second"])


def test_ambiguous_output_layer_lists_candidates(tmp_path):
    state = {**prefixed(torch.nn.GRU(3, 4).state_dict(), "rnn."),
             **prefixed(torch.nn.Linear(4, 2).state_dict(), "out_a."),
             **prefixed(torch.nn.Linear(4, 5).state_dict(), "out_b.")}
    torch.save(state, tmp_path / "m.pt")
    with pytest.raises(AmbiguousModules, match=r"output layer \(nn.Linear\): 'out_a', 'out_b'") as e:
        import_model(tmp_path / "m.pt")
    assert e.value.candidates == ["out_a", "out_b"]
    assert import_model(tmp_path / "m.pt", prefixes=["rnn", "out_b"]).model.config.output_size == 5


@pytest.mark.parametrize("module,message", [
    (lambda: torch.nn.LSTM(3, 4, bidirectional=True), "bidirectional"),
    (lambda: torch.nn.LSTM(3, 4, proj_size=2), "proj_size"),
    (lambda: torch.nn.RNN(3, 4), "nonlinearity"),
])
def test_refusals_name_the_module(tmp_path, module, message):
    torch.save(prefixed(module().state_dict(), "net."), tmp_path / "m.pt")
    with pytest.raises(InteropError, match=message):
        import_model(tmp_path / "m.pt")


def test_unexplained_tensors_are_refused(tmp_path):
    state = {**prefixed(torch.nn.LSTM(3, 4).state_dict(), "rnn."),
             **prefixed(torch.nn.LayerNorm(4).state_dict(), "norm.")}
    torch.save(state, tmp_path / "m.pt")
    with pytest.raises(InteropError, match=r"not an nn.Embedding.*'norm.bias', 'norm.weight'"):
        import_model(tmp_path / "m.pt")


def test_vocabulary_size_mismatch_is_refused_and_nothing_is_built(tmp_path):
    torch.save(build("LSTM", 1).state_dict(), tmp_path / "m.pt")
    with pytest.raises(InteropError, match="vocabulary has 3 characters but the embedding has 9 rows"):
        import_model(tmp_path / "m.pt", vocab_chars="abc")


@pytest.mark.parametrize("suffix", [".pt", ".safetensors", ".safetensors read by NumPy"])
def test_bfloat16_weights_import_widened_exactly(tmp_path, suffix, monkeypatch):
    """Widened to float32 before any arithmetic (the paired biases summed in bfloat16 differ
    from PyTorch's by 2e-3), whether torch reads the file or NumPy does (NumPy understands
    bfloat16 once ``ml_dtypes`` is imported, as onnx and keras do)."""
    import safetensors.numpy

    if suffix.endswith("NumPy"):
        pytest.importorskip("ml_dtypes")  # registers bfloat16 with NumPy
    else:  # NumPy without ml_dtypes refuses bfloat16: torch reads it
        def no_bfloat16(path):
            raise TypeError("data type 'bfloat16' not understood")

        monkeypatch.setattr(safetensors.numpy, "load_file", no_bfloat16)
    suffix = suffix.split()[0]
    net = build("LSTM", 2, seed=8).to(torch.bfloat16)
    state = net.state_dict()
    if suffix == ".pt":
        torch.save(state, tmp_path / "bf16.pt")
    else:
        safetensors_torch.save_file(state, str(tmp_path / "bf16.safetensors"))
    result = import_model(tmp_path / f"bf16{suffix}", vocab_chars=CHARS)
    W_hh = state["lstm.weight_hh_l1"].float().numpy()  # (4H, H) bfloat16 values, widened by torch
    np.testing.assert_array_equal(result.model.params["l1.Wh"], W_hh.T)
    ids = np.random.default_rng(3).integers(0, 9, (2, 5))  # (B, T) source ids
    with torch.no_grad():
        expected = net.float()(torch.from_numpy(ids))[0].numpy()  # (B, T, V) the same weights in float32
    sorted_ids = np.vectorize(lambda i: result.vocab.chars.index(CHARS[i]))(ids)  # (B, T)
    columns = [CHARS.index(c) for c in result.vocab.chars]  # sorted id -> source id
    np.testing.assert_allclose(result.model.forward(sorted_ids).outputs, expected[..., columns], atol=1e-6)
    if suffix == ".safetensors" and safetensors.numpy.load_file.__name__ == "no_bfloat16":  # nor torch: said so
        monkeypatch.setattr(torch_import, "torch_available", lambda: False)
        with pytest.raises(InteropError, match=r"holds bfloat16 tensors, which NumPy cannot read; install torch"):
            import_model(tmp_path / "bf16.safetensors", vocab_chars=CHARS)


def test_a_pickled_module_is_refused(tmp_path):
    torch.save(torch.nn.LSTM(3, 4), tmp_path / "whole.pt")  # the module, not its state_dict
    with pytest.raises(InteropError, match=re.escape("more than tensors and plain containers (a "
                                                     "torch.nn.modules.rnn.LSTM), and lstmviz never runs")):
        import_model(tmp_path / "whole.pt")


def test_a_torchscript_archive_is_refused_without_torchs_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's and torch.jit.save's own warnings
        torch.jit.save(torch.jit.trace(build("LSTM", 1), torch.zeros(1, 3, dtype=torch.long)),
                       str(tmp_path / "scripted.pt"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch.load would warn that it dispatches to torch.jit.load
        with pytest.raises(InteropError, match=r"scripted.pt: a TorchScript archive \(torch.jit.save\)"):
            import_model(tmp_path / "scripted.pt")


def test_a_training_checkpoint_imports_the_state_dict_it_holds(tmp_path):
    net = build("GRU", 2, seed=4)
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.zeros(1, 2, dtype=torch.long))[0].sum().backward()
    optimizer.step()  # the optimizer's state holds tensors too
    torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 7}, tmp_path / "ckpt.pt")
    result = import_model(tmp_path / "ckpt.pt", vocab_chars=CHARS)
    assert "checkpoint entry: 'model' (also in the checkpoint, not read: 'optimizer', 'epoch')" in result.report
    ids = np.random.default_rng(2).integers(0, 9, (2, 5))  # (B, T) source ids
    with torch.no_grad():
        expected = net(torch.from_numpy(ids))[0].numpy()  # (B, T, V)
    sorted_ids = np.vectorize(lambda i: result.vocab.chars.index(CHARS[i]))(ids)  # (B, T)
    columns = [CHARS.index(c) for c in result.vocab.chars]  # sorted id -> source id
    np.testing.assert_allclose(result.model.forward(sorted_ids).outputs, expected[..., columns], atol=1e-6)


def test_a_checkpoint_with_two_state_dicts_lists_them_and_a_prefix_chooses(tmp_path):
    model, ema = build("LSTM", 1, seed=5), build("LSTM", 1, seed=6)
    torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "step": 100}, tmp_path / "two.pt")
    with pytest.raises(AmbiguousModules, match="several state_dicts with recurrent weights") as info:
        import_model(tmp_path / "two.pt", vocab_chars=CHARS)
    assert info.value.candidates == ["model", "ema"]
    result = import_model(tmp_path / "two.pt", vocab_chars=CHARS, prefixes=["ema"])
    W_hh = ema.state_dict()["lstm.weight_hh_l0"].numpy()  # (4H, H) PyTorch's gates i, f, g, o
    np.testing.assert_array_equal(result.model.params["l0.Wh"], W_hh.T)  # (H, 4H) the same gate order


def test_a_checkpoint_without_recurrent_weights_says_what_it_holds(tmp_path):
    torch.save({"epoch": 3, "lr": 0.1, "head": torch.nn.Linear(2, 2).state_dict()}, tmp_path / "none.pt")
    with pytest.raises(InteropError, match="it holds 'epoch': int, 'lr': float, 'head': OrderedDict"):
        import_model(tmp_path / "none.pt")


def test_truncated_and_foreign_files_are_refused(tmp_path):
    torch.save(build("LSTM", 1).state_dict(), tmp_path / "m.pt")
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(InteropError, match="cut.pt: not a"):
        import_model(tmp_path / "cut.pt")
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(InteropError, match="not a readable .safetensors"):
        import_model(tmp_path / "bad.safetensors")
    with pytest.raises(InteropError, match="unknown model file type '.txt'"):
        import_model(tmp_path / "model.txt")


class Evil:
    """Unpickling this calls ``open(marker, "w")``: it creates a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("torch_installed", (True, False))
def test_a_malicious_pickle_is_never_executed(tmp_path, monkeypatch, torch_installed):
    marker = tmp_path / "pwned"
    torch.save({"rnn.weight_ih_l0": torch.zeros(16, 3), "payload": Evil(marker)}, tmp_path / "evil.pt")
    with zipfile.ZipFile(tmp_path / "evil.pt") as z:  # the payload really is in the pickle
        assert any(b"pwned" in z.read(n) for n in z.namelist() if n.endswith(".pkl"))
    (tmp_path / "plain.pt").write_bytes(pickle.dumps(Evil(marker)))  # a bare pickle, no zip
    if not torch_installed:
        monkeypatch.setattr(torch_import, "torch_available", lambda: False)
    for name in ("evil.pt", "plain.pt"):
        with pytest.raises(InteropError, match="needs PyTorch" if not torch_installed else "refused|not a torch.save"):
            import_model(tmp_path / name)
    assert not marker.exists()
    pickle.loads(pickle.dumps(Evil(marker)))  # the control: unpickling it does create the file
    assert marker.exists()


def test_without_torch_safetensors_still_import_and_the_report_says_what_was_checked(tmp_path, monkeypatch):
    safetensors_torch.save_file(build("GRU", 1).state_dict(), str(tmp_path / "m.safetensors"))
    monkeypatch.setattr(torch_import, "torch_available", lambda: False)
    result = import_model(tmp_path / "m.safetensors", vocab_chars=CHARS)
    assert any(line.startswith("parity: torch is not installed") for line in result.report)
