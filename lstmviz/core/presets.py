"""Training presets: named recipes of published char-level models, for the model panel and the CLI
(``lstmviz train --preset NAME``).

Each preset reproduces one recipe and names it (``source``, with what the engine cannot copy);
it fills every architecture and optimisation field of the form (the seed is left as the user
set it); every value stays editable. Field names are those of ``engine.model.ModelConfig`` and
``engine.train.TrainConfig``; ``clip_norm``/``clip_value`` of ``None`` mean "no clipping". A
preset is checked by those configs when it is made. The steps are a budget of this app (the
recipes count epochs of their own corpora).

Sources:

- char-rnn: Karpathy's ``train.lua`` defaults (github.com/karpathy/char-rnn): ``rnn_size 128``,
  ``num_layers 2``, ``seq_length 50``, ``batch_size 50``, RMSprop ``learning_rate 2e-3``,
  ``decay_rate 0.95``, ``grad_clip 5`` (element-wise clamp), ``learning_rate_decay 0.97`` after
  ``learning_rate_decay_after 10`` epochs, ``dropout 0``, every parameter U(-0.08, 0.08) and the
  forget-gate bias of ``i2h`` set to 1.
- min-char-rnn: Karpathy's ``min-char-rnn.py`` gist: ``hidden_size 100``, ``seq_length 25``,
  Adagrad ``learning_rate 1e-1``, ``np.clip(dparam, -5, 5)``, one sequence per step.
- The "Python Machine Learning" Keras tutorial (``002_b951e0bea5997421.txt``): two ``LSTM(300)``
  each followed by ``Dropout(0.2)``, windows of 50 characters fed as ``id / V``,
  ``optimizer='adam'`` (Keras' lr 1e-3), ``batch_size=30``.
- keras-io's "Character-level text generation with LSTM" example: ``LSTM(128)`` on one-hot
  windows of ``maxlen = 40``, ``RMSprop(learning_rate=0.01)`` (Keras' ``rho`` 0.9),
  ``batch_size=128``.
- The NumPy LSTM tutorial (``004_7be3afd8aff01582.txt``): ``LSTM(64, vocab, vocab)``, plain SGD
  ``learning_rate=0.01``, ``clip_value=5`` (element-wise), one sequence per step.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.model import ModelConfig
from engine.settings import split_values
from engine.train import TrainConfig


@dataclass(frozen=True)
class Preset:
    """A named set of form values and where they come from (the recipe, and what differs).

    Raises ValueError (the configs' message) if ``values`` names an unknown field or is not a
    valid ``ModelConfig`` + ``TrainConfig`` (for any vocabulary size)."""

    name: str
    source: str
    values: dict

    def __post_init__(self):
        model_values, train_values = split_values(self.values, ModelConfig, TrainConfig)
        if model_values.get("input_kind") == "embedding":
            raise ValueError("a preset cannot choose an embedding (its size depends on the text)")
        ModelConfig(input_size=1, output_size=1, **model_values)
        TrainConfig(**train_values)


# what every preset leaves at the engine's plain settings unless it says otherwise
_PLAIN = dict(input_kind="onehot", embed_size=0, dropout=0.0, forget_bias=0.0, init="default", init_range=0.08, momentum=0.0,
              rmsprop_decay=0.99, clip_norm=None, clip_value=None, lr_schedule="none", lr_decay=0.97,
              lr_decay_every=1, lr_decay_start=1, lr_warmup=0, batching="sequential")

PRESETS = (
    Preset(
        "char-rnn",
        "Karpathy's char-rnn (train.lua defaults): two LSTM(128) layers, sequences of 50, batches of "
        "50, RMSprop lr 2e-3 with decay 0.95, every gradient element clamped to [-5, 5], every "
        "parameter uniform in [-0.08, 0.08] with forget bias 1, and the learning rate x0.97 at the "
        "end of every epoch from the 10th; dropout 0, state carried between batches. (char-rnn "
        "holds two biases per gate, so its other gate biases spread twice as wide.)",
        {**_PLAIN, **dict(cell="lstm", hidden_size=128, num_layers=2, seq_len=50, batch_size=50,
                          optimizer="rmsprop", lr=2e-3, rmsprop_decay=0.95, clip_value=5.0, init="uniform",
                          init_range=0.08, forget_bias=1.0, lr_schedule="step", lr_decay=0.97, lr_decay_every=1,
                          lr_decay_start=10, steps=5000, eval_every=200)},
    ),
    Preset(
        "min-char-rnn",
        "Karpathy's min-char-rnn.py: a vanilla RNN with 100 hidden units, sequences of 25, one "
        "sequence per step, Adagrad lr 0.1, every gradient element clamped to [-5, 5], state carried. "
        "(Its weights start as 0.01 x normal and its loss is summed over the 25 steps, not averaged; "
        "Adagrad's steps do not depend on that scale, its clipping does.)",
        {**_PLAIN, **dict(cell="rnn", hidden_size=100, num_layers=1, seq_len=25, batch_size=1,
                          optimizer="adagrad", lr=0.1, clip_value=5.0, steps=10000, eval_every=500)},
    ),
    Preset(
        "Keras tutorial (Python ML, 2 x LSTM 300)",
        "The Keras character-level text generator tutorial (seed text 002): two LSTM(300) layers with "
        "dropout 0.2, windows of 50 characters each fed as one number id / V, Adam at Keras' default "
        "lr 1e-3, batches of 30, forget bias 1 (Keras' unit_forget_bias). (The tutorial predicts only "
        "the character after each window, drops out after the top layer too and starts Keras' "
        "Glorot/orthogonal weights; this trains on every position of each window.)",
        {**_PLAIN, **dict(cell="lstm", hidden_size=300, num_layers=2, dropout=0.2, input_kind="scaled_index",
                          seq_len=50, batch_size=30, optimizer="adam", lr=1e-3, forget_bias=1.0,
                          batching="random", steps=5000, eval_every=200)},
    ),
    Preset(
        "keras-io text generation",
        "keras-io's 'Character-level text generation with LSTM' example: one LSTM(128) on one-hot "
        "windows of 40 characters, RMSprop lr 0.01 with Keras' decay (rho) 0.9, batches of 128, no "
        "clipping, forget bias 1 (Keras' unit_forget_bias). (The example predicts only the "
        "character after each window; this trains on every position.)",
        {**_PLAIN, **dict(cell="lstm", hidden_size=128, num_layers=1, seq_len=40, batch_size=128,
                          optimizer="rmsprop", lr=0.01, rmsprop_decay=0.9, forget_bias=1.0, batching="random",
                          steps=3000, eval_every=200)},
    ),
    Preset(
        "NumPy LSTM tutorial",
        "The from-scratch NumPy LSTM tutorial (seed text 004): LSTM(64), plain SGD lr 0.01, every "
        "gradient element clipped to [-5, 5], one sequence per step. (The tutorial feeds its whole "
        "text as one sequence and sums the loss over it; this uses windows of 100 and the mean.)",
        {**_PLAIN, **dict(cell="lstm", hidden_size=64, num_layers=1, seq_len=100, batch_size=1,
                          optimizer="sgd", lr=0.01, clip_value=5.0, steps=5000, eval_every=250)},
    ),
)


def preset_named(name: str) -> Preset:
    """The preset called ``name``; ValueError naming the known presets otherwise."""
    for preset in PRESETS:
        if preset.name == name:
            return preset
    raise ValueError(f"unknown preset {name!r}; expected one of {[p.name for p in PRESETS]}")
