"""PyTorch ``state_dict`` import: ``torch.save`` files (``.pt``, ``.pth``, ``.bin``) and
``.safetensors``.

Reading: a ``.safetensors`` file is read by the ``safetensors`` package into NumPy (no torch
needed, no code runs). A ``torch.save`` file is a pickle: it is read only with
``torch.load(path, weights_only=True)`` (torch's restricted unpickler, which builds tensors and
plain containers and refuses anything else), and refused when torch is not installed; it is
never handed to Python's ``pickle``. It holds a state_dict, or a training checkpoint with the
state_dict under a key (``{"model": ..., "optimizer": ..., "epoch": ...}``). TorchScript
archives (``torch.jit.save``: code) are refused.

Recognition, by PyTorch's standard parameter names under any module prefix ``P``:
``P.weight_ih_l{k}``, ``P.weight_hh_l{k}``, ``P.bias_ih_l{k}``, ``P.bias_hh_l{k}`` (``nn.LSTM``
when the gate width is 4H, ``nn.GRU`` when 3H); an ``nn.Embedding`` ``E.weight (V, D)`` (no
bias) whose width D is the first layer's input size; an ``nn.Linear`` ``L.weight (O, H)`` (+
``L.bias``) reading the last layer's H. When several modules fit one role, or tensors are left
that none of these explain, the import stops and lists them; ``prefixes`` (``--layer-prefix``)
names the modules to use (several recurrent modules are stacked in the order given).
Refused: ``_reverse`` (bidirectional), ``weight_hr`` (``proj_size``), ``nn.RNN`` (its
nonlinearity is not stored).
"""

from __future__ import annotations

import os
import re
import zipfile

import numpy as np

from .layout import AmbiguousModules, InteropError, Loaded, Parity, Recognised, from_torch

RNN_KEY = re.compile(r"^(?P<prefix>(?:.*\.)?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(?P<layer>\d+)"
                     r"(?P<reverse>_reverse)?$")


def load(source: str, prefixes=()) -> Loaded:
    """Read and recognise ``source``; the parity check runs torch's own modules when installed.
    A checkpoint holding its state_dict under a key (``_checkpoint_entry``) reads that entry; a
    prefix naming the entry chooses it among several."""
    tensors, entry, prefixes = read_state_dict(source, prefixes)
    loaded = load_tensors(tensors, source, prefixes)
    if entry is not None:
        loaded.found.names = {"checkpoint entry": entry, **loaded.found.names}
    return loaded


def load_tensors(tensors: dict, source: str, prefixes=()) -> Loaded:
    """Recognise a state_dict already in memory (``{name: ndarray}``); ``source`` names it in
    messages."""
    found = recognise(tensors, source, prefixes)

    def check(model, rng) -> Parity:
        if not torch_available():
            return Parity("parity: torch is not installed, so the source was not run; checked instead: every "
                          "tensor's name and shape against nn.LSTM/nn.GRU, nn.Embedding and nn.Linear")
        return parity(tensors, found, model, rng)

    return Loaded(found, check)


def torch_available() -> bool:
    """True when ``import torch`` works."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def read_state_dict(path, prefixes=()) -> tuple[dict, str | None, list]:
    """``({name: ndarray}, checkpoint entry or None, the prefixes left)`` from a ``.safetensors``
    file or a ``torch.save`` file holding a state_dict or a checkpoint dict with one
    (``_checkpoint_entry``); ``InteropError`` for anything else, never unpickling without torch."""
    name = os.fspath(path)
    if name.endswith(".safetensors"):
        return _read_safetensors(name), None, list(prefixes)
    if not torch_available():
        raise InteropError(f"{name}: reading a torch.save file needs PyTorch (it is a pickle, never unpickled "
                           "without torch's weights_only loader); install torch, or save the state_dict with "
                           "safetensors.torch.save_file and import the .safetensors file")
    return _checkpoint_entry(_read_torch_file(name), name, list(prefixes))


def _read_safetensors(name: str) -> dict:
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise InteropError(f"{name}: reading .safetensors needs the 'safetensors' package "
                           "(pip install 'lstmviz[import]')") from None
    try:
        arrays = load_file(name)
    except Exception as e:  # the package raises SafetensorError, OSError, ValueError... for bad files
        if "bfloat16" not in str(e):
            raise InteropError(f"{name}: not a readable .safetensors file ({_first_line(e)})") from None
    else:  # NumPy reads bfloat16 once ml_dtypes (a dependency of onnx and keras) is imported: widened here
        return {k: a if a.dtype.kind in "fiub" else a.astype(np.float32) for k, a in arrays.items()}
    if not torch_available():  # NumPy has no bfloat16; torch reads it and widens it exactly
        raise InteropError(f"{name}: holds bfloat16 tensors, which NumPy cannot read; install torch to import it "
                           "(each value is widened to float32 exactly)")
    from safetensors.torch import load_file as load_torch

    return _arrays(load_torch(name))


def _arrays(tensors: dict) -> dict:
    """``{name: ndarray}`` of torch tensors; bfloat16 (and other floats NumPy lacks) widened to
    float32, which holds every such value exactly."""
    import torch

    numpy_floats = (torch.float16, torch.float32, torch.float64)
    return {k: (v.detach().cpu().float() if v.is_floating_point() and v.dtype not in numpy_floats
                else v.detach().cpu()).numpy() for k, v in tensors.items()}


def _read_torch_file(name: str) -> dict:
    """The dict a ``torch.save`` file holds, read by ``torch.load(weights_only=True)``."""
    import pickle

    import torch

    if not zipfile.is_zipfile(name):
        raise InteropError(f"{name}: not a torch.save file (a zip archive holding a pickle)")
    with zipfile.ZipFile(name) as archive:
        if any(entry.endswith("constants.pkl") or "/code/" in entry for entry in archive.namelist()):
            raise InteropError(f"{name}: a TorchScript archive (torch.jit.save), which holds code; lstmviz reads "
                               "weights only: save model.state_dict() with torch.save, or export the model with "
                               "torch.onnx.export and import the .onnx file")
    try:
        data = torch.load(name, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        held = re.search(r"GLOBAL ([\w.]+)", str(e))
        raise InteropError(f"{name}: refused: the pickle holds more than tensors and plain containers"
                           + (f" (a {held[1]})" if held else "") + ", and lstmviz never runs a pickle's code; "
                           "save model.state_dict() with torch.save, not the module") from None
    except Exception as e:  # truncated or corrupt archives raise RuntimeError, EOFError, ...
        raise InteropError(f"{name}: not a readable torch.save file ({_first_line(e)})") from None
    if not isinstance(data, dict) or not data:
        got = "an empty dict" if isinstance(data, dict) else type(data).__name__
        raise InteropError(f"{name}: expected a state_dict (a dict of tensors), got {got}")
    return data


def _is_state_dict(value) -> bool:
    """True for a non-empty dict of names -> tensors."""
    import torch

    return isinstance(value, dict) and bool(value) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())


def _checkpoint_entry(data: dict, name: str, prefixes: list) -> tuple[dict, str | None, list]:
    """The state_dict in what ``torch.load`` returned: ``data`` itself, or the one entry of a
    checkpoint dict (``{"model": state_dict, "optimizer": ..., "epoch": ...}``, a Lightning
    ``{"state_dict": ...}``) that holds nn.LSTM/nn.GRU weights; a prefix equal to an entry's
    key chooses among several (``AmbiguousModules`` lists them otherwise). Returns ``({name:
    ndarray}, the entry and what else the checkpoint holds or None, the prefixes left)``."""
    if _is_state_dict(data):
        return _arrays(data), None, prefixes
    entries = [k for k, v in data.items() if isinstance(k, str) and _is_state_dict(v)
               and any(RNN_KEY.match(key) for key in v)]
    chosen = [k for k in entries if k in prefixes] or entries
    if not entries:
        held = ", ".join(f"{k!r}: {type(v).__name__}" for k, v in list(data.items())[:6])
        raise InteropError(f"{name}: expected a state_dict (names -> tensors) or a checkpoint with one holding "
                           f"nn.LSTM/nn.GRU weights; it holds {held}{', ...' if len(data) > 6 else ''}")
    if len(chosen) > 1:
        raise AmbiguousModules(f"{name}: several state_dicts with recurrent weights in this checkpoint: "
                               f"{_listing(chosen)}; choose with --layer-prefix KEY", "checkpoint entry", chosen)
    key = chosen[0]
    others = [repr(k) for k in data if k != key]
    entry = repr(key) + (f" (also in the checkpoint, not read: {', '.join(others)})" if others else "")
    tensors = _arrays(data[key])
    return tensors, entry, [p for p in prefixes if p != key]


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def recurrent_modules(tensors: dict, source: str) -> dict:
    """``{prefix: (cell, L)}`` of every ``nn.LSTM``/``nn.GRU`` in ``tensors``; refuses the
    variants that cannot be stepped exactly."""
    layers = {}
    for key, value in tensors.items():
        m = RNN_KEY.match(key)
        if not m:
            continue
        prefix = m["prefix"]
        if m["reverse"]:
            raise InteropError(f"{source}: {prefix or '(top level)'}: bidirectional recurrent layers are not "
                               f"supported ({key}); only forward layers can be stepped")
        if m["kind"] == "weight_hr":
            raise InteropError(f"{source}: {prefix or '(top level)'}: LSTM proj_size is not supported ({key})")
        layers.setdefault(prefix, set()).add(int(m["layer"]))
    modules = {}
    for prefix, ks in layers.items():
        L = max(ks) + 1
        missing = [f"{prefix}weight_{s}_l{k}" for k in range(L) for s in ("ih", "hh")
                   if f"{prefix}weight_{s}_l{k}" not in tensors]
        if missing:
            raise InteropError(f"{source}: recurrent module {prefix!r} is missing {missing[0]}")
        w_hh = tensors[f"{prefix}weight_hh_l0"]
        if w_hh.ndim != 2 or w_hh.shape[0] % w_hh.shape[1]:
            raise InteropError(f"{source}: {prefix}weight_hh_l0 has shape {w_hh.shape}, not (G, H)")
        ratio = w_hh.shape[0] // w_hh.shape[1]
        cell = {4: "lstm", 3: "gru"}.get(ratio)
        if cell is None:
            raise InteropError(f"{source}: {prefix}weight_hh_l0 {w_hh.shape}: an nn.RNN (its nonlinearity, tanh or "
                               "relu, is not stored in a state_dict) or an unknown cell; only nn.LSTM and nn.GRU import")
        modules[prefix] = (cell, L)
    return modules


def _module(key: str) -> str:
    return key.rsplit(".", 1)[0] if "." in key else ""


def recognise(tensors: dict, source: str, prefixes=()) -> Recognised:
    """Map a state_dict onto ``Recognised`` (module docstring); ``InteropError`` lists the
    candidates when a role is ambiguous and the unexplained tensors when any are left."""
    prefixes = [p.rstrip(".") for p in prefixes]
    modules = recurrent_modules(tensors, source)
    if not modules:
        raise InteropError(f"{source}: no nn.LSTM or nn.GRU parameters (weight_ih_l0, weight_hh_l0) found")
    chosen = [p + "." if p else "" for p in prefixes if (p + "." if p else "") in modules]
    if not chosen:
        if len(modules) > 1:
            names = [m.rstrip(".") for m in modules]
            raise AmbiguousModules(f"{source}: several recurrent modules: {_listing(names)}; choose with "
                                   "--layer-prefix NAME (several are stacked in the order given)", "recurrent", names,
                                   several=True)
        chosen = list(modules)
    cells = {modules[p][0] for p in chosen}
    if len(cells) > 1:
        raise InteropError(f"{source}: the chosen modules mix LSTM and GRU layers: {_listing(chosen)}")
    cell = cells.pop()
    used, layers = set(), []
    for prefix in chosen:
        for k in range(modules[prefix][1]):
            names = {s: f"{prefix}{s}_l{k}" for s in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            used.update(n for n in names.values() if n in tensors)
            layers.append(from_torch(cell, *(tensors.get(names[s]) for s in ("weight_ih", "weight_hh", "bias_ih",
                                                                              "bias_hh"))))
    D0, H = layers[0]["Wx"].shape[0], layers[-1]["Wh"].shape[0]
    found = Recognised(cell=cell, layers=layers, names={"recurrent": [p.rstrip(".") or "(top level)" for p in chosen]})
    weights = {_module(k): v for k, v in tensors.items() if k.endswith("weight") and k not in used and v.ndim == 2}
    embeds = [m for m, w in weights.items() if w.shape[1] == D0 and f"{m}.bias" not in tensors]
    heads = [m for m, w in weights.items() if w.shape[1] == H and m not in embeds]
    embed = _pick(embeds, prefixes, "embedding (nn.Embedding)", source)
    head = _pick(heads, prefixes, "output layer (nn.Linear)", source)
    if embed is not None:
        found.embed = tensors[f"{embed}.weight"].copy()  # (V, E)
        used.add(f"{embed}.weight")
        found.names["embedding"] = embed
    if head is not None:
        W = tensors[f"{head}.weight"]  # (O, H)
        b = tensors.get(f"{head}.bias", np.zeros(W.shape[0], W.dtype))  # (O,)
        found.head = (W.T.copy(), b.copy())
        used.update(k for k in (f"{head}.weight", f"{head}.bias") if k in tensors)
        found.names["head"] = head
    left = sorted(k for k in tensors if k not in used)
    if left and not prefixes:
        raise InteropError(f"{source}: tensors that are not an nn.Embedding, nn.LSTM/nn.GRU or nn.Linear: "
                           f"{_listing(left)}; if they are unused, choose the modules with --layer-prefix")
    found.names["ignored"] = left
    return found


def _pick(candidates: list, prefixes: list, role: str, source: str):
    """The one candidate module for ``role`` (the one named in ``prefixes`` if several), or None."""
    named = [c for c in candidates if c in prefixes]
    if named:
        return named[0]
    if len(candidates) > 1:
        raise AmbiguousModules(f"{source}: several modules could be the {role}: {_listing(candidates)}; "
                               "choose with --layer-prefix NAME", role, candidates)
    return candidates[0] if candidates else None


def _listing(names) -> str:
    return ", ".join(repr(n) for n in names)


def parity(tensors: dict, found: Recognised, model, rng: np.random.Generator) -> Parity:
    """Run the source tensors in torch's own modules (``nn.Embedding``, ``nn.LSTM``/``nn.GRU``,
    ``nn.Linear``, float32) and ``model`` on the same random input; one line with the largest
    absolute differences of the outputs and final states. Needs torch."""
    import torch

    from .export import torch_modules

    reference = torch_modules(model)
    state = {name: torch.from_numpy(np.ascontiguousarray(value, np.float32))
             for name, value in _state_dict_of(found, tensors).items()}
    reference.load_state_dict(state, strict=True)
    return compare_torch(reference, model, rng)


def _state_dict_of(found: Recognised, tensors: dict) -> dict:
    """The source tensors renamed to ``export.torch_modules``'s names (embed, rnn, head)."""
    out = {}
    if found.embed is not None:
        out["embed.weight"] = tensors[f"{found.names['embedding']}.weight"]
    k = 0
    for prefix in found.names["recurrent"]:
        prefix = "" if prefix == "(top level)" else prefix + "."
        for j in range(recurrent_layer_count(tensors, prefix)):
            for s in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                value = tensors.get(f"{prefix}{s}_l{j}")
                if value is None:
                    value = np.zeros(tensors[f"{prefix}weight_hh_l{j}"].shape[0], np.float32)
                out[f"rnn.{s}_l{k}"] = value
            k += 1
    if found.head is not None:
        W = tensors[f"{found.names['head']}.weight"]
        out["head.weight"] = W
        out["head.bias"] = tensors.get(f"{found.names['head']}.bias", np.zeros(W.shape[0], np.float32))
    return out


def recurrent_layer_count(tensors: dict, prefix: str) -> int:
    k = 0
    while f"{prefix}weight_ih_l{k}" in tensors:
        k += 1
    return k


def compare_torch(reference, model, rng: np.random.Generator, B: int = 2, T: int = 7) -> Parity:
    """Largest absolute differences between ``reference`` (``export.TorchModel``) and ``model``
    on random inputs: one line for the parity report."""
    import torch

    cfg = model.config
    if cfg.input_kind == "dense":
        inputs = rng.standard_normal((B, T, cfg.input_size)).astype(np.float32)  # (B, T, D)
    else:
        inputs = rng.integers(0, cfg.input_size, (B, T))  # (B, T)
    ours = model.forward(inputs)
    with torch.no_grad():
        out, finals = reference(torch.from_numpy(inputs))
    d_out = float(np.abs(ours.outputs - out.numpy()).max())
    d_state = max(float(np.abs(np.stack([s[j] for s in ours.state]) - f.numpy()).max())
                  for j, f in enumerate(finals))
    return Parity(f"parity with torch {torch.__version__} (float32, {B}x{T} random inputs): max |d outputs| = "
                  f"{d_out:.2e}, max |d final state| = {d_state:.2e}", max(d_out, d_state))
