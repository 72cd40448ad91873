"""The sequence being viewed: a text or a numeric series, two types with one interface.

``Session`` holds one of them (``session.sequence``) and panels ask it what to show instead of
telling the two apart:

==================  ===============================  ======================================
                    ``TextSequence``                 ``SeriesSequence``
==================  ===============================  ======================================
``label(t)``        the character ``text[t]``        the label given for step t ("12.35")
``shown(t)``        ``display_char`` of it (``␣``)   the label
``caption(t)``      ``char 'a'``                     ``next 12.35``
``document()``      the text                         the labels joined by SERIES_SEPARATOR
``span(t)``         ``(t, t + 1)``                   the label's place in ``document()``
``targets``         None (the next character)        ``(T, K)`` actual next values, scaled
``original(x)``     ``x``                            ``inverse(x)``: original units
``editable``        True                             False
``parked_text``     the text                         the text put aside while it is viewed
==================  ===============================  ======================================

``parked_text`` is what a character model steps when it comes back. ``predicts_characters``
says whether the model's outputs are next-character probabilities (True) or next values.
``traced_live``: whether the training thread traces this sequence for the live heatmaps (the
trainers of the app train text models; a series is traced by the viewer itself).

Also here: ``split_known`` / ``known_text`` (a text without the characters a vocabulary does
not know, and which they were) and ``dropped_message`` (a status line naming them).
"""

from __future__ import annotations

import bisect
import re
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from engine.data import CharVocab, display_char

SERIES_SEPARATOR = "  "  # between two steps' labels of a series in ``document()``
SHOWN_UNKNOWN = 10  # unknown characters named in ``dropped_message``


class KnownText(NamedTuple):
    """A text read through a vocabulary (``split_known``): ``kept``, the text without the
    characters the vocabulary lacks (order kept); ``unknown``, those characters (sorted, unique,
    as ``CharVocab.unknown`` gives them); ``dropped``, how many characters were left out."""

    kept: str
    unknown: tuple
    dropped: int


def split_known(text: str, vocab: CharVocab) -> KnownText:
    """``text`` without the characters ``vocab`` does not know, and what was left out, in one
    scan of ``text`` (``CharVocab.unknown``) and, when some are unknown, one ``str.translate``."""
    unknown = tuple(vocab.unknown(text))
    kept = text.translate(dict.fromkeys(map(ord, unknown))) if unknown else text
    return KnownText(kept, unknown, len(text) - len(kept))


def known_text(text: str, vocab: CharVocab) -> str:
    """``text`` without the characters ``vocab`` does not know (order kept)."""
    return split_known(text, vocab).kept


def dropped_message(unknown) -> str:
    """Status-bar line naming (at most SHOWN_UNKNOWN of) the characters ``unknown`` (sorted,
    as ``KnownText.unknown``) left out of a text."""
    shown = ", ".join(repr(c) for c in unknown[:SHOWN_UNKNOWN])
    return f"Not in the model's vocabulary, left out: {shown}"


WIDE_CHAR = re.compile("[\U00010000-\U0010FFFF]")  # outside the Basic Multilingual Plane: 2 UTF-16 units


def wide_chars(text: str, alphabet=None) -> np.ndarray:
    """``(K,) int64``: the indices of the characters of ``text`` outside the Basic Multilingual
    Plane (emoji, many math and CJK Extension B letters), which a Qt document counts as two
    positions (a UTF-16 surrogate pair). ``alphabet``: the characters ``text`` can hold (a
    vocabulary's); when none of them is wide, ``text`` is not scanned (a scan takes about 6 ms
    per million characters)."""
    if alphabet is not None and not any(ord(c) > 0xFFFF for c in alphabet):
        return np.empty(0, np.int64)
    return np.fromiter((m.start() for m in WIDE_CHAR.finditer(text)), np.int64)  # (K,)


class TextSequence:
    """Characters of a text, stepped through a character model (one-hot input, softmax head).
    Steps are the text's characters (code points); document positions are the Qt document's
    (UTF-16 units): a character outside the Basic Multilingual Plane (``wide_chars``) spans two."""

    kind = "text"
    editable = True
    predicts_characters = True
    traced_live = True
    targets = None
    has_original_units = True  # nothing is scaled

    def __init__(self, text: str = "", alphabet=None):
        """``alphabet``: the characters ``text`` can hold (see ``wide_chars``); None: any."""
        self.text = text
        self.wide = wide_chars(text, alphabet)  # (K,) steps that span two document positions
        self._wide_ends = self.wide + np.arange(1, len(self.wide) + 1)  # (K,) position of each one's second unit

    @property
    def parked_text(self) -> str:
        return self.text

    @property
    def steps(self) -> int:
        return len(self.text)

    def label(self, t: int) -> str:
        """The character at step ``t``; IndexError outside ``[0, steps)``."""
        return self.text[_index(t, self.steps)]

    def shown(self, t: int) -> str:
        """``label(t)`` as the app shows a character (``engine.data.display_char``)."""
        return display_char(self.label(t))

    def caption(self, t: int) -> str:
        return f"char {self.label(t)!r}"

    def document(self) -> str:
        return self.text

    def span(self, t: int) -> tuple:
        """``(start, end)`` of step ``t`` in ``document()``, in the Qt document's positions."""
        if not len(self.wide):  # the usual text: one position per character, no search per step
            return t, t + 1
        before = int(np.searchsorted(self.wide, t))  # wide characters before step t
        start = t + before
        return start, start + 1 + (before < len(self.wide) and int(self.wide[before]) == t)

    def step_at(self, position: int) -> int:
        """The step whose span holds the Qt document position ``position``."""
        if not len(self.wide):
            return position
        return position - int(np.searchsorted(self._wide_ends, position, side="right"))

    def original(self, scaled) -> np.ndarray:
        return np.asarray(scaled, np.float64)  # (..., K)

    def display_name(self, model_path: str | None, text_path: str | None) -> str:
        """Window-title text: the model's and the text's file names."""
        model = Path(model_path).name if model_path else "no model"
        text = Path(text_path).name if text_path else "typed text"
        return f"{model} — {text}"


class SeriesSequence:
    """A numeric series stepped through a forecaster (dense input windows, linear/tanh head).

    ``labels``: T strings, what step t shows (e.g. the value it forecasts, original units).
    ``targets (T, K)``: the actual next values, scaled, or None. ``inverse``: scaled -> original
    units (e.g. ``MinMaxScaler.inverse_transform``), or None (values are shown scaled).
    ``parked_text``: the text put aside while the series is viewed. Raises ValueError when
    ``targets`` has another number of rows than ``labels`` or ``inverse`` is not callable.
    """

    kind = "series"
    editable = False
    predicts_characters = False
    traced_live = False
    text = ""  # nothing typed is stepped

    def __init__(self, labels: list, targets: np.ndarray | None = None, inverse: Callable | None = None,
                 parked_text: str = ""):
        self.labels = [str(label) for label in labels]
        T = len(self.labels)
        if targets is not None:
            targets = np.asarray(targets, np.float64)  # (T, K)
            if targets.ndim != 2 or targets.shape[0] != T:
                raise ValueError(f"targets must have shape ({T}, K), got {targets.shape}")
        if inverse is not None and not callable(inverse):
            raise ValueError(f"inverse must be callable (scaled -> original units), got {type(inverse).__name__}")
        self.targets = targets
        self.inverse = inverse
        self.parked_text = parked_text
        lengths = np.array([len(label) + len(SERIES_SEPARATOR) for label in self.labels], np.int64)  # (T,)
        self._starts = (np.cumsum(lengths) - lengths).tolist()  # document position of each label

    @property
    def steps(self) -> int:
        return len(self.labels)

    @property
    def has_original_units(self) -> bool:
        """True when ``original`` maps to the series' own units (an inverse is known)."""
        return self.inverse is not None

    def label(self, t: int) -> str:
        """The label of step ``t``; IndexError outside ``[0, steps)``."""
        return self.labels[_index(t, self.steps)]

    shown = label

    def caption(self, t: int) -> str:
        return f"next {self.label(t)}"

    def document(self) -> str:
        return SERIES_SEPARATOR.join(self.labels)

    def span(self, t: int) -> tuple:
        """``(start, end)`` of step ``t``'s label in ``document()``."""
        start = self._starts[t]
        return start, start + len(self.labels[t])

    def step_at(self, position: int) -> int:
        """The step whose label starts at or before document position ``position``."""
        return bisect.bisect_right(self._starts, position) - 1

    def original(self, scaled) -> np.ndarray:
        """Values ``(..., K)`` in original units (unchanged without an inverse), float64."""
        scaled = np.asarray(scaled, np.float64)  # (..., K)
        return scaled if self.inverse is None else np.asarray(self.inverse(scaled), np.float64)

    def display_name(self, model_path: str | None, text_path: str | None) -> str:
        return f"numeric series ({self.steps} steps)"


def _index(t: int, steps: int) -> int:
    if not 0 <= t < steps:
        raise IndexError(f"no step {t}: the sequence has {steps} steps")
    return t
