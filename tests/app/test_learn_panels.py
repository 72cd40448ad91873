"""Learning panels on their own: presets, model-form validation and settings, data refusals,
and the loss plot's bounded point count."""

from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QComboBox, QFormLayout, QSpinBox

from engine.data import TextCorpus
from engine.model import ModelConfig
from engine.settings import settings_of
from engine.train import Progress, TrainConfig
from lstmviz import dialogs
from lstmviz.training import TrainingController, TrainingUpdate
from lstmviz.learn.data_panel import DataPanel, escape_chars
from lstmviz.learn.loss_plot import LossHistory, LossPlot
from lstmviz.learn.model_panel import ModelPanel
from lstmviz.core.presets import PRESETS, Preset
from lstmviz.learn.training_panel import TrainingPanel

# The issue's presets, written out by hand (not read from presets.py).
EXPECTED_PRESETS = {
    "char-rnn": dict(cell="lstm", num_layers=2, hidden_size=128, optimizer="rmsprop", lr=2e-3, seq_len=50,
                     clip_value=5.0),
    "min-char-rnn": dict(cell="rnn", num_layers=1, hidden_size=100, seq_len=25, optimizer="adagrad", lr=0.1,
                         clip_value=5.0),
    "Keras tutorial (Python ML, 2 x LSTM 300)": dict(cell="lstm", num_layers=2, hidden_size=300, dropout=0.2,
                                                     seq_len=50, optimizer="adam"),
    "keras-io text generation": dict(cell="lstm", num_layers=1, hidden_size=128, seq_len=40, optimizer="rmsprop",
                                     lr=0.01),
    "NumPy LSTM tutorial": dict(cell="lstm", num_layers=1, hidden_size=64, optimizer="sgd", lr=0.01, clip_value=5.0),
}

# The form's first values (the char-rnn preset, seed 0), written out by hand.
START = dict(cell="lstm", input_kind="onehot", embed_size=0, hidden_size=128, num_layers=2, dropout=0.0, seq_len=50,
             batch_size=50, optimizer="rmsprop", lr=2e-3, momentum=0.0, clip_norm=None, clip_value=5.0, seed=0,
             steps=5000, eval_every=200, batching="sequential", forget_bias=1.0, init="uniform", init_range=0.08,
             rmsprop_decay=0.95, lr_schedule="step", lr_decay=0.97, lr_decay_every=1, lr_decay_start=10, lr_warmup=0)
SETTINGS = {**settings_of(ModelConfig), **settings_of(TrainConfig)}


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "learn.ini"), QSettings.IniFormat)


@pytest.fixture
def panel(qtbot, settings):
    widget = ModelPanel(settings)
    qtbot.addWidget(widget)
    return widget


def corpus_of(n_chars, val_fraction=0.1):
    rng = np.random.Generator(np.random.PCG64(1))
    return TextCorpus("".join(rng.choice(list("abcde \n"), size=n_chars)), val_fraction=val_fraction)


# --- presets and model panel --------------------------------------------------------------------
def test_every_issue_preset_exists_and_fills_the_form(panel):
    assert [p.name for p in PRESETS] == list(EXPECTED_PRESETS)
    panel.set_values({"seed": 1234})
    for name, expected in EXPECTED_PRESETS.items():
        panel.preset.setCurrentText(name)  # choosing in the combo applies it
        values = panel.values()
        for field, value in expected.items():
            assert values[field] == pytest.approx(value), (name, field)
        assert values["seed"] == 1234  # presets keep the user's seed
        assert panel.preset.currentText() == name
    panel.set_values({"hidden_size": 77})  # an edit makes it a custom configuration
    assert panel.preset.currentText() == "Custom"


def test_presets_are_checked_by_the_configs():
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.5"):
        Preset("bad", "", dict(dropout=1.5))
    with pytest.raises(ValueError, match="momentum applies only to the sgd optimizer"):
        Preset("bad", "", dict(optimizer="adam", momentum=0.5))
    with pytest.raises(ValueError, match="unknown settings"):
        Preset("bad", "", dict(hidden=8))


def test_form_is_built_from_the_config_fields(panel):
    assert panel.values() == START
    form = panel.layout().itemAt(0).layout()
    assert isinstance(form, QFormLayout)
    for name, widget in panel.controls.items():
        spec = SETTINGS[name]
        assert form.labelForField(widget).text() == spec.label
        assert widget.toolTip().startswith(spec.help)
        if spec.choices is not None:
            assert isinstance(widget, QComboBox)
            assert [widget.itemData(k) for k in range(widget.count())] == list(spec.choices)
            continue
        assert isinstance(widget, QSpinBox) == (spec.kind is int)
        assert spec.requirement(off_as="0") in widget.toolTip()
        low = spec.form_range()[0]  # "off" and unbounded below: 0
        assert widget.minimum() == low, name
        assert widget.maximum() == (spec.high if spec.high is not None else spec.form_range()[1]), name


@pytest.fixture
def training_panel(qtbot, panel):
    controller = TrainingController()
    data = DataPanel(check=panel.check_corpus)
    widget = TrainingPanel(controller, panel, data)
    for w in (data, widget):
        qtbot.addWidget(w)
    yield widget
    controller.shutdown()


def test_out_of_range_value_disables_train_with_the_fields_message(panel, training_panel):
    panel.set_corpus(corpus_of(3000))
    panel.set_values({"seq_len": 20, "batch_size": 4})
    assert panel.valid and training_panel.train_button.isEnabled()
    assert "Cannot train" not in training_panel.train_button.toolTip()
    panel.set_values({"dropout": 1.0})  # the spin box reaches the excluded bound; the config refuses it
    message = "dropout must be in [0, 1), got 1.0"
    assert not panel.valid and panel.message.text() == message
    assert not training_panel.train_button.isEnabled()
    assert training_panel.train_button.toolTip().endswith(f"Cannot train now: {message}")
    panel.set_values({"dropout": 0.5, "lr": 0.0})  # still invalid, for another reason
    assert training_panel.train_button.toolTip().endswith("Cannot train now: lr must be a finite number > 0, got 0.0")
    panel.set_values({"lr": 0.01})
    assert panel.valid and training_panel.train_button.isEnabled()
    assert "Cannot train" not in training_panel.train_button.toolTip()


def test_inline_validation_explains_before_train(panel):
    changes = []
    panel.validity_changed.connect(changes.append)
    assert not panel.valid and "training text" in panel.message.text()
    panel.set_corpus(corpus_of(3000))
    panel.set_values({"seq_len": 50, "batch_size": 10, "lr": 0.01, "optimizer": "adam", "momentum": 0.0})
    assert panel.valid and not panel.message.isVisibleTo(panel) and changes[-1] is True
    model_config, train_config = panel.build()
    assert isinstance(model_config, ModelConfig) and isinstance(train_config, TrainConfig)
    assert model_config.input_size == 7 and train_config.val_fraction == pytest.approx(0.1)

    panel.set_values({"batch_size": 100})  # 100 x 50 + 1 > 2700 training characters
    assert not panel.valid and changes[-1] is False
    assert "needs at least 5001" in panel.message.text()
    assert "#c62828" in panel.message.styleSheet()  # shown in red
    panel.set_values({"batch_size": 10, "lr": 0.0})
    assert not panel.valid and "lr must be" in panel.message.text()
    panel.set_values({"lr": 0.01, "momentum": 0.9})  # momentum with Adam
    assert not panel.valid and "momentum applies only to the sgd" in panel.message.text()
    panel.set_values({"optimizer": "sgd"})
    assert panel.valid
    with pytest.raises(ValueError):
        panel.set_values({"optimizer": "lbfgs"})


def test_model_panel_remembers_values_in_settings(qtbot, settings):
    first = ModelPanel(settings)
    qtbot.addWidget(first)
    first.set_values({"cell": "rnn", "hidden_size": 33, "lr": 0.05, "clip_norm": None, "clip_value": 2.5,
                      "seed": 99, "batching": "random"})
    settings.sync()
    reread = QSettings(settings.fileName(), QSettings.IniFormat)
    second = ModelPanel(reread)
    qtbot.addWidget(second)
    values = second.values()
    assert (values["cell"], values["hidden_size"], values["seed"], values["batching"]) == ("rnn", 33, 99, "random")
    assert values["lr"] == pytest.approx(0.05) and values["clip_norm"] is None and values["clip_value"] == 2.5


def test_tooltips_on_every_control(panel, qtbot):
    data = DataPanel()
    qtbot.addWidget(data)
    for widget in [*panel.controls.values(), panel.preset, data.open_button, data.use_paste_button,
                   data.val_fraction, data.paste]:
        assert widget.toolTip()


# --- data panel ---------------------------------------------------------------------------------
@pytest.fixture
def data_panel(qtbot, panel):
    widget = DataPanel(check=panel.check_corpus, max_bytes=5000)
    qtbot.addWidget(widget)
    panel.set_values({"seq_len": 20, "batch_size": 4})
    return widget


def open_file(data_panel, monkeypatch, path):
    monkeypatch.setattr(dialogs, "ask_open_path", lambda parent, title, file_filter: str(path))
    return data_panel.open_file()


def test_data_panel_shows_the_text(data_panel, monkeypatch, tmp_path, errors):
    text = "hello world\n\tab" * 20
    path = tmp_path / "good.txt"
    path.write_text(text, encoding="utf-8")
    seen = []
    data_panel.corpus_changed.connect(seen.append)
    assert open_file(data_panel, monkeypatch, path)
    assert errors == []
    assert seen == [data_panel.corpus] and data_panel.corpus.text == text
    n_val = int(len(text) * 0.1)
    assert data_panel.size_label.text() == f"{len(text):,} characters"
    assert data_panel.vocab_label.text() == "12 characters: \\t\\n\u2423abdehlorw"
    assert data_panel.split_label.text() == f"{len(text) - n_val:,} training, {n_val:,} validation"
    data_panel.val_fraction.setValue(0.5)
    assert len(data_panel.corpus.val_ids) == len(text) // 2 and len(seen) == 2
    assert escape_chars(["\x07", "é"]) == "\\u0007é"


@pytest.mark.parametrize("content, expected", [
    (b"", "empty"),
    (b"   \n\n  ", "empty"),
    (b"\x00\x01\x02binary\x00" * 10, "binary"),
    (b"caf\xe9 au lait " * 10, "not valid UTF-8"),
    (b"x" * 6000, "too big"),
    (b"short text", "needs at least 81"),  # 4 x 20 + 1 training characters
])
def test_data_panel_refusals_change_nothing(data_panel, monkeypatch, tmp_path, errors, content, expected):
    good = tmp_path / "good.txt"
    good.write_text("abc def\n" * 40, encoding="utf-8")
    assert open_file(data_panel, monkeypatch, good)
    before = (data_panel.corpus, data_panel.source_label.text(), data_panel.vocab_label.text())
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    assert not open_file(data_panel, monkeypatch, bad)
    assert len(errors) == 1 and expected in errors[0][1]
    assert (data_panel.corpus, data_panel.source_label.text(), data_panel.vocab_label.text()) == before


def test_pasted_text_is_used_or_refused(data_panel, errors):
    data_panel.paste.setPlainText("   ")
    data_panel.use_paste_button.click()
    assert data_panel.corpus is None and "empty" in errors[-1][1]
    data_panel.paste.setPlainText("pasted words here " * 10)
    data_panel.use_paste_button.click()
    assert data_panel.corpus.text == "pasted words here " * 10 and data_panel.source_label.text() == "the pasted text"


# --- loss plot ----------------------------------------------------------------------------------
def fake_update(start, n, rng):
    steps = np.arange(start, start + n, dtype=np.int64)
    loss = 3.0 * np.exp(-steps / 20_000) + rng.random(n) * 0.1
    val_steps = steps[steps % 100 == 0]
    progress = Progress(step=int(steps[-1]), total_steps=100_000, train_loss=float(loss[-1]),
                        smooth_loss=float(loss[-1]), val_loss=None, val_bpc=None, grad_norm=1.0,
                        steps_per_s=1000.0, elapsed_s=1.0)
    return TrainingUpdate(progress, steps, loss, loss.copy(), val_steps, 3.0 * np.exp(-val_steps / 20_000),
                          None, False)


def test_loss_plot_point_count_stays_bounded_over_100k_steps(qtbot):
    plot = LossPlot(max_bins=1000)
    qtbot.addWidget(plot)
    rng = np.random.Generator(np.random.PCG64(0))
    raw_max = 0.0
    for start in range(1, 100_001, 5000):
        update = fake_update(start, 5000, rng)
        raw_max = max(raw_max, update.train_loss.max())
        plot.add_update(update)
    qtbot.waitUntil(lambda: plot.plotted_point_count() > 0, timeout=5000)  # the throttled redraw
    x, y = plot.raw_curve.getData()
    assert len(x) == 2000 and len(plot.smooth_curve.getData()[0]) == 2000
    assert plot.plotted_point_count() <= 2000 + 2000 + 1000
    assert y.max() == raw_max and x[0] == 1 and x[-1] == 100_000  # spikes and ends survive decimation
    assert plot.readout.text().startswith("step 100000: smoothed loss")
    plot.log_scale.setChecked(True)
    assert plot.plot.getPlotItem().ctrl.logYCheck.isChecked()
    plot.reset()
    assert plot.plotted_point_count() == 0


def test_steady_range_rounds_out_to_nice_steps():
    from lstmviz.learn.loss_plot import steady_range

    assert steady_range(1.37, 3.92) == (1.0, 4.0)  # span 2.55 -> step 1 (nice_ceil of 0.51)
    assert steady_range(0.0, 1234.0) == (0.0, 1250.0)  # step 250
    assert steady_range(2.0, 2.0) == (1.5, 2.5)  # flat: a unit-wide range


def test_loss_plot_view_holds_the_data_and_keeps_still(qtbot):
    plot = LossPlot(max_bins=1000)
    qtbot.addWidget(plot)
    rng = np.random.Generator(np.random.PCG64(1))
    plot.add_update(fake_update(1, 1100, rng))
    plot.redraw()
    (x0, x1), (y0, y1) = plot.shown_range()
    steps, values = plot.raw_curve.getData()
    assert x0 <= steps.min() and steps.max() <= x1 <= 100_000  # never past the planned last step
    assert y0 <= values.min() and values.max() <= y1
    ranges = []
    plot.plot.getViewBox().sigRangeChanged.connect(lambda *_: ranges.append(plot.shown_range()))
    for start in range(1101, 1201, 10):  # new points inside the rounded range: the axes stay put
        inside = fake_update(start, 10, rng)
        plot.add_update(replace(inside, train_loss=np.full(10, (y0 + y1) / 2), smooth_loss=np.full(10, (y0 + y1) / 2),
                                val_steps=inside.val_steps[:0], val_loss=inside.val_loss[:0]))
        plot.redraw()
    assert x1 >= 1200 and ranges == []
    plot.add_update(fake_update(1201, 2000, rng))  # beyond it: the view follows
    plot.redraw()
    assert plot.shown_range()[0][1] >= 3200 and len(ranges) == 1
    plot.log_scale.setChecked(True)  # log mode: the view's y is log10 of the loss
    (_, _), (y0, y1) = plot.shown_range()
    values = plot.raw_curve.getData()[1]  # as drawn: log10 of the loss
    assert y0 <= values.min() and values.max() <= y1 <= 1.0
    plot.plot.getViewBox().setXRange(10, 20)
    plot.plot.getViewBox().sigRangeChangedManually.emit([True, False])  # as a mouse zoom does
    plot.add_update(fake_update(3201, 5000, rng))
    plot.redraw()
    assert plot.shown_range()[0] == pytest.approx((10, 20), abs=1)  # a hand-set view is left alone
    plot.plot.getPlotItem().autoBtnClicked()  # the "A" button hands it back
    plot.redraw()
    assert plot.shown_range()[0][1] >= 8200


def test_loss_history_decimation_keeps_min_and_max():
    history = LossHistory()
    values = np.sin(np.arange(10_000) / 50.0)
    history.extend(np.arange(10_000), values)
    x, y = history.decimated(100)
    assert len(x) == len(y) == 200 and np.all(np.diff(x) >= 0)
    assert y.min() == values.min() and y.max() == values.max()
    small = LossHistory()
    small.extend(np.arange(5), values[:5])
    assert np.array_equal(small.decimated(100)[1], values[:5])
    with pytest.raises(ValueError):
        small.extend(np.arange(3), values[:2])


# --- viewer sync --------------------------------------------------------------------------------
class RecordingSession:
    """Stands in for Session.set_model: records the models and advances a fake clock by
    ``cost_s`` at once and by ``repaint_s`` in an event posted by the swap (as a repaint is)."""

    def __init__(self, clock, cost_s, repaint_s=0.0):
        self.clock, self.cost_s, self.repaint_s, self.models = clock, cost_s, repaint_s, []
        self.first_passes = []  # set_model's first_pass, per model

    def set_model(self, model, vocab, whole=None, first_pass=True):
        self.models.append(model)
        self.first_passes.append(first_pass)
        self.clock[0] += self.cost_s
        QTimer.singleShot(0, self._repaint)

    def _repaint(self):
        self.clock[0] += self.repaint_s


def test_viewer_sync_coalesces_and_spaces_refreshes(qtbot, monkeypatch):
    from lstmviz.learn import viewer_sync

    clock = [100.0]
    monkeypatch.setattr(viewer_sync.time, "monotonic", lambda: clock[0])
    session = RecordingSession(clock, cost_s=0.1, repaint_s=0.04)
    sync = viewer_sync.ViewerSync(session, min_interval_s=0.25, gui_share=0.08)
    sync.offer("m1", "v")
    sync.offer("m2", "v")  # replaces m1 before it was shown
    qtbot.waitUntil(lambda: session.models == ["m2"] and sync.last_cost_s > 0, timeout=2000)
    assert sync.last_cost_s == pytest.approx(0.14)  # the swap and the repaint it posted
    sync.offer("m3", "v")
    assert session.models == ["m2"]
    assert sync._timer.isActive() and sync._timer.interval() == 1750  # 0.14 s / 0.08 after the refresh
    sync.flush()  # e.g. a run's final weights: at once
    assert session.models == ["m2", "m3"] and not sync._timer.isActive()
    assert session.first_passes == [False, True]  # a live refresh starts no first pass; a flush does
    sync.flush()  # nothing pending: nothing happens
    assert session.models == ["m2", "m3"]
    sync.offer("m4", "v")  # while m3 is still being painted: waits for it, then for the spacing
    assert not sync._timer.isActive()
    qtbot.waitUntil(sync._timer.isActive, timeout=2000)
    assert sync._timer.interval() == 1750 and session.models == ["m2", "m3"]
    sync._timer.stop()
    cheap_session = RecordingSession(clock, cost_s=0.001)
    cheap = viewer_sync.ViewerSync(cheap_session, min_interval_s=0.25, gui_share=0.08)
    cheap.offer("a", "v")
    cheap.flush()
    cheap.offer("b", "v")
    qtbot.waitUntil(cheap._timer.isActive, timeout=2000)
    assert cheap._timer.interval() == 250  # cheap refreshes: at most four per second
    cheap._timer.stop()
    stalled = viewer_sync.ViewerSync(RecordingSession(clock, cost_s=10.0), min_interval_s=0.25, gui_share=0.08)
    stalled.offer("c", "v")
    stalled.flush()  # "cost" 10 s, e.g. the event loop was held by something else
    stalled.offer("d", "v")
    qtbot.waitUntil(stalled._timer.isActive, timeout=2000)
    assert stalled._timer.interval() == 1000 * viewer_sync.MAX_INTERVAL_S  # not 125 s


def test_viewer_sync_repaints_paint_later_widgets_one_per_turn(qtbot):
    from PySide6.QtWidgets import QWidget

    from lstmviz.learn import viewer_sync

    painted = []

    class Heatmap(QWidget):
        def paintEvent(self, _event):
            painted.append(heatmaps.index(self))

    heatmaps = [Heatmap(), Heatmap(), Heatmap()]
    for widget in heatmaps[:2]:
        qtbot.addWidget(widget)
        with qtbot.waitExposed(widget):
            widget.show()
    qtbot.addWidget(heatmaps[2])  # hidden (e.g. another cell's heatmap): paints when shown
    seen = []

    class Session:
        def set_model(self, model, vocab, whole=None, first_pass=True):
            seen.append((model, whole, [w.updatesEnabled() for w in heatmaps]))

    sync = viewer_sync.ViewerSync(Session(), paint_later=heatmaps)
    sync.offer("m", "v", "trace")
    sync.flush()
    assert seen == [("m", "trace", [False, False, False])]  # swapped while the heatmaps do not repaint
    assert sync.painting and sync._turn.isActive()  # the next turn comes from the event loop
    del painted[:]
    sync._paint_next()  # a turn
    assert [w.updatesEnabled() for w in heatmaps] == [True, False, False] and painted == [0]
    assert sync._turn.isActive()
    sync._paint_next()
    assert [w.updatesEnabled() for w in heatmaps] == [True, True, False] and painted == [0, 1] and sync.painting
    sync._paint_next()  # the hidden one is switched on without a turn of its own
    assert [w.updatesEnabled() for w in heatmaps] == [True, True, True] and painted == [0, 1]
    assert not sync.painting  # counted as done only after the last one


def test_viewer_sync_settles_after_a_failed_swap(qtbot):
    from PySide6.QtWidgets import QWidget

    from lstmviz.learn import viewer_sync

    heatmap = QWidget()
    qtbot.addWidget(heatmap)

    class FailingSession:
        def set_model(self, model, vocab, whole=None, first_pass=True):
            raise ValueError("bad weights")

    sync = viewer_sync.ViewerSync(FailingSession(), paint_later=(heatmap,))
    sync.offer("m", "v")
    with pytest.raises(ValueError):
        sync.flush()
    qtbot.waitUntil(lambda: not sync.painting and heatmap.updatesEnabled(), timeout=2000)
    sync.offer("n", "v")  # and the next refresh is scheduled as usual
    assert sync._timer.isActive()
