"""Text data: reading a user's file safely, the character vocabulary, and training batches.

``load_text`` / ``decode_text`` turn a file into a clean ``str`` (UTF-8 with or without BOM,
UTF-16 or UTF-32 with BOM, UTF-16 without BOM; CRLF and lone CR normalised to LF) and refuse,
with a one-line ``DataError`` naming the file, anything that is missing, unreadable, a folder
or special file (``engine.safe_read``), too big, binary, badly encoded or empty.

``CharVocab`` maps characters to token ids ``0 .. V-1`` in sorted (code point) order, so the
same text always gives the same vocabulary.

``TextCorpus`` splits the encoded text into a training part and a validation part (the last
``val_fraction`` of the text) and cuts the training part into batches of next-character
prediction windows: ``x (B, T)`` ids and ``y (B, T)`` the ids one position later. It
implements ``Dataset``, the interface the trainer uses (as ``engine.series.SeriesDataset`` does).
"""

from __future__ import annotations

import math
import os
from typing import Iterator, NamedTuple, Protocol

import numpy as np

from .errors import DataError
from .evaluation import evaluate
from .memory import check_fits
from .model import TOKEN_INPUTS
from .safe_read import read_bytes

DEFAULT_MAX_BYTES = 100 * 1024 * 1024  # refuse text files larger than 100 MiB
MAX_SHOWN_UNKNOWN = 20  # unknown characters listed in an error message
BINARY_CONTROL_SHARE = 0.10  # more than this share of control characters means "binary"
BATCH_MODES = ("sequential", "random")

_TEXT_CONTROLS = (9, 10, 11, 12, 13)  # \t \n \v \f \r: control characters that plain text uses
# byte-order marks, longest first (the UTF-32-LE mark begins with the UTF-16-LE one)
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"), (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"),
         (b"\xef\xbb\xbf", "utf-8", "UTF-8"), (b"\xff\xfe", "utf-16-le", "UTF-16"), (b"\xfe\xff", "utf-16-be", "UTF-16"))
UTF16_NUL_SHARE = 0.3  # UTF-16 without a BOM: at least this share of high bytes NUL (and no low byte NUL)
_UTF16_HINT_BYTES = 4096  # a NUL in the first bytes of a "binary" file suggests UTF-16/32
LATIN_SAMPLE_BYTES = 65536  # bytes around a UTF-8 error read as Windows-1252 for the hint (_single_byte_latin)
_ENCODE_CHUNK = 1 << 20  # characters encoded per chunk
TEXT_BYTES_PER_BYTE = 6  # peak memory of decoding, per byte of file: the bytes, up to 4 per decoded
# character for the str, and its copy with line endings normalised (ASCII text needs far less)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# --- vocabulary -------------------------------------------------------------------------------
VISIBLE_NAMES = {" ": "\u2423", "\n": "\\n", "\t": "\\t", "\r": "\\r"}  # how invisible characters are shown


def display_char(ch: str) -> str:
    """One character as the app shows it: a space as ``␣``, newline, tab and carriage return as
    ``\\n``, ``\\t``, ``\\r``, other non-printable characters as ``\\uXXXX``."""
    return VISIBLE_NAMES.get(ch, ch if ch.isprintable() else f"\\u{ord(ch):04x}")


class CharVocab:
    """Characters <-> token ids. ``chars`` is a sorted tuple of unique single characters;
    ``chars[i]`` is token id ``i`` (ids are in ``[0, len(vocab) - 1]``)."""

    def __init__(self, chars):
        if isinstance(chars, str):
            raise DataError("CharVocab takes a sequence of characters; use CharVocab.from_text(text) for a string")
        chars = tuple(chars)
        if not chars:
            raise DataError("the vocabulary is empty; it needs at least one character")
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise DataError(f"vocabulary entries must be single characters, got {bad[:MAX_SHOWN_UNKNOWN]!r}")
        if len(set(chars)) != len(chars):
            dupes = sorted({c for c in chars if chars.count(c) > 1})
            raise DataError(f"vocabulary characters must be unique; repeated: {_show_chars(dupes)}")
        if list(chars) != sorted(chars):
            raise DataError("vocabulary characters must be in sorted (code point) order")
        self.chars: tuple[str, ...] = chars
        codes = np.array([ord(c) for c in chars], dtype=np.int64)  # (V,) sorted code points
        self._table = np.full(int(codes[-1]) + 2, -1, np.int32)  # (max code + 2,) code point -> id, -1: unknown
        self._table[codes] = np.arange(len(chars), dtype=np.int32)
        self._ids = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        """The sorted set of characters in ``text`` (deterministic)."""
        if not isinstance(text, str) or not text:
            raise DataError("cannot build a vocabulary from an empty text")
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other) -> bool:
        return isinstance(other, CharVocab) and self.chars == other.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} chars: {''.join(self.chars)[:40]!r})"

    def _lookup(self, text: str):
        """``(codes (T,), ids (T,) int32, known (T,) bool)``: ids -1 where not known. One table
        lookup per character (the table covers code points up to the largest known one)."""
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")  # (T,) code points
        last = len(self._table) - 1  # an unknown code point's entry (-1), also for every larger one
        ids = self._table[np.minimum(codes, last)]  # (T,)
        return codes, ids, ids >= 0

    def unknown(self, text: str) -> list[str]:
        """Sorted unique characters of ``text`` that are not in the vocabulary."""
        found = set()
        for start in range(0, len(text), _ENCODE_CHUNK):  # chunks bound the temporary memory
            codes, _, known = self._lookup(text[start : start + _ENCODE_CHUNK])  # (C,), _, (C,)
            if not known.all():
                found.update(np.unique(codes[~known]).tolist())
        return [chr(c) for c in sorted(found)]

    def encode(self, text: str, source: str = "text") -> np.ndarray:
        """Token ids ``(T,) int64`` of ``text``; ``DataError`` listing any unknown characters
        (``source`` names the text in that message)."""
        if not isinstance(text, str):
            raise DataError(f"{source} must be a str, got {type(text).__name__}")
        ids = np.empty(len(text), dtype=np.int64)  # (T,)
        for start in range(0, len(text), _ENCODE_CHUNK):  # chunks bound the temporary memory
            _, chunk, known = self._lookup(text[start : start + _ENCODE_CHUNK])  # _, (C,), (C,)
            if not known.all():
                raise DataError(f"{source} has characters not in the vocabulary: {_show_chars(self.unknown(text))}")
            ids[start : start + len(chunk)] = chunk
        return ids

    def decode(self, ids) -> str:
        """The text of token ids ``(T,)``."""
        ids = np.asarray(ids)  # (T,)
        if ids.ndim != 1 or not (ids.size == 0 or np.issubdtype(ids.dtype, np.integer)):
            raise DataError(f"token ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.chars)):
            raise DataError(f"token ids must be in [0, {len(self.chars) - 1}]")
        return "".join(self.chars[i] for i in ids.tolist())

    def index(self, ch: str) -> int:
        """Token id of the character ``ch``."""
        if ch not in self._ids:
            raise DataError(f"character {ch!r} is not in the vocabulary")
        return self._ids[ch]

    def to_list(self) -> list[str]:
        """The characters as a JSON-friendly list (``CharVocab(v.to_list()) == v``)."""
        return list(self.chars)


def _show_chars(chars: list[str]) -> str:
    """``'a', 'é', '\\t'`` (repr'd; at most MAX_SHOWN_UNKNOWN, then how many more)."""
    shown = ", ".join(repr(c) for c in chars[:MAX_SHOWN_UNKNOWN])
    more = len(chars) - MAX_SHOWN_UNKNOWN
    return shown + (f" and {more} more" if more > 0 else "")


# --- reading files ----------------------------------------------------------------------------
def _looks_binary(codes: np.ndarray) -> bool:
    """True if code units ``(N,)`` hold a NUL or more than BINARY_CONTROL_SHARE control chars."""
    if codes.size == 0:
        return False
    control = (codes < 32) | (codes == 127)  # (N,)
    control &= ~np.isin(codes, _TEXT_CONTROLS)  # (N,)
    return bool((codes == 0).any() or control.mean() > BINARY_CONTROL_SHARE)


def _utf16_without_bom(data: bytes) -> str | None:
    """``"utf-16-le"`` or ``"utf-16-be"`` when ``data`` has the NUL pattern of UTF-16 text
    without a byte-order mark: an even length, most code units' high byte NUL (text in the
    Latin range) and no code unit NUL as a whole; else None."""
    if len(data) < 2 or len(data) % 2:
        return None
    pairs = np.frombuffer(data, dtype=np.uint8).reshape(-1, 2)  # (N, 2) bytes of each code unit
    zero = pairs == 0  # (N, 2)
    if zero.all(axis=1).any():  # a NUL character: binary, not text
        return None
    share = zero.mean(axis=0)  # (2,) share of NUL bytes at even and odd offsets
    if share[1] >= UTF16_NUL_SHARE and share[0] == 0:
        return "utf-16-le"
    if share[0] >= UTF16_NUL_SHARE and share[1] == 0:
        return "utf-16-be"
    return None


def _single_byte_latin(data: bytes, around: int) -> bool:
    """True when the ``LATIN_SAMPLE_BYTES`` of ``data`` around offset ``around`` decode as
    Windows-1252 into printable characters and whitespace: Western European text in a
    single-byte encoding, not UTF-8 (the caller checks that nothing before ``around`` is
    UTF-8 beyond ASCII: a UTF-8 file with one stray byte converted as Windows-1252 would
    garble every other accent)."""
    start = max(0, around - LATIN_SAMPLE_BYTES // 2)
    try:
        text = data[start : start + LATIN_SAMPLE_BYTES].decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8d, 0x8f, 0x90, 0x9d are undefined in Windows-1252
        return False
    return text.translate({9: None, 10: None, 13: None}).isprintable()


def decode_text(data: bytes, source: str = "<text>") -> str:
    """Decode a text file's bytes: UTF-8 (optional BOM), UTF-16 or UTF-32 with a BOM, or
    UTF-16 without a BOM recognised by its NUL bytes (``_utf16_without_bom``); line endings
    ``\\r\\n`` and lone ``\\r`` become ``\\n`` (Python's universal newlines).

    Raises ``DataError`` (naming ``source``) for binary data (saying how to convert it if it
    may be UTF-16 or UTF-32 text), invalid encoding (with the byte offset of the first bad
    byte), and empty or whitespace-only text.
    """
    binary = f"{source} looks like a binary file, not text; choose a plain-text (UTF-8) file"
    encoding, label, bom = "utf-8", "UTF-8", b""
    for mark, codec, name in _BOMS:
        if data.startswith(mark):
            encoding, label, bom = codec, name, mark
            break
    if not bom:
        guessed = _utf16_without_bom(data)
        if guessed is not None:
            encoding, label = guessed, "UTF-16"
    if encoding == "utf-8":
        if _looks_binary(np.frombuffer(data, dtype=np.uint8)):  # (N,) bytes
            if b"\x00" in data[:_UTF16_HINT_BYTES]:
                raise DataError(f"{binary} (if it is UTF-16 or UTF-32 text without a byte-order mark, convert it "
                                f"first, e.g. iconv -f UTF-16LE -t UTF-8 FILE > FILE.txt)")
            raise DataError(binary)
    body = data[len(bom):]
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as e:
        offset = e.start + len(bom)
        other = ""
        if not bom and body[: e.start].isascii() and _single_byte_latin(body, e.start):
            other = (" (it reads as Windows-1252 / Latin-1, which Excel's 'CSV' and older Windows editors write: "
                     "iconv -f WINDOWS-1252 -t UTF-8 FILE > FILE.utf8)")
        elif not bom:
            other = " (from UTF-16, for instance: iconv -f UTF-16LE -t UTF-8 FILE > FILE.txt)"
        raise DataError(
            f"{source} is not valid {label}: first bad byte 0x{data[offset]:02x} at byte offset "
            f"{offset} ({e.reason}); save it as UTF-8{other} and try again"
        ) from None
    if encoding != "utf-8" and _looks_binary(np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")):  # (N,)
        raise DataError(binary)
    if not text.strip():
        raise DataError(f"{source} is empty (no text other than whitespace)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def load_text(path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Read and decode the text file at ``path`` (see ``decode_text``).

    The file is read by ``engine.safe_read.read_bytes``: the size is checked before reading, so
    a file over ``max_bytes`` (or one whose decoding would not fit in the memory available:
    ``engine.memory.NotEnoughMemory``) is never loaded, and missing files, folders, special
    files (FIFOs, devices: refused without blocking) and unreadable files raise ``DataError``.
    """
    max_bytes = _positive_int("max_bytes", max_bytes)
    name = os.fspath(path)

    def fits(size: int) -> None:
        check_fits(f"reading {name}", TEXT_BYTES_PER_BYTE * size, detail="the file's bytes and the decoded text")

    return decode_text(read_bytes(name, max_bytes, before_read=fits), source=name)


# --- corpus and batches -----------------------------------------------------------------------
class Batch(NamedTuple):
    """One training batch: inputs ``x (B, T)`` and targets ``y (B, T)`` (int64 token ids,
    ``y[:, t]`` is the character after ``x[:, t]``); ``reset``: start from a zero state."""

    x: np.ndarray
    y: np.ndarray
    reset: bool


class Dataset(Protocol):
    """What ``engine.train.Trainer`` needs of a dataset (``TextCorpus``, ``engine.series.SeriesDataset``)."""

    loss_unit: str  # the unit of the model's loss on this data, e.g. "nats/char"

    def check_model(self, model) -> None:
        """Raise ValueError unless ``model`` fits the data (inputs, outputs, head)."""

    def check_trainable(self, seq_len: int, batch_size: int) -> None:
        """Raise ``DataError`` unless the training part holds one batch of ``batch_size`` x ``seq_len``."""

    def batches_per_epoch(self, batch_size: int, seq_len: int) -> int:
        """Batches in one pass over the training part (the epoch of learning-rate schedules)."""

    def batches(self, batch_size: int, seq_len: int, rng: np.random.Generator | None = None,
                mode: str = "sequential", start: int = 0) -> Iterator[Batch]:
        """Infinite iterator of training batches (see ``TextCorpus.batches``)."""

    def validation_loss(self, model, batch_size: int, stop=None) -> float | None:
        """The loss over the whole validation part in ``loss_unit``; None without one, or when
        ``stop`` (a ``threading.Event``) is set before it is done."""

    def loss_bits(self, loss: float | None) -> float | None:
        """``loss`` in bits per symbol, or None (no such form, or ``loss`` None)."""

    def checkpoint_extra(self) -> dict:
        """Metadata a checkpoint of a model trained on this data needs (JSON-serialisable)."""


class TextCorpus:
    """A text encoded with a vocabulary and split into training and validation ids.

    ``val_fraction`` in [0, 0.5]: the *last* ``floor(N * val_fraction)`` characters are the
    validation part (0 = no validation). ``vocab`` None builds one from the whole text.
    Implements ``Dataset``; losses are mean cross-entropies in nats per character (``loss_unit``).
    """

    loss_unit = "nats/char"

    def __init__(self, text: str, vocab: CharVocab | None = None, val_fraction: float = 0.1):
        if not isinstance(text, str) or not text:
            raise DataError("the text is empty")
        val_fraction = float(val_fraction)
        if not 0.0 <= val_fraction <= 0.5:
            raise ValueError(f"val_fraction must be in [0, 0.5], got {val_fraction!r}")
        self.text = text
        self.vocab = CharVocab.from_text(text) if vocab is None else vocab
        self.val_fraction = val_fraction
        ids = self.vocab.encode(text)  # (N,)
        n_val = int(len(ids) * val_fraction)
        self.train_ids = ids[: len(ids) - n_val]  # (N - M,)
        self.val_ids = ids[len(ids) - n_val:]  # (M,)

    def check_trainable(self, seq_len: int, batch_size: int) -> None:
        """Raise ``DataError`` unless the training part holds one batch of ``batch_size``
        back-to-back windows of ``seq_len + 1`` characters (``batch_size * seq_len + 1``) and
        the validation part (when ``val_fraction > 0``) has at least 2 characters."""
        T = _positive_int("seq_len", seq_len)
        B = _positive_int("batch_size", batch_size)
        need, have = B * T + 1, len(self.train_ids)
        if have < need:
            raise DataError(
                f"the training text has {have} characters but batch_size {B} x seq_len {T} needs at least "
                f"{need}; use a longer text or a smaller batch_size, seq_len or val_fraction"
            )
        if self.val_fraction > 0 and len(self.val_ids) < 2:
            raise DataError(
                f"the validation part has {len(self.val_ids)} characters but needs at least 2; "
                f"use a longer text, a larger val_fraction, or val_fraction 0"
            )

    def check_model(self, model) -> None:
        """Raise ValueError unless ``model`` reads characters of this vocabulary as token ids
        (one-hot, embedding or scaled index) and predicts them with a softmax head."""
        cfg = model.config
        if cfg.input_kind not in TOKEN_INPUTS or cfg.head != "softmax":
            raise ValueError("the text trainer needs a model that reads token ids (one-hot, embedding or "
                             "scaled index) and has a softmax head")
        V = len(self.vocab)
        if cfg.input_size != V or cfg.output_size != V:
            raise ValueError(f"the model is for {cfg.input_size} characters but the text's vocabulary has {V}")

    def validation_loss(self, model, batch_size: int, stop=None) -> float | None:
        """Mean cross-entropy (nats/char) over the whole validation part
        (``engine.evaluation.evaluate`` with ``batch_size`` streams), or None with fewer than 2
        validation characters or once ``stop`` (a ``threading.Event``) is set."""
        if len(self.val_ids) < 2:
            return None
        return evaluate(model, self.val_ids, batch_size, stop=stop)

    @staticmethod
    def loss_bits(loss: float | None) -> float | None:
        """``loss`` in bits per character (``loss / ln 2``); None for None."""
        return None if loss is None else loss / math.log(2.0)

    def checkpoint_extra(self) -> dict:
        """Metadata a checkpoint of a model trained on this corpus needs beyond the vocabulary: none."""
        return {}

    def batches_per_epoch(self, batch_size: int, seq_len: int) -> int:
        """Sequential batches before the streams wrap around."""
        self.check_trainable(seq_len, batch_size)
        return (len(self.train_ids) - 1) // batch_size // seq_len

    def batches(self, batch_size: int, seq_len: int, rng: np.random.Generator | None = None,
                mode: str = "sequential", start: int = 0) -> Iterator[Batch]:
        """Infinite iterator of ``Batch`` from the training ids (checked first).

        ``"sequential"`` (char-rnn): the ids are cut into ``batch_size`` contiguous streams of
        ``L = (N - 1) // batch_size`` positions; batch ``k`` holds window
        ``k mod batches_per_epoch`` of every stream, so row ``b`` of batch ``k + 1`` continues
        row ``b`` of batch ``k`` and the caller may carry the hidden state. ``reset`` is True on
        the first window of every epoch. ``start=k`` begins at batch ``k``, exactly as if ``k``
        batches had been taken. ``rng`` is not used.

        ``"random"``: every row is a window at an offset drawn uniformly from ``rng`` (required);
        ``reset`` is always True. The draws depend only on ``rng``'s state, so to resume, restore
        the rng state; ``start`` has no effect in this mode.
        """
        if mode not in BATCH_MODES:
            raise ValueError(f"unknown batch mode {mode!r}; expected one of {BATCH_MODES}")
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
            raise ValueError(f"start must be a non-negative integer, got {start!r}")
        self.check_trainable(seq_len, batch_size)
        if mode == "random":
            if not isinstance(rng, np.random.Generator):
                raise ValueError("random batches need an np.random.Generator (rng)")
            return self._random_batches(batch_size, seq_len, rng)
        return self._sequential_batches(batch_size, seq_len, int(start))

    def _sequential_batches(self, B: int, T: int, start: int) -> Iterator[Batch]:
        per_epoch = self.batches_per_epoch(B, T)
        L = (len(self.train_ids) - 1) // B
        xs = self.train_ids[: B * L].reshape(B, L)  # (B, L) one stream per row
        ys = self.train_ids[1 : B * L + 1].reshape(B, L)  # (B, L) the next character
        k = start
        while True:
            j = (k % per_epoch) * T
            yield Batch(x=xs[:, j : j + T].copy(), y=ys[:, j : j + T].copy(), reset=j == 0)  # (B, T) each
            k += 1

    def _random_batches(self, B: int, T: int, rng: np.random.Generator) -> Iterator[Batch]:
        span = np.arange(T)  # (T,)
        while True:
            offsets = rng.integers(0, len(self.train_ids) - T, size=B)  # (B,) window starts
            idx = offsets[:, None] + span  # (B, T)
            yield Batch(x=self.train_ids[idx], y=self.train_ids[idx + 1], reset=True)  # (B, T) each
