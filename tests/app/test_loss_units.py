"""The loss plot names the loss in the unit of the dataset that was trained (Progress.loss_unit)."""

import numpy as np

from engine.model import ModelConfig, SequenceModel
from engine.series import SeriesDataset, sine
from engine.train import TrainConfig, Trainer
from lstmviz.training import TrainingUpdate
from lstmviz.learn.loss_plot import LossPlot


def final_update(progress, val):
    steps = np.array([progress.step], np.int64)
    loss = np.array([progress.train_loss])
    return TrainingUpdate(progress, steps, loss, loss.copy(), steps, np.array([val]), None, True)


def test_a_series_run_is_labelled_mse_not_nats(qtbot):
    dataset = SeriesDataset(sine(120, period=15.0), 4, val_fraction=0.2)
    model = SequenceModel(ModelConfig(input_size=4, output_size=1, hidden_size=6, input_kind="dense", head="linear"),
                          rng=np.random.default_rng(0))
    *_, last = Trainer(model, dataset, TrainConfig(seq_len=8, batch_size=4, steps=5, eval_every=5)).run()
    plot = LossPlot()
    qtbot.addWidget(plot)
    axis = plot.plot.getPlotItem().getAxis("left")
    assert axis.labelUnits == "nats/char"  # before any run: the text trainer's unit
    plot.add_update(final_update(last, last.val_loss))
    assert axis.labelUnits == "MSE (scaled units)"
    text = plot.readout.text()
    assert f"validation {last.val_loss:.4f} MSE (scaled units)" in text and "nats" not in text and "bits" not in text
