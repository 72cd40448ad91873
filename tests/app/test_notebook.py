"""``lstmviz.notebook.trace``: gates as NumPy from a SequenceModel, a checkpoint, a model file of
another framework, or a PyTorch module (converted exactly)."""

import numpy as np
import pytest

from engine import CharVocab, ModelConfig, SequenceModel
from engine.checkpoint import save_checkpoint
from lstmviz.notebook import trace


@pytest.fixture
def model_and_vocab():
    vocab = CharVocab.from_text("abc ")
    return SequenceModel(ModelConfig(4, 4, cell="gru", hidden_size=5), rng=np.random.default_rng(0)), vocab


def test_trace_of_a_model_and_of_its_checkpoint(tmp_path, model_and_vocab):
    model, vocab = model_and_vocab
    direct = trace(model, "abc a", vocab="abc ")
    np.testing.assert_array_equal(direct.gate("z"), model.trace(vocab.encode("abc a")).gate("z"))
    save_checkpoint(tmp_path / "m.npz", model, vocab=vocab)
    from_file = trace(tmp_path / "m.npz", "abc a")
    np.testing.assert_array_equal(from_file.gate("n"), direct.gate("n"))
    assert from_file.names == ("r", "z", "n", "h") and from_file.gate("h").shape == (5, 5)


def test_trace_of_a_torch_module_matches_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(4, 3)
            self.lstm = torch.nn.LSTM(3, 6, 2, batch_first=True)
            self.out = torch.nn.Linear(6, 4)

    net = Net().eval()
    t = trace(net, "cab a", vocab="abc ")  # ids in the module: a=0, b=1, c=2, ' '=3
    ids = torch.tensor([[2, 0, 1, 3, 0]])
    with torch.no_grad():
        hs, _ = net.lstm(net.embed(ids))
        probs = torch.softmax(net.out(hs), -1)[0].numpy()
    np.testing.assert_allclose(t.gate("h", 1), hs[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(t.outputs, probs[:, [3, 0, 1, 2]], atol=1e-6)


def test_trace_refusals(model_and_vocab):
    model, _ = model_and_vocab
    with pytest.raises(ValueError, match="needs the model's vocabulary"):
        trace(model, "abc")
    with pytest.raises(ValueError, match="exactly one of text or inputs"):
        trace(model)
    with pytest.raises(TypeError, match="expected a SequenceModel"):
        trace(42, inputs=[0, 1])
    assert trace(model, inputs=np.array([0, 1, 2])).steps == 3


@pytest.fixture
def shown(qtbot, tmp_path):
    """``lstmviz.show``, waiting until its window is exposed; the windows it opened that are still
    open (held by ``notebook._windows``, and only there: a closed window is deleted) are closed
    after the test."""
    from PySide6 import QtCore

    from lstmviz import notebook

    open_before = list(notebook._windows)
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.IniFormat)

    def open_window(*args, **kwargs):
        import lstmviz

        window = lstmviz.show(*args, settings=settings, **kwargs)
        with qtbot.waitExposed(window):
            window.show()  # already shown by lstmviz.show: the wait is in the with block's exit
        return window

    yield open_window
    for window in [w for w in notebook._windows if w not in open_before]:
        window.close()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)


def test_show_opens_a_window_on_a_sequence_model(qtbot, shown, model_and_vocab):
    from . import helpers

    model, vocab = model_and_vocab
    window = shown(model, text="abc cab a", vocab="abc ")
    s = window.session
    assert s.model is model and s.vocab == vocab and s.text == "abc cab a"
    s.seek(s.steps)
    assert s.t == 9
    helpers.assert_heatmaps_equal_trace(window, model.trace(vocab.encode("abc cab a")), ("r", "z", "n", "h"))


def test_show_opens_a_checkpoint_and_refuses_without_a_vocabulary(qtbot, shown, model_and_vocab, tmp_path):
    model, vocab = model_and_vocab
    save_checkpoint(tmp_path / "m.npz", model, vocab=vocab)
    window = shown(tmp_path / "m.npz", text="cab")
    assert window.session.model_path == str(tmp_path / "m.npz") and window.session.text == "cab"
    np.testing.assert_array_equal(window.session.model.params["l0.Wx"], model.params["l0.Wx"])
    with pytest.raises(ValueError, match="vocab="):
        shown(model, text="abc")


def test_a_closed_window_is_deleted_once_its_close_guards_agree(qtbot, shown, model_and_vocab):
    import gc
    import weakref

    import shiboken6
    from PySide6 import QtCore, QtWidgets

    from lstmviz import notebook

    from .test_window_lifetime import widget_count

    app = QtWidgets.QApplication.instance()
    gc.collect()
    widgets_before, open_before = widget_count(app), len(notebook._windows)
    window = shown(model_and_vocab[0], text="abc cab a", vocab="abc ")
    assert widget_count(app) - widgets_before > 100 and len(notebook._windows) == open_before + 1
    agree = []
    window.add_close_guard(lambda: bool(agree))
    session = weakref.ref(window.session)

    assert not window.close()  # refused: the window stays, open and held
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)
    assert shiboken6.isValid(window) and window.isVisible() and len(notebook._windows) == open_before + 1

    agree.append(True)
    assert window.close()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)
    assert not shiboken6.isValid(window)
    del window
    gc.collect()
    assert len(notebook._windows) == open_before
    assert widget_count(app) == widgets_before and session() is None


def test_trace_is_exported_lazily_and_equals_the_model_trace(model_and_vocab):
    import subprocess
    import sys

    import lstmviz

    model, vocab = model_and_vocab
    np.testing.assert_array_equal(lstmviz.trace(model, "abca", vocab="abc ").gate("n"),
                                  model.trace(vocab.encode("abca")).gate("n"))
    probe = "import sys, lstmviz; lstmviz.trace; print('PySide6' in sys.modules)"
    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "False"  # import lstmviz (and its trace) import no Qt
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        lstmviz.nothing  # noqa: B018
