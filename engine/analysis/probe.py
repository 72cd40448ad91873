"""Feature probes: rank every unit of every layer and quantity by how well it tracks a feature.

Continuous features (``Feature.binary`` False) are scored by Pearson's correlation
``r = cov(a, y) / (sd(a) sd(y))`` between a unit's activation ``a_t`` and the feature ``y_t``,
ranked by ``|r|``. The sums are accumulated chunk by chunk with the pairwise update of Chan,
Golub & LeVeque (1979) in float64 (chunk means and centred co-moments merged exactly), so the
result equals ``np.corrcoef`` on the whole sequence up to float64 round-off. A constant unit
has no correlation: its score is NaN and it ranks last.

Binary features are scored by the ROC AUC, the probability that a unit is higher at a random
positive step than at a random negative one (ties count 1/2; Mann & Whitney 1947, Hanley &
McNeil 1982), ranked by ``|AUC - 0.5|``. Streaming cannot sort every unit's whole column, so the
AUC is computed from per-unit histograms of ``BINS`` equal bins over the quantity's range (the
gates i, f, o over [0, 1]; g and h over [-1, 1]; c through tanh, which is monotone and so leaves
the AUC unchanged). Pairs in different bins are ordered exactly; a positive-negative pair in the
same bin counts 1/2, which is off by at most 1/2 for that pair. Hence the stated bound, computed
per unit and returned with its score::

    |AUC_hist - AUC_exact| <= bound = 0.5 * sum_b P_b N_b / (n_pos n_neg)

(``P_b``, ``N_b`` the positives and negatives in bin b). Values that share a bin only because
they are equal (e.g. saturated gates) are exact ties in both computations.

Memory: per chunk the ``(n, U)`` stacked activations in float64 (``U = L * Q * H`` units probed);
across chunks ``O(U)`` sums for correlation or ``2 * U * BINS`` counts for the AUC (int64:
128 units x 6 quantities x 2048 bins x 2 = 25 MB), whatever the text length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import SequenceModel
from .features import Feature
from .stream import DEFAULT_CHUNK, cell_quantities, iter_chunks, quantity

BINS = 2048  # histogram bins per unit for the streamed AUC
RANGES = {"i": (0.0, 1.0), "f": (0.0, 1.0), "o": (0.0, 1.0), "g": (-1.0, 1.0), "h": (-1.0, 1.0), "c": (-1.0, 1.0)}


@dataclass(frozen=True)
class UnitScore:
    """One unit's score for a feature. ``kind``: ``"pearson"`` (r in [-1, 1]) or ``"auc"``
    (in [0, 1], with ``bound`` its histogram error bound; 0 for pearson)."""

    layer: int
    quantity: str
    unit: int
    score: float
    kind: str
    bound: float = 0.0

    @property
    def strength(self) -> float:
        """``|r|`` or ``|AUC - 0.5|``; NaN scores give -1 (ranked last)."""
        if np.isnan(self.score):
            return -1.0
        return abs(self.score) if self.kind == "pearson" else abs(self.score - 0.5)


class PearsonAccumulator:
    """Streaming Pearson correlation of ``U`` columns with one series (module docstring)."""

    def __init__(self, units: int):
        self.n = 0
        self.mean_a = np.zeros(units)  # (U,)
        self.mean_y = 0.0
        self.m2_a = np.zeros(units)  # (U,) sum of squared deviations
        self.m2_y = 0.0
        self.c_ay = np.zeros(units)  # (U,) sum of co-deviations

    def feed(self, a: np.ndarray, y: np.ndarray) -> None:
        """``a (n, U)`` activations, ``y (n,)`` feature values for the same steps."""
        a = np.asarray(a, np.float64)  # (n, U)
        y = np.asarray(y, np.float64)  # (n,)
        nb = a.shape[0]
        if nb == 0:
            return
        mb_a, mb_y = a.mean(axis=0), float(y.mean())  # (U,), scalar
        da = a - mb_a  # (n, U)
        dy = y - mb_y  # (n,)
        m2b_a, m2b_y, cb = (da * da).sum(axis=0), float(dy @ dy), dy @ da  # (U,), scalar, (U,)
        na, n = self.n, self.n + nb
        delta_a, delta_y = mb_a - self.mean_a, mb_y - self.mean_y  # (U,), scalar
        w = na * nb / n
        self.m2_a += m2b_a + delta_a * delta_a * w  # (U,)
        self.m2_y += m2b_y + delta_y * delta_y * w
        self.c_ay += cb + delta_a * delta_y * w  # (U,)
        self.mean_a += delta_a * (nb / n)  # (U,)
        self.mean_y += delta_y * (nb / n)
        self.n = n

    def result(self) -> np.ndarray:
        """``(U,)`` correlations (NaN for a constant column); ValueError if ``y`` is constant."""
        if self.n < 2 or self.m2_y == 0:
            raise ValueError("the feature is constant on this text: no correlation can be computed")
        with np.errstate(invalid="ignore", divide="ignore"):
            r = self.c_ay / np.sqrt(self.m2_a * self.m2_y)  # (U,)
        r[self.m2_a == 0] = np.nan
        return np.clip(r, -1.0, 1.0)  # (U,)


class AUCAccumulator:
    """Streaming histogram ROC AUC of ``U`` columns against binary labels (module docstring).
    ``lo``, ``hi`` ``(U,)``: each column's value range (values outside go to the end bins)."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, bins: int = BINS):
        self.lo = np.asarray(lo, np.float64)  # (U,)
        self.scale = bins / (np.asarray(hi, np.float64) - self.lo)  # (U,) bins per unit of value
        self.bins = bins
        units = self.lo.size
        self.offset = np.arange(units) * bins  # (U,) first histogram slot of each column
        self.pos = np.zeros(units * bins, np.int64)  # (U * bins,)
        self.neg = np.zeros(units * bins, np.int64)  # (U * bins,)

    def feed(self, a: np.ndarray, labels: np.ndarray) -> None:
        """``a (n, U)`` activations, ``labels (n,)`` 0/1 for the same steps."""
        b = np.floor((np.asarray(a, np.float64) - self.lo) * self.scale)  # (n, U)
        np.clip(b, 0, self.bins - 1, out=b)
        slot = b.astype(np.int64) + self.offset  # (n, U)
        positive = np.asarray(labels) > 0.5  # (n,)
        size = self.pos.size
        self.pos += np.bincount(slot[positive].ravel(), minlength=size)
        self.neg += np.bincount(slot[~positive].ravel(), minlength=size)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(auc (U,), bound (U,))``; ValueError if all labels are equal."""
        pos = self.pos.reshape(-1, self.bins).astype(np.float64)  # (U, bins)
        neg = self.neg.reshape(-1, self.bins).astype(np.float64)  # (U, bins)
        n_pos, n_neg = pos[0].sum(), neg[0].sum()
        if n_pos == 0 or n_neg == 0:
            raise ValueError("the feature is always " + ("off" if n_pos == 0 else "on")
                             + " on this text: no AUC can be computed")
        neg_below = np.cumsum(neg, axis=1) - neg  # (U, bins) negatives in lower bins
        same = (pos * neg).sum(axis=1)  # (U,) positive-negative pairs sharing a bin
        auc = ((pos * neg_below).sum(axis=1) + 0.5 * same) / (n_pos * n_neg)  # (U,)
        return auc, 0.5 * same / (n_pos * n_neg)  # (U,), (U,)


def _check_feature(feature: Feature, T: int) -> np.ndarray:
    y = np.asarray(feature.values, np.float64)  # (T,)
    if y.shape != (T,):
        raise ValueError(f"feature {feature.name!r} has {y.shape[0] if y.ndim == 1 else y.shape} values for {T} steps")
    if not np.isfinite(y).all():
        raise ValueError(f"feature {feature.name!r} has NaN or infinite values")
    return y


def pearson(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Correlation ``(H,)`` of each column of ``a (T, H)`` with ``y (T,)`` (one-chunk stream)."""
    acc = PearsonAccumulator(np.shape(a)[1])
    acc.feed(a, y)
    return acc.result()


def roc_auc(a: np.ndarray, labels: np.ndarray, lo: float, hi: float, bins: int = BINS):
    """Histogram ROC AUC and its error bound, each ``(H,)``, of the columns of ``a (T, H)``
    (values in ``[lo, hi]``) against 0/1 ``labels (T,)``; see the module docstring."""
    H = np.shape(a)[1]
    acc = AUCAccumulator(np.full(H, lo), np.full(H, hi), bins)
    acc.feed(a, labels)
    return acc.result()


def _auc_values(name: str, a: np.ndarray) -> np.ndarray:
    """The values binned for the AUC: c through tanh (monotone: same AUC), others as they are."""
    return np.tanh(a) if name == "c" else a  # (n, H)


def probe(model: SequenceModel, inputs: np.ndarray, feature: Feature, layers=None, quantities=None,
          chunk: int = DEFAULT_CHUNK) -> list[UnitScore]:
    """Score every unit of ``layers`` (default all) and ``quantities`` (default every quantity the
    cell records: h, c, i, f, g, o for an LSTM, h for an RNN) for ``feature`` over ``inputs``
    (``(T,)`` ids) run through ``model`` in chunks, strongest first (module docstring). Memory:
    one chunk plus the accumulators. Raises what ``probe_chunks`` raises.
    """
    inputs = np.asarray(inputs)
    _check_feature(feature, inputs.shape[0])
    return probe_chunks(iter_chunks(model, inputs, chunk=chunk), feature, model.config.cell,
                        model.config.num_layers, model.config.hidden_size, layers, quantities)


def probe_chunks(chunks, feature: Feature, cell: str, num_layers: int, hidden_size: int, layers=None,
                 quantities=None) -> list[UnitScore]:
    """``probe`` over ``(t0, trace)`` chunks of a ``cell`` model (``stream.iter_chunks``; a whole
    ``Trace`` is ``[(0, trace)]``) that together cover ``feature.values``. Raises ValueError
    for a bad layer or quantity, chunks that do not cover the feature, or a constant feature.
    """
    y = _check_feature(feature, len(feature.values))  # (T,)
    L, H = num_layers, hidden_size
    recorded = cell_quantities(cell)
    layers = tuple(range(L)) if layers is None else tuple(layers)
    quantities = recorded if quantities is None else tuple(quantities)
    for k in layers:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < L:
            raise ValueError(f"layer must be in [0, {L - 1}], got {k!r}")
    for name in quantities:
        if name not in recorded:
            raise ValueError(f"unknown quantity {name!r} for a {cell} model; expected one of {', '.join(recorded)}")
    columns = [(k, name) for k in layers for name in quantities]  # each H units
    if feature.binary:
        lo = np.repeat([RANGES[name][0] for _, name in columns], H)  # (U,)
        hi = np.repeat([RANGES[name][1] for _, name in columns], H)  # (U,)
        acc = AUCAccumulator(lo, hi)
    else:
        acc = PearsonAccumulator(len(columns) * H)
    covered = 0
    for t0, tr in chunks:
        if t0 != covered or t0 + tr.steps > y.size:
            raise ValueError(f"the chunks must cover the feature's {y.size} steps in order")
        parts = [quantity(tr, name, k) for k, name in columns]  # (n, H) each
        if feature.binary:
            parts = [_auc_values(name, p) for (_, name), p in zip(columns, parts)]
        acc.feed(np.concatenate(parts, axis=1), y[t0 : t0 + tr.steps])  # (n, U)
        covered += tr.steps
    if covered != y.size:
        raise ValueError(f"the chunks cover {covered} steps but the feature has {y.size}")
    if feature.binary:
        scores, bounds = acc.result()  # (U,), (U,)
    else:
        scores, bounds = acc.result(), np.zeros(len(columns) * H)  # (U,), (U,)
    kind = "auc" if feature.binary else "pearson"
    ranked = [UnitScore(k, name, u, float(scores[j * H + u]), kind, float(bounds[j * H + u]))
              for j, (k, name) in enumerate(columns) for u in range(H)]
    ranked.sort(key=lambda s: (-s.strength, s.layer, s.quantity, s.unit))
    return ranked
