"""File > Open text: the same questions, dialogs and status whether the file is read at once
or in the background (above ``threads.BACKGROUND_BYTES``)."""

import threading

import pytest

from engine.data import CharVocab
from lstmviz import threads

from .conftest import TEXT


@pytest.fixture(params=["at once", "background"])
def path_kind(request, monkeypatch):
    if request.param == "background":
        monkeypatch.setattr(threads, "BACKGROUND_BYTES", 10)
    return request.param


def open_and_wait(window, qtbot, path) -> bool:
    result = window.open_path(str(path), "text")
    qtbot.waitUntil(lambda: not window.session.opening, timeout=20000)
    return result


def test_a_text_with_characters_the_model_lacks_is_asked_about_first(window, qtbot, tmp_path, confirmations,
                                                                     errors, path_kind):
    """Cancel keeps the shown text; "Open anyway" shows it without the characters, which the
    question listed with their count."""
    s = window.session
    path = tmp_path / "upper.txt"
    path.write_text("QQ" + TEXT * 3 + "Z", encoding="utf-8")  # 'Q' and 'Z' are not in the vocabulary
    confirmations.answer = False
    open_and_wait(window, qtbot, path)
    assert s.text == TEXT and s.text_path != str(path) and errors == []
    assert len(confirmations) == 1
    title, message, details = confirmations[0]
    assert "cannot" in message and "upper.txt" in message
    assert "2 characters of the text ('Q', 'Z'), 3 in all" in details
    confirmations.answer = True
    open_and_wait(window, qtbot, path)
    assert s.text == TEXT * 3 and s.text_path == str(path) and len(confirmations) == 2 and errors == []


def test_a_bad_text_gets_the_same_dialog_and_status_either_way(window, qtbot, tmp_path, errors, path_kind):
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9 " * 100)
    for path in (binary, bad):
        open_and_wait(window, qtbot, path)
        assert not window.statusBar().currentMessage().startswith("Opening")
    assert [title for title, _ in errors] == ["Cannot open this text"] * 2
    assert "binary" in errors[0][1] and str(binary) in errors[0][1]
    assert "UTF-8" in errors[1][1] and str(bad) in errors[1][1]
    assert window.session.text == TEXT



def test_the_opening_message_gives_the_size_to_a_tenth_of_a_mib(window, qtbot, tmp_path):
    messages = []
    window.session.message.connect(messages.append)
    path = tmp_path / "big.txt"
    path.write_text("a" * int(1.43 * 2**20), encoding="utf-8")
    window.open_path(str(path), "text")
    window.session.cancel_open()
    assert messages[0] == "Opening big.txt (1.4 MiB)…"


def test_the_characters_left_out_are_found_once_and_off_the_gui_thread_for_a_long_text(
        window, qtbot, tmp_path, confirmations, monkeypatch, path_kind):
    """Opening a text the model cannot fully read scans it for unknown characters once (the
    question, the status line and the text shown share that scan); a text read in the background
    is scanned there, never on the GUI thread."""
    scans = []
    unknown = CharVocab.unknown
    monkeypatch.setattr(CharVocab, "unknown", lambda self, text: scans.append(
        threading.current_thread() is threading.main_thread()) or unknown(self, text))
    messages = []
    window.session.message.connect(messages.append)
    path = tmp_path / "upper.txt"
    path.write_text("QQ" + TEXT * 3 + "Z", encoding="utf-8")
    open_and_wait(window, qtbot, path)
    assert window.session.text == TEXT * 3 and len(confirmations) == 1
    assert "Not in the model's vocabulary, left out: 'Q', 'Z'" in messages
    assert scans == ([False] if path_kind == "background" else [True])


def test_the_status_line_names_the_text_and_the_characters_left_out_either_way(window, qtbot, tmp_path,
                                                                                confirmations, path_kind):
    path = tmp_path / "upper.txt"
    path.write_text("QQ" + TEXT * 3 + "Z", encoding="utf-8")  # 'Q' and 'Z' are not in the vocabulary
    open_and_wait(window, qtbot, path)
    assert window.statusBar().currentMessage() == (
        "Opened text upper.txt. Not in the model's vocabulary, left out: 'Q', 'Z'")
    fine = tmp_path / "fine.txt"
    fine.write_text(TEXT * 2, encoding="utf-8")
    open_and_wait(window, qtbot, fine)
    assert window.statusBar().currentMessage() == "Opened text fine.txt"


@pytest.mark.parametrize("answer", [False, True])
def test_a_text_is_remembered_as_recent_only_once_it_is_opened(window, qtbot, tmp_path, confirmations,
                                                                path_kind, answer):
    recent = window.recent_files()
    path = tmp_path / "upper.txt"
    path.write_text("QQ" + TEXT * 3 + "Z", encoding="utf-8")
    confirmations.answer = answer
    open_and_wait(window, qtbot, path)
    assert len(confirmations) == 1
    assert window.recent_files() == ([str(path.resolve())] + recent if answer else recent)
