"""Loss histories: the worker's per-step buffer, the decimated curve history, the readout."""

from types import SimpleNamespace

import numpy as np
import pytest

from lstmviz.core.history import LossHistory, StepLosses, loss_readout


def test_step_losses_gather_and_empty():
    buffer = StepLosses()
    for step, loss, val in ((1, 3.0, None), (2, 2.5, 2.7), (3, 2.0, None)):
        buffer.add(SimpleNamespace(step=step, train_loss=loss, smooth_loss=loss + 0.5, val_loss=val))
    steps, train, smooth, val_steps, val = buffer.take()
    np.testing.assert_array_equal(steps, [1, 2, 3])
    np.testing.assert_array_equal(train, [3.0, 2.5, 2.0])
    np.testing.assert_array_equal(smooth, [3.5, 3.0, 2.5])
    np.testing.assert_array_equal(val_steps, [2])
    np.testing.assert_array_equal(val, [2.7])
    assert steps.dtype == np.int64 and train.dtype == np.float64
    assert all(len(a) == 0 for a in buffer.take())  # taken once


def test_loss_history_grows_past_its_capacity_and_decimates_to_min_max():
    history = LossHistory()
    steps = np.arange(1, 3001)
    values = np.sin(steps / 50.0)  # (3000,)
    for k in range(0, 3000, 700):  # appends of 700: grows past the first capacity of 1024
        history.extend(steps[k:k + 700], values[k:k + 700])
    assert len(history) == 3000
    np.testing.assert_array_equal(history.data()[1], values)
    x, y = history.decimated(max_bins=10)  # bins of 300 steps: min at the first step, max at the last
    assert len(x) == len(y) == 20
    for b in range(10):
        chunk = values[300 * b:300 * (b + 1)]
        assert (x[2 * b], x[2 * b + 1]) == (300 * b + 1, 300 * (b + 1))
        assert (y[2 * b], y[2 * b + 1]) == (chunk.min(), chunk.max())
    with pytest.raises(ValueError, match="same length"):
        history.extend(np.arange(3), np.zeros(2))


def test_loss_readout_in_the_dataset_unit():
    assert loss_readout(40, 1.2, None, "nats/char") == "step 40: smoothed loss 1.2000"
    assert loss_readout(40, 1.2, np.log(4.0), "nats/char") == \
        "step 40: smoothed loss 1.2000, validation 1.3863 nats/char (2.000 bits/char)"
    assert loss_readout(7, 0.5, 0.0123, "MSE (scaled units)") == \
        "step 7: smoothed loss 0.5000, validation 0.0123 MSE (scaled units)"
