"""Keras import with ``h5py`` (no TensorFlow): ``.keras`` (Keras 3: a zip holding
``config.json`` and ``model.weights.h5``) and legacy ``.h5`` (``model_config`` attribute plus
``model_weights/<layer>/...``) files of a chain of layers.

Layers: ``InputLayer``; ``Embedding`` (first; ``mask_zero`` refused: masked steps are skipped,
not stepped); ``LSTM`` / ``CuDNNLSTM`` (``kernel (D, 4H)``, ``recurrent_kernel (H, 4H)``, bias
``(4H,)`` or CuDNN ``(8H,)``, gates i, f, c, o); ``GRU`` with ``reset_after=True`` / ``CuDNNGRU``
(gates z, r, h, bias ``(2, 3H)``); ``Dropout`` and ``SpatialDropout1D`` (identity at inference);
``Dense`` (or ``TimeDistributed(Dense)``: the same per step) last, with activation softmax,
linear or tanh, optionally followed by an ``Activation`` layer of these. Refused with the layer and attribute
named: ``Bidirectional``, ``go_backwards``, activations other than tanh / sigmoid (Keras 2's
``hard_sigmoid``), ``reset_after=False``, ``return_sequences=False`` before another recurrent
layer, and any other layer. A first recurrent layer reading one number per step with a
vocabulary given is the character tutorial's scaled index (``id / V``); see ``layout``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import zipfile

import numpy as np

from .layout import (AmbiguousModules, InteropError, Loaded, Parity, Recognised, choose_stack, from_keras,
                     logits_to_probabilities)

IGNORED = ("InputLayer", "Dropout", "SpatialDropout1D")
RECURRENT = {"LSTM": "lstm", "CuDNNLSTM": "lstm", "GRU": "gru", "CuDNNGRU": "gru"}
HEAD_ACTIVATIONS = {"softmax": "softmax", "linear": "linear", None: "linear", "tanh": "tanh"}
HEAD_LAYERS = ("Dense", "TimeDistributed")  # the output layer, a TimeDistributed one wrapping a Dense


def _h5py(source: str):
    try:
        import h5py
    except ImportError:
        raise InteropError(f"{source}: reading Keras files needs the 'h5py' package "
                           "(pip install 'lstmviz[import]')") from None
    return h5py


def read_keras(source: str) -> tuple:
    """``(layer configs [{"class_name", "config"}], {layer name: [arrays in Keras order]})``."""
    h5py = _h5py(source)
    try:
        if zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as z:
                config = json.loads(z.read("config.json"))
                weights = io.BytesIO(z.read("model.weights.h5"))
            with h5py.File(weights, "r") as f:
                return _layers(config, source), _keras3_weights(f)
        with h5py.File(source, "r") as f:
            if "model_config" not in f.attrs:
                raise InteropError(f"{source}: an HDF5 file without 'model_config': save the whole model "
                                   "(model.save), not only its weights")
            config = json.loads(f.attrs["model_config"])
            return _layers(config, source), _legacy_weights(f["model_weights"] if "model_weights" in f else f)
    except InteropError:
        raise
    except Exception as e:  # zipfile, json, h5py (OSError) and KeyError for missing members
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InteropError(f"{source}: not a readable Keras model file ({reason})") from None


def _layers(config: dict, source: str) -> list:
    inner = config.get("config", {})
    layers = inner.get("layers") if isinstance(inner, dict) else inner  # Keras 2.2 Sequential: a bare list
    if not isinstance(layers, list):
        raise InteropError(f"{source}: the Keras config has no layer list (only Sequential and chain-shaped "
                           "functional models import)")
    return layers


def _keras3_weights(f) -> dict:
    """Keras 3 ``model.weights.h5``: ``layers/<path>/vars/<i>`` (or ``cell/vars``, or
    ``layer/vars`` of a ``TimeDistributed``); keyed by the layer name stored in ``vars``' ``name``
    attribute."""
    out = {}
    for path, group in f["layers"].items():
        inner = next((group[k] for k in ("cell", "layer") if k in group), group)  # an RNN's cell, a wrapped layer
        vars_group = inner["vars"]
        name = group["vars"].attrs.get("name", path)
        out[name.decode() if isinstance(name, bytes) else str(name)] = [
            np.asarray(vars_group[str(i)]) for i in range(len(vars_group))]
    return out


def _legacy_weights(f) -> dict:
    """Legacy ``.h5``: ``<layer>/`` with a ``weight_names`` attribute listing datasets in order."""
    out = {}
    for name, group in f.items():
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
        out[name] = [np.asarray(group[n]) for n in names]
    return out


def load(source: str, prefixes=()) -> Loaded:
    """Read and recognise ``source`` (``prefixes``: Keras layer names choosing among several
    recurrent stacks, see ``chain``); parity runs Keras (any backend) when installed."""
    layers, weights = read_keras(source)
    layers = chain(layers, source, prefixes)
    found, last_sequences = recognise(layers, weights, source)
    first = _layer_name(layers[0]) if layers[0].get("class_name") == "InputLayer" else None

    def check(model, rng) -> Parity:
        return parity(source, found, last_sequences, model, rng, first)

    return Loaded(found, check)


def _layer_name(layer: dict) -> str:
    return layer.get("config", {}).get("name") or layer.get("name") or layer.get("class_name")


def _inbound(layer: dict) -> tuple:
    """``(names of the layers whose outputs ``layer`` reads, number of times it is called)``
    from its ``inbound_nodes`` (Keras 3: tensors with a ``keras_history``; Keras 2: lists
    ``[name, node index, tensor index, kwargs]``)."""
    names = []

    def collect(x):
        if isinstance(x, dict):
            history = x.get("config", {}).get("keras_history") if x.get("class_name") == "__keras_tensor__" else None
            if history:
                names.append(history[0])
            else:
                for value in x.values():
                    collect(value)
        elif isinstance(x, list):
            if len(x) >= 3 and isinstance(x[0], str) and isinstance(x[1], int):
                names.append(x[0])
            else:
                for value in x:
                    collect(value)

    nodes = layer.get("inbound_nodes") or []
    for node in nodes:
        collect(node)
    return names, len(nodes)


def chain(layers: list, source: str, prefixes=()) -> list:
    """The chain of layer configs to import, input first. A Sequential model is its layer list.
    A functional model is followed through its ``inbound_nodes``: its recurrent stacks are the
    chains of LSTM/GRU layers each reading the one before (through Dropout); several stacks
    (e.g. two branches) are ``AmbiguousModules`` named by each stack's last layer, chosen by
    ``prefixes`` (a layer name, or a prefix of one). The chain runs from the model input
    (through Embedding and Dropout) over the stack to the Dense layer reading it; a layer with
    several inputs or called more than once on that chain is refused, as is a stack output read
    by several layers (several Dense layers: ``AmbiguousModules`` over them). When the model
    holds several stacks, the chain ends before the first layer it cannot step (a merge, say)."""
    if not any(layer.get("inbound_nodes") for layer in layers):
        return layers
    by_name = {_layer_name(layer): layer for layer in layers}
    parents, children = {}, {name: [] for name in by_name}
    for name, layer in by_name.items():
        parents[name], calls = _inbound(layer)
        if calls > 1:
            parents[name] = None  # shared: refused when on the chain
        for parent in parents[name] or []:
            children.setdefault(parent, []).append(name)

    def label(name):
        return f"layer {name!r} ({by_name[name].get('class_name')})"

    def parent_of(name):
        ps = parents.get(name)
        if ps is None:
            raise InteropError(f"{source}: {label(name)} is called more than once (a shared layer); not supported")
        if len(ps) > 1:
            raise InteropError(f"{source}: {label(name)} reads {len(ps)} layers ({', '.join(map(repr, ps))}); only a "
                               "chain can be stepped")
        return ps[0] if ps else None

    def up(name):
        """Layers between ``name`` and the nearest non-ignored layer above it, and that layer."""
        between, above = [], parent_of(name)
        while above is not None and by_name[above].get("class_name") in IGNORED[1:]:
            between.append(above)
            above = parent_of(above)
        return between[::-1], above

    recurrent = [n for n, layer in by_name.items() if layer.get("class_name") in RECURRENT]
    if not recurrent:
        raise InteropError(f"{source}: no LSTM or GRU layer found")
    fed_by = {}
    for name in recurrent:
        _, above = up(name)
        if above in recurrent:
            fed_by[name] = above
    stacks = []
    for leaf in (n for n in recurrent if n not in fed_by.values()):
        stack = [leaf]
        while stack[0] in fed_by:
            stack.insert(0, fed_by[stack[0]])
        stacks.append(stack)
    stack = stacks[choose_stack(stacks, [s[-1] for s in stacks], prefixes, source, "chains of LSTM/GRU layers, "
                                "named by their last layer; any layer name of a chain chooses it")]
    strict = len(stacks) == 1
    names = []
    between, above = up(stack[0])
    while above is not None:
        names[:0] = [above] + between
        between, above = up(above)
    names[:0] = between
    for k, name in enumerate(stack):
        if k:
            names += up(name)[0]
        names.append(name)
    current, head_seen = stack[-1], False
    while children.get(current):
        readers = children[current]
        if len(readers) > 1:
            dense = [r for r in readers if by_name[r].get("class_name") == "Dense"]
            if not head_seen and len(dense) == len(readers):
                readers = [dense[choose_head(dense, prefixes, source)]]
            elif strict:
                raise InteropError(f"{source}: the output of {label(current)} is read by {len(readers)} layers "
                                   f"({', '.join(map(repr, readers))}); only a chain can be stepped")
            else:
                break
        kind = by_name[readers[0]].get("class_name")
        if not strict and (kind not in IGNORED + HEAD_LAYERS + ("Activation",) or (head_seen and kind != "Activation")):
            break
        names.append(readers[0])
        head_seen = head_seen or kind in HEAD_LAYERS
        current = readers[0]
    return [by_name[name] for name in names]


def choose_head(dense: list, prefixes, source: str) -> int:
    """The index of the Dense layer named in ``prefixes`` among ``dense``; ``AmbiguousModules``."""
    named = [k for k, name in enumerate(dense) if name in prefixes]
    if len(named) == 1:
        return named[0]
    raise AmbiguousModules(f"{source}: several Dense layers read the last recurrent layer: "
                           f"{', '.join(map(repr, dense))}; choose one with --layer-prefix NAME",
                           "output layer (Dense)", dense)


def _head_activation(cfg: dict, label: str, source: str, after: str = "linear") -> str:
    """The output layer's activation in ``HEAD_ACTIVATIONS``' terms, from a ``Dense`` or
    ``Activation`` config; ``after``: the one already applied (a second one must be linear).
    Raises ``InteropError`` for any other activation, a custom function included (Keras 3
    saves it as a dict)."""
    act = cfg.get("activation")
    known = act is None or isinstance(act, str)
    if not known or act not in HEAD_ACTIVATIONS or (after != "linear" and HEAD_ACTIVATIONS[act] != "linear"):
        shown = act.get("config", act) if isinstance(act, dict) else act
        raise InteropError(f"{source}: {label}: activation={shown!r}" + (f" after {after!r}" if after != "linear" else "")
                           + " is not supported (softmax, linear or tanh, once)")
    return HEAD_ACTIVATIONS[act]


def recognise(layers: list, weights: dict, source: str) -> tuple:
    """``(Recognised, last recurrent layer returns sequences)`` from the layer chain."""
    found, embed, head, activation = None, None, None, None
    last_sequences = True
    for layer in layers:
        kind, cfg = layer.get("class_name"), layer.get("config", {})
        name = cfg.get("name", kind)
        label = f"layer {name!r} ({kind})"
        if kind in IGNORED:
            continue
        if kind == "Activation" and head is not None:
            act = _head_activation(cfg, label, source, after=activation)
            activation = act if act != "linear" else activation
            found.names["head activation"] = name
            continue
        if head is not None:
            raise InteropError(f"{source}: {label} after the Dense output layer is not supported")
        if kind == "TimeDistributed":  # the same Dense applied at every step; its weights under the wrapper's name
            wrapped = cfg.get("layer", {})
            if wrapped.get("class_name") != "Dense":
                raise InteropError(f"{source}: {label} wraps a {wrapped.get('class_name')!r}; only a wrapped Dense "
                                   "can be stepped")
            kind, cfg = "Dense", {**wrapped.get("config", {}), "name": name}
        arrays = weights.get(name)
        if arrays is None:
            raise InteropError(f"{source}: {label} has no weights in the file")
        if kind == "Embedding":
            if found is not None:
                raise InteropError(f"{source}: {label} after a recurrent layer is not supported")
            if cfg.get("mask_zero"):
                raise InteropError(f"{source}: {label}: mask_zero=True (masked steps are skipped) is not supported")
            embed = arrays[0]  # (V, E)
        elif kind in RECURRENT:
            cell = RECURRENT[kind]
            _check_recurrent(cfg, kind, label, source)
            if found is not None and not last_sequences:
                raise InteropError(f"{source}: {label} follows a recurrent layer with return_sequences=False")
            if found is not None and found.cell != cell:
                raise InteropError(f"{source}: {label}: mixed LSTM and GRU layers are not supported")
            kernel, recurrent_kernel = arrays[0], arrays[1]
            bias = arrays[2] if len(arrays) > 2 else None
            if cell == "gru" and bias is not None and bias.ndim == 1:
                bias = bias.reshape(2, -1)  # CuDNNGRU: (6H,) input then recurrent biases
            found = found or Recognised(cell=cell, layers=[], names={"recurrent": []})
            found.layers.append(from_keras(cell, kernel, recurrent_kernel, bias))
            found.names["recurrent"].append(name)
            last_sequences = bool(cfg.get("return_sequences", False))
        elif kind == "Dense":
            if found is None:
                raise InteropError(f"{source}: {label} before the recurrent layers is not supported")
            act = _head_activation(cfg, label, source)
            W = arrays[0]  # (H, O)
            b = arrays[1] if len(arrays) > 1 else np.zeros(W.shape[1], W.dtype)  # (O,)
            head, activation = (W.copy(), b.copy()), act
            found.names["head"] = name
        elif kind == "Bidirectional":
            raise InteropError(f"{source}: {label}: bidirectional layers are not supported")
        else:
            raise InteropError(f"{source}: {label} is not supported; only Embedding, LSTM, GRU, Dropout and a "
                               "final Dense layer (or TimeDistributed Dense, and an Activation) can be stepped "
                               "exactly")
    if found is None:
        raise InteropError(f"{source}: no LSTM or GRU layer found")
    tokens_in = found.layers[0]["Wx"].shape[0] if embed is None else embed.shape[0]  # vocabulary size if tokens
    logits = activation == "linear" and head is not None and head[0].shape[1] == tokens_in
    # a linear output layer over the input's tokens gives logits: built with a softmax head (layout.build_model)
    found.embed, found.head, found.head_activation = embed, head, None if logits else activation
    found.scaled_index = embed is None and found.layers[0]["Wx"].shape[0] == 1
    if embed is not None:
        found.names["embedding"] = next(l["config"]["name"] for l in layers if l.get("class_name") == "Embedding")
    return found, last_sequences


def _check_recurrent(cfg: dict, kind: str, label: str, source: str) -> None:
    if kind.startswith("CuDNN"):
        return  # fixed tanh / sigmoid, reset_after-style GRU
    for attr, expected in (("activation", "tanh"), ("recurrent_activation", "sigmoid")):
        if cfg.get(attr, expected) != expected:
            raise InteropError(f"{source}: {label}: {attr}={cfg[attr]!r} is not supported (only {expected!r} "
                               "can be stepped exactly)")
    if cfg.get("go_backwards"):
        raise InteropError(f"{source}: {label}: go_backwards=True is not supported")
    if kind == "GRU" and not cfg.get("reset_after", False):
        raise InteropError(f"{source}: {label}: reset_after=False is not supported (only the PyTorch/CuDNN form, "
                           "reset_after=True, can be stepped exactly)")


def parity(source: str, found: Recognised, last_sequences: bool, model, rng: np.random.Generator,
           input_layer: str | None = None) -> Parity:
    """Run the Keras model (any installed backend; torch when ``KERAS_BACKEND`` is unset and
    TensorFlow, Keras' default, is absent) from ``input_layer`` (None: the model's input) to the
    imported chain's last layer, and ``model``, on the same random input; one line."""
    if "KERAS_BACKEND" not in os.environ and importlib.util.find_spec("tensorflow") is None \
            and importlib.util.find_spec("torch") is not None:
        os.environ["KERAS_BACKEND"] = "torch"
    try:
        import keras
    except ImportError:
        return Parity("parity: keras (with a backend) is not installed, so the source was not run; checked "
                      "instead: every layer's class, attributes and weight shapes")
    try:
        reference = keras.saving.load_model(source, compile=False)
    except Exception as e:  # Keras raises many types for files it cannot rebuild
        return Parity(f"parity: keras {keras.__version__} could not load the file ({type(e).__name__}); not compared")
    cfg = model.config
    try:
        start = reference.inputs[0] if len(reference.inputs) == 1 else reference.get_layer(input_layer).output
        last = found.names.get("head activation") or found.names.get("head") or found.names["recurrent"][-1]
        end = reference.get_layer(last).output
    except Exception as e:  # Keras raises ValueError or AttributeError for a graph it cannot cut
        return Parity(f"parity: keras {keras.__version__} could not take the imported layers out of the model "
                      f"({type(e).__name__}); not compared")
    B, T = 2, start.shape[1] or 7
    if cfg.input_kind == "dense":
        inputs = rng.standard_normal((B, T, cfg.input_size)).astype(np.float32)  # (B, T, D)
        feed = inputs
    else:
        inputs = rng.integers(0, cfg.input_size, (B, T))  # (B, T)
        feed = {"embedding": inputs,
                "scaled_index": (inputs / cfg.input_size).astype(np.float32)[..., None],  # (B, T, 1)
                "onehot": np.eye(cfg.input_size, dtype=np.float32)[inputs]}[cfg.input_kind]  # (B, T, V)
    try:
        recurrent = [reference.get_layer(name) for name in found.names["recurrent"]]
        probe = keras.Model(start, [end] + [layer.output for layer in recurrent])
        outs = [keras.ops.convert_to_numpy(o) for o in probe(feed, training=False)]
    except Exception as e:  # a model Keras cannot run on this input
        return Parity(f"parity: keras {keras.__version__} could not run the model ({type(e).__name__}); not compared")
    ours = model.forward(inputs)
    expected = ours.outputs if last_sequences else ours.outputs[:, -1]  # (B, T, O) or (B, O)
    logits = cfg.head == "softmax" and found.head_activation != "softmax"
    if logits:  # the source's output layer gives logits: compare probabilities
        outs[0] = logits_to_probabilities(outs[0])  # (B, T, O) or (B, O)
    d_out = float(np.abs(expected - outs[0]).max())
    d_state = max(float(np.abs(ours.state[k][0] - (h[:, -1] if h.ndim == 3 else h)).max())
                  for k, h in enumerate(outs[1:]))
    where = ("" if last_sequences else " (the source predicts at the last step only)") + \
        (" (the source's logits as probabilities)" if logits else "")
    return Parity(f"parity with keras {keras.__version__} ({keras.backend.backend()} backend, float32, {B}x{T} random "
                  f"inputs): max |d outputs| = {d_out:.2e}{where}, max |d final h| = {d_state:.2e}",
                  max(d_out, d_state))
