"""How every panel names a step: one convention, made here and nowhere else.

The Session's cursor ``t`` counts the steps taken (``0 <= t <= T``); step ``t`` is the one that
read the sequence element at index ``t - 1`` (for text, the character just read). So after
``seek(150)`` on a 562-character text every panel says "step 150", the transport says
"step 150 of 562", and the heatmap column of index 149 is "step 150" (its right edge is the
cursor line at x = 150). Trace arrays and heatmap columns are indexed from 0; panels turn such an
index into words with :func:`step_label`, and the cursor with :func:`position_label`.
"""

from __future__ import annotations


def step_number(index: int) -> int:
    """The 1-based step number of trace index ``index`` (``index >= 0``); ValueError below 0."""
    if index < 0:
        raise ValueError(f"a step index is >= 0, got {index}")
    return index + 1


def step_label(index: int, total: int | None = None) -> str:
    """``"step 150"`` (or ``"step 150 of 562"`` with ``total``) for trace index ``index`` (149)."""
    number = step_number(index)
    return f"step {number}" if total is None else f"step {number} of {total}"


def position_label(t: int, total: int) -> str:
    """The cursor after ``t`` of ``total`` steps: ``"step 150 of 562"``, or
    ``"before step 1 of 562"`` when nothing has been read (``t == 0``)."""
    if t <= 0:
        return f"before step 1 of {total}"
    return step_label(t - 1, total)


def lost_characters(unknown: list, count: int) -> str:
    """Words for the characters a model cannot read: ``unknown`` (sorted unique characters, as
    ``CharVocab.unknown`` returns them) that occur ``count`` times in the shown text:
    ``"3 characters of the text ('"', '(', ')'), 12 in all, are not in its vocabulary and
    will be left out."``; every character is listed (``repr``, so spaces and newlines show)."""
    listed = ", ".join(repr(c) for c in unknown)
    kinds = f"{len(unknown)} character{'s' if len(unknown) != 1 else ''}"
    return (f"{kinds} of the text ({listed}), {count} in all, "
            "are not in its vocabulary and will be left out.")
