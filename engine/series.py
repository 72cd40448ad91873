"""Numeric series for the tutorials: reading a CSV column, toy generators, scaling, and a
dataset that trains a ``SequenceModel`` (dense input, "linear" or "tanh" head) to forecast.

Framing (sliding window in, next values out). With ``window = W`` and ``horizon = K``, a series
``v (N,)`` gives ``M = N - W - K + 1`` *positions*; position ``p`` has::

    input   x_p = s[p : p + W]           the W most recent scaled values, oldest first  (W,)
    target  y_p = s[p + W : p + W + K]   the next K scaled values                       (K,)

where ``s`` is ``v`` scaled by a ``MinMaxScaler`` fitted on the training part only. The model
reads positions in order as its time axis (``x (B, T, W)``, ``y (B, T, K)``), so its state
carries history beyond the window. Split: the last ``floor(N * val_fraction)`` values are the
validation part; training positions are those whose targets are all before it, validation
positions those whose targets are all inside it (with K > 1 the K - 1 positions in between are
used by neither).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import numpy as np

from .data import BATCH_MODES, DEFAULT_MAX_BYTES, Batch, _positive_int, load_text
from .errors import DataError
from .settings import VAL_FRACTION

MIN_VALUES = 10  # a CSV column needs at least this many values
MISSING_MODES = ("refuse", "interpolate")  # what read_csv_column does with a missing value
MISSING_MARKERS = frozenset({"", "na", "n/a", "#n/a", "nan", "null", "none", "-", "?"})  # missing cells, lower case
CSV_DELIMITERS = (",", ";", "\t", "|")  # tried in this order when the delimiter is not given
DECIMAL_SEPARATORS = (".", ",")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)  # ASCII digits, "." decimal point


# --- reading a CSV column ---------------------------------------------------------------------
class CsvTable(NamedTuple):
    """A parsed CSV file: ``delimiter`` used, and its non-blank ``rows`` as ``(line, cells)``
    with ``line`` the 1-based line where the row starts (as an editor or spreadsheet shows it).
    Every row has as many cells as the first."""

    delimiter: str
    rows: list


def _parse_number(cell: str, decimal: str = ".") -> float | None:
    """The cell as a finite float (plain ASCII digits, optional sign, ``decimal`` separator and
    exponent), or None if it is not one. Thousands separators, ``nan``/``inf``, underscores and
    non-ASCII digits (all of which ``float()`` would accept or misread) are not numbers."""
    cell = cell.strip()
    if decimal == ",":
        if "." in cell:
            return None
        cell = cell.replace(",", ".")
    if not _NUMBER.fullmatch(cell):
        return None
    value = float(cell)
    return value if np.isfinite(value) else None


def _check_csv_options(delimiter, decimal) -> None:
    if decimal not in DECIMAL_SEPARATORS:
        raise ValueError(f"decimal must be one of {DECIMAL_SEPARATORS}, got {decimal!r}")
    if delimiter is None:
        return
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\"\r\n":
        raise ValueError(f"delimiter must be one character other than a quote or a line break, got {delimiter!r}")
    if delimiter == decimal:
        raise ValueError(f"the delimiter and the decimal separator must differ (both {delimiter!r})")


def _is_comment(line: str) -> bool:
    """True for a line starting with ``#`` (after blanks): a note above the first row, as data
    files from instruments and agencies carry, read as a comment."""
    return line.lstrip().startswith("#")


def _parse_rows(name: str, text: str, delimiter: str) -> list:
    """``[(line, cells)]`` of the non-blank rows of ``text`` read with ``delimiter`` and double
    quotes (``csv`` module, strict: a stray quote is an error naming its line); comment lines
    (``_is_comment``) before the first row are left out."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"', doublequote=True, strict=True)
    rows, line = [], 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return rows
        except csv.Error as e:
            raise DataError(f"{name}: row {line} is not readable CSV ({e}); check its quotes") from None
        if any(cell.strip() for cell in cells) and (rows or not _is_comment(delimiter.join(cells))):
            rows.append((line, cells))
        line = reader.line_num + 1


def _mismatch(name: str, rows: list, delimiter: str) -> str | None:
    """The message for the first row whose field count differs from the first row's, or None."""
    header_line, header = rows[0]
    for line, cells in rows[1:]:
        if len(cells) != len(header):
            if len(cells) < len(header):
                hint = "fill in its missing fields (an empty field still needs its delimiter)"
            elif delimiter == ",":
                hint = ('a "," inside a number (thousands separator or decimal comma) must be quoted ("10,012.6"), '
                        "or the file saved with another delimiter (';' or tab), or the delimiter chosen explicitly")
            else:
                hint = f"quote fields that contain {delimiter!r}"
            fields = f"{len(cells)} field{'s' * (len(cells) != 1)}"
            return (f"{name}: row {line} has {fields} but the first row (row {header_line}) has "
                    f"{len(header)} (delimiter {delimiter!r}); {hint}")
    return None


def read_csv(path, max_bytes: int = DEFAULT_MAX_BYTES, *, delimiter: str | None = None,
             decimal: str = ".") -> CsvTable:
    """Parse the CSV file at ``path`` (Python's ``csv`` module; double quotes respected).

    ``delimiter`` None detects it: among ``CSV_DELIMITERS`` (minus ``decimal``) that occur in
    the first row, the one giving every row the first row's field count, the most fields
    winning; a file whose first row has none of them is one column. Lines starting with ``#``
    above the first row are comments, left out (row numbers stay the file's lines). ``decimal`` is the decimal
    separator of the numbers ("." or ","; only used to exclude it as a delimiter here).

    Raises ``DataError`` naming the file and the row for a row whose field count differs from
    the header's (so unquoted thousands separators such as ``10,012.6`` never load as wrong
    numbers), bad quoting, or no rows; ``ValueError`` for bad options; file problems (missing,
    special, too big, binary, bad encoding, empty) as ``engine.data.load_text`` reports them.
    """
    _check_csv_options(delimiter, decimal)
    name = str(path)
    text = load_text(path, max_bytes=max_bytes)
    candidates = [delimiter] if delimiter is not None else [d for d in CSV_DELIMITERS if d != decimal]
    first_line = next((line for line in text.split("\n") if line.strip() and not _is_comment(line)), "")
    parsed, first_error = {}, None
    for d in candidates:
        try:
            parsed[d] = _parse_rows(name, text, d)
        except DataError as e:  # bad quoting: fatal for a delimiter the first row uses
            if d in first_line:
                raise
            first_error = first_error or e
    if not parsed:
        raise first_error
    rows = next(iter(parsed.values()))
    if not rows:
        raise DataError(f"{name}: no values (every row is blank)")
    if delimiter is None:
        in_header = [d for d, r in parsed.items() if len(r[0][1]) > 1]
        if not in_header:  # no candidate splits the first row: one column
            single = [d for d, r in parsed.items() if all(len(cells) == 1 for _, cells in r)]
            chosen = (single or list(parsed))[0]
        else:
            consistent = [d for d in in_header if _mismatch(name, parsed[d], d) is None]
            pool = consistent or in_header
            chosen = max(pool, key=lambda d: len(parsed[d][0][1]))  # most fields; ties: CSV_DELIMITERS order
        delimiter, rows = chosen, parsed[chosen]
    problem = _mismatch(name, rows, delimiter)
    if problem is not None:
        raise DataError(problem)
    return CsvTable(delimiter, rows)


def csv_columns(path, max_bytes: int = DEFAULT_MAX_BYTES, *, delimiter: str | None = None,
                decimal: str = ".") -> list[str]:
    """The cells of the first row of the CSV file at ``path``, stripped (column names, or the
    first values of a file without a header), parsed exactly as ``read_csv_column`` does."""
    return [cell.strip() for cell in read_csv(path, max_bytes, delimiter=delimiter, decimal=decimal).rows[0][1]]


def _column_index(path: str, first_row: list, column: str | int, decimal: str,
                  first_line: int = 1) -> tuple[int, str, bool]:
    """``(index, name for messages, first row is a header)`` of ``column``; ``first_line``: the
    file line of the first row (lines above it are blank or ``#`` comments)."""
    if isinstance(column, str):
        names = [cell.strip() for cell in first_row]
        wanted = column.strip()
        if wanted not in names:
            above = f" (row {first_line}; the lines above it are blank or '#' comments)" if first_line > 1 else ""
            raise DataError(f"{path}: no column named {column!r}; the first row{above} has: "
                            f"{', '.join(map(repr, names))}")
        found = [i for i, n in enumerate(names) if n == wanted]
        if len(found) > 1:
            raise DataError(f"{path}: {len(found)} columns are named {wanted!r} (indices "
                            f"{', '.join(map(str, found))}); choose one by its index")
        return found[0], f"column {wanted!r}", True
    if isinstance(column, bool) or not isinstance(column, (int, np.integer)):
        raise ValueError(f"column must be a name (str) or a 0-based index (int), got {column!r}")
    if not 0 <= column < len(first_row):
        raise DataError(f"{path}: column index {column} is out of range; the first row has "
                        f"{len(first_row)} column(s) (indices from 0)")
    cell = first_row[column].strip()
    is_header = _parse_number(cell, decimal) is None and cell != ""
    label = f"column {cell!r}" if is_header else f"column {column}"
    return int(column), label, is_header


def _not_a_number(name: str, line: int, label: str, cell: str, decimal: str) -> DataError:
    other = "," if decimal == "." else "."
    hint = ""
    if other in cell:
        hint = (f"; remove thousands separators, or if {other!r} is the decimal separator, choose "
                f"decimal {other!r}")
    return DataError(f"{name}: row {line}, {label}: {cell!r} is not a finite number{hint}")


class CsvColumn(NamedTuple):
    """A numeric CSV column read by ``read_csv_column``: ``values (N,) float64`` in file order,
    and the file lines (1-based) of the missing cells ``interpolated`` between two values and
    of those ``dropped`` before the first value or after the last (``missing="interpolate"``)."""

    values: np.ndarray
    interpolated: list
    dropped: list


def read_csv_column(path, column: str | int, max_bytes: int = DEFAULT_MAX_BYTES,
                    min_values: int = MIN_VALUES, *, delimiter: str | None = None,
                    decimal: str = ".", missing: str = "refuse") -> CsvColumn:
    """One numeric column of a CSV file (``CsvColumn``).

    ``column``: a header name, or a 0-based index (the first row is then a header if its cell
    in that column is not a number). ``delimiter`` (None: detected) and ``decimal`` ("." or
    ",") as in ``read_csv``, which also reports rows of the wrong field count. Numbers are
    plain ASCII decimals (``_parse_number``). A cell that is empty or one of
    ``MISSING_MARKERS`` (any case: ``NA``, ``null``, ``NaN``, ...) is missing: ``missing=
    "refuse"`` raises, ``"interpolate"`` fills it linearly between the values on each side
    (``numpy.interp`` over the row positions) and leaves out missing cells before the first
    value or after the last. Raises ``DataError`` naming the file, the row (1-based line) and
    the column for a refused missing cell or a non-numeric or non-finite one, a column name
    that is absent or repeated, and for fewer than ``min_values`` values or a constant column;
    ``ValueError`` for an unknown ``missing``.
    """
    if missing not in MISSING_MODES:
        raise ValueError(f"missing must be one of {MISSING_MODES}, got {missing!r}")
    name = str(path)
    rows = read_csv(path, max_bytes, delimiter=delimiter, decimal=decimal).rows
    index, label, has_header = _column_index(name, rows[0][1], column, decimal, rows[0][0])
    values, lines = [], []
    for line, cells in rows[1:] if has_header else rows:
        cell = cells[index].strip()
        value = _parse_number(cell, decimal)
        if value is None and cell.lower() in MISSING_MARKERS:
            if missing == "refuse":
                shown = "missing value" if not cell else f"{cell!r} marks a missing value"
                raise DataError(f"{name}: row {line}, {label}: {shown}; choose to interpolate missing values to "
                                "fill such gaps linearly")
            value = np.nan
        elif value is None:
            raise _not_a_number(name, line, label, cell, decimal)
        values.append(value)
        lines.append(line)
    series = np.array(values, dtype=np.float64)  # (N,) NaN where missing
    present = np.flatnonzero(~np.isnan(series))  # (P,) positions of the values
    interpolated, dropped = [], []
    if present.size == 0:
        raise DataError(f"{name}: {label} has no values (every cell is missing); at least {min_values} are needed")
    if present.size < len(series):
        kept = slice(present[0], present[-1] + 1)
        dropped = [lines[k] for k in range(len(series)) if not kept.start <= k < kept.stop]
        gaps = np.flatnonzero(np.isnan(series[kept])) + kept.start  # (G,) missing positions inside
        interpolated = [lines[k] for k in gaps]
        series[gaps] = np.interp(gaps, present, series[present])  # (G,)
        series = series[kept]  # (N',)
    if len(series) - len(interpolated) < min_values:
        raise DataError(f"{name}: {label} has {len(series) - len(interpolated)} value(s); at least {min_values} "
                        "are needed")
    if series.min() == series.max():
        raise DataError(f"{name}: {label} is constant ({series[0]:g}); a series needs values that change")
    return CsvColumn(series, interpolated, dropped)


# --- generators -------------------------------------------------------------------------------
def ramp(start: float = -3.0, stop: float = 8.0, n: int = 12) -> np.ndarray:
    """``n`` evenly spaced values from ``start`` to ``stop`` inclusive, ``(n,) float64``
    (the defaults give the tutorial's ramp -3, -2, ..., 8)."""
    return np.linspace(float(start), float(stop), _positive_int("n", n))  # (n,)


def sine(n: int, period: float = 20.0, amplitude: float = 1.0) -> np.ndarray:
    """``amplitude * sin(2 pi t / period)`` for ``t = 0 .. n-1`` (period in samples, > 0),
    ``(n,) float64`` in ``[-amplitude, amplitude]``."""
    if not period > 0 or not np.isfinite(period) or not np.isfinite(amplitude):
        raise ValueError(f"period must be finite and > 0 and amplitude finite, got {period!r}, {amplitude!r}")
    t = np.arange(_positive_int("n", n), dtype=np.float64)  # (n,)
    return amplitude * np.sin(2.0 * np.pi * t / period)  # (n,)


def noisy_sine(n: int, period: float, noise: float, rng: np.random.Generator,
               amplitude: float = 1.0) -> np.ndarray:
    """``sine(n, period, amplitude)`` plus Gaussian noise of standard deviation ``noise`` >= 0,
    ``(n,) float64``."""
    if not noise >= 0 or not np.isfinite(noise):
        raise ValueError(f"noise must be a finite standard deviation >= 0, got {noise!r}")
    return sine(n, period, amplitude) + rng.normal(0.0, noise, size=n)  # (n,)


def random_walk(n: int, rng: np.random.Generator, start: float = 100.0, volatility: float = 0.01,
                drift: float = 0.0) -> np.ndarray:
    """A "price": geometric random walk ``v_0 = start``, ``v_t = v_{t-1} exp(drift + volatility z_t)``
    with ``z_t ~ N(0, 1)``; always positive, ``(n,) float64``. ``volatility`` is the standard
    deviation of the log return per step (0.01 = about 1 %)."""
    if not start > 0 or not np.isfinite(start):
        raise ValueError(f"start must be a finite price > 0, got {start!r}")
    if not volatility >= 0 or not np.isfinite(volatility) or not np.isfinite(drift):
        raise ValueError(f"volatility must be finite and >= 0 and drift finite, got {volatility!r}, {drift!r}")
    steps = rng.normal(drift, volatility, size=_positive_int("n", n) - 1)  # (n-1,) log returns
    return start * np.exp(np.concatenate([[0.0], np.cumsum(steps)]))  # (n,)


# --- scaling ----------------------------------------------------------------------------------
class MinMaxScaler:
    """Maps ``[data_min, data_max]`` of the fitted values linearly onto ``[lo, hi]`` (default
    ``[-1, 1]``, the range of a "tanh" head). Values outside the fitted range map outside
    ``[lo, hi]``; ``inverse_transform`` undoes ``transform`` exactly up to float64 round-off."""

    def __init__(self, lo: float = -1.0, hi: float = 1.0):
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"the scaled range needs finite lo < hi, got lo={lo!r}, hi={hi!r}")
        self.lo, self.hi = float(lo), float(hi)
        self.data_min: float | None = None
        self.data_max: float | None = None

    def fit(self, values) -> "MinMaxScaler":
        """Learn the range of ``values (N,)``; a constant or non-finite input raises ``DataError``."""
        values = np.asarray(values, dtype=np.float64)  # (N,)
        if values.size == 0 or not np.all(np.isfinite(values)):
            raise DataError("cannot fit a scaler: the values are empty or not all finite")
        span = float(values.max() - values.min())
        with np.errstate(over="ignore", divide="ignore"):
            scale = (self.hi - self.lo) / span if span > 0 else np.inf
        if not np.isfinite(scale):
            raise DataError(f"cannot fit a scaler to constant values ({values.min():g}, range {span:g}); "
                            "they need a range")
        self.data_min, self.data_max = float(values.min()), float(values.max())
        return self

    def to_dict(self) -> dict:
        """JSON-able state (e.g. for a checkpoint's ``extra``); ``MinMaxScaler.from_dict`` restores it."""
        return {"lo": self.lo, "hi": self.hi, "data_min": self.data_min, "data_max": self.data_max}

    @classmethod
    def from_dict(cls, data: dict) -> "MinMaxScaler":
        scaler = cls(data["lo"], data["hi"])
        if data.get("data_min") is not None:
            scaler.fit([data["data_min"], data["data_max"]])
        return scaler

    def _scale(self) -> float:
        if self.data_min is None:
            raise ValueError("the scaler is not fitted yet; call fit(values) first")
        return (self.hi - self.lo) / (self.data_max - self.data_min)

    def transform(self, values) -> np.ndarray:
        """Original units -> scaled units (float64, same shape)."""
        scale = self._scale()
        return self.lo + (np.asarray(values, dtype=np.float64) - self.data_min) * scale  # (...)

    def inverse_transform(self, scaled) -> np.ndarray:
        """Scaled units -> original units (float64, same shape)."""
        scale = self._scale()
        return self.data_min + (np.asarray(scaled, dtype=np.float64) - self.lo) / scale  # (...)


# --- dataset ----------------------------------------------------------------------------------
def sliding_windows(values: np.ndarray, window: int) -> np.ndarray:
    """Every run of ``window`` consecutive values, oldest first: ``(N - window + 1, window)`` (a copy)."""
    return np.lib.stride_tricks.sliding_window_view(values, window).copy()  # (N-W+1, W)


@dataclass(frozen=True)
class SeriesScore:
    """Mean squared error of the one-to-K-step-ahead predictions on the validation positions."""

    mse: float  # in scaled units (the training loss's units)
    mse_original: float  # in the series' own units (squared)


@dataclass(frozen=True)
class SeriesPrediction:
    """One-step-ahead predictions over the whole series, in original units, for plotting.

    ``predicted[j]`` is the model's forecast of ``values[index[j]]`` from the values before it.
    """

    index: np.ndarray  # (M,) int series index of each predicted value, W .. N - K
    predicted: np.ndarray  # (M,) float64
    actual: np.ndarray  # (M,) float64 values[index]
    val_start: int  # first series index of the validation part (N if there is none)


class SeriesDataset:
    """Windows of a numeric series for training and evaluating a forecaster (module docstring).

    ``values (N,)`` finite, in original units; ``window`` W >= 1 past values per input;
    ``horizon`` K >= 1 future values per target; ``val_fraction`` in [0, 0.5]; ``scaler``
    an unfitted ``MinMaxScaler`` to fit on the training values (default ``MinMaxScaler(-1, 1)``);
    ``dtype`` of the batches ("float32" or "float64", the model's).
    The matching model: ``ModelConfig(input_size=W, output_size=K, input_kind="dense",
    head="linear" or "tanh")``. Implements ``engine.data.Dataset``; losses are mean squared
    errors in scaled units (``loss_unit``).
    """

    loss_unit = "MSE (scaled units)"

    def __init__(self, values, window: int, horizon: int = 1, val_fraction: float = 0.2,
                 scaler: MinMaxScaler | None = None, dtype: str = "float32"):
        values = np.asarray(values, dtype=np.float64)  # (N,)
        if values.ndim != 1 or not np.all(np.isfinite(values)):
            raise DataError(f"a series must be a 1-D array of finite values, got shape {values.shape}")
        self.window = _positive_int("window", window)
        self.horizon = _positive_int("horizon", horizon)
        VAL_FRACTION.check("val_fraction", val_fraction)
        val_fraction = float(val_fraction)
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        N, W, K = len(values), self.window, self.horizon
        self.n_val = int(N * val_fraction)  # validation values at the end
        self.positions = N - W - K + 1  # M
        self.train_positions = self.positions - self.n_val  # positions 0 .. M - n_val - 1
        if self.train_positions < 1:
            raise DataError(f"the series has {N} values: too few for window {W} + horizon {K} "
                            f"with {self.n_val} validation values; it needs at least {W + K + self.n_val}")
        self.values = values
        self.val_fraction = val_fraction
        self.dtype = np.dtype(dtype)
        self.scaler = (MinMaxScaler() if scaler is None else scaler).fit(values[: N - self.n_val])
        self.scaled = self.scaler.transform(values)  # (N,)
        self.inputs = sliding_windows(self.scaled[: N - K], W).astype(self.dtype)  # (M, W)
        self.targets = sliding_windows(self.scaled[W:], K).astype(self.dtype)  # (M, K)
        self.val_first_position = self.positions - self.n_val + K - 1  # targets all in the val part

    @staticmethod
    def loss_bits(loss: float | None) -> None:
        """Mean squared errors have no bits-per-symbol form: always None."""
        return None

    def checkpoint_extra(self) -> dict:
        """``{"series": describe()}``: what a checkpoint needs to map outputs back to original units."""
        return {"series": self.describe()}

    def describe(self) -> dict:
        """What a checkpoint needs to map the model's outputs back to original units."""
        return {"window": self.window, "horizon": self.horizon, "val_fraction": self.val_fraction,
                "scaler": self.scaler.to_dict()}

    @property
    def has_validation(self) -> bool:
        """True if at least one position has all its targets in the validation part."""
        return self.n_val > 0 and self.val_first_position < self.positions

    def check_model(self, model) -> None:
        """Raise ValueError unless ``model`` reads windows of W values and predicts K values."""
        c = model.config
        expected = ("dense", self.window, self.horizon)
        if (c.input_kind, c.input_size, c.output_size) != expected or c.head == "softmax":
            raise ValueError(f"this series needs a model with dense input_size={self.window}, output_size="
                             f"{self.horizon} and a 'linear' or 'tanh' head; got {c.input_kind} input_size="
                             f"{c.input_size}, output_size={c.output_size}, head {c.head!r}")

    def check_trainable(self, seq_len: int, batch_size: int) -> None:
        """Raise ``DataError`` unless the training positions hold ``batch_size`` back-to-back
        runs of ``seq_len`` positions, and (with ``val_fraction > 0``) there is a validation position."""
        T, B = _positive_int("seq_len", seq_len), _positive_int("batch_size", batch_size)
        if self.train_positions < B * T:
            raise DataError(f"the training part has {self.train_positions} positions but batch_size {B} x seq_len {T} "
                            f"needs {B * T}; use a longer series or a smaller batch_size, seq_len or val_fraction")
        if self.val_fraction > 0 and not self.has_validation:
            raise DataError(f"the validation part ({self.n_val} values) is shorter than the horizon {self.horizon}; "
                            f"use a larger val_fraction or val_fraction 0")

    def batches_per_epoch(self, batch_size: int, seq_len: int) -> int:
        """Sequential batches before the streams wrap around (one pass over the training positions)."""
        self.check_trainable(seq_len, batch_size)
        return self.train_positions // batch_size // seq_len

    def batches(self, batch_size: int, seq_len: int, rng: np.random.Generator | None = None,
                mode: str = "sequential", start: int = 0) -> Iterator[Batch]:
        """Infinite iterator of ``Batch(x (B, T, W), y (B, T, K), reset)`` over training positions,
        with the semantics of ``engine.data.TextCorpus.batches``: "sequential" cuts the positions
        into B contiguous streams and batch k holds window ``k mod per_epoch`` of each (carry the
        state; ``reset`` on each epoch's first batch; ``start=k`` resumes at batch k); "random"
        draws each row's offset from ``rng`` (``reset`` always True, ``start`` ignored)."""
        if mode not in BATCH_MODES:
            raise ValueError(f"unknown batch mode {mode!r}; expected one of {BATCH_MODES}")
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
            raise ValueError(f"start must be a non-negative integer, got {start!r}")
        self.check_trainable(seq_len, batch_size)
        if mode == "random" and not isinstance(rng, np.random.Generator):
            raise ValueError("random batches need an np.random.Generator (rng)")
        return self._batches(batch_size, seq_len, rng, mode, int(start))

    def _batches(self, B: int, T: int, rng, mode: str, k: int) -> Iterator[Batch]:
        span = np.arange(T)  # (T,)
        L = self.train_positions // B  # stream length
        per_epoch = L // T
        while True:
            if mode == "random":
                offsets = rng.integers(0, self.train_positions - T + 1, size=B)  # (B,) window starts
                reset = True
            else:
                offsets = np.arange(B) * L + (k % per_epoch) * T  # (B,) stream b at window k
                reset = k % per_epoch == 0
            idx = offsets[:, None] + span  # (B, T) positions
            yield Batch(x=self.inputs[idx], y=self.targets[idx], reset=reset)  # (B, T, W), (B, T, K)
            k += 1

    def predict_scaled(self, model) -> np.ndarray:
        """The model's outputs at every position, one pass from a zero state: ``(M, K)`` scaled."""
        self.check_model(model)
        return model.forward(self.inputs[None]).outputs[0].astype(np.float64)  # (M, K)

    def evaluate(self, model) -> SeriesScore:
        """MSE over every validation position and horizon step, in scaled and original units.

        The model runs over the whole series from a zero state (the training part warms the
        state up), exactly as in ``predict_all``."""
        if not self.has_validation:
            raise DataError("this series has no validation positions (val_fraction is 0 or too small)")
        v = slice(self.val_first_position, None)
        outputs = self.predict_scaled(model)[v]  # (M_val, K)
        targets = self.targets[v].astype(np.float64)  # (M_val, K)
        mse = float(np.mean((outputs - targets) ** 2))
        original = self.scaler.inverse_transform(outputs) - self.scaler.inverse_transform(targets)  # (M_val, K)
        return SeriesScore(mse=mse, mse_original=float(np.mean(original ** 2)))

    def validation_loss(self, model, batch_size: int | None = None, stop=None) -> float | None:
        """``evaluate(model).mse`` (scaled units, the training loss's), or None without validation
        positions: the hook a trainer calls (``batch_size`` and ``stop`` are accepted for the
        text corpus's signature and not used: the whole series runs in one forward pass,
        ``predict_scaled``)."""
        if not self.has_validation:
            return None
        return self.evaluate(model).mse


def predict_all(model, dataset: SeriesDataset) -> SeriesPrediction:
    """One-step-ahead predictions for every position of ``dataset``, in original units."""
    predicted = dataset.scaler.inverse_transform(dataset.predict_scaled(model)[:, 0])  # (M,)
    index = np.arange(dataset.positions) + dataset.window  # (M,)
    return SeriesPrediction(index=index, predicted=predicted, actual=dataset.values[index].copy(),
                            val_start=len(dataset.values) - dataset.n_val)


def forecast(model, history_scaled, steps: int) -> np.ndarray:
    """Roll a forecast ``steps`` values past the end of ``history_scaled`` ``(n,)`` (scaled
    units, n >= the model's window W = ``input_size``), feeding each prediction back in.

    The model first reads every window of the history from a zero state; then each new value
    is its first output (the next value; later horizon outputs are not used). Returns
    ``(steps,) float64`` in scaled units.
    """
    c = model.config
    if c.input_kind != "dense" or c.head == "softmax":
        raise ValueError("forecast needs a model with dense input and a 'linear' or 'tanh' head")
    W = c.input_size
    history = np.asarray(history_scaled, dtype=np.float64)  # (n,)
    if history.ndim != 1 or len(history) < W or not np.all(np.isfinite(history)):
        raise ValueError(f"history must hold at least {W} finite values (the window), got shape {history.shape}")
    steps = _positive_int("steps", steps)
    result = model.forward(sliding_windows(history, W)[None].astype(model.dtype))  # (1, n-W+1, O)
    state = result.state
    window = history[-W:].copy()  # (W,)
    out = np.empty(steps, np.float64)  # (steps,)
    out[0] = result.outputs[0, -1, 0]
    for s in range(1, steps):
        window = np.append(window[1:], out[s - 1])  # (W,)
        prediction, state, _ = model.step(window[None].astype(model.dtype), state)  # (1, O)
        out[s] = prediction[0, 0]
    return out
