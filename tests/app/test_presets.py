"""Each preset's settings equal its source's, written out by hand from the sources (the recipes'
code and the seed texts), not read from presets.py; the command line applies a preset."""

import pytest

from lstmviz.cli import _new_trainer, build_parser
from lstmviz.core.presets import PRESETS, preset_named

# char-rnn train.lua: -rnn_size 128 -num_layers 2 -model lstm -learning_rate 2e-3 -learning_rate_decay 0.97
# -learning_rate_decay_after 10 -decay_rate 0.95 -dropout 0 -seq_length 50 -batch_size 50 -grad_clip 5
# (optim_state.alpha = decay_rate; clamp of every element), params:uniform(-0.08, 0.08), i2h forget bias 1
CHAR_RNN = dict(cell="lstm", input_kind="onehot", hidden_size=128, num_layers=2, dropout=0.0, seq_len=50,
                batch_size=50, optimizer="rmsprop", lr=2e-3, rmsprop_decay=0.95, clip_value=5.0, clip_norm=None,
                init="uniform", init_range=0.08, forget_bias=1.0, lr_schedule="step", lr_decay=0.97,
                lr_decay_every=1, lr_decay_start=10, batching="sequential", momentum=0.0, lr_warmup=0)
# min-char-rnn.py: hidden_size = 100, seq_length = 25, learning_rate = 1e-1, Adagrad (mem += dparam**2),
# np.clip(dparam, -5, 5, out=dparam), one sequence, hprev carried
MIN_CHAR_RNN = dict(cell="rnn", input_kind="onehot", hidden_size=100, num_layers=1, seq_len=25, batch_size=1,
                    optimizer="adagrad", lr=0.1, clip_value=5.0, clip_norm=None, lr_schedule="none",
                    batching="sequential", dropout=0.0, lr_warmup=0)
# seed 002: LSTM(300, return_sequences=True), Dropout(0.2), LSTM(300), Dropout(0.2), Dense softmax;
# windows File[i: i + 50] scaled by 1 / len(chars_unique); compile(optimizer='adam'); fit(batch_size=30)
KERAS_TUTORIAL = dict(cell="lstm", input_kind="scaled_index", hidden_size=300, num_layers=2, dropout=0.2,
                      seq_len=50, batch_size=30, optimizer="adam", lr=1e-3, clip_norm=None, clip_value=None,
                      forget_bias=1.0, lr_schedule="none", batching="random", lr_warmup=0)
# keras-io lstm_character_level_text_generation: maxlen = 40, layers.LSTM(128), one-hot x,
# RMSprop(learning_rate=0.01) (rho 0.9), batch_size = 128
KERAS_IO = dict(cell="lstm", input_kind="onehot", hidden_size=128, num_layers=1, seq_len=40, batch_size=128,
                optimizer="rmsprop", lr=0.01, rmsprop_decay=0.9, clip_norm=None, clip_value=None, forget_bias=1.0,
                lr_schedule="none", batching="random", dropout=0.0, lr_warmup=0)
# seed 004: LSTM(64, vocab_size, vocab_size), train(..., learning_rate=0.01, clip_value=5), plain updates
NUMPY_TUTORIAL = dict(cell="lstm", input_kind="onehot", hidden_size=64, num_layers=1, batch_size=1,
                      optimizer="sgd", lr=0.01, momentum=0.0, clip_value=5.0, clip_norm=None, lr_schedule="none",
                      dropout=0.0, lr_warmup=0)

EXPECTED = {"char-rnn": CHAR_RNN, "min-char-rnn": MIN_CHAR_RNN,
            "Keras tutorial (Python ML, 2 x LSTM 300)": KERAS_TUTORIAL,
            "keras-io text generation": KERAS_IO, "NumPy LSTM tutorial": NUMPY_TUTORIAL}


def test_the_presets_are_the_five_recipes():
    assert [p.name for p in PRESETS] == list(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_preset_equals_its_source(name):
    values = preset_named(name).values
    for field, expected in EXPECTED[name].items():
        assert values[field] == expected, (name, field)


def test_cli_preset_sets_the_recipe_and_flags_override_it():
    text = "abcd efgh\n" * 600
    args = build_parser().parse_args(["train", "c.txt", "--out", "m.npz", "--preset", "char-rnn", "--steps", "7"])
    trainer = _new_trainer(args, text)
    train, model = trainer.config, trainer.model.config
    assert (model.hidden_size, model.num_layers, model.init, model.init_range, model.forget_bias) == (128, 2, "uniform", 0.08, 1.0)
    assert (train.optimizer, train.rmsprop_decay, train.clip_value, train.clip_norm) == ("rmsprop", 0.95, 5.0, None)
    assert (train.lr_schedule, train.lr_decay, train.lr_decay_start, train.steps) == ("step", 0.97, 10, 7)
    assert trainer.optimizer.hyper["alpha"] == 0.95
    assert max(abs(float(p.max())) for n, p in trainer.model.params.items() if not n.endswith(".b")) <= 0.08
