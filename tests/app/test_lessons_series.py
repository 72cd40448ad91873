"""Series lesson: generators, CSV refusals, scaling view, training and the forecast plot."""

import numpy as np
import pytest

from engine.model import ModelConfig, SequenceModel
from engine.optim import clip_grads, make_optimizer
from engine.series import forecast, predict_all, sine
from engine.train import TrainConfig, Trainer
from lstmviz.lessons.series_panel import SeriesPanel

MSE_BOUND = 1e-3  # validation MSE (scaled units) of a sine after 300 Adam steps; measured ~1e-5


@pytest.fixture
def panel(qtbot):
    widget = SeriesPanel()
    widget.resize(1000, 600)
    widget.show()
    yield widget
    widget.shutdown()
    widget.close()
    widget.deleteLater()


def train_loop(model, dataset, steps):
    """A plain truncated-BPTT loop with the engine's optimizer (independent of the panel)."""
    optimizer = make_optimizer("adam", 1e-2)
    batches = dataset.batches(4, 32)
    state = None
    for _ in range(steps):
        batch = next(batches)
        _, grads, state = model.loss_and_grads(batch.x, batch.y, None if batch.reset else state)
        clip_grads(grads, 5.0, None)
        optimizer.step(model.params, grads)
        model.params_changed()
    return model


def generate_sine(panel):
    panel.generator_box.setCurrentText("sine")
    panel.length.setValue(400)
    panel.generate()


def test_generated_sine_is_shown_original_and_scaled(panel):
    generate_sine(panel)
    np.testing.assert_array_equal(panel.values, sine(400, period=25.0))
    x, original = panel.original_curve.getData()
    np.testing.assert_array_equal(original, panel.values)
    _, scaled = panel.scaled_curve.getData()
    train_part = scaled[: 400 - 80]  # the scaler is fitted on the training part only
    assert train_part.min() == pytest.approx(-1.0) and train_part.max() == pytest.approx(1.0)
    np.testing.assert_allclose(panel.dataset.scaler.inverse_transform(scaled), panel.values, atol=1e-12)
    assert panel.forecast_plot.validation.getRegion() == pytest.approx((319.5, 399.5))


def test_other_generators(panel):
    for kind, check in (("ramp -3 … 8", lambda v: np.array_equal(v, np.linspace(-3.0, 8.0, 400))),  # N values
                        ("noisy sine", lambda v: len(v) == 400 and not np.array_equal(v, sine(400, 25.0))),
                        ("random-walk price", lambda v: len(v) == 400 and v[0] == 100.0 and np.all(v > 0))):
        panel.generator_box.setCurrentText(kind)
        panel.length.setValue(400)
        panel.generate()
        assert check(panel.values), kind


def test_trained_sine_forecasts_are_plotted_in_original_units(panel):
    generate_sine(panel)
    dataset = panel.dataset
    config = ModelConfig(input_size=8, output_size=1, hidden_size=16, input_kind="dense", head="linear")
    model = train_loop(SequenceModel(config, rng=np.random.default_rng(0)), dataset, 300)
    panel.show_model(model)
    assert panel.score.mse < MSE_BOUND
    prediction = predict_all(model, dataset)
    x, y = panel.forecast_plot.curves["predicted"]
    np.testing.assert_array_equal(x, prediction.index)
    np.testing.assert_array_equal(y, prediction.predicted)
    np.testing.assert_array_equal(panel.forecast_plot.curves["actual"][1], panel.values)
    panel.ahead.setValue(25)
    panel.origin.setValue(350)
    expected = dataset.scaler.inverse_transform(forecast(model, dataset.scaled[:351], 25))
    fx, fy = panel.forecast_plot.curves["forecast"]
    np.testing.assert_array_equal(fx, np.arange(351, 376))
    np.testing.assert_array_equal(fy, expected)
    assert np.max(np.abs(fy - sine(400, 25.0)[351:376])) < 0.2  # a sine is easy to roll forward
    panel.forecast_plot.origin_picked.emit(200)  # what a click at x = 200 emits
    assert panel.forecast_plot.curves["forecast"][0][0] == 201


def test_train_button_trains_in_a_worker(panel, qtbot, errors):
    generate_sine(panel)
    try:
        Trainer(SequenceModel(ModelConfig(8, 1, hidden_size=4, input_kind="dense", head="linear"),
                              rng=np.random.default_rng(0)), panel.dataset, TrainConfig(seq_len=8, batch_size=4))
    except ValueError as e:
        pytest.skip(f"engine.train.Trainer does not take a SeriesDataset yet: {e}")
    panel.steps.setValue(300)
    panel.train()
    qtbot.waitUntil(lambda: not panel.controller.is_active(), timeout=120_000)
    assert errors == []
    assert panel.score.mse < MSE_BOUND
    np.testing.assert_array_equal(panel.forecast_plot.curves["predicted"][1],
                                  predict_all(panel.model, panel.dataset).predicted)


def test_csv_columns_and_refusals(panel, tmp_path, errors):
    good = tmp_path / "prices.csv"
    rows = ["date;price;note;flat"] + [f"2024-01-{k + 1:02d};{100 + k * 0.5};x{k};7" for k in range(30)]
    good.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert panel.open_csv(good)
    assert [panel.column_box.itemText(k) for k in range(panel.column_box.count())] == \
        ["0: date", "1: price", "2: note", "3: flat"]
    panel.column_box.setCurrentIndex(1)
    assert panel.load_column()
    np.testing.assert_array_equal(panel.values, 100 + np.arange(30) * 0.5)
    before = panel.values
    for index, fragment in ((0, "not a finite number"), (2, "not a finite number"), (3, "constant")):
        panel.column_box.setCurrentIndex(index)
        assert not panel.load_column()
        assert fragment in errors[-1][1]
        assert panel.values is before  # nothing changed
    assert not panel.open_csv(tmp_path / "missing.csv")
    binary = tmp_path / "image.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    assert not panel.open_csv(binary)
    assert len(errors) == 5
    assert panel.csv_path == str(good) and panel.values is before


def true_continuation(kind: str, values: np.ndarray, ahead: int) -> np.ndarray:
    """The ``ahead`` values that would follow ``values`` from the same source: a ramp goes on
    in equal steps; the other generators' next values are those of a longer series drawn from
    the same seed (``engine.series`` draws them in order)."""
    from lstmviz.core.recipes import SERIES_SEED, generate

    if kind.startswith("ramp"):
        return values[-1] + (values[1] - values[0]) * np.arange(1, ahead + 1)  # (ahead,)
    return generate(kind, len(values) + ahead, np.random.default_rng(SERIES_SEED))[len(values):]  # (ahead,)


FORECAST_ERROR_BOUND = 0.05  # of the series' range: a forecast a learner reads as "it follows"
RANGE_MARGIN = 0.10  # of the series' range: how far past the data a sane forecast may stray


def test_the_default_series_forecast_follows_the_data_past_its_end(panel, qtbot, errors):
    panel.generate()  # every setting at its default
    kind, values = panel.generator_box.currentText(), panel.values
    panel.train()
    qtbot.waitUntil(lambda: not panel.controller.is_active(), timeout=120_000)
    assert errors == [] and panel.model is not None
    ahead = panel.ahead.value()
    panel.origin.setValue(len(values) - 1)  # roll forward past the last value
    x, forecast_values = panel.forecast_plot.curves["forecast"]
    np.testing.assert_array_equal(x, np.arange(len(values), len(values) + ahead))
    span = values.max() - values.min()
    assert forecast_values.min() >= values.min() - RANGE_MARGIN * span
    assert forecast_values.max() <= values.max() + RANGE_MARGIN * span
    error = np.abs(forecast_values - true_continuation(kind, values, ahead)).max()  # original units
    assert error <= FORECAST_ERROR_BOUND * span, (kind, error / span)
