"""File > Import model… and dropped model files in the real window: the imported GRU's heatmaps
equal the engine's trace and torch's own nn.GRU; every refusal ends in an error dialog naming the
file and the cause, with the viewer unchanged. The file, vocabulary, module and report dialogs
are monkeypatched through ``lstmviz.dialogs``; waits are ``qtbot.waitUntil`` on the importer's
outcome (set on the GUI thread when the worker has finished)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PySide6 import QtCore, QtGui  # noqa: E402

from engine.checkpoint import load_checkpoint  # noqa: E402
from lstmviz import dialogs  # noqa: E402

from . import helpers  # noqa: E402
from .interop_files import BRANCH_UNITS, two_stacks  # noqa: E402

REAL_ASK_MODULES = dialogs.ask_modules  # before the ``asked`` fixture replaces it


class CharGRU(torch.nn.Module):
    """nn.Embedding -> 2-layer nn.GRU -> nn.Linear, as a PyTorch character model is written."""

    def __init__(self, V, E=5, H=7):
        super().__init__()
        self.embed = torch.nn.Embedding(V, E)
        self.gru = torch.nn.GRU(E, H, num_layers=2, batch_first=True)
        self.fc = torch.nn.Linear(H, V)


@pytest.fixture
def asked(monkeypatch, vocab):
    """Answers of the import dialogs (editable per test) and what each was shown."""
    answers = {"path": None, "vocab": {"vocab_chars": "".join(vocab.chars)}, "report": "open", "save": None,
               "modules": None}
    shown = {"report": [], "modules": []}
    monkeypatch.setattr(dialogs, "ask_open_path", lambda parent, title, file_filter: answers["path"])
    monkeypatch.setattr(dialogs, "ask_vocabulary", lambda parent, source: answers["vocab"])
    monkeypatch.setattr(dialogs, "show_import_report",
                        lambda parent, source, lines: shown["report"].append(lines) or answers["report"])
    monkeypatch.setattr(dialogs, "ask_save_path", lambda parent, title, file_filter: answers["save"])
    monkeypatch.setattr(dialogs, "ask_modules", lambda parent, source, role, candidates, several:
                        shown["modules"].append((role, candidates, several)) or answers["modules"])
    return answers, shown


def import_action(window):
    return next(a for a in window.menuBar().actions()[0].menu().actions() if a.text() == "&Import model…")


def run_import(qtbot, window, path, asked):
    asked[0]["path"] = str(path)
    importer = window.importer
    import_action(window).trigger()
    qtbot.waitUntil(lambda: importer.outcome is not None and not importer.busy, timeout=60_000)
    return importer.outcome


def test_an_imported_torch_gru_shows_r_z_n_h_equal_to_the_engine_and_torch(qtbot, window, vocab, tmp_path, asked,
                                                                          errors):
    torch.manual_seed(0)
    net = CharGRU(len(vocab))
    torch.save(net.state_dict(), tmp_path / "char_gru.pt")
    assert run_import(qtbot, window, tmp_path / "char_gru.pt", asked) == "opened"
    s = window.session
    assert errors == [] and s.model.config.cell == "gru" and s.model.config.input_kind == "embedding"
    report = asked[1]["report"][0]
    assert report[0].startswith(f"read {tmp_path / 'char_gru.pt'}: 2 x GRU(7)") and any(line.startswith("parity with torch") for line in report)
    s.seek(s.steps)
    qtbot.waitUntil(lambda: not s.seeking and s.t == s.steps, timeout=30_000)
    ids = s.vocab.encode(s.text)
    reference = s.model.trace(ids)
    s.select(1, -1)
    helpers.assert_heatmaps_equal_trace(window, reference, ("r", "z", "n", "h"), layer=1)
    with torch.no_grad():
        top, _ = net.gru(net.embed(torch.from_numpy(ids)[None]))  # (1, T, H)
        probs = torch.softmax(net.fc(top), dim=-1)[0].numpy()  # (T, V)
    shown_h = window.panel("gates").views["h"].displayed_image()  # (H, steps drawn), layer 1
    drawn = shown_h.shape[1]
    np.testing.assert_allclose(shown_h, top[0, s.t - drawn:s.t].numpy().T, rtol=0, atol=1e-5)
    np.testing.assert_allclose(s.trace().outputs, probs, rtol=0, atol=1e-5)
    s.select(0, -1)
    helpers.assert_heatmaps_equal_trace(window, reference, ("r", "z", "n", "h"), layer=0)


def test_a_bidirectional_lstm_is_refused_in_a_dialog_and_nothing_changes(qtbot, window, tmp_path, asked, errors):
    before = window.session.model
    torch.save(torch.nn.LSTM(3, 4, bidirectional=True).state_dict(), tmp_path / "bi.pt")
    assert run_import(qtbot, window, tmp_path / "bi.pt", asked) == "failed"
    assert len(errors) == 1
    title, message = errors[0]
    assert title == "Cannot import bi.pt" and "bidirectional" in message and "\n" not in message
    assert window.session.model is before and asked[1]["report"] == []


@pytest.mark.parametrize("case", ["vocab size", "malicious pickle", "not a model", "proj_size", "unknown layers"])
def test_other_refusals_end_in_a_dialog_naming_the_file(qtbot, window, vocab, tmp_path, asked, errors, case):
    before = window.session.model
    marker = tmp_path / "pwned"
    path = tmp_path / "m.pt"
    if case == "vocab size":
        torch.save(CharGRU(len(vocab) + 1).state_dict(), path)
    elif case == "malicious pickle":
        from tests.engine.test_interop_torch import Evil

        torch.save({"rnn.weight_ih_l0": torch.zeros(16, 3), "payload": Evil(marker)}, path)
    elif case == "proj_size":
        torch.save(torch.nn.LSTM(len(vocab), 4, proj_size=2).state_dict(), path)
    elif case == "unknown layers":
        torch.save(CharGRU(len(vocab)).state_dict() | {"attn.in_proj_weight": torch.zeros(3, 3, 3)}, path)
    else:
        path.write_bytes(b"not a zip archive")
    assert run_import(qtbot, window, path, asked) == "failed"
    (title, message), = errors
    assert title == "Cannot import m.pt" and str(path) in message
    expected = {"vocab size": "vocabulary has", "malicious pickle": "refused", "not a model": "not a torch.save file",
                "proj_size": "proj_size", "unknown layers": "attn.in_proj_weight"}
    assert expected[case] in message
    assert window.session.model is before and not marker.exists()


def test_an_import_without_a_vocabulary_is_not_opened_and_says_what_the_cli_says(qtbot, window, vocab, tmp_path,
                                                                                 asked, errors, capsys):
    from lstmviz.cli import main

    before = window.session.model
    path = tmp_path / "char_gru.pt"
    torch.save(CharGRU(len(vocab)).state_dict(), path)
    asked[0]["vocab"] = {}  # the import runs without a vocabulary
    assert run_import(qtbot, window, path, asked) == "failed"
    (title, message), = errors
    assert title == "Cannot import char_gru.pt" and window.session.model is before
    note = (f"char_gru.pt was imported without a vocabulary: the model reads token ids 0..{len(vocab) - 1}, "
            "not characters")
    assert message.startswith(note) and any(line.startswith("parity with torch") for line in message.splitlines())
    assert main(["import", str(path), "--out", str(tmp_path / "m.npz")]) == 0
    cli_note = capsys.readouterr().err
    assert cli_note.startswith(f"lstmviz: note: {note}")
    assert message.split("; to step text")[0] == cli_note.removeprefix("lstmviz: note: ").split("; to step text")[0]


def test_ambiguous_modules_are_chosen_by_the_user(qtbot, window, vocab, tmp_path, asked, errors):
    V = len(vocab)
    state = {f"rnn.{k}": v for k, v in torch.nn.GRU(V, 4).state_dict().items()}
    state |= {f"out_a.{k}": v for k, v in torch.nn.Linear(4, V).state_dict().items()}
    state |= {f"out_b.{k}": v for k, v in torch.nn.Linear(4, 2).state_dict().items()}
    torch.save(state, tmp_path / "two_heads.pt")
    asked[0]["modules"] = ["out_a"]
    assert run_import(qtbot, window, tmp_path / "two_heads.pt", asked) == "opened"
    assert asked[1]["modules"] == [("output layer (nn.Linear)", ["out_a", "out_b"], False)]
    np.testing.assert_array_equal(window.session.model.params["head.W"], state["out_a.weight"].numpy().T)
    assert errors == []


def test_the_state_dict_of_a_checkpoint_is_chosen_by_the_user(qtbot, window, vocab, tmp_path, asked, errors):
    V = len(vocab)
    model, ema = (torch.nn.LSTM(V, 4).state_dict() for _ in range(2))
    torch.save({"model": model, "ema": ema, "epoch": 12}, tmp_path / "ckpt.pt")
    asked[0]["modules"] = ["ema"]
    assert run_import(qtbot, window, tmp_path / "ckpt.pt", asked) == "opened"
    assert asked[1]["modules"] == [("checkpoint entry", ["model", "ema"], False)]
    assert any("checkpoint entry: 'ema' (also in the checkpoint, not read: 'model', 'epoch')" in line
               for line in asked[1]["report"][0])
    W_hh = ema["weight_hh_l0"].numpy()  # (4H, H) PyTorch gates i, f, g, o
    np.testing.assert_array_equal(window.session.model.params["l0.Wh"], W_hh.T)  # (H, 4H) same gate order
    assert errors == []


def test_cancelling_the_module_choice_changes_nothing(qtbot, window, vocab, tmp_path, asked, errors):
    before = window.session.model
    state = {f"{p}.{k}": v for p in ("first", "second") for k, v in torch.nn.LSTM(len(vocab), 4).state_dict().items()}
    torch.save(state, tmp_path / "two.pt")
    assert run_import(qtbot, window, tmp_path / "two.pt", asked) == "cancelled"
    assert asked[1]["modules"] == [("recurrent", ["first", "second"], True)]
    assert window.session.model is before and errors == []


def test_save_as_npz_then_open(qtbot, window, vocab, tmp_path, asked, errors):
    torch.save(CharGRU(len(vocab)).state_dict(), tmp_path / "char_gru.pt")
    asked[0].update(report="save", save=str(tmp_path / "saved"))
    assert run_import(qtbot, window, tmp_path / "char_gru.pt", asked) == "opened"
    s = window.session
    assert s.model_path == str(tmp_path / "saved.npz")
    ckpt = load_checkpoint(tmp_path / "saved.npz")
    assert ckpt.vocab == s.vocab and ckpt.extra["imported_from"] == "char_gru.pt"
    for name, value in s.model.params.items():
        np.testing.assert_array_equal(ckpt.model.params[name], value)
    assert errors == []


def test_a_dropped_safetensors_file_is_imported(qtbot, window, vocab, tmp_path, asked, errors):
    from safetensors.torch import save_file

    save_file(CharGRU(len(vocab)).state_dict(), str(tmp_path / "char_gru.safetensors"))
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(tmp_path / "char_gru.safetensors"))])
    enter = QtGui.QDragEnterEvent(QtCore.QPoint(5, 5), QtCore.Qt.CopyAction, mime, QtCore.Qt.LeftButton,
                                  QtCore.Qt.NoModifier)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    window.dropEvent(QtGui.QDropEvent(QtCore.QPointF(5, 5), QtCore.Qt.CopyAction, mime, QtCore.Qt.LeftButton,
                                      QtCore.Qt.NoModifier))
    qtbot.waitUntil(lambda: window.importer.outcome is not None and not window.importer.busy, timeout=60_000)
    assert window.importer.outcome == "opened" and window.session.model.config.cell == "gru" and errors == []


@pytest.mark.parametrize("kind,message", [("hard_sigmoid", "recurrent_activation='hard_sigmoid'"),
                                          ("reset_after", "reset_after=False")])
def test_keras_refusals_end_in_a_dialog(qtbot, window, tmp_path, asked, errors, kind, message):
    from tests.engine.test_interop_keras import gru_weights, layer, lstm_weights, write_keras

    rng = np.random.default_rng(0)
    if kind == "hard_sigmoid":
        layers, weights = [layer("LSTM", "lstm", recurrent_activation="hard_sigmoid")], lstm_weights(4, 4, rng)
    else:
        layers, weights = [layer("GRU", "gru", reset_after=False)], gru_weights(4, 4, rng)
    path = write_keras(tmp_path / "bad.keras", layers, {layers[0]["config"]["name"]: weights})
    before = window.session.model
    assert run_import(qtbot, window, path, asked) == "failed"
    (title, text), = errors
    assert title == "Cannot import bad.keras" and message in text and str(path) in text
    assert window.session.model is before


def test_the_import_dialogs_return_what_the_user_chose(qtbot, monkeypatch):
    """The real dialog functions, their ``exec`` replaced by filling the widgets in and accepting."""
    from PySide6 import QtWidgets

    parent = QtWidgets.QWidget()
    qtbot.addWidget(parent)

    def accept_typed(dialog):
        dialog.findChild(QtWidgets.QLineEdit).setText("ab\n")
        return QtWidgets.QDialog.Accepted

    monkeypatch.setattr(QtWidgets.QDialog, "exec", accept_typed)
    assert dialogs.ask_vocabulary(parent, "/x/m.pt") == {"vocab_chars": "ab\n"}

    def accept_second(dialog):
        choices = dialog.findChild(QtWidgets.QListWidget)
        choices.item(1).setSelected(True)
        return QtWidgets.QDialog.Accepted

    monkeypatch.setattr(QtWidgets.QDialog, "exec", accept_second)
    assert dialogs.ask_modules(parent, "m.pt", "recurrent", ["first", "second"], several=True) == ["second"]

    def click_save(box):
        next(b for b in box.buttons() if b.text() == "Save as .npz and open…").click()
        return 0

    monkeypatch.setattr(QtWidgets.QMessageBox, "exec", click_save)
    assert dialogs.show_import_report(parent, "m.pt", ["read m.pt", "parity ..."]) == "save"


def test_an_import_running_when_the_window_closes_is_dropped_without_dialogs(qtbot, window, vocab, tmp_path,
                                                                             asked, errors):
    from lstmviz import threads

    before = window.session.model
    torch.save(CharGRU(len(vocab)).state_dict(), tmp_path / "char_gru.pt")
    asked[0]["path"] = str(tmp_path / "char_gru.pt")
    import_action(window).trigger()
    assert window.importer.busy
    threads.stop_all()  # what closing the window does
    assert window.importer.outcome == "cancelled" and not window.importer.busy
    assert asked[1]["report"] == [] and errors == [] and window.session.model is before


@pytest.mark.parametrize("framework", ("torch", "keras", "onnx"))
def test_several_recurrent_stacks_are_chosen_in_the_real_dialog(qtbot, window, vocab, tmp_path, asked, errors,
                                                                monkeypatch, framework):
    """The module choice goes through the real ``dialogs.ask_modules``, its ``exec`` replaced by
    selecting the second candidate (branch b) and accepting; the other dialogs are answered."""
    from PySide6 import QtWidgets

    path, candidates = two_stacks(framework, tmp_path, len(vocab))
    listed = []

    def choose_b(dialog):
        choices = dialog.findChild(QtWidgets.QListWidget)
        listed.append(([choices.item(k).text() for k in range(choices.count())], choices.selectionMode()))
        choices.item(1).setSelected(True)
        return QtWidgets.QDialog.Accepted

    monkeypatch.setattr(dialogs, "ask_modules", REAL_ASK_MODULES)
    monkeypatch.setattr(QtWidgets.QDialog, "exec", choose_b)
    assert run_import(qtbot, window, path, asked) == "opened"
    several = QtWidgets.QAbstractItemView.MultiSelection if framework == "torch" else \
        QtWidgets.QAbstractItemView.SingleSelection
    assert listed == [(candidates, several)] and errors == []
    config = window.session.model.config
    assert (config.hidden_size, config.output_size, config.input_kind) == (BRANCH_UNITS["b"], len(vocab), "embedding")
    report = asked[1]["report"][0]
    assert candidates[1] in next(line for line in report if line.startswith("recurrent: "))
    assert any(line.startswith("parity with") for line in report)
