"""Features of text positions, for probing what units track (``probe``).

Position ``t`` describes the text *after reading character t*, which is what ``h_t`` has seen:

    quote          binary      inside double quotes: an odd number of '"' in text[:t + 1]
                               (the opening quote is inside, the closing one outside)
    depth_round    continuous  open '(' minus ')' in text[:t + 1], never below 0 (an unmatched
                               closer is ignored: depth_t = max(0, depth_{t-1} + d_t))
    depth_square   continuous  the same for '[' and ']'
    depth          continuous  depth_round + depth_square
    line_pos       continuous  column of character t in its line (0 = first character)
    in_word        binary      character t is a word character (letter, digit or '_')
    after_newline  binary      character t starts a line (the one before it is '\\n')
    letter, digit, punct, space   binary: character t's class (``str.isalpha``, ``isdigit``,
                               Unicode punctuation or symbol categories P* / S*, ``isspace``)
    regex:PATTERN  binary      character t lies inside a (non-empty) match of PATTERN (``re``)
    spans          binary      character t lies inside one of the user's ``[start, end)`` spans

All are computed vectorised over the code points: a 1 MB text costs a few ``(T,)`` arrays.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

BUILTIN_FEATURES = ("quote", "depth", "depth_round", "depth_square", "line_pos", "in_word", "after_newline",
                    "letter", "digit", "punct", "space")
REGEX_PREFIX = "regex:"


@dataclass(frozen=True)
class Feature:
    """A feature's name, whether it is binary (values 0/1) and its ``values (T,)`` float64."""

    name: str
    binary: bool
    values: np.ndarray  # (T,)


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")  # (T,) code points


def _clamped_depth(codes: np.ndarray, opener: str, closer: str) -> np.ndarray:
    """``depth_t = max(0, depth_{t-1} + d_t)`` in closed form: ``S_t - min(0, min_{k<=t} S_k)``
    with ``S`` the prefix sum of ``d`` (+1 opener, -1 closer): the reflected walk."""
    d = (codes == ord(opener)).astype(np.int64) - (codes == ord(closer))  # (T,)
    s = np.cumsum(d)  # (T,)
    return (s - np.minimum(np.minimum.accumulate(s), 0)).astype(np.float64)  # (T,)


def _char_table(codes: np.ndarray, test) -> np.ndarray:
    """``test(ch)`` for each code point, evaluated once per distinct character."""
    distinct, inverse = np.unique(codes, return_inverse=True)  # (U,), (T,)
    table = np.array([bool(test(chr(c))) for c in distinct.tolist()], dtype=bool)  # (U,)
    return table[inverse.reshape(-1)].astype(np.float64)  # (T,)


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"


def _line_pos(codes: np.ndarray) -> np.ndarray:
    t = np.arange(codes.size)  # (T,)
    prev_newline = np.where(codes == ord("\n"), t, -1)  # (T,) index of a newline at t, else -1
    last = np.maximum.accumulate(prev_newline)  # (T,) last newline at or before t
    last = np.concatenate(([-1], last[:-1]))  # (T,) last newline strictly before t
    return (t - last - 1).astype(np.float64)  # (T,)


def builtin_feature(text: str, name: str) -> Feature:
    """The built-in feature ``name`` (module docstring) of ``text``; ValueError if unknown."""
    codes = _codes(text)  # (T,)
    if name == "quote":
        return Feature(name, True, (np.cumsum(codes == ord('"')) % 2).astype(np.float64))
    if name == "depth_round":
        return Feature(name, False, _clamped_depth(codes, "(", ")"))
    if name == "depth_square":
        return Feature(name, False, _clamped_depth(codes, "[", "]"))
    if name == "depth":
        return Feature(name, False, _clamped_depth(codes, "(", ")") + _clamped_depth(codes, "[", "]"))
    if name == "line_pos":
        return Feature(name, False, _line_pos(codes))
    if name == "after_newline":
        values = np.zeros(codes.size)  # (T,)
        values[1:] = codes[:-1] == ord("\n")
        return Feature(name, True, values)
    tests = {"in_word": lambda ch: ch.isalnum() or ch == "_", "letter": str.isalpha, "digit": str.isdigit,
             "punct": _is_punct, "space": str.isspace}
    if name not in tests:
        raise ValueError(f"unknown feature {name!r}; expected one of {', '.join(BUILTIN_FEATURES)} or regex:PATTERN")
    return Feature(name, True, _char_table(codes, tests[name]))


def regex_feature(text: str, pattern: str) -> Feature:
    """1 where character t is inside a non-empty match of ``pattern``; ValueError for a bad pattern."""
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise ValueError(f"bad regular expression {pattern!r}: {e}") from None
    values = np.zeros(len(text))  # (T,)
    for m in compiled.finditer(text):
        values[m.start() : m.end()] = 1.0
    return Feature(REGEX_PREFIX + pattern, True, values)


def span_feature(length: int, spans, name: str = "spans") -> Feature:
    """1 inside any of the ``[start, end)`` ``spans`` of a text of ``length`` characters;
    ValueError for a span outside ``[0, length]`` or with ``end < start``."""
    values = np.zeros(length)  # (T,)
    for start, end in spans:
        if not 0 <= start <= end <= length:
            raise ValueError(f"span [{start}, {end}) is not inside [0, {length}]")
        values[start:end] = 1.0
    return Feature(name, True, values)


def feature(text: str, spec: str) -> Feature:
    """A feature by name: one of ``BUILTIN_FEATURES`` or ``"regex:PATTERN"``."""
    if spec.startswith(REGEX_PREFIX):
        return regex_feature(text, spec[len(REGEX_PREFIX) :])
    return builtin_feature(text, spec)
