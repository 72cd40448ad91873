"""The two sequence types: labels, captions, document spans, original units, what is parked."""

from pathlib import Path

import numpy as np
import pytest

from engine.data import CharVocab
from lstmviz.core.sequence import (SERIES_SEPARATOR, KnownText, SeriesSequence, TextSequence, dropped_message,
                                   known_text, split_known)


def test_text_sequence_labels_captions_and_spans():
    seq = TextSequence("a b\n")
    assert seq.steps == 4 and seq.kind == "text" and seq.editable and seq.predicts_characters
    assert [seq.label(t) for t in range(4)] == ["a", " ", "b", "\n"]
    assert [seq.shown(t) for t in range(4)] == ["a", "\u2423", "b", "\\n"]
    assert seq.caption(2) == "char 'b'" and seq.caption(3) == "char '\\n'"
    assert seq.document() == "a b\n" and seq.span(2) == (2, 3) and seq.step_at(2) == 2
    assert seq.parked_text == "a b\n" and seq.targets is None
    np.testing.assert_array_equal(seq.original([0.5, -2.0]), [0.5, -2.0])
    with pytest.raises(IndexError, match="no step 4"):
        seq.label(4)
    assert seq.display_name("/x/model.npz", None) == "model.npz — typed text"
    assert seq.display_name(None, "/y/t.txt") == "no model — t.txt"


def test_wide_characters_span_two_document_positions_and_map_back():
    text = "a\U0001F600b\U0001D465\U0001F600c"  # a 😀 b 𝑥 😀 c
    seq = TextSequence(text)
    assert seq.wide.tolist() == [1, 3, 4]
    assert [seq.span(t) for t in range(6)] == [(0, 1), (1, 3), (3, 4), (4, 6), (6, 8), (8, 9)]
    assert [seq.step_at(p) for p in range(9)] == [0, 1, 1, 2, 3, 3, 4, 4, 5]
    assert len(text.encode("utf-16-le")) // 2 == seq.span(5)[1]  # the document's length in UTF-16 units
    assert TextSequence(text, alphabet="abc").wide.size == 0  # an alphabet without wide characters: not scanned


def test_series_sequence_labels_spans_and_original_units():
    labels = ["1.5", "-20", "3"]
    targets = np.array([[0.0], [0.5], [-1.0]])  # (T, K) scaled
    seq = SeriesSequence(labels, targets, inverse=lambda x: 10.0 * np.asarray(x) + 5.0, parked_text="abc")
    assert seq.kind == "series" and not seq.editable and not seq.predicts_characters and not seq.traced_live
    assert seq.text == "" and seq.parked_text == "abc" and seq.steps == 3
    assert seq.caption(1) == "next -20" and seq.shown(1) == "-20"
    doc = seq.document()
    assert doc == "1.5" + SERIES_SEPARATOR + "-20" + SERIES_SEPARATOR + "3"
    starts = [0, 3 + len(SERIES_SEPARATOR), 3 + 3 + 2 * len(SERIES_SEPARATOR)]
    for t, label in enumerate(labels):
        assert seq.span(t) == (starts[t], starts[t] + len(label))
        assert doc[slice(*seq.span(t))] == label
    assert [seq.step_at(p) for p in (0, 2, 3, starts[1], starts[2] - 1, len(doc) - 1)] == [0, 0, 0, 1, 1, 2]
    np.testing.assert_allclose(seq.original(targets), [[5.0], [10.0], [-5.0]])
    assert seq.has_original_units
    unscaled = SeriesSequence(labels)
    assert not unscaled.has_original_units and unscaled.original([0.25])[0] == 0.25
    assert seq.display_name("m.npz", "t.txt") == "numeric series (3 steps)"


def test_series_sequence_refuses_bad_targets_and_inverse():
    with pytest.raises(ValueError, match="targets"):
        SeriesSequence(["1", "2"], targets=np.zeros((3, 1)))
    with pytest.raises(ValueError, match="callable"):
        SeriesSequence(["1"], inverse=3.0)


def test_known_text_drops_unknown_characters_and_names_them():
    vocab = CharVocab.from_text("abc ")
    assert known_text("a-b c!", vocab) == "ab c"
    assert known_text("abc", vocab) == "abc"
    assert known_text("xyz", vocab) == ""
    assert split_known("a-b!! c-", vocab) == KnownText("ab c", ("!", "-"), 4)
    assert split_known("abc", vocab) == KnownText("abc", (), 0)
    assert dropped_message(("!", "-")) == "Not in the model's vocabulary, left out: '!', '-'"


def test_the_core_package_imports_no_qt():
    """``lstmviz.core`` is Qt-free: importing every module loads neither PySide6 nor pyqtgraph."""
    import subprocess
    import sys

    code = ("import sys, lstmviz.core.history, lstmviz.core.levels, lstmviz.core.recipes, lstmviz.core.sequence; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph')))")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root).stdout
    assert out.strip() == "[]"
