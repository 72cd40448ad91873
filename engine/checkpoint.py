"""Checkpoints: one ``.npz`` file holding a model, its vocabulary and the training state.

Layout (``FORMAT_VERSION`` 1; ``np.load(path, allow_pickle=False)`` reads it)::

    "meta"                 0-d unicode array: a JSON object (see below)
    "param/<name>"         every model parameter, e.g. "param/l0.Wx" (D, G)
    "opt/<slot>/<param>"   optimizer slots, e.g. "opt/m/l0.Wx" (D, G)
    "train/<path>"         arrays inside train_state, e.g. "train/state/0/1" (B, H)

``meta`` holds ``format_version``, ``model`` (``ModelConfig.to_dict()``), ``vocab`` (list of
characters or null), ``step``, ``optimizer`` (``name``, ``hyper``, ``t`` and, per slot, the
parameter names it covers, or null), ``train_state`` (JSON with ``{"$array": key}`` where an
array was and ``{"$tuple": [...]}`` for tuples, or null), ``train_config`` and ``extra``.
The file is written atomically (``engine.atomic``) and read back bit for bit.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .atomic import atomic_writer
from .data import CharVocab
from .errors import CheckpointError
from .model import TOKEN_INPUTS, ModelConfig, SequenceModel

FORMAT_VERSION = 1
_ARRAY = "$array"
_TUPLE = "$tuple"


@dataclass
class Checkpoint:
    """A loaded checkpoint (see ``save_checkpoint`` for the meaning of each field)."""

    model: SequenceModel
    vocab: CharVocab | None
    step: int
    optimizer_state: dict | None
    train_state: dict | None
    train_config: dict | None
    extra: dict = field(default_factory=dict)
    path: str = ""


# --- saving -----------------------------------------------------------------------------------
def _pack(value, key: str, arrays: dict):
    """JSON-able copy of ``value`` with every ndarray moved into ``arrays`` under ``key/...``."""
    if isinstance(value, np.ndarray):
        arrays[key] = value
        return {_ARRAY: key}
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise ValueError(f"train_state keys must be strings, got {bad!r} in {key}")
        return {k: _pack(v, f"{key}/{k}", arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_pack(v, f"{key}/{i}", arrays) for i, v in enumerate(value)]
        return {_TUPLE: items} if isinstance(value, tuple) else items
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"cannot save {type(value).__name__} at {key}; use JSON values or NumPy arrays")


def _optimizer_meta(optimizer_state: dict, params: dict, arrays: dict) -> dict:
    """Validate ``optimizer_state``, move its slot arrays into ``arrays``, return its JSON part."""
    missing = {"name", "hyper", "t", "slots"} - set(optimizer_state)
    if missing:
        raise ValueError(f"optimizer_state is missing {sorted(missing)}")
    slots = {}
    for slot, per_param in optimizer_state["slots"].items():
        unknown = sorted(set(per_param) - set(params))
        if unknown:
            raise ValueError(f"optimizer slot {slot!r} refers to unknown parameters {unknown}")
        for name, value in per_param.items():
            arrays[f"opt/{slot}/{name}"] = np.asarray(value)
        slots[slot] = list(per_param)
    return {"name": str(optimizer_state["name"]), "hyper": dict(optimizer_state["hyper"]),
            "t": int(optimizer_state["t"]), "slots": slots}


def save_checkpoint(path, model: SequenceModel, *, vocab: CharVocab | None = None, step: int = 0,
                    optimizer_state: dict | None = None, train_state: dict | None = None,
                    train_config: dict | None = None, extra: dict | None = None) -> None:
    """Write ``model`` (config + params) and the optional training state to ``path`` atomically.

    ``optimizer_state``: ``{"name": str, "hyper": {JSON scalars}, "t": int,
    "slots": {slot: {param_name: ndarray}}}``. ``train_state``: a dict of JSON values and
    NumPy arrays (nested dicts, lists and tuples allowed). ``train_config`` and ``extra``: JSON
    dicts. Bad arguments raise ValueError; file-system errors propagate as OSError and leave
    any existing file at ``path`` untouched.
    """
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be a non-negative integer, got {step!r}")
    arrays = {f"param/{name}": value for name, value in model.params.items()}
    meta = {
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
        "vocab": None if vocab is None else vocab.to_list(),
        "step": int(step),
        "optimizer": None if optimizer_state is None else _optimizer_meta(optimizer_state, model.params, arrays),
        "train_state": None if train_state is None else _pack(dict(train_state), "train", arrays),
        "train_config": train_config,
        "extra": extra or {},
    }
    try:
        text = json.dumps(meta, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"checkpoint metadata is not JSON-serialisable: {e}") from None
    arrays["meta"] = np.array(text)  # () unicode
    with atomic_writer(path, "wb") as f:
        np.savez(f, **arrays)


# --- loading ----------------------------------------------------------------------------------
def _read_arrays(name: str) -> dict:
    """Every array in the ``.npz`` at ``name``, read eagerly (so truncation shows up here)."""
    if not os.path.exists(name):
        raise CheckpointError(f"{name}: no such checkpoint file")
    if os.path.isdir(name):
        raise CheckpointError(f"{name} is a folder, not a checkpoint file")
    if not zipfile.is_zipfile(name):  # before np.load, whose message for other files is about pickles
        raise CheckpointError(f"{name} is not an lstmviz checkpoint: not an .npz (zip) archive")
    try:
        with np.load(name, allow_pickle=False) as loaded:
            return {key: loaded[key] for key in loaded.files}
    except CheckpointError:
        raise
    except Exception as e:  # an untrusted file: zipfile/numpy raise many types (BadZipFile,
        # NotImplementedError for odd flag bits, struct.error, EOFError, ...); all mean "corrupt"
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{name} is not a readable lstmviz checkpoint (.npz): {reason}") from None


def _read_meta(name: str, arrays: dict) -> dict:
    if "meta" not in arrays:
        raise CheckpointError(f"{name} has no 'meta' entry: not an lstmviz checkpoint")
    raw = arrays["meta"]
    if raw.shape != () or raw.dtype.kind != "U":
        raise CheckpointError(f"{name}: 'meta' must be a JSON string, got {raw.dtype} {raw.shape}")
    try:
        meta = json.loads(str(raw))
    except ValueError as e:
        raise CheckpointError(f"{name}: 'meta' is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{name}: 'meta' must be a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{name} has checkpoint format version {version!r}; this version of lstmviz reads version {FORMAT_VERSION}"
        )
    return meta


def _unpack(value, arrays: dict):
    """Inverse of ``_pack``."""
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:
            return arrays[value[_ARRAY]]
        if set(value) == {_TUPLE}:
            return tuple(_unpack(v, arrays) for v in value[_TUPLE])
        return {k: _unpack(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v, arrays) for v in value]
    return value


def _load_model(name: str, meta: dict, arrays: dict) -> SequenceModel:
    """The model from ``meta["model"]`` and the ``param/...`` arrays, with every check the
    model makes (names, shapes, finite values) plus an exact dtype match."""
    try:
        config = ModelConfig.from_dict(meta["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{name}: invalid model config ({e})") from None
    params = {key[len("param/"):]: value for key, value in arrays.items() if key.startswith("param/")}
    for pname, value in params.items():
        if value.dtype != np.dtype(config.dtype):
            raise CheckpointError(f"{name}: parameter {pname} is {value.dtype} but the config says {config.dtype}")
    try:
        return SequenceModel(config, params=params)
    except ValueError as e:
        raise CheckpointError(f"{name}: {e}") from None


def _load_vocab(name: str, meta: dict, config: ModelConfig) -> CharVocab | None:
    """The vocabulary, checked against the sizes of a one-hot input and a softmax head."""
    chars = meta.get("vocab")
    if chars is None:
        return None
    try:
        vocab = CharVocab(chars)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{name}: invalid vocabulary ({e})") from None
    sizes = []
    if config.input_kind in TOKEN_INPUTS:
        sizes.append(("input_size", config.input_size))
    if config.head == "softmax":
        sizes.append(("output_size", config.output_size))
    for label, size in sizes:
        if size != len(vocab):
            raise CheckpointError(f"{name}: vocabulary has {len(vocab)} characters but the model's {label} is {size}")
    return vocab


def _load_optimizer(name: str, meta: dict, arrays: dict, model: SequenceModel) -> dict | None:
    """The optimizer state with its slot arrays, each checked against its parameter's shape."""
    opt = meta.get("optimizer")
    if opt is None:
        return None
    try:
        listing = {slot: [str(p) for p in pnames] for slot, pnames in opt["slots"].items()}
        state = {"name": str(opt["name"]), "hyper": dict(opt["hyper"]), "t": int(opt["t"])}
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise CheckpointError(f"{name}: malformed optimizer state ({type(e).__name__}: {e})") from None
    slots = {}
    for slot, pnames in listing.items():
        slots[slot] = {}
        for pname in pnames:
            key = f"opt/{slot}/{pname}"
            if key not in arrays:
                raise CheckpointError(f"{name}: optimizer array {key} is missing")
            if pname not in model.params or arrays[key].shape != model.params[pname].shape:
                raise CheckpointError(f"{name}: optimizer array {key} does not match the model's parameters")
            slots[slot][pname] = arrays[key]
    state["slots"] = slots
    return state


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``; every array comes back bit for bit.

    Any problem (missing, not a zip, truncated, no or bad meta, other format version, invalid
    config, parameter shape/dtype mismatch, NaN parameters, vocabulary size mismatch, broken
    optimizer or train state) raises ``CheckpointError`` with one line naming the file.
    """
    name = os.fspath(path)
    arrays = _read_arrays(name)
    meta = _read_meta(name, arrays)
    model = _load_model(name, meta, arrays)
    vocab = _load_vocab(name, meta, model.config)
    step = meta.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"{name}: step must be a non-negative integer, got {step!r}")
    optimizer_state = _load_optimizer(name, meta, arrays, model)
    try:
        train_state = None if meta.get("train_state") is None else _unpack(meta["train_state"], arrays)
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{name}: train state refers to a missing array {e}") from None
    extra = meta.get("extra") or {}
    train_config = meta.get("train_config")
    if not isinstance(extra, dict) or not (train_config is None or isinstance(train_config, dict)):
        raise CheckpointError(f"{name}: 'extra' and 'train_config' must be JSON objects")
    return Checkpoint(model=model, vocab=vocab, step=step, optimizer_state=optimizer_state,
                      train_state=train_state, train_config=train_config, extra=extra, path=name)


def load_char_checkpoint(path) -> Checkpoint:
    """``load_checkpoint``, refusing with ``CheckpointError`` anything but a character model:
    a vocabulary, token inputs (one-hot, embedding or scaled index) and a softmax head (what
    the viewer, ``sample``, ``trace`` and ``export`` run text through)."""
    ckpt = load_checkpoint(path)
    config = ckpt.model.config
    if ckpt.vocab is None or config.input_kind not in TOKEN_INPUTS or config.head != "softmax":
        raise CheckpointError(f"{path}: not a character model (text needs a model with a character "
                              "vocabulary, token inputs and a softmax head)")
    return ckpt
