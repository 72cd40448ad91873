"""engine.series: CSV columns, generators, scaling, the windowed dataset, and learning a sine."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import DataError
from engine.model import ModelConfig, SequenceModel
from engine.optim import make_optimizer
from engine.series import (MinMaxScaler, SeriesDataset, csv_columns, forecast, noisy_sine,
                           predict_all, ramp, random_walk, read_csv_column, sine)


# --- CSV ----------------------------------------------------------------------------------------
def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


PRICES = [1.5, 2.0, -3.25, 4e2, 5, 6, 7, 8, 9, 10.5, 11]


def test_csv_column_by_name_and_index(tmp_path):
    path = write(tmp_path, "date,price\n" + "".join(f"d{k},{v}\n" for k, v in enumerate(PRICES)) + "\n")
    by_name = read_csv_column(path, "price").values
    assert by_name.dtype == np.float64 and by_name.tolist() == PRICES
    assert read_csv_column(path, 1).values.tolist() == PRICES  # header detected: "price" is not a number


def test_csv_without_header_semicolons_and_blank_lines(tmp_path):
    path = write(tmp_path, "".join(f"{k};{v}\n\n" for k, v in enumerate(PRICES)))
    assert read_csv_column(path, 1).values.tolist() == PRICES
    assert read_csv_column(path, 0).values.tolist() == list(range(len(PRICES)))


def test_csv_comment_lines_above_the_header_are_left_out_and_rows_keep_their_file_lines(tmp_path):
    notes = "# station: Uccle, 1833-2024\n#\n  # units: degC; missing: none\n"
    path = write(tmp_path, notes + "year;temp\n" + "".join(f"{1900 + k};{v}\n" for k, v in enumerate(PRICES))
                 + "# not a comment once the rows have begun\n")
    with pytest.raises(DataError, match=rf"row {4 + len(PRICES) + 1} has 1 field but the first row \(row 4\) has 2"):
        read_csv_column(path, "temp").values
    path = write(tmp_path, notes + "year;temp\n" + "".join(f"{1900 + k};{v}\n" for k, v in enumerate(PRICES)))
    assert csv_columns(path) == ["year", "temp"]
    assert read_csv_column(path, "temp").values.tolist() == PRICES
    path = write(tmp_path, "#year;temp\n" + "".join(f"{1900 + k};{v}\n" for k, v in enumerate(PRICES)))
    with pytest.raises(DataError, match=r"no column named 'temp'; the first row \(row 2; the lines above it are "
                                        r"blank or '#' comments\) has: '1900', '1.5'"):
        read_csv_column(path, "temp")  # a header written as a comment: the message says why it was not read


def test_csv_single_column_with_bom(tmp_path):
    path = tmp_path / "one.csv"
    path.write_bytes(("\ufeffvalue\n" + "\n".join(map(str, PRICES))).encode("utf-8"))
    assert read_csv_column(path, "value").values.tolist() == PRICES


@pytest.mark.parametrize("cells, column, message", [
    (["a"] * 3 + ["x"] + ["a"] * 7, "price", r"row 5, column 'price': 'x' is not a finite number"),
    (["a"] * 4 + [""] + ["a"] * 6, "price", r"row 6, column 'price': missing value"),
    (["a"] * 2 + ["nan"] + ["a"] * 8, 1, r"row 4, column 'price': 'nan' marks a missing value; choose to "
                                          r"interpolate"),
    (["a"] * 2 + ["inf"] + ["a"] * 8, 1, r"row 4, column 'price': 'inf' is not a finite number"),
])
def test_csv_bad_cells_name_file_row_and_column(tmp_path, cells, column, message):
    rows = [f"d,{v if c == 'a' else c}" for c, v in zip(cells, PRICES)]
    path = write(tmp_path, "date,price\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=message) as info:
        read_csv_column(path, column).values
    assert str(path) in str(info.value)


def test_missing_values_are_interpolated_between_their_neighbours_and_dropped_at_the_ends(tmp_path):
    cells = ["NA", "1", "", "null", "4", "5", "n/a", "7", "8", "9", "10", "11", "12", "13", "?", "-"]
    path = write(tmp_path, "date,close\n" + "".join(f"d{k},{c}\n" for k, c in enumerate(cells)))
    column = read_csv_column(path, "close", missing="interpolate")
    assert column.values.tolist() == list(range(1, 14))  # the gaps lie on the line
    assert column.interpolated == [4, 5, 8] and column.dropped == [2, 16, 17]  # file lines
    with pytest.raises(DataError, match=r"row 2, column 'close': 'NA' marks a missing value"):
        read_csv_column(path, "close")  # refused by default
    with pytest.raises(ValueError, match="missing must be one of"):
        read_csv_column(path, "close", missing="zero")


def test_a_column_with_no_values_is_refused_when_interpolating(tmp_path):
    path = write(tmp_path, "v\n" + "NA\n" * 20)
    with pytest.raises(DataError, match=r"column 'v' has no values \(every cell is missing\); at least 10"):
        read_csv_column(path, "v", missing="interpolate")


def test_interpolated_values_do_not_count_towards_the_minimum(tmp_path):
    cells = ["1"] + [""] * 20 + ["3"] + ["5"] * 2
    path = write(tmp_path, "v\n" + "\n".join(cells) + "\n")
    with pytest.raises(DataError, match=r"column 'v' has 4 value\(s\); at least 10 are needed"):
        read_csv_column(path, "v", missing="interpolate")


def test_csv_short_row_is_refused_without_header(tmp_path):
    path = write(tmp_path, "1,2\n3,4\n5\n" + "7,8\n" * 10)
    with pytest.raises(DataError, match=r"row 3 has 1 field but the first row \(row 1\) has 2 .*missing fields"):
        read_csv_column(path, 1).values


@pytest.mark.parametrize("text, column, message", [
    ("price\n1\n2\n3\n", "price", r"column 'price' has 3 value\(s\); at least 10"),
    ("price\n" + "4.5\n" * 12, "price", r"column 'price' is constant \(4.5\)"),
    ("date,price\n1,2\n", "cost", r"no column named 'cost'; the first row has: 'date', 'price'"),
    ("1,2\n" * 12, 2, r"column index 2 is out of range"),
    (",,\n,,\n", 0, r"no values"),
])
def test_csv_refusals(tmp_path, text, column, message):
    with pytest.raises(DataError, match=message):
        read_csv_column(write(tmp_path, text), column).values


def test_csv_file_problems_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_csv_column(tmp_path / "missing.csv", 0).values
    big = write(tmp_path, "1\n" * 100)
    with pytest.raises(DataError, match="too big"):
        read_csv_column(big, 0, max_bytes=50).values
    with pytest.raises(ValueError, match="column must be a name"):
        read_csv_column(big, 1.0).values


# --- generators ---------------------------------------------------------------------------------
def test_generators():
    assert ramp().tolist() == list(range(-3, 9))  # the tutorial's ramp
    s = sine(40, period=20, amplitude=2.0)
    assert s.shape == (40,) and s[5] == pytest.approx(2.0) and s[15] == pytest.approx(-2.0)
    assert np.allclose(s[:20], s[20:], atol=1e-12)
    a = noisy_sine(2000, 20, 0.1, np.random.default_rng(3))
    assert np.array_equal(a, noisy_sine(2000, 20, 0.1, np.random.default_rng(3)))
    assert np.std(a - sine(2000, 20)) == pytest.approx(0.1, rel=0.1)
    w = random_walk(500, np.random.default_rng(4), start=50.0, volatility=0.05)
    assert w[0] == 50.0 and np.all(w > 0) and len(np.unique(w)) == 500
    assert np.std(np.diff(np.log(w))) == pytest.approx(0.05, rel=0.15)
    for bad in (lambda: sine(0), lambda: sine(10, period=0), lambda: noisy_sine(10, 5, -1, np.random.default_rng()),
                lambda: random_walk(10, np.random.default_rng(), start=-1)):
        with pytest.raises(ValueError):
            bad()


# --- scaler -------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=30).filter(lambda v: max(v) - min(v) > 1e-300),
       st.sampled_from([(-1.0, 1.0), (0.0, 1.0), (-5.0, 3.0)]))
def test_scaler_round_trip_and_range(values, bounds):
    values = np.array(values)
    scaler = MinMaxScaler(*bounds).fit(values)
    scaled = scaler.transform(values)
    assert scaled.min() == pytest.approx(bounds[0], abs=1e-9) and scaled.max() == pytest.approx(bounds[1], abs=1e-9)
    span = values.max() - values.min()
    assert np.allclose(scaler.inverse_transform(scaled), values, rtol=0, atol=1e-9 * max(span, np.abs(values).max()))


def test_scaler_state_round_trip():
    scaler = MinMaxScaler(0.0, 1.0).fit([3.0, -2.0, 7.5])
    restored = MinMaxScaler.from_dict(scaler.to_dict())
    assert restored.to_dict() == {"lo": 0.0, "hi": 1.0, "data_min": -2.0, "data_max": 7.5}
    assert restored.transform(7.5) == 1.0 and restored.inverse_transform(0.0) == -2.0


def test_scaler_refusals():
    with pytest.raises(DataError, match="constant"):
        MinMaxScaler().fit([2.0, 2.0, 2.0])
    with pytest.raises(DataError, match="constant"):  # a subnormal range would scale by infinity
        MinMaxScaler().fit([0.0, 1.1125369292536007e-308])
    with pytest.raises(ValueError, match="not fitted"):
        MinMaxScaler().transform([1.0])
    with pytest.raises(ValueError, match="lo < hi"):
        MinMaxScaler(1, -1)


# --- dataset ------------------------------------------------------------------------------------
def series_model(window=3, horizon=1, hidden=8, head="linear", dtype="float64", seed=0):
    config = ModelConfig(input_size=window, output_size=horizon, hidden_size=hidden, input_kind="dense",
                         head=head, dtype=dtype)
    return SequenceModel(config, rng=np.random.default_rng(seed))


def test_dataset_framing_and_split():
    values = np.arange(30.0) ** 1.5  # (N,)
    ds = SeriesDataset(values, window=4, horizon=2, val_fraction=0.2, dtype="float64")
    N, W, K, n_val = 30, 4, 2, 6
    assert ds.positions == N - W - K + 1 == len(ds.inputs) == len(ds.targets)
    # the scaler saw the training values only: they span exactly [-1, 1]
    assert ds.scaler.data_min == values[0] and ds.scaler.data_max == values[N - n_val - 1]
    for p in range(ds.positions):
        assert np.allclose(ds.inputs[p], ds.scaler.transform(values[p:p + W]), atol=1e-15)
        assert np.allclose(ds.targets[p], ds.scaler.transform(values[p + W:p + W + K]), atol=1e-15)
    # training targets end before the validation values; validation targets lie inside them
    assert ds.train_positions - 1 + W + K - 1 == N - n_val - 1
    assert ds.val_first_position + W == N - n_val


def test_sequential_batches_continue_streams_and_resume():
    ds = SeriesDataset(sine(200), window=2, val_fraction=0.1)
    B, T = 3, 7
    batches = list(itertools.islice(ds.batches(B, T), 20))
    per_epoch = (ds.train_positions // B) // T
    assert batches[0].x.shape == (B, T, 2) and batches[0].y.shape == (B, T, 1)
    assert batches[0].x.dtype == np.float32
    assert [b.reset for b in batches] == [k % per_epoch == 0 for k in range(20)]
    for prev, nxt in zip(batches, batches[1:]):
        if not nxt.reset:  # row b continues: the next input window starts one value later
            assert np.array_equal(nxt.x[:, 0, :-1], prev.x[:, -1, 1:])
            assert np.array_equal(nxt.x[:, 0, -1], prev.y[:, -1, 0])
    resumed = list(itertools.islice(ds.batches(B, T, start=5), 15))
    for a, b in zip(batches[5:], resumed):
        assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y) and a.reset == b.reset


def test_random_batches_are_reproducible_and_inside_training_part():
    ds = SeriesDataset(ramp(n=100), window=3, val_fraction=0.2)
    first = list(itertools.islice(ds.batches(4, 5, np.random.default_rng(7), mode="random"), 30))
    again = list(itertools.islice(ds.batches(4, 5, np.random.default_rng(7), mode="random"), 30))
    assert all(np.array_equal(a.x, b.x) and b.reset for a, b in zip(first, again))
    train_max = ds.scaler.transform(ds.values[ds.train_positions + 2])  # last training target
    assert max(b.y.max() for b in first) <= train_max + 1e-6


def test_dataset_refusals():
    with pytest.raises(DataError, match="batch_size 4 x seq_len 10 needs 40"):
        SeriesDataset(sine(40), window=3).check_trainable(10, 4)
    with pytest.raises(DataError, match="too few"):
        SeriesDataset(sine(10), window=8, horizon=2, val_fraction=0.2)
    with pytest.raises(DataError, match="constant"):
        SeriesDataset(np.ones(50), window=2)
    with pytest.raises(ValueError, match="val_fraction"):
        SeriesDataset(sine(50), window=2, val_fraction=0.9)
    with pytest.raises(ValueError, match="mode"):
        SeriesDataset(sine(50), window=2).batches(2, 3, mode="shuffled")
    with pytest.raises(ValueError, match="rng"):
        SeriesDataset(sine(50), window=2).batches(2, 3, mode="random")
    with pytest.raises(ValueError, match="input_size=2"):
        SeriesDataset(sine(50), window=2).evaluate(series_model(window=3))
    with pytest.raises(DataError, match="no validation"):
        SeriesDataset(sine(50), window=2, val_fraction=0).evaluate(series_model(window=2))


def stepped_outputs(model, inputs):
    """Reference: the model's outputs position by position with model.step, from a zero state."""
    state, outs = None, []
    for x in inputs:
        out, state, _ = model.step(x[None].astype(model.dtype), state)
        outs.append(out[0])
    return np.array(outs), state  # (M, K)


def test_evaluate_and_predict_all_match_stepping():
    values = random_walk(80, np.random.default_rng(1))
    ds = SeriesDataset(values, window=3, horizon=2, val_fraction=0.25, dtype="float64")
    model = series_model(window=3, horizon=2)
    outs, _ = stepped_outputs(model, ds.inputs)  # (M, 2) scaled
    val = slice(ds.val_first_position, None)
    score = ds.evaluate(model)
    assert score.mse == pytest.approx(np.mean((outs[val] - ds.targets[val]) ** 2), rel=1e-12)
    original = ds.scaler.inverse_transform(outs[val]) - values[np.arange(ds.val_first_position, ds.positions)[:, None]
                                                               + 3 + np.arange(2)]
    assert score.mse_original == pytest.approx(np.mean(original ** 2), rel=1e-9)
    pred = predict_all(model, ds)
    assert np.array_equal(pred.index, np.arange(3, 3 + ds.positions))
    assert np.array_equal(pred.actual, values[3:3 + ds.positions])
    assert np.allclose(pred.predicted, ds.scaler.inverse_transform(outs[:, 0]), rtol=1e-12)
    assert pred.val_start == 80 - 20
    assert ds.validation_loss(model) == score.mse
    assert SeriesDataset(values, window=3, val_fraction=0).validation_loss(model) is None


def test_forecast_feeds_predictions_back():
    model = series_model(window=3)
    history = sine(30, period=10) * 0.9  # (n,) scaled units
    got = forecast(model, history, 6)
    outs, state = stepped_outputs(model, np.lib.stride_tricks.sliding_window_view(history, 3))
    expected, window = [outs[-1, 0]], list(history[-3:])
    for _ in range(5):
        window = window[1:] + [expected[-1]]
        out, state, _ = model.step(np.array([window]), state)
        expected.append(out[0, 0])
    assert np.allclose(got, expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="at least 3"):
        forecast(model, history[:2], 3)


# --- learning -----------------------------------------------------------------------------------
def test_lstm_learns_a_sine():
    """H=16 LSTM, window 4, Adam lr 0.01, 400 steps of sequential batches (8 x 25): the validation
    MSE (scaled units, [-1, 1]) falls below 0.01 (an untrained model is at ~0.5), and a 20-step
    free-running forecast stays within 0.1 of the true wave (measured over seeds 0-4: val MSE
    4e-5 to 6e-5, forecast error <= 0.024, about 1.2 s)."""
    values = sine(600, period=25)
    ds = SeriesDataset(values, window=4, val_fraction=0.2)
    model = series_model(window=4, hidden=16, head="tanh", dtype="float32", seed=2)
    before = ds.evaluate(model).mse
    optimizer = make_optimizer("adam", 0.01)
    state = None
    for batch in itertools.islice(ds.batches(8, 25), 400):
        _, grads, state = model.loss_and_grads(batch.x, batch.y, None if batch.reset else state)
        optimizer.step(model.params, grads)
        model.params_changed()
    score = ds.evaluate(model)
    assert before > 0.1
    assert score.mse < 0.01
    half_range = (ds.scaler.data_max - ds.scaler.data_min) / 2  # original units per scaled unit
    assert score.mse_original == pytest.approx(score.mse * half_range ** 2, rel=1e-4)
    split = len(values) - ds.n_val
    rolled = ds.scaler.inverse_transform(forecast(model, ds.scaled[:split], 20))
    assert np.max(np.abs(rolled - values[split:split + 20])) < 0.1


def test_text_and_series_datasets_have_the_trainer_interface():
    """Every member of ``engine.data.Dataset`` exists on both datasets, with their own loss units."""
    from engine.data import Dataset, TextCorpus

    members = {n for n in vars(Dataset) if not n.startswith("_")} | set(Dataset.__annotations__)
    assert {"batches", "validation_loss", "loss_unit", "loss_bits", "check_model", "checkpoint_extra"} <= members
    for cls in (TextCorpus, SeriesDataset):
        assert all(hasattr(cls, n) for n in members), cls
    assert TextCorpus.loss_unit == "nats/char" and SeriesDataset.loss_unit == "MSE (scaled units)"
    dataset = SeriesDataset(sine(50), window=3, val_fraction=0.2)
    assert dataset.loss_bits(0.25) is None
    assert dataset.checkpoint_extra() == {"series": dataset.describe()}
