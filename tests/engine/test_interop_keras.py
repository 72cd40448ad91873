"""Keras import read with h5py: models built and saved by Keras 3 (``.keras`` and legacy ``.h5``;
LSTM and GRU; the character tutorial's 2 x LSTM + Dropout + Dense with a scaled-index input),
compared with Keras' own predictions, and every refusal on files written by hand in the
Keras 3 layout (so the refusals are tested without Keras)."""

import io
import json
import os
import re
import zipfile

import numpy as np
import pytest

from engine.interop import InteropError, import_model

h5py = pytest.importorskip("h5py")

V = 6
CHARS = "\n abcd"  # sorted, as the tutorial builds it: sorted(set(text))


def keras_or_skip():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def parity_numbers(report) -> list:
    line = next(line for line in report if line.startswith("parity with keras"))
    return [float(x) for x in re.findall(r"= ([0-9.e+-]+)", line)]


@pytest.mark.parametrize("suffix", (".keras", ".h5"))
def test_the_tutorial_model_with_scaled_index_input(tmp_path, suffix):
    keras = keras_or_skip()
    keras.utils.set_random_seed(0)
    T = 10
    model = keras.Sequential([keras.Input((T, 1)), keras.layers.LSTM(8, return_sequences=True),
                              keras.layers.Dropout(0.2), keras.layers.LSTM(8), keras.layers.Dropout(0.2),
                              keras.layers.Dense(V, activation="softmax")])
    path = tmp_path / f"tutorial{suffix}"
    model.save(path)
    result = import_model(path, vocab_chars=CHARS)
    cfg = result.model.config
    assert (cfg.cell, cfg.num_layers, cfg.input_kind, cfg.input_size, cfg.head) == ("lstm", 2, "scaled_index", V,
                                                                                     "softmax")
    assert max(parity_numbers(result.report)) <= 1e-5
    ids = np.random.default_rng(1).integers(0, V, (3, T))  # (B, T)
    x = (ids / float(V)).reshape(3, T, 1)  # the tutorial's X = X / float(n_vocab)
    expected = model.predict(x, verbose=0)  # (B, V) at the last step
    np.testing.assert_allclose(result.model.forward(ids).outputs[:, -1], expected, atol=1e-6)


@pytest.mark.parametrize("layer", ("LSTM", "GRU"))
def test_embedding_recurrent_dense(tmp_path, layer):
    keras = keras_or_skip()
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(V, 4),
                              getattr(keras.layers, layer)(5, return_sequences=True),
                              getattr(keras.layers, layer)(5, return_sequences=True), keras.layers.Dense(V)])
    model.save(tmp_path / "m.keras")
    result = import_model(tmp_path / "m.keras", vocab_chars=CHARS)
    cfg = result.model.config
    # a linear Dense over the vocabulary gives logits (from_logits=True training): a softmax head
    assert (cfg.cell, cfg.input_kind, cfg.head) == (layer.lower(), "embedding", "softmax")
    assert max(parity_numbers(result.report)) <= 1e-5
    assert "(the source's logits as probabilities)" in next(l for l in result.report if l.startswith("parity"))
    ids = np.random.default_rng(2).integers(0, V, (2, 9))  # (B, T)
    logits = model.predict(ids, verbose=0)  # (B, T, V)
    probs = np.exp(logits - logits.max(-1, keepdims=True))  # (B, T, V)
    np.testing.assert_allclose(result.model.forward(ids).outputs, probs / probs.sum(-1, keepdims=True), atol=1e-6)


def test_a_linear_dense_of_another_size_stays_a_linear_head(tmp_path):
    keras = keras_or_skip()
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(V, 4),
                              keras.layers.LSTM(5, return_sequences=True), keras.layers.Dense(2)])
    model.save(tmp_path / "m.keras")
    result = import_model(tmp_path / "m.keras")
    assert result.model.config.head == "linear" and max(parity_numbers(result.report)) <= 1e-5
    ids = np.random.default_rng(3).integers(0, V, (2, 6))  # (B, T)
    np.testing.assert_allclose(result.model.forward(ids).outputs, model.predict(ids, verbose=0), atol=1e-6)


@pytest.mark.parametrize("ending,message", [
    ("custom activation layer", r"layer 'activation\w*' \(Activation\): activation='lstmviz_test>doubled' is not"),
    ("custom dense activation", r"layer 'dense\w*' \(Dense\): activation='lstmviz_test>doubled' is not supported"),
    ("relu", r"activation='relu' is not supported \(softmax, linear or tanh, once\)"),
    ("tanh after softmax", r"activation='tanh' after 'softmax' is not supported"),
])
def test_output_activations_that_cannot_be_stepped_are_refused(tmp_path, ending, message):
    keras = keras_or_skip()

    @keras.saving.register_keras_serializable(package="lstmviz_test")
    def doubled(x):
        return 2.0 * x

    ends = {"custom activation layer": [keras.layers.Dense(V), keras.layers.Activation(doubled)],
            "custom dense activation": [keras.layers.Dense(V, activation=doubled)],
            "relu": [keras.layers.Dense(V), keras.layers.Activation("relu")],
            "tanh after softmax": [keras.layers.Dense(V, activation="softmax"), keras.layers.Activation("tanh")]}
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(V, 4),
                              keras.layers.LSTM(5, return_sequences=True), *ends[ending]])
    model.save(tmp_path / "m.keras")
    with pytest.raises(InteropError, match=message):
        import_model(tmp_path / "m.keras", vocab_chars=CHARS)


@pytest.mark.parametrize("ending", ("time_distributed", "activation"))
def test_a_time_distributed_dense_or_an_activation_layer_ends_the_model(tmp_path, ending):
    """Keras 2-era char models end in ``TimeDistributed(Dense(V, activation="softmax"))`` or
    in ``Dense(V)`` + ``Activation("softmax")``; both are the model's softmax head."""
    keras = keras_or_skip()
    keras.utils.set_random_seed(4)
    ends = ([keras.layers.TimeDistributed(keras.layers.Dense(V, activation="softmax"))] if ending == "time_distributed"
            else [keras.layers.Dense(V), keras.layers.Activation("softmax")])
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(V, 4),
                              keras.layers.GRU(5, return_sequences=True), *ends])
    for suffix in (".keras", ".h5"):
        model.save(tmp_path / f"m{suffix}")
        result = import_model(tmp_path / f"m{suffix}", vocab_chars=CHARS)
        assert result.model.config.head == "softmax" and max(parity_numbers(result.report)) <= 1e-5
        ids = np.random.default_rng(5).integers(0, V, (2, 6))  # (B, T)
        np.testing.assert_allclose(result.model.forward(ids).outputs, model.predict(ids, verbose=0), atol=1e-6)


# --- files written by hand in the Keras 3 layout --------------------------------------------------
def layer(kind, name, **config):
    return {"class_name": kind, "config": {"name": name, **config}}


def write_keras(path, layers, weights):
    """A ``.keras`` zip: ``config.json`` and ``model.weights.h5`` with ``layers/<name>/[cell/]vars/<i>``."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for name, (arrays, has_cell) in weights.items():
            group = f.create_group(f"layers/{name}")
            group.create_group("vars").attrs["name"] = name
            target = group.create_group("cell/vars") if has_cell else group["vars"]
            for i, a in enumerate(arrays):
                target[str(i)] = a
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": layers}}))
        z.writestr("model.weights.h5", buffer.getvalue())
    return path


def lstm_weights(D, H, rng):
    return ([rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)), rng.standard_normal(4 * H)], True)


def gru_weights(D, H, rng):
    return ([rng.standard_normal((D, 3 * H)), rng.standard_normal((H, 3 * H)), rng.standard_normal((2, 3 * H))], True)


LSTM_OK = dict(activation="tanh", recurrent_activation="sigmoid", return_sequences=True)


def test_hand_written_file_maps_keras_gate_orders_exactly(tmp_path):
    """Against the Keras equations written out here: LSTM gates i, f, c, o; GRU z, r, h with
    reset_after (``h~ = tanh(x W_h + b_h + r * (h U_h + b_rh))``, ``h' = z h + (1 - z) h~``)."""
    rng = np.random.default_rng(3)
    w = gru_weights(2, 3, rng)
    path = write_keras(tmp_path / "g.keras", [layer("InputLayer", "in"), layer("GRU", "gru", reset_after=True,
                                                                              **LSTM_OK)], {"gru": w})
    model = import_model(path).model
    kernel, rk, bias = w[0]
    x = rng.standard_normal((1, 4, 2))  # (B, T, D)
    h = np.zeros(3)
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    for t in range(4):
        xz, xr, xh = np.split(x[0, t] @ kernel + bias[0], 3)
        hz, hr, hh = np.split(h @ rk + bias[1], 3)
        z, r = sig(xz + hz), sig(xr + hr)
        h = z * h + (1 - z) * np.tanh(xh + r * hh)
    np.testing.assert_allclose(model.forward(x.astype(np.float32)).outputs[0, -1], h, atol=1e-5)

    w = lstm_weights(2, 3, rng)
    w[0][2] = np.concatenate([w[0][2], rng.standard_normal(12)])  # CuDNN-style doubled bias (8H,)
    path = write_keras(tmp_path / "l.keras", [layer("CuDNNLSTM", "lstm", return_sequences=True)], {"lstm": w})
    model = import_model(path).model
    kernel, rk, bias = w[0]
    h, c = np.zeros(3), np.zeros(3)
    for t in range(4):
        i, f, g, o = np.split(x[0, t] @ kernel + h @ rk + bias[:12] + bias[12:], 4)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
    np.testing.assert_allclose(model.forward(x.astype(np.float32)).outputs[0, -1], h, atol=1e-5)


@pytest.mark.parametrize("layers,weights,message", [
    ([layer("LSTM", "lstm", activation="tanh", recurrent_activation="hard_sigmoid")], {"lstm": "lstm"},
     r"layer 'lstm' \(LSTM\): recurrent_activation='hard_sigmoid'"),
    ([layer("GRU", "gru", reset_after=False)], {"gru": "gru"}, r"layer 'gru' \(GRU\): reset_after=False"),
    ([layer("LSTM", "lstm", go_backwards=True)], {"lstm": "lstm"}, "go_backwards=True"),
    ([layer("Bidirectional", "bidi")], {"bidi": "lstm"}, r"layer 'bidi' \(Bidirectional\): bidirectional"),
    ([layer("Embedding", "emb", mask_zero=True), layer("LSTM", "lstm")], {"emb": "emb", "lstm": "lstm"},
     "mask_zero=True"),
    ([layer("LSTM", "a", **LSTM_OK), layer("LayerNormalization", "norm"), layer("LSTM", "b")],
     {"a": "lstm", "norm": "emb", "b": "lstm"}, r"layer 'norm' \(LayerNormalization\) is not supported"),
    ([layer("LSTM", "a", return_sequences=False), layer("LSTM", "b")], {"a": "lstm", "b": "lstm"},
     "follows a recurrent layer with return_sequences=False"),
    ([layer("LSTM", "a", **LSTM_OK), layer("Dense", "out", activation="relu")], {"a": "lstm", "out": "dense"},
     r"layer 'out' \(Dense\): activation='relu'"),
])
def test_refusals_name_the_layer_and_attribute(tmp_path, layers, weights, message):
    rng = np.random.default_rng(0)
    makers = {"lstm": lambda: lstm_weights(4, 4, rng), "gru": lambda: gru_weights(4, 4, rng),
              "emb": lambda: ([rng.standard_normal((5, 4))], False),
              "dense": lambda: ([rng.standard_normal((4, 5)), np.zeros(5)], False)}
    path = write_keras(tmp_path / "bad.keras", layers, {name: makers[kind]() for name, kind in weights.items()})
    with pytest.raises(InteropError, match=message):
        import_model(path, check_parity=False)


def test_unreadable_files_are_refused(tmp_path):
    (tmp_path / "junk.keras").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InteropError, match="junk.keras: not a readable Keras model file"):
        import_model(tmp_path / "junk.keras")
    with h5py.File(tmp_path / "weights.h5", "w") as f:
        f["kernel"] = np.zeros(3)
    with pytest.raises(InteropError, match="without 'model_config'"):
        import_model(tmp_path / "weights.h5")


def test_without_keras_the_report_says_what_was_checked(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_keras(name, *args, **kwargs):
        if name == "keras" or name.startswith("keras."):
            raise ImportError("no keras here")
        return real_import(name, *args, **kwargs)

    rng = np.random.default_rng(0)
    path = write_keras(tmp_path / "m.keras", [layer("LSTM", "lstm", **LSTM_OK)], {"lstm": lstm_weights(1, 3, rng)})
    monkeypatch.setattr(builtins, "__import__", no_keras)
    result = import_model(path, vocab_chars=CHARS)
    assert result.model.config.input_kind == "scaled_index"
    assert any(line.startswith("parity: keras (with a backend) is not installed") for line in result.report)


def test_legacy_h5_written_by_keras_2(tmp_path):
    """A Keras 2.2-style ``.h5``: a bare layer list as the Sequential config, weights listed by
    ``weight_names`` with TensorFlow's ``:0`` suffixes."""
    rng = np.random.default_rng(4)
    (kernel, rk, bias), _ = lstm_weights(1, 3, rng)
    W, b = rng.standard_normal((3, V)), rng.standard_normal(V)
    config = {"class_name": "Sequential", "config": [layer("LSTM", "lstm_1", **LSTM_OK),
                                                     layer("Dropout", "dropout_1"),
                                                     layer("Dense", "dense_1", activation="softmax")]}
    with h5py.File(tmp_path / "old.h5", "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        for name, arrays in (("lstm_1", {"kernel:0": kernel, "recurrent_kernel:0": rk, "bias:0": bias}),
                             ("dropout_1", {}), ("dense_1", {"kernel:0": W, "bias:0": b})):
            group = f.create_group(f"model_weights/{name}")
            group.attrs["weight_names"] = [f"{name}/{k}".encode() for k in arrays]
            for k, a in arrays.items():
                group[f"{name}/{k}"] = a
    result = import_model(tmp_path / "old.h5", vocab_chars=CHARS, check_parity=False)
    cfg = result.model.config
    assert (cfg.input_kind, cfg.head, cfg.hidden_size) == ("scaled_index", "softmax", 3)
    np.testing.assert_array_equal(result.model.params["l0.Wx"], kernel.astype(np.float32))
    np.testing.assert_array_equal(result.model.params["head.W"], W.astype(np.float32))


# --- functional models with several recurrent stacks ----------------------------------------------
def two_branch_model(keras, tail="heads"):
    """ids -> Embedding -> (LSTM a1 -> Dropout -> LSTM a2) and (LSTM b), each with its own Dense
    (``tail`` "heads"), or both concatenated into one Dense ("merged")."""
    keras.utils.set_random_seed(5)
    ids = keras.Input((None,), dtype="int32", name="ids")
    emb = keras.layers.Embedding(V, 4, name="emb")(ids)
    a = keras.layers.LSTM(5, return_sequences=True, name="a1")(emb)
    a = keras.layers.LSTM(5, return_sequences=True, name="a2")(keras.layers.Dropout(0.1, name="drop")(a))
    b = keras.layers.LSTM(3, return_sequences=True, name="b")(emb)
    if tail == "heads":
        outputs = [keras.layers.Dense(V, activation="softmax", name="head_a")(a),
                   keras.layers.Dense(2, name="head_b")(b)]
    else:
        outputs = keras.layers.Dense(V, name="merged")(keras.layers.Concatenate(name="cat")([a, b]))
    return keras.Model(ids, outputs)


@pytest.mark.parametrize("suffix", (".keras", ".h5"))
def test_two_branches_are_listed_and_chosen_by_layer_name(tmp_path, suffix):
    from engine.interop import AmbiguousModules

    keras = keras_or_skip()
    model = two_branch_model(keras)
    path = tmp_path / f"two{suffix}"
    model.save(path)
    with pytest.raises(AmbiguousModules, match=r"several recurrent stacks.*'a2', 'b'.*--layer-prefix") as e:
        import_model(path, vocab_chars=CHARS)
    assert (e.value.role, e.value.candidates, e.value.several) == ("recurrent", ["a2", "b"], False)
    ids = np.random.default_rng(7).integers(0, V, (2, 8))  # (B, T)
    probs_a, scores_b = model.predict(ids, verbose=0)  # (B, T, V), (B, T, 2)
    first = import_model(path, vocab_chars=CHARS, prefixes=["a1"])
    assert first.report[1:3] == ["recurrent: a1, a2", "head: head_a"]
    assert (first.model.config.num_layers, first.model.config.head) == (2, "softmax")
    assert max(parity_numbers(first.report)) <= 1e-5
    np.testing.assert_allclose(first.model.forward(ids).outputs, probs_a, atol=1e-5)
    second = import_model(path, vocab_chars=CHARS, prefixes=["b"])
    assert (second.model.config.hidden_size, second.model.config.output_size) == (3, 2)
    assert max(parity_numbers(second.report)) <= 1e-5
    np.testing.assert_allclose(second.model.forward(ids).outputs, scores_b, atol=1e-5)


def test_a_branch_of_a_merged_model_imports_without_its_head(tmp_path):
    keras = keras_or_skip()
    model = two_branch_model(keras, tail="merged")
    model.save(tmp_path / "merged.keras")
    result = import_model(tmp_path / "merged.keras", vocab_chars=CHARS, prefixes=["b"])
    assert (result.model.config.head, result.model.config.hidden_size) == ("none", 3)
    assert max(parity_numbers(result.report)) <= 1e-5
    ids = np.random.default_rng(8).integers(0, V, (2, 8))  # (B, T)
    hidden = keras.Model(model.inputs, model.get_layer("b").output).predict(ids, verbose=0)  # (B, T, 3)
    np.testing.assert_allclose(result.model.forward(ids).outputs, hidden, atol=1e-5)


def test_several_dense_layers_reading_the_stack_are_listed_and_chosen(tmp_path):
    from engine.interop import AmbiguousModules

    keras = keras_or_skip()
    keras.utils.set_random_seed(9)
    ids = keras.Input((None,), dtype="int32", name="ids")
    h = keras.layers.GRU(4, return_sequences=True, name="gru")(keras.layers.Embedding(V, 3, name="emb")(ids))
    chars = keras.layers.Dense(V, activation="softmax", name="chars")(h)
    other = keras.layers.Dense(2, activation="tanh", name="other")(h)
    model = keras.Model(ids, [chars, other])
    model.save(tmp_path / "heads.keras")
    with pytest.raises(AmbiguousModules, match=r"several Dense layers read the last recurrent layer: 'chars', 'other'"
                       ) as e:
        import_model(tmp_path / "heads.keras", vocab_chars=CHARS)
    assert (e.value.role, e.value.candidates, e.value.several) == ("output layer (Dense)", ["chars", "other"], False)
    result = import_model(tmp_path / "heads.keras", vocab_chars=CHARS, prefixes=["other"])
    assert (result.model.config.head, result.model.config.output_size) == ("tanh", 2)
    assert max(parity_numbers(result.report)) <= 1e-5
    x = np.random.default_rng(3).integers(0, V, (2, 5))  # (B, T)
    np.testing.assert_allclose(result.model.forward(x).outputs, model.predict(x, verbose=0)[1], atol=1e-5)
