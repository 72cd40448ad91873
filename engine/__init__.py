"""lstmviz engine: a pure-NumPy LSTM / vanilla RNN that steps one timestep at a time.

Public API (see README "Engine API")::

    from engine import ModelConfig, SequenceModel, CharVocab
    vocab = CharVocab.from_text("hello world")
    model = SequenceModel(ModelConfig(input_size=len(vocab), output_size=len(vocab), hidden_size=16),
                          rng=np.random.default_rng(0))
    trace = model.trace(vocab.encode("hello"), text="hello")
    trace.gate("f", layer=0)[2]          # forget gate, all units, at step 2  -> (H,)

Never imports Qt, pyqtgraph or lstmviz (a test enforces it).
"""

from .cells import CELL_TYPES, GATES, LSTMCell, RNNCell, make_cell, sigmoid
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .data import CharVocab, TextCorpus, decode_text, load_text
from .errors import CheckpointError, DataError
from .model import ForwardResult, ModelConfig, SequenceModel
from .sample import SampleResult, sample
from .trace import Trace

__all__ = [
    "CELL_TYPES", "GATES", "LSTMCell", "RNNCell", "make_cell", "sigmoid",
    "Checkpoint", "load_checkpoint", "save_checkpoint",
    "CharVocab", "TextCorpus", "decode_text", "load_text",
    "CheckpointError", "DataError",
    "ForwardResult", "ModelConfig", "SequenceModel",
    "SampleResult", "sample", "Trace",
]
