"""Long texts: the text panel colours only what is on screen (counted, whatever the length),
and the colours it draws there are the engine's values."""

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from lstmviz.panels.text import LONG_LINE, LONG_LINE_PENDING, MARGIN, _StyledLayout
from lstmviz.plots import value_colours

from .conftest import TEXT


def formatted_lines(panel) -> dict:
    """{(start, end): (r, g, b)} of every format range in every line layout of the document."""
    found, block = {}, panel.editor.document().begin()
    while block.isValid():
        for r in block.layout().formats():
            start = block.position() + r.start
            found[start, start + r.length] = r.format.background().color().getRgb()[:3]
        block = block.next()
    return found


def drawn(panel) -> dict:
    """{(start, end): (r, g, b)} of every coloured span the editor draws, read from the editor:
    every line layout's format ranges and the extra selections with a background (not the
    current step's bold highlight)."""
    found = formatted_lines(panel)
    for sel in panel.editor.extraSelections():
        if sel.format.background().style() != QtCore.Qt.NoBrush and sel.format.fontWeight() != QtGui.QFont.Bold:
            found[sel.cursor.selectionStart(), sel.cursor.selectionEnd()] = sel.format.background().color().getRgb()[:3]
    return dict(sorted(found.items()))


def drawn_colours(window) -> dict:
    """{character index: (r, g, b)} of the editor's coloured characters."""
    return {start: rgb for (start, _), rgb in drawn(window.panel("text")).items()}


def coloured_at_end(window, qtbot, copies: int) -> tuple:
    """Open ``TEXT * copies``, colour by unit 3's h, go to the end, step back and forth:
    (characters coloured by the seek, most coloured by one step, coloured selections shown)."""
    s = window.session
    s.set_text(TEXT * copies)
    s.cancel_pass()
    s.select(0, 3, -1)
    panel = window.panel("text")
    s.seek(s.steps - 5)
    qtbot.waitUntil(lambda: not s.seeking, timeout=60000)
    at_seek = panel.recoloured
    per_step = []
    for move in (s.back, s.back, s.step, s.step, s.step):
        assert move()
        per_step.append(panel.recoloured)
    return at_seek, max(per_step), len(drawn_colours(window))


def coloured_by_unit_3_at(s, qtbot, text: str, t: int) -> None:
    """Show ``text`` coloured by unit 3 of layer 0's hidden state, the cursor at step ``t`` once the seek is done."""
    s.set_text(text)
    s.select(0, 3, -1)
    s.seek(t)
    qtbot.waitUntil(lambda: not s.seeking, timeout=60000)


def test_recolouring_is_bounded_whatever_the_length(window, qtbot):
    """The same window shows a text 10 times longer: the characters coloured on a seek and on
    a step do not grow with the length; stepping colours at most one new character."""
    copies = 40
    first, step_short, shown_short = coloured_at_end(window, qtbot, copies)
    lo, hi = window.panel("text").visible_steps()
    bound = (hi - lo) + 2 * MARGIN
    second, step_long, shown_long = coloured_at_end(window, qtbot, copies * 10)
    assert window.session.steps == len(TEXT) * copies * 10
    assert 0 < first <= bound and 0 < second <= bound and 0 < shown_long <= bound
    assert step_short == 1 and step_long == 1  # the step taken; stepping back colours none
    assert abs(shown_long - shown_short) <= 2 * (hi - lo)


def test_visible_colours_are_the_engines_values_and_scrolling_colours_the_new_view(window, qtbot):
    s = window.session
    text = TEXT * 200
    coloured_by_unit_3_at(s, qtbot, text, len(text) - 1)
    h = s.model.trace(s.vocab.encode(text)).gate("h", 0)[:, 3]  # (T,)
    expected = value_colours("h", h, s.levels("h", 0))  # (T, 3)
    lo, hi = window.panel("text").visible_steps()
    drawn = drawn_colours(window)
    assert set(range(lo, min(hi, s.t - 1))) <= set(drawn)
    assert all(drawn[k] == tuple(int(v) for v in expected[k]) for k in drawn)
    bar = window.panel("text").editor.verticalScrollBar()
    bar.setValue(0)  # the user scrolls to the top: the characters there are coloured now
    lo, hi = window.panel("text").visible_steps()
    drawn = drawn_colours(window)
    assert lo == 0 and set(range(0, hi)) <= set(drawn)
    assert all(drawn[k] == tuple(int(v) for v in expected[k]) for k in drawn)
    assert window.panel("text").recoloured <= (hi - lo) + 2 * MARGIN
    assert s.t == len(text) - 1  # scrolling does not move the cursor


def test_line_colours_follow_steps_and_edits_and_stay_on_screen(window, qtbot):
    """Colours drawn as line formats: only the window's lines carry any (every format range of
    the document is one of ``coloured()``), the current step and the line ends are selections,
    and after typing new lines above the cursor (blocks renumbered) and a re-run every colour is
    the new text's value at its position."""
    s, panel = window.session, window.panel("text")
    text = TEXT * 60
    coloured_by_unit_3_at(s, qtbot, text, len(text) - 30)
    for _ in range(3):
        assert s.step()
    formatted, coloured = formatted_lines(panel), panel.coloured()
    assert formatted and formatted.items() <= coloured.items()
    selected = coloured.keys() - formatted.keys()  # drawn as extra selections
    assert (s.t - 1, s.t) in selected and all(text[a] == "\n" for a, _ in selected - {(s.t - 1, s.t)})
    assert all(a >= len(text) - 30 - 2 * MARGIN - 200 for a, _ in formatted)  # nothing far above the window

    lo = min(start for start, _ in coloured)
    cursor = panel.editor.textCursor()
    cursor.setPosition(lo + 5)
    panel.editor.setTextCursor(cursor)
    panel.editor.insertPlainText("x\ny\n")  # typed: two more lines inside the coloured ones
    panel.apply_edit()
    edited = s.text
    assert edited == text[:lo + 5] + "x\ny\n" + text[lo + 5:]
    s.seek(len(edited) // 2)  # far from the edited lines: none of them keeps a colour
    qtbot.waitUntil(lambda: not s.seeking, timeout=60000)
    formatted, coloured = formatted_lines(panel), panel.coloured()
    assert formatted and formatted.items() <= coloured.items()
    assert all(abs(a - len(edited) // 2) < 2 * MARGIN + 400 for a, _ in formatted)
    s.seek(len(edited) - 20)
    qtbot.waitUntil(lambda: not s.seeking, timeout=60000)
    h = s.model.trace(s.vocab.encode(edited)).gate("h", 0)[:, 3]  # (T,)
    expected = value_colours("h", h, s.levels("h", 0))  # (T, 3)
    formatted, coloured = formatted_lines(panel), panel.coloured()
    assert formatted.items() <= coloured.items() and drawn(panel) == coloured
    assert all(coloured[a, b] == tuple(int(v) for v in expected[a]) for a, b in coloured)
    lo, hi = panel.visible_steps()
    assert set(range(lo, min(hi, s.t))) <= {a for a, _ in coloured}


@pytest.mark.parametrize("typed", ["\n", "x\ny\n"])
def test_lines_typed_into_coloured_lines_scrolled_up_to_leave_no_stale_colour(window, qtbot, typed):
    """The user scrolls up from the end into the coloured lines and types new lines there: the
    lines below are renumbered; after the re-run every colour drawn anywhere in the document is
    the edited text's value at its position, and Clear selection leaves no line coloured."""
    s, panel = window.session, window.panel("text")
    editor = panel.editor
    text = TEXT * 60
    coloured_by_unit_3_at(s, qtbot, text, len(text) - 30)
    bar = editor.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    QtWidgets.QApplication.processEvents()
    lo, hi = panel.visible_steps()
    assert formatted_lines(panel) and lo < len(text) - 30 - 2 * MARGIN
    cursor = editor.textCursor()
    cursor.setPosition((lo + hi) // 2)  # in the middle of the coloured lines on screen
    editor.setTextCursor(cursor)
    editor.insertPlainText(typed)
    panel.apply_edit()  # what the debounce does: re-run from the edit
    qtbot.waitUntil(lambda: not s.seeking and not s.passing, timeout=60000)
    QtWidgets.QApplication.processEvents()
    edited = s.text
    assert edited == text[:(lo + hi) // 2] + typed + text[(lo + hi) // 2:]
    h = s.model.trace(s.vocab.encode(edited)).gate("h", 0)[:, 3]  # (T,)
    expected = value_colours("h", h, s.levels("h", 0))  # (T, 3)
    everywhere = drawn(panel)
    assert everywhere and everywhere == panel.coloured()
    assert {a: rgb for (a, _), rgb in everywhere.items()} == {a: tuple(int(v) for v in expected[a]) for a, _ in everywhere}
    s.select(0, -1, -1)  # Clear selection
    assert formatted_lines(panel) == {} and drawn(panel) == {}


def count_restyles(monkeypatch) -> list:
    """The block numbers that ``_StyledLayout.restyle`` is called with from now on (a list that grows)."""
    restyled, restyle = [], _StyledLayout.restyle
    monkeypatch.setattr(_StyledLayout, "restyle", lambda layout, block, ranges: (
        restyled.append(block.blockNumber()), restyle(layout, block, ranges)))
    return restyled


def test_a_line_longer_than_long_line_is_laid_out_again_once_per_long_line_pending_steps(window, qtbot, monkeypatch):
    """Stepping along one line of 20,000 characters: the steps coloured since the line's last
    restyle are extra selections, so ``LONG_LINE_PENDING * 2`` steps restyle it at most twice
    (a line of ordinary length is restyled on each step), and the colours drawn are the
    engine's values throughout, stepping back included."""
    s = window.session
    text = TEXT.replace("\n", " ") * (20_000 // len(TEXT))
    assert len(text) > LONG_LINE
    coloured_by_unit_3_at(s, qtbot, text, len(text) - 3 * LONG_LINE_PENDING)
    h = s.model.trace(s.vocab.encode(text)).gate("h", 0)[:, 3]  # (T,)
    expected = value_colours("h", h, s.levels("h", 0))  # (T, 3)
    restyled = count_restyles(monkeypatch)
    for _ in range(2 * LONG_LINE_PENDING):
        assert s.step()
    assert len(restyled) <= 2
    colours = drawn_colours(window)
    assert set(colours) == set(range(min(colours), s.t))  # every stepped character on screen, once
    assert colours == {a: tuple(int(v) for v in expected[a]) for a in colours}
    assert s.back() and s.back()
    colours = drawn_colours(window)
    assert max(colours) == s.t - 1 and colours == {a: tuple(int(v) for v in expected[a]) for a in colours}


def test_a_step_in_a_line_of_ordinary_length_restyles_that_line(window, qtbot, monkeypatch):
    s = window.session
    text = TEXT * 60
    coloured_by_unit_3_at(s, qtbot, text, len(text) - 30)
    restyled = count_restyles(monkeypatch)
    assert s.step() and s.step()  # each character stepped past is inside the same line
    assert text[s.t - 3:s.t - 1].count("\n") == 0 and restyled == [text[:s.t - 2].count("\n")] * 2


def test_a_step_looks_up_only_the_lines_it_restyles(window, qtbot, monkeypatch):
    """The lines on screen whose colours a step leaves as they are cost no lookup of their
    block: a step looks up the line it restyles, whatever the number of coloured lines, and
    the colours drawn stay the engine's values."""
    s = window.session
    text = TEXT * 60
    coloured_by_unit_3_at(s, qtbot, text, len(text) - 30)
    panel = window.panel("text")
    lines = {panel.editor.document().findBlock(a).blockNumber() for a, _ in drawn(panel)}
    assert len(lines) >= 4  # several coloured lines on screen
    doc, looked_up = panel.editor.document(), []
    find = doc.findBlockByNumber
    monkeypatch.setattr(doc, "findBlockByNumber", lambda number: looked_up.append(number) or find(number))
    restyled = count_restyles(monkeypatch)
    for _ in range(4):
        assert s.step()
    assert restyled and sorted(set(looked_up)) == sorted(set(restyled))
    h = s.model.trace(s.vocab.encode(text)).gate("h", 0)[:, 3]  # (T,)
    expected = value_colours("h", h, s.levels("h", 0))  # (T, 3)
    colours = drawn_colours(window)
    assert colours == {a: tuple(int(v) for v in expected[a]) for a in colours} and max(colours) == s.t - 1


# --- the command line in bounded memory -------------------------------------------------------
def test_trace_writer_holds_one_chunk_at_a_time(tmp_path, model, vocab):
    """``save_trace_chunks`` drops each chunk before asking for the next (checked with weak
    references), and the file equals the whole-sequence trace."""
    import gc
    import weakref

    from engine.analysis.stream import iter_chunks
    from engine.trace_io import load_trace_npz, save_trace_chunks

    ids = vocab.encode(TEXT * 6)  # (T,)
    alive = []

    def chunks():
        for _, trace in iter_chunks(model, ids, chunk=50):
            copy = type(trace)(cell=trace.cell, layers=[{k: v.copy() for k, v in layer.items()} for layer in trace.layers],
                               inputs=trace.inputs.copy(), outputs=trace.outputs.copy(),
                               initial_state=trace.initial_state, names=trace.names)
            del trace
            gc.collect()
            alive.append(sum(ref() is not None for ref in refs))
            refs.append(weakref.ref(copy.layers[0]["h"]))
            yield copy
            del copy

    refs = []
    path = tmp_path / "t.npz"
    save_trace_chunks(path, chunks(), ids.shape[0], vocab=vocab)
    assert len(alive) == -(-ids.shape[0] // 50) and max(alive) == 0
    data = load_trace_npz(path)
    reference = model.trace(ids)
    for name in reference.names:
        np.testing.assert_array_equal(data[f"layer1_{name}"], reference.gate(name, 1))
    np.testing.assert_array_equal(data["probs"], reference.outputs)
    assert "".join(data["chars"]) == TEXT * 6 and int(data["start"]) == 0


def test_trace_command_writes_a_range_in_float16(tmp_path, model_path, model, vocab, capsys):
    from engine.trace_io import load_trace_npz
    from lstmviz.cli import main

    text = TEXT * 5
    out = tmp_path / "range.npz"
    assert main(["trace", str(model_path), "--text", text, "--out", str(out), "--start", "100", "--end", "250",
                 "--dtype", "float16", "--compress"]) == 0
    assert "steps 100..250" in capsys.readouterr().out
    data = load_trace_npz(out)
    reference = model.trace(vocab.encode(text))
    assert data["layer0_c"].dtype == np.float16 and data["layer0_c"].shape == (150, 12)
    np.testing.assert_allclose(data["layer0_c"], reference.gate("c", 0)[100:250], rtol=1e-3, atol=1e-3)
    assert "".join(data["chars"]) == text[100:250] and int(data["start"]) == 100
    assert main(["trace", str(model_path), "--text", text, "--out", str(out), "--start", "300", "--end", "250"]) == 2
    assert "start < end" in capsys.readouterr().err


def test_a_long_document_goes_into_the_editor_in_chunks_between_gui_events(window, qtbot, monkeypatch):
    """Opening a long text puts it into the editor a chunk per GUI event, read-only meanwhile
    (no edit reaches the session), with the cursor shown once its character is there."""
    import lstmviz.panels.text as text_module

    monkeypatch.setattr(text_module, "DOCUMENT_CHUNK", 500)
    s, panel = window.session, window.panel("text")
    text = TEXT * 40
    edits = []
    s.text_changed.connect(lambda: edits.append(s.text))
    s.set_text(text)
    s.seek(1500)
    assert panel.loading and panel.editor.isReadOnly()
    assert panel.editor.toPlainText() == text[:500]
    assert not any(sel.cursor.selectionEnd() > 500 for sel in panel.editor.extraSelections())
    added = []  # characters of each insertion into the document
    panel.editor.document().contentsChange.connect(lambda position, removed, n: added.append(n))
    qtbot.waitUntil(lambda: not panel.loading, timeout=10000)
    assert sum(added) == len(text) - 500 and len(added) == 5 and max(added) == 500
    assert panel.editor.toPlainText() == text and not panel.editor.isReadOnly()
    assert panel.editor.document().isUndoRedoEnabled() and edits == [text] and s.text == text
    qtbot.waitUntil(lambda: s.t == 1500, timeout=10000)  # the seek lands when the first pass gets there
    bold = [sel for sel in panel.editor.extraSelections() if sel.format.fontWeight() == QtGui.QFont.Bold]
    assert [sel.cursor.selectionStart() for sel in bold] == [1499]


def test_a_series_last_step_is_highlighted_and_coloured(window, qtbot):
    """The last label of a numeric series (whose span ends the document) gets the highlight and
    its colour like every other step."""
    from engine import ModelConfig, SequenceModel

    s = window.session
    model = SequenceModel(ModelConfig(input_size=3, output_size=1, hidden_size=6, input_kind="dense",
                                      head="linear", dtype="float64"), rng=np.random.default_rng(2))
    values = np.random.default_rng(3).normal(size=(40, 3))  # (T, W)
    labels = [f"{v:.2f}" for v in values[:, 0]]
    s.set_series(model, values, labels)
    s.select(0, 2, -1)
    s.seek(40)
    editor = window.panel("text").editor
    last = (len(editor.toPlainText()) - len(labels[-1]), len(editor.toPlainText()))
    bold = [(sel.cursor.selectionStart(), sel.cursor.selectionEnd()) for sel in editor.extraSelections()
            if sel.format.fontWeight() == QtGui.QFont.Bold]
    assert bold == [last]
    assert last[0] in drawn_colours(window)


def test_open_text_reads_a_long_file_in_the_background_and_the_first_pass_runs_in_a_thread(window, qtbot, tmp_path,
                                                                                            monkeypatch):
    """File > Open text of a file above threads.BACKGROUND_BYTES: the window answers at once, the
    text is shown when read; the first pass then runs in a worker thread, not on the GUI thread."""
    import lstmviz.session as session_module
    from lstmviz import threads

    monkeypatch.setattr(threads, "BACKGROUND_BYTES", 10)
    monkeypatch.setattr(session_module, "LEVEL_STEPS_MAX", 10)
    monkeypatch.setattr(session_module, "CHECKPOINT_EVERY", 16)
    s = window.session
    s.set_model(s.model, s.vocab)  # a cursor with the patched checkpoint spacing
    path = tmp_path / "long.txt"
    path.write_text(TEXT * 40, encoding="utf-8")
    assert window.open_path(str(path), "text") and s.opening
    qtbot.waitUntil(lambda: not s.opening, timeout=20000)
    assert s.text == TEXT * 40 and window.statusBar().currentMessage().startswith("Opened text long.txt")
    assert s.passing and "first-pass" in [t.objectName() for t in threads.live_threads()]
    qtbot.waitUntil(lambda: not s.passing, timeout=20000)
    assert s.stepper.done, (s.stepper.computed, s.steps, s.stepper.version)
    s.seek(s.steps)
    h = s.model.trace(s.vocab.encode(TEXT * 40)).gate("h", 0)  # (T, H)
    np.testing.assert_allclose(s.records(s.steps - 30, s.steps).gate("h", 0), h[-30:], rtol=0, atol=1e-12)


def test_the_data_panel_reads_a_long_training_text_in_the_background(window, qtbot, tmp_path, monkeypatch, errors):
    """The data panel's Open of a file above threads.BACKGROUND_BYTES: read in a worker thread, then the
    corpus is taken; a binary file is refused with the dialog; Cancel keeps the corpus."""
    from lstmviz import dialogs
    from lstmviz import threads
    from tests.app.helpers import learning

    monkeypatch.setattr(threads, "BACKGROUND_BYTES", 10)
    panel = learning(window).data_panel
    good, binary = tmp_path / "corpus.txt", tmp_path / "data.bin"
    good.write_text(TEXT * 100, encoding="utf-8")
    binary.write_bytes(bytes(range(256)) * 4)
    chosen = [str(good)]
    monkeypatch.setattr(dialogs, "ask_open_path", lambda *a: chosen[0])
    taken = []
    panel.corpus_changed.connect(taken.append)
    assert panel.open_file() and panel.reading and panel.cancel_button.isVisibleTo(panel)
    qtbot.waitUntil(lambda: not panel.reading, timeout=20000)
    assert taken, errors
    assert panel.corpus.text == TEXT * 100 and panel.source == str(good) and not errors
    assert panel.size_label.text() == f"{len(TEXT) * 100:,} characters"
    chosen[0] = str(binary)
    assert panel.open_file()
    qtbot.waitUntil(lambda: not panel.reading, timeout=20000)
    assert len(errors) == 1 and "binary" in errors[0][1] and panel.corpus is taken[0]
    assert panel.open_file()
    panel.cancel_read()
    assert not panel.reading and not panel.cancel_button.isVisibleTo(panel) and panel.corpus is taken[0]
