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
from dataclasses import dataclass, field

import numpy as np

from .atomic import atomic_writer
from .data import CharVocab
from .errors import CheckpointError, NotEnoughMemory
from .memory import check_fits, param_shapes
from .model import TOKEN_INPUTS, ModelConfig, SequenceModel
from .safe_read import open_npz, read_entries

FORMAT_VERSION = 1
MAX_CHECKPOINT_BYTES = 64 * 1024 ** 3  # refuse checkpoint files larger than this on disk
MAX_META_BYTES = 64 * 1024 ** 2  # uncompressed size of the 'meta' entry (a JSON string, 4 bytes a character)
MAX_ARRAY_BYTES = 64 * 1024 ** 3  # uncompressed size of all the arrays read (also bounded by free memory)
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
def _read_meta(name: str, z, entries: dict) -> dict:
    """The ``meta`` JSON object, read alone first (bounded by MAX_META_BYTES)."""
    if "meta" not in entries:
        raise CheckpointError(f"{name} has no 'meta' entry: not an lstmviz checkpoint")
    raw = read_entries(z, entries, ["meta"], name, MAX_META_BYTES, CheckpointError)["meta"]
    if raw.shape != () or raw.dtype.kind != "U":
        raise CheckpointError(f"{name}: 'meta' must be a JSON string, got {raw.dtype} {raw.shape}")
    try:
        meta = json.loads(str(raw))
    except ValueError as e:
        raise CheckpointError(f"{name}: 'meta' is not valid JSON ({e})") from None
    except RecursionError:
        raise CheckpointError(f"{name}: 'meta' is nested too deeply to be lstmviz metadata") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{name}: 'meta' must be a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{name} has checkpoint format version {version!r}; this version of lstmviz reads version {FORMAT_VERSION}"
        )
    for key, kinds, label in _META_TYPES:
        if key in meta and not isinstance(meta[key], kinds):
            raise CheckpointError(f"{name}: 'meta' entry {key!r} must be {label}, got {type(meta[key]).__name__}")
    return meta


_META_TYPES = (  # (key, accepted JSON types, in words); None is accepted where the value is optional
    ("model", dict, "a JSON object"),
    ("vocab", (list, type(None)), "a list of characters or null"),
    ("optimizer", (dict, type(None)), "a JSON object or null"),
    ("train_state", (dict, type(None)), "a JSON object or null"),
    ("train_config", (dict, type(None)), "a JSON object or null"),
    ("extra", (dict, type(None)), "a JSON object or null"),
)


def _model_config(name: str, meta: dict) -> ModelConfig:
    try:
        return ModelConfig.from_dict(meta["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{name}: invalid model config ({e})") from None


def _optimizer_listing(name: str, meta: dict) -> dict | None:
    """``{slot: [parameter names]}`` of the optimizer state, its structure checked."""
    opt = meta.get("optimizer")
    if opt is None:
        return None
    slots = opt.get("slots")
    ok = (isinstance(slots, dict) and isinstance(opt.get("hyper"), dict) and isinstance(opt.get("name"), str)
          and isinstance(opt.get("t"), int) and not isinstance(opt.get("t"), bool)
          and all(isinstance(p, list) and all(isinstance(n, str) for n in p) for p in slots.values()))
    if not ok:
        raise CheckpointError(f"{name}: malformed optimizer state (it needs a name, hyper, t and a slots "
                              "object listing parameter names)")
    return slots


def _array_refs(value, refs: list) -> None:
    """Collect the ``{"$array": key}`` references inside a packed train state."""
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:
            refs.append(value[_ARRAY])
        else:
            for v in value.values():
                _array_refs(v, refs)
    elif isinstance(value, list):
        for v in value:
            _array_refs(v, refs)


def _needed(name: str, meta: dict, config: ModelConfig, entries: dict) -> dict:
    """``{entry: expected shape or None}`` of every array the checkpoint uses; unexpected or
    missing parameters are refused here, before any array is read."""
    shapes = {f"param/{p}": shape for p, shape in param_shapes(config).items()}
    present = {k[len("param/"):] for k in entries if k.startswith("param/")}
    expected = {k[len("param/"):] for k in shapes}
    if present != expected:
        raise CheckpointError(f"{name}: parameters do not match the config: missing {sorted(expected - present)}, "
                              f"unexpected {sorted(present - expected)}")
    for slot, pnames in (_optimizer_listing(name, meta) or {}).items():
        for pname in pnames:
            key = f"opt/{slot}/{pname}"
            if key not in entries:
                raise CheckpointError(f"{name}: optimizer array {key} is missing")
            if pname not in expected:
                raise CheckpointError(f"{name}: optimizer array {key} does not match the model's parameters")
            shapes[key] = shapes[f"param/{pname}"]
    refs = []
    try:
        _array_refs(meta.get("train_state"), refs)
    except RecursionError:
        raise CheckpointError(f"{name}: the train state is nested too deeply") from None
    for ref in refs:
        if not isinstance(ref, str) or not ref.startswith("train/") or ref not in entries:
            raise CheckpointError(f"{name}: train state refers to a missing array {ref!r}")
        shapes.setdefault(ref, None)
    return shapes


def _read_archive(name: str) -> tuple[dict, ModelConfig, dict]:
    """``(meta, model config, arrays)``: the meta, then only the arrays it calls for, each
    checked against its expected shape and the total against the memory available before
    anything is read."""
    with open_npz(name, MAX_CHECKPOINT_BYTES, "checkpoint file", CheckpointError) as (z, entries):
        meta = _read_meta(name, z, entries)
        config = _model_config(name, meta)
        shapes = _needed(name, meta, config, entries)
        total = sum(entries[key].file_size for key in shapes)
        try:
            check_fits(f"loading {name}", total)
        except NotEnoughMemory as e:
            raise CheckpointError(str(e)) from None
        arrays = read_entries(z, entries, shapes, name, MAX_ARRAY_BYTES, CheckpointError, shapes)
    return meta, config, arrays


def _unpack(value, arrays: dict):
    """Inverse of ``_pack``."""
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:
            return arrays[value[_ARRAY]]
        if set(value) == {_TUPLE}:
            if not isinstance(value[_TUPLE], list):
                raise TypeError(f"{_TUPLE} must hold a list")
            return tuple(_unpack(v, arrays) for v in value[_TUPLE])
        return {k: _unpack(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v, arrays) for v in value]
    return value


def _load_model(name: str, config: ModelConfig, arrays: dict) -> SequenceModel:
    """The model from ``config`` and the ``param/...`` arrays, with every check the model makes
    (names, shapes, finite values) plus an exact dtype match."""
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
    """The optimizer state with its slot arrays (names and shapes checked by ``_needed``)."""
    listing = _optimizer_listing(name, meta)
    if listing is None:
        return None
    opt = meta["optimizer"]
    slots = {slot: {pname: arrays[f"opt/{slot}/{pname}"] for pname in pnames} for slot, pnames in listing.items()}
    return {"name": opt["name"], "hyper": dict(opt["hyper"]), "t": opt["t"], "slots": slots}


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``; every array comes back bit for bit.

    The file is opened as an untrusted archive (``engine.safe_read``): it must be a regular
    file (a FIFO or device is refused without blocking); the ``meta`` entry is read first and
    its JSON structure checked; then only the arrays it calls for are read, each a ``.npy``
    member whose header gives a plain dtype and the expected shape, their total checked against
    the memory available before anything is decompressed. Any problem (missing, permission
    denied, special file, not a zip, plain zip members, truncated, no or bad meta, wrong JSON
    types, other format version, invalid config, parameter shape/dtype mismatch, NaN
    parameters, vocabulary size mismatch, broken optimizer or train state, too big for memory)
    raises ``CheckpointError`` with one line naming the file.
    """
    name = os.fspath(path)
    meta, config, arrays = _read_archive(name)
    model = _load_model(name, config, arrays)
    vocab = _load_vocab(name, meta, config)
    step = meta.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"{name}: step must be a non-negative integer, got {step!r}")
    optimizer_state = _load_optimizer(name, meta, arrays, model)
    try:
        train_state = None if meta.get("train_state") is None else _unpack(meta["train_state"], arrays)
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{name}: malformed train state ({e})") from None
    except RecursionError:
        raise CheckpointError(f"{name}: the train state is nested too deeply") from None
    extra = meta.get("extra") or {}
    return Checkpoint(model=model, vocab=vocab, step=step, optimizer_state=optimizer_state,
                      train_state=train_state, train_config=meta.get("train_config"), extra=extra, path=name)


def load_char_checkpoint(path) -> Checkpoint:
    """``load_checkpoint``, refusing with ``CheckpointError`` anything but a character model:
    a vocabulary, token inputs (one-hot, embedding or scaled index) and a softmax head or none
    (a recurrent stack alone, e.g. imported: its gates can be viewed and traced; sampling
    refuses it in ``engine.sample``). This is what the viewer, ``sample``, ``trace`` and
    ``export`` run text through."""
    ckpt = load_checkpoint(path)
    config = ckpt.model.config
    if ckpt.vocab is None or config.input_kind not in TOKEN_INPUTS or config.head not in ("softmax", "none"):
        raise CheckpointError(f"{path}: not a character model (text needs a model with a character "
                              "vocabulary, token inputs and a softmax head or none)")
    return ckpt
