"""The id -> character mapping of an imported character model, and the permutation that gives
it the sorted order our ``CharVocab`` uses.

Accepted sources: ``--vocab-chars STRING`` (characters in id order) or a ``--vocab FILE`` holding
a JSON list of characters in id order, a JSON object char -> id (as char-rnn-style scripts save
``stoi``), or else plain UTF-8 text whose characters, taken exactly (a final newline counts),
are the vocabulary in id order.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..data import CharVocab
from .layout import InteropError, Recognised

MAX_VOCAB_BYTES = 1 << 20


def chars_from_file(path) -> list:
    """Characters in id order from a vocabulary file (module docstring); ``InteropError`` if
    unreadable, malformed or holding anything but unique single characters."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            raw = f.read(MAX_VOCAB_BYTES + 1)
    except OSError as e:
        raise InteropError(f"{name}: cannot read the vocabulary ({e.strerror})") from None
    if len(raw) > MAX_VOCAB_BYTES:
        raise InteropError(f"{name}: a vocabulary file must be under {MAX_VOCAB_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InteropError(f"{name}: the vocabulary file is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except ValueError:
        return check_chars(list(text), name)
    if isinstance(data, list):
        return check_chars(data, name)
    if isinstance(data, dict):
        ids = sorted(data.values(), key=lambda v: (not isinstance(v, int), v if isinstance(v, int) else 0))
        if any(isinstance(v, bool) or not isinstance(v, int) for v in ids) or ids != list(range(len(ids))):
            raise InteropError(f"{name}: a JSON vocabulary object must map each character to a distinct id "
                               f"0..{len(data) - 1}")
        return check_chars(sorted(data, key=data.get), name)
    if isinstance(data, str):
        return check_chars(list(data), name)
    raise InteropError(f"{name}: the vocabulary must be a JSON list, a JSON object char -> id or plain text")


def check_chars(chars: list, source: str) -> list:
    """``chars`` if every entry is one character and none repeats, else ``InteropError``."""
    bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
    if bad:
        raise InteropError(f"{source}: vocabulary entries must be single characters, got {bad[:5]!r}")
    if not chars:
        raise InteropError(f"{source}: the vocabulary is empty")
    if len(set(chars)) != len(chars):
        repeated = sorted({c for c in chars if chars.count(c) > 1})
        raise InteropError(f"{source}: vocabulary characters must be unique; repeated: {repeated[:5]!r}")
    return list(chars)


def sort_ids(found: Recognised, chars: list, source: str) -> CharVocab:
    """Renumber ``found``'s token ids so that ``chars`` (in the source's id order) becomes the
    sorted ``CharVocab``: rows of the embedding or of a one-hot first layer's ``Wx``, and the
    softmax head's columns, are permuted (exact). A scaled-index input (``id / V``) cannot be
    renumbered: its vocabulary must already be sorted, else ``InteropError``."""
    perm = np.argsort(np.array([ord(c) for c in chars]), kind="stable")  # (V,) new id j = old id perm[j]
    if np.array_equal(perm, np.arange(len(chars))):
        return CharVocab(chars)
    if found.scaled_index:
        raise InteropError(f"{source}: the input is a scaled index (id / V), so ids cannot be renumbered, "
                           "and this vocabulary is not in sorted order")
    V = len(chars)
    if found.embed is not None and found.embed.shape[0] == V:
        found.embed = found.embed[perm]  # (V, E)
    elif found.layers[0]["Wx"].shape[0] == V:
        found.layers[0]["Wx"] = found.layers[0]["Wx"][perm]  # (V, G) one-hot rows
    if found.head is not None and found.head[0].shape[1] == V:
        found.head = (found.head[0][:, perm], found.head[1][perm])  # (H, V), (V,)
    return CharVocab([chars[j] for j in perm])
