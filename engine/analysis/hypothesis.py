"""Hypothesis selection and matching (LSTMVis: Strobelt, Gehrmann, Pfister, Rush, "LSTMVis: A
Tool for Visual Analysis of Hidden State Dynamics in Recurrent Neural Networks", IEEE TVCG 2018).

A user states a hypothesis by brushing a span ``[start, end)`` of the text. With activations
``a (T, H)`` of one quantity in one layer (h by default; tanh(c) or any gate) and a threshold
``theta`` (default 0.3), a unit is *on* at step t when ``a[t, u] >= theta``. The *selection* is
the set S of units that are on at every step of the span and off (``< theta``) at each of the
``lead`` steps before it (fewer at the start of the text)::

    S = { u : a[t, u] >= theta for all t in [start, end),  a[t, u] < theta for all t in [start - lead, start) }

*Matches* are the other places where S (or most of it) is on together: maximal runs of
consecutive steps at which at least ``need = ceil(min_overlap * |S|)`` units of S are on (runs
that intersect the selected span are left out). For a run R let ``ON(R)`` be the units on at
every step of R; its ``overlap = |ON(R) & S|`` and ``extra = |ON(R) - S|``. Matches are ranked
as LSTMVis ranks them: largest overlap, then fewest extra units, then longest run (then earliest).

Memory: ``find_matches`` works on any ``(T, H)`` array; ``MatchFinder`` takes the activations in
chunks (``feed``) and keeps only the open run's ``(H,)`` vector and the best ``limit`` matches, so
``find_matches_stream`` over a 1 MB text needs one chunk of the model's trace (``stream``) plus
``O(limit)``; the selection needs the ``lead + end - start`` steps of the window only.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from ..model import SequenceModel
from .stream import DEFAULT_CHUNK, check_range, iter_chunks, quantity

DEFAULT_THRESHOLD = 0.3
DEFAULT_LIMIT = 100  # matches kept, best first


@dataclass(frozen=True)
class Selection:
    """The units (ascending indices) on over ``[start, end)`` and off for ``lead`` steps before."""

    start: int
    end: int
    threshold: float
    lead: int
    units: tuple[int, ...]


@dataclass(frozen=True)
class Match:
    """A run ``[start, end)`` where the selection is (mostly) on; see the module docstring."""

    start: int
    end: int
    overlap: int  # selected units on at every step of the run
    extra: int  # other units on at every step of the run

    @property
    def length(self) -> int:
        return self.end - self.start

    def rank_key(self) -> tuple:
        """Larger is better: overlap, then fewer extra, then longer, then earlier."""
        return (self.overlap, -self.extra, self.length, -self.start)


def _check_activations(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[0] < 1 or a.dtype.kind != "f":
        raise ValueError(f"activations must be a float array (T, H) with T >= 1, got {a.dtype} {a.shape}")
    return a


def _check_lead(lead) -> int:
    if isinstance(lead, bool) or not isinstance(lead, (int, np.integer)) or lead < 0:
        raise ValueError(f"lead must be a whole number of steps >= 0, got {lead!r}")
    return int(lead)


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return float(threshold)


def select_units(a: np.ndarray, start: int, end: int, threshold: float = DEFAULT_THRESHOLD, lead: int = 0) -> Selection:
    """The selection for the span ``[start, end)`` of ``a (T, H)`` (module docstring).

    ``a`` may be a window of a longer sequence: then ``start``/``end`` index the window.
    Raises ValueError for a bad array, span, threshold or lead.
    """
    a = _check_activations(a)
    start, end = check_range(a.shape[0], start, end)
    threshold, lead = _check_threshold(threshold), _check_lead(lead)
    on_span = (a[start:end] >= threshold).all(axis=0)  # (H,)
    off_before = (a[max(0, start - lead) : start] < threshold).all(axis=0)  # (H,) True if no steps before
    units = np.flatnonzero(on_span & off_before)  # (K,)
    return Selection(start, end, threshold, lead, tuple(int(u) for u in units))


class MatchFinder:
    """Streaming match search: ``feed`` consecutive chunks of ``(n, H)`` activations, then
    ``matches()``. Keeps the open run and the best ``limit`` matches only (module docstring)."""

    def __init__(self, selection: Selection, hidden_size: int, min_overlap: float = 1.0,
                 min_length: int = 1, limit: int | None = DEFAULT_LIMIT):
        if not (isinstance(min_overlap, (int, float, np.floating)) and 0.0 < min_overlap <= 1.0):
            raise ValueError(f"min_overlap must be a fraction in (0, 1], got {min_overlap!r}")
        if isinstance(min_length, bool) or not isinstance(min_length, (int, np.integer)) or min_length < 1:
            raise ValueError(f"min_length must be a whole number >= 1, got {min_length!r}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
            raise ValueError(f"limit must be a whole number >= 1 or None, got {limit!r}")
        if any(not 0 <= u < hidden_size for u in selection.units):
            raise ValueError(f"selected units must be in [0, {hidden_size - 1}]")
        self.selection = selection
        self.hidden_size = hidden_size
        self.need = max(1, math.ceil(min_overlap * len(selection.units) - 1e-9))  # selected units on, at least
        self.min_length = int(min_length)
        self.limit = limit
        self._selected = np.zeros(hidden_size, bool)  # (H,)
        self._selected[list(selection.units)] = True
        self._t = 0  # steps fed so far
        self._open = None  # (start, on-throughout (H,) bool) of a run reaching the end of the last chunk
        self._heap = []  # (rank_key, Match), worst at the root
        self._all = []  # every match when limit is None

    def feed(self, a: np.ndarray) -> None:
        """The next ``(n, H)`` activations (steps ``[t, t + n)`` after ``t`` steps fed)."""
        a = _check_activations(a)
        if a.shape[1] != self.hidden_size:
            raise ValueError(f"activations must have {self.hidden_size} units, got {a.shape[1]}")
        n, t0 = a.shape[0], self._t
        self._t += n
        if not self.selection.units:
            return
        on = a >= self.selection.threshold  # (n, H)
        mask = on[:, self._selected].sum(axis=1) >= self.need  # (n,)
        edges = np.diff(np.concatenate(([False], mask, [False])).astype(np.int8))  # (n + 1,)
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # (R,), (R,)
        if self._open is not None and not (starts.size and starts[0] == 0):
            self._close(*self._open, t0)
            self._open = None
        for s, e in zip(starts.tolist(), stops.tolist()):
            on_run = on[s:e].all(axis=0)  # (H,)
            run_start = t0 + s
            if s == 0 and self._open is not None:
                run_start, on_run = self._open[0], self._open[1] & on_run  # (H,)
                self._open = None
            if e == n:
                self._open = (run_start, on_run)
            else:
                self._close(run_start, on_run, t0 + e)

    def _close(self, start: int, on_run: np.ndarray, end: int) -> None:
        sel = self.selection
        if end - start < self.min_length or (start < sel.end and sel.start < end):
            return
        overlap = int(np.count_nonzero(on_run & self._selected))
        match = Match(start, end, overlap, int(np.count_nonzero(on_run)) - overlap)
        if self.limit is None:
            self._all.append(match)
            return
        heapq.heappush(self._heap, (match.rank_key(), match))
        if len(self._heap) > self.limit:
            heapq.heappop(self._heap)

    def matches(self) -> list[Match]:
        """The matches found so far, best first (an open run counts as ending at the last step fed)."""
        if self._open is not None:
            self._close(*self._open, self._t)
            self._open = None
        found = self._all if self.limit is None else [m for _, m in self._heap]
        return sorted(found, key=Match.rank_key, reverse=True)


def find_matches(a: np.ndarray, selection: Selection, min_overlap: float = 1.0, min_length: int = 1,
                 limit: int | None = DEFAULT_LIMIT) -> list[Match]:
    """Matches of ``selection`` in ``a (T, H)``, best first (module docstring). ``min_overlap``:
    fraction of the selected units that must be on at each step of a run, in (0, 1];
    ``min_length``: shortest run kept; ``limit``: how many to return (None = all)."""
    a = _check_activations(a)
    finder = MatchFinder(selection, a.shape[1], min_overlap, min_length, limit)
    finder.feed(a)
    return finder.matches()


def select_units_stream(model: SequenceModel, inputs: np.ndarray, start: int, end: int, layer: int = 0,
                        name: str = "h", threshold: float = DEFAULT_THRESHOLD, lead: int = 0,
                        chunk: int = DEFAULT_CHUNK) -> Selection:
    """``select_units`` on quantity ``name`` of ``layer`` (see ``stream.quantity``), reading only
    the window ``[start - lead, end)`` of ``inputs (T,)`` from the model (memory: that window
    plus one chunk). The returned selection indexes the whole sequence."""
    lead = _check_lead(lead)
    start, end = check_range(np.asarray(inputs).shape[0], start, end)
    first = max(0, start - lead)
    window = np.concatenate([quantity(tr, name, layer) for _, tr in iter_chunks(model, inputs, first, end, chunk)])  # (end - first, H)
    sel = select_units(window, start - first, end - first, threshold, lead)
    return Selection(start, end, sel.threshold, lead, sel.units)


def find_matches_stream(model: SequenceModel, inputs: np.ndarray, selection: Selection, layer: int = 0,
                        name: str = "h", min_overlap: float = 1.0, min_length: int = 1,
                        limit: int | None = DEFAULT_LIMIT, chunk: int = DEFAULT_CHUNK) -> list[Match]:
    """``find_matches`` over the whole of ``inputs (T,)`` run through ``model`` in chunks
    (memory: one chunk's trace plus ``limit`` matches; ``limit=None`` keeps every match)."""
    finder = MatchFinder(selection, model.config.hidden_size, min_overlap, min_length, limit)
    for _, tr in iter_chunks(model, inputs, chunk=chunk):
        finder.feed(quantity(tr, name, layer))
    return finder.matches()
