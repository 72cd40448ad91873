"""SequenceModel: input encoding, stacked LSTM/GRU/RNN layers, dropout, output head and loss.

    x_t  --(input encoding)-->  layer 0 --dropout--> layer 1 ... layer L-1
    y_t  =  h^{L-1}_t W + b     (head "softmax": probabilities over V tokens, "linear": values,
                                 "tanh": values in (-1, 1); "none": y_t = h^{L-1}_t, no loss)

Input encodings (``input_kind``): token ids ``v`` in [0, V) as "onehot" (x = e_v, D = V),
"embedding" (x = E[v], a row of the trained ``(V, E)`` table ``"embed.E"``, as ``nn.Embedding``),
or "scaled_index" (x = [v / V], one number per step, D = 1, as the Keras character tutorial
feeds them); or "dense" float vectors ``(D,)``.

Losses: softmax head -> mean cross-entropy in nats per position; linear/tanh heads -> mean
squared error per element (PyTorch's ``CrossEntropyLoss`` / ``MSELoss`` with mean reduction).
Parameters live in one flat dict: ``"l{k}.Wx" (D_k, G)``, ``"l{k}.Wh" (H, G)``, ``"l{k}.b" (G,)``
(a GRU layer adds ``"l{k}.bhn" (H,)``, see ``engine.cells``),
``"head.W" (H, O)``, ``"head.b" (O,)`` (none for head "none"), ``"embed.E" (V, E)`` (embedding
input only). The optimizer may update them in place; call
``params_changed()`` afterwards so the stepping path drops its prepared copies.
"""

from __future__ import annotations

import contextvars
from dataclasses import asdict, dataclass, fields

import numpy as np

from .cells import CELL_TYPES, INIT_SCHEMES, check_finite, make_cell
from .settings import check_fields, setting
from .trace import Trace

INPUT_KINDS = ("onehot", "dense", "embedding", "scaled_index")
TOKEN_INPUTS = ("onehot", "embedding", "scaled_index")  # input kinds that read token ids
HEADS = ("softmax", "linear", "tanh", "none")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a SequenceModel (saved in every checkpoint).

    Each field's default, range, label and help are its ``Setting`` (``engine.settings``); a
    value out of range raises ValueError naming the field, its range and the value.
    """

    input_size: int = setting(kind=int, low=1, label="Input size",
                              help="Inputs per timestep: V tokens (one-hot) or D features (dense).")
    output_size: int = setting(kind=int, low=1, label="Output size",
                               help="Outputs per timestep: V tokens (softmax head) or O values.")
    cell: str = setting("lstm", choices=CELL_TYPES, label="Cell", choice_labels={"lstm": "LSTM", "rnn": "Vanilla RNN", "gru": "GRU"},
                        help="LSTM: gated cell with input, forget and output gates (i, f, g, o). "
                             "GRU: reset and update gates (r, z) and candidate n, as PyTorch's nn.GRU. "
                             "Vanilla RNN: h = tanh(x Wx + h Wh + b), no gates.")
    hidden_size: int = setting(128, low=1, form_high=4096, label="Hidden size",
                               help="Hidden units per layer (H). Cost grows roughly with H squared.")
    num_layers: int = setting(1, low=1, form_high=8, label="Layers",
                              help="Stacked recurrent layers (L); each feeds its hidden state to the next.")
    input_kind: str = setting("onehot", choices=INPUT_KINDS, label="Input",
                              help="How inputs are given: token ids as one-hot vectors (onehot), through a learned (V, E) "
                                   "lookup table (embedding) or as one number id / V per step (scaled_index, "
                                   "as Keras tutorials feed characters); or vectors of real numbers (dense).")
    head: str = setting("softmax", choices=HEADS, label="Head",
                        help="Output head: probabilities with a cross-entropy loss (softmax), or values with a "
                             "mean squared error (linear; tanh: in (-1, 1)); none: the recurrent stack alone, "
                             "whose output is the top layer's h.")
    dropout: float = setting(0.0, low=0.0, high=1.0, high_inclusive=False, step=0.05, decimals=2, label="Dropout",
                             help="Inverted dropout between stacked layers while training (probability of "
                                  "zeroing a unit). Has no effect with one layer.")
    forget_bias: float = setting(0.0, label="Forget bias",
                                 help="Added to the LSTM forget-gate bias at initialisation (PyTorch: 0; char-rnn, "
                                      "Keras: 1). Measured with Adam 2e-3 over 1000 steps of 1 MB of text, 1 costs "
                                      "about 0.1 nats/char (bench/learning_parity.py --defaults).")
    init: str = setting("default", choices=INIT_SCHEMES, label="Initialisation",
                        choice_labels={"default": "Uniform ±1/√H", "pytorch": "PyTorch (bias b_ih + b_hh)",
                                       "uniform": "Uniform ±range"},
                        help="Recurrent weights and biases: all U(±1/sqrt(H)) (default); as PyTorch's nn.LSTM, "
                             "whose two summed biases make the bias U(±1/sqrt(H)) + U(±1/sqrt(H)) (pytorch); "
                             "or all U(±init_range) (uniform; char-rnn: 0.08). The head is U(±1/sqrt(H)) "
                             "except with uniform.")
    init_range: float = setting(0.08, low=0.0, low_inclusive=False, step=0.01, decimals=3, label="Init range",
                                help="Half-width of the uniform initialisation (init uniform only).")
    dtype: str = setting("float32", choices=DTYPES, label="Precision",
                        help="Compute dtype of the parameters and activations.")

    embed_size: int = setting(0, low=0, form_high=4096, label="Embedding size",
                              help="Columns E of the (V, E) embedding table (input embedding); 0 otherwise.")

    def __post_init__(self):
        check_fields(self)
        if self.input_kind == "embedding" and self.embed_size < 1:
            raise ValueError(f"embed_size must be a positive integer for input_kind 'embedding', got {self.embed_size!r}")
        if self.input_kind != "embedding" and self.embed_size != 0:
            raise ValueError(f"embed_size is for input_kind 'embedding' only; expected 0, got {self.embed_size!r}")
        if self.head == "none" and self.output_size != self.hidden_size:
            raise ValueError(f"a model without a head outputs h: output_size must equal hidden_size "
                             f"({self.hidden_size}), got {self.output_size}")

    @property
    def layer0_size(self) -> int:
        """Width D of layer 0's input vectors: V (one-hot), E (embedding), 1 (scaled index) or D."""
        return {"embedding": self.embed_size, "scaled_index": 1}.get(self.input_kind, self.input_size)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)


@dataclass
class ForwardResult:
    """What ``SequenceModel.forward`` returns.

    ``outputs (B, T, O)``: probabilities (softmax head) or predictions; ``loss``: mean loss or
    None without targets; ``state``: final state per layer; ``cache``: for ``backward``.
    """

    outputs: np.ndarray
    loss: float | None
    state: list
    cache: dict


class SequenceModel:
    """Stacked recurrent model with an output head. See the module docstring."""

    def __init__(self, config: ModelConfig, params: dict | None = None, rng: np.random.Generator | None = None):
        self.config = config
        self.dtype = np.dtype(config.dtype)
        H = config.hidden_size
        self.cells = [
            make_cell(config.cell, config.layer0_size if k == 0 else H, H) for k in range(config.num_layers)
        ]
        if params is None:
            if rng is None:
                raise ValueError("pass params or an np.random.Generator to initialise them")
            params = self.init_params(rng)
        self.params = self._checked_params(params)
        self._prepared = None

    # --- parameters ---------------------------------------------------------------------------
    def init_params(self, rng: np.random.Generator) -> dict:
        """Fresh parameters: each cell's init (``config.init``, see ``_Cell.init_params``), a
        uniform(+-1/sqrt(H)) head (PyTorch's ``nn.Linear``; +-init_range with init "uniform",
        as char-rnn) and a standard-normal embedding table (``nn.Embedding``)."""
        params = {}
        for k, cell in enumerate(self.cells):
            for name, value in cell.init_params(rng, self.dtype, self.config.forget_bias, self.config.init,
                                                self.config.init_range).items():
                params[f"l{k}.{name}"] = value
        k = self.config.init_range if self.config.init == "uniform" else 1.0 / np.sqrt(self.config.hidden_size)
        H, O = self.config.hidden_size, self.config.output_size
        if self.config.head != "none":
            params["head.W"] = rng.uniform(-k, k, size=(H, O)).astype(self.dtype)  # (H, O)
            params["head.b"] = rng.uniform(-k, k, size=(O,)).astype(self.dtype)  # (O,)
        if self.config.input_kind == "embedding":
            params["embed.E"] = rng.standard_normal((self.config.input_size, self.config.embed_size)).astype(self.dtype)  # (V, E)
        return params

    def param_shapes(self) -> dict:
        """Expected shape of every parameter, by name."""
        shapes = {}
        for k, cell in enumerate(self.cells):
            shapes.update({f"l{k}.{name}": shape for name, shape in cell.param_shapes().items()})
        if self.config.head != "none":
            shapes["head.W"] = (self.config.hidden_size, self.config.output_size)
            shapes["head.b"] = (self.config.output_size,)
        if self.config.input_kind == "embedding":
            shapes["embed.E"] = (self.config.input_size, self.config.embed_size)
        return shapes

    def _checked_params(self, params: dict) -> dict:
        shapes = self.param_shapes()
        if set(params) != set(shapes):
            missing, extra = sorted(set(shapes) - set(params)), sorted(set(params) - set(shapes))
            raise ValueError(f"parameters do not match the config: missing {missing}, unexpected {extra}")
        out = {}
        for name, shape in shapes.items():
            value = np.asarray(params[name])
            if value.shape != shape:
                raise ValueError(f"parameter {name} must have shape {shape}, got {value.shape}")
            check_finite(f"parameter {name}", value)
            out[name] = np.ascontiguousarray(value, dtype=self.dtype)
        return out

    def layer_params(self, k: int) -> dict:
        """Layer ``k``'s parameters under the cell's names (``Wx``, ``Wh``, ``b``; GRU ``bhn``), views."""
        return {name: self.params[f"l{k}.{name}"] for name in self.cells[k].param_shapes()}

    def set_params(self, params: dict) -> None:
        """Replace all parameters (validated, copied to the model's dtype)."""
        self.params = self._checked_params(params)
        self.params_changed()

    def params_changed(self) -> None:
        """Call after editing ``params`` in place: drops cached prepared weights."""
        self._prepared = None

    def prepared(self) -> list:
        """Prepared weights per layer (cached until ``params_changed``)."""
        if self._prepared is None:
            self._prepared = [cell.prepare(self.layer_params(k)) for k, cell in enumerate(self.cells)]
        return self._prepared

    # --- state and inputs ---------------------------------------------------------------------
    def zero_state(self, batch: int = 1) -> list:
        """Per layer, a tuple of ``(B, H)`` zero arrays."""
        return [cell.zero_state(batch, self.dtype) for cell in self.cells]

    def _check_state(self, state, batch: int, label: str = "state") -> list:
        if state is None:
            return self.zero_state(batch)
        if len(state) != len(self.cells):
            raise ValueError(f"{label} must hold one entry per layer ({len(self.cells)}), got {len(state)}")
        return [cell.check_state(s, batch, self.dtype, label) for cell, s in zip(self.cells, state)]

    def check_inputs(self, inputs: np.ndarray, ndim_batch: int) -> np.ndarray:
        """Validate token ids ``(B, T)``/``(B,)`` or dense values ``(B, T, D)``/``(B, D)``."""
        inputs = np.asarray(inputs)
        if self.config.input_kind in TOKEN_INPUTS:
            if inputs.ndim != ndim_batch or inputs.dtype.kind not in "iu":  # signed or unsigned ints
                shape = "(B, T)" if ndim_batch == 2 else "(B,)"
                raise ValueError(f"token inputs must be an integer array of shape {shape}, got {inputs.dtype} {inputs.shape}")
            V = self.config.input_size
            if inputs.size and (inputs.min() < 0 or inputs.max() >= V):
                raise ValueError(f"token ids must be in [0, {V - 1}]")
            return inputs
        D = self.config.input_size
        if inputs.ndim != ndim_batch + 1 or inputs.shape[-1] != D:
            shape = "(B, T, D)" if ndim_batch == 2 else "(B, D)"
            raise ValueError(f"dense inputs must have shape {shape} with D={D}, got {inputs.shape}")
        if inputs.dtype.kind not in "iuf":
            raise ValueError(f"dense inputs must be real numbers (float or int), got {inputs.dtype}")
        inputs = np.asarray(inputs, dtype=self.dtype)
        check_finite("inputs", inputs)
        return inputs

    def encode_tokens(self, ids: np.ndarray) -> np.ndarray:
        """Layer 0's input vectors ``(..., E)`` or ``(..., 1)`` for token ids ``(...)`` of an
        "embedding" (rows of ``embed.E``) or "scaled_index" (``id / V``) model."""
        if self.config.input_kind == "embedding":
            return self.params["embed.E"][ids]  # (..., E)
        return (ids / self.config.input_size).astype(self.dtype)[..., None]  # (..., 1) float64 quotient, then rounded

    def _check_targets(self, targets: np.ndarray, B: int, T: int) -> np.ndarray:
        targets = np.asarray(targets)
        if self.config.head == "none":
            raise ValueError("this model has no output layer (head 'none'): it has no loss to compute")
        if self.config.head == "softmax":
            if targets.shape != (B, T) or not np.issubdtype(targets.dtype, np.integer):
                raise ValueError(f"targets must be integer token ids of shape ({B}, {T}), got {targets.dtype} {targets.shape}")
            V = self.config.output_size
            if targets.size and (targets.min() < 0 or targets.max() >= V):
                raise ValueError(f"target ids must be in [0, {V - 1}]")
            return targets
        O = self.config.output_size
        if targets.shape != (B, T, O):
            raise ValueError(f"targets must have shape ({B}, {T}, {O}), got {targets.shape}")
        targets = np.asarray(targets, dtype=self.dtype)
        check_finite("targets", targets)
        return targets

    def _project(self, k: int, prep, x_tm: np.ndarray) -> np.ndarray:
        """Layer ``k``'s input projection for all timesteps at once -> ``(T, B, G)`` (``_Cell.project``)."""
        return self.cells[k].project(prep, x_tm, k == 0 and self.config.input_kind == "onehot")  # (T, B, G)

    # --- forward / backward -------------------------------------------------------------------
    def forward(self, inputs, state=None, targets=None, *, train: bool = False,
                rng: np.random.Generator | None = None, keep_pre: bool = False, masks: list | None = None,
                preps: list | None = None) -> ForwardResult:
        """Run ``inputs`` (token ids ``(B, T)`` or values ``(B, T, D)``) through the model.

        ``train=True`` applies inverted dropout between layers: ``masks`` if given (per layer,
        as ``dropout_masks`` returns them for this batch), else masks drawn from ``rng``
        (required then). ``preps``: the prepared weights per layer (``prepared()``) when the
        caller knows they are current; by default prepared afresh from ``params``.
        """
        inputs = self.check_inputs(inputs, 2)
        B, T = inputs.shape[:2]
        if T < 1:
            raise ValueError("inputs must have at least one timestep (T >= 1)")
        state = self._check_state(state, B)
        if targets is not None:
            targets = self._check_targets(targets, B, T)
        if masks is None:
            masks = self.dropout_masks(T, B, rng) if train else [None] * len(self.cells)
        if preps is None:
            preps = [cell.prepare(self.layer_params(k)) for k, cell in enumerate(self.cells)]  # params may have changed
        x_tm = np.ascontiguousarray(np.swapaxes(inputs, 0, 1))  # (T, B) or (T, B, D)
        layer_in, caches, final = x_tm, [], []
        if self.config.input_kind in ("embedding", "scaled_index"):
            layer_in = self.encode_tokens(x_tm)  # (T, B, E) or (T, B, 1)
        for k, (cell, prep) in enumerate(zip(self.cells, preps)):
            if masks[k] is not None:
                layer_in = layer_in * masks[k]  # (T, B, H)
            xp = self._project(k, prep, layer_in)  # (T, B, G)
            hs, last, cache = cell.forward_tm(prep, xp, state[k], keep_pre=keep_pre)  # (T, B, H)
            cache["input"] = layer_in  # (T, B) ids or (T, B, D_k)
            caches.append(cache)
            final.append(last)
            layer_in = hs
        top = layer_in.reshape(T * B, -1)  # (T*B, H)
        outputs, loss, dscores = self._head(self._scores(top), targets, B, T)
        cache = {"caches": caches, "masks": masks, "preps": preps, "top": top, "dscores": dscores, "B": B, "T": T,
                 "ids": x_tm}
        outputs_bt = np.ascontiguousarray(np.swapaxes(outputs.reshape(T, B, -1), 0, 1))  # (B, T, O)
        return ForwardResult(outputs=outputs_bt, loss=loss, state=final, cache=cache)

    def dropout_masks(self, T: int, B: int, rng: np.random.Generator | None) -> list:
        """Inverted-dropout masks of a training batch of ``B`` rows by ``T`` steps: per layer
        None (layer 0, or dropout 0) or ``(T, B, H)`` holding 0 (probability ``dropout``) or
        ``1 / (1 - dropout)``, drawn from ``rng`` layer by layer. Raises ValueError when
        ``dropout`` > 0 and ``rng`` is None."""
        p = self.config.dropout
        if p > 0 and rng is None:
            raise ValueError("dropout while training needs an np.random.Generator (rng)")
        H = self.config.hidden_size
        return [None if k == 0 or p == 0 else
                (rng.random((T, B, H)) >= p).astype(self.dtype) / self.dtype.type(1 - p)  # (T, B, H)
                for k in range(len(self.cells))]

    def _scores(self, top: np.ndarray) -> np.ndarray:
        """Head scores ``(N, O)`` from the top layer's ``h (N, H)``: ``h W + b``, or h itself
        without a head."""
        if self.config.head == "none":
            return top.copy()  # (N, H)
        return top @ self.params["head.W"] + self.params["head.b"]  # (N, O)

    def _head(self, scores: np.ndarray, targets, B: int, T: int):
        """Outputs ``(T*B, O)``, mean loss and dLoss/dscores ``(T*B, O)`` (None without targets)."""
        head = self.config.head
        if head == "softmax":
            shifted = scores - scores.max(axis=1, keepdims=True)  # (T*B, V)
            exp = np.exp(shifted)  # (T*B, V)
            total = exp.sum(axis=1, keepdims=True)  # (T*B, 1)
            probs = exp / total  # (T*B, V)
            if targets is None:
                return probs, None, None
            tgt = np.swapaxes(targets, 0, 1).reshape(-1)  # (T*B,)
            rows = np.arange(tgt.size)  # (T*B,)
            nll = np.log(total[:, 0]) - shifted[rows, tgt]  # (T*B,)
            dscores = probs.copy()  # (T*B, V)
            dscores[rows, tgt] -= 1.0
            dscores /= tgt.size
            return probs, float(nll.mean()), dscores
        outputs = np.tanh(scores) if head == "tanh" else scores  # (T*B, O)
        if targets is None:
            return outputs, None, None
        tgt = np.swapaxes(targets, 0, 1).reshape(outputs.shape)  # (T*B, O)
        diff = outputs - tgt  # (T*B, O)
        dscores = diff * (2.0 / diff.size)  # (T*B, O)
        if head == "tanh":
            dscores *= 1.0 - outputs * outputs  # (T*B, O)
        return outputs, float(np.mean(diff * diff)), dscores

    def backward(self, result: ForwardResult, dstate=None, doutputs=None):
        """Gradients of the loss (targets given to ``forward``) plus, optionally, of
        ``sum(doutputs * scores)`` for ``doutputs (B, T, O)`` (for testing; the scores are h
        without a head) and of the final state (``dstate``, per layer). Returns ``(grads,
        dinputs, dstate0)``; ``dinputs`` is ``(B, T, D)`` for dense inputs and None for token ids
        (an embedding's gradient is ``grads["embed.E"]``).
        """
        cache = result.cache
        B, T = cache["B"], cache["T"]
        dscores = cache["dscores"]
        if dstate is not None:
            dstate = self._check_state(dstate, B, "dstate")
        if doutputs is not None:
            if np.shape(doutputs) != result.outputs.shape:
                raise ValueError(f"doutputs must have shape {result.outputs.shape}, got {np.shape(doutputs)}")
            extra = np.swapaxes(np.asarray(doutputs, self.dtype), 0, 1).reshape(T * B, -1)  # (T*B, O)
            dscores = extra if dscores is None else dscores + extra
        if dscores is None:
            raise ValueError("backward needs targets in forward or doutputs")
        if self.config.head == "none":
            grads = {}
            dhs = dscores.reshape(T, B, -1)  # (T, B, H) the outputs are h itself
        else:
            grads = {
                "head.W": cache["top"].T @ dscores,  # (H, O)
                "head.b": dscores.sum(axis=0),  # (O,)
            }
            dhs = (dscores @ self.params["head.W"].T).reshape(T, B, -1)  # (T, B, H)
        dstate0 = [None] * len(self.cells)
        dinputs = None
        for k in range(len(self.cells) - 1, -1, -1):
            cell, prep, c = self.cells[k], cache["preps"][k], cache["caches"][k]
            dz, drec, dstate0[k] = cell.backward_tm(prep, c, dhs, None if dstate is None else dstate[k])
            dz2 = dz.reshape(T * B, cell.width)  # (T*B, G)
            layer_in = c["input"]
            if k == 0 and self.config.input_kind == "onehot":
                onehot_t = np.zeros((cell.input_size, T * B), self.dtype)  # (V, T*B) one-hot columns
                onehot_t[layer_in.reshape(-1), np.arange(T * B)] = 1.0
                dWx = onehot_t @ dz2  # (V, G) row v = sum of dz over the positions holding token v
                db = dWx.sum(axis=0)  # (G,) every position holds exactly one token: V rows, not T*B
            else:
                dWx = layer_in.reshape(T * B, -1).T @ dz2  # (D, G)
                db = dz2.sum(axis=0)  # (G,)
            grads[f"l{k}.Wx"] = cell.to_public(dWx)  # (D, G)
            grads.update({f"l{k}.{name}": g for name, g in cell.recurrent_grads(drec).items()})  # Wh (H, G), GRU bhn (H,)
            grads[f"l{k}.b"] = cell.to_public(db)  # (G,)
            if k > 0 or self.config.input_kind in ("dense", "embedding"):
                dx = (dz2 @ prep.Wx_u.T).reshape(T, B, -1)  # (T, B, D_k)
                if cache["masks"][k] is not None:
                    dx *= cache["masks"][k]  # (T, B, H)
                if k > 0:
                    dhs = dx
                elif self.config.input_kind == "embedding":
                    dE = np.zeros_like(self.params["embed.E"])  # (V, E)
                    np.add.at(dE, cache["ids"].reshape(-1), dx.reshape(T * B, -1))  # row v sums dx where id = v
                    grads["embed.E"] = dE  # (V, E)
                else:
                    dinputs = np.ascontiguousarray(np.swapaxes(dx, 0, 1))  # (B, T, D)
        return grads, dinputs, dstate0

    def loss_and_grads(self, inputs, targets, state=None, *, rng=None, train: bool = True, shards: int = 1,
                       executor=None):
        """Forward + backward. Returns ``(loss, grads, final_state)``; final state for
        carrying into the next truncated-BPTT chunk (no gradient flows across chunks).

        ``shards`` > 1 (data parallelism) splits the B rows into that many contiguous parts
        (sizes differing by at most one, capped at B parts) and runs forward + backward on each
        with the same prepared weights and the slices of the dropout masks drawn for the whole
        batch (so ``rng`` advances as for the unsplit batch). The parts combine in part order: the loss
        and every gradient as the sum of the parts' weighted by their share of the rows,
        ``B_k / B`` (each loss is a mean over its rows x steps (x outputs)), the final states
        concatenated; equal to the unsplit batch's to round-off. ``executor`` (anything with
        ``submit(fn, *args) -> Future``: ``engine.runtime.shard_executor()``) runs parts 1..
        while the caller runs part 0; None runs them one after another. The figures do not
        depend on ``executor``: every part runs the same operations either way (run the parts
        with single-threaded BLAS).
        """
        if shards <= 1:
            result = self.forward(inputs, state, targets, train=train, rng=rng)
            grads, _, _ = self.backward(result)
            return result.loss, grads, result.state
        inputs = self.check_inputs(inputs, 2)
        B, T = inputs.shape[:2]
        if T < 1:
            raise ValueError("inputs must have at least one timestep (T >= 1)")
        state = self._check_state(state, B)
        targets = self._check_targets(targets, B, T)
        masks = self.dropout_masks(T, B, rng) if train else [None] * len(self.cells)
        preps = [cell.prepare(self.layer_params(k)) for k, cell in enumerate(self.cells)]
        shards = min(shards, B)
        edges = [k * B // shards for k in range(shards + 1)]

        def part(k: int):
            rows = slice(edges[k], edges[k + 1])
            result = self.forward(inputs[rows], [tuple(s[rows] for s in layer) for layer in state], targets[rows],
                                  train=train, masks=[None if m is None else m[:, rows] for m in masks], preps=preps)
            grads, _, _ = self.backward(result)
            return result.loss, grads, result.state

        # each part in its own copy of the caller's context: the worker sees the caller's np.errstate
        futures = [] if executor is None else [executor.submit(contextvars.copy_context().run, part, k)
                                               for k in range(1, shards)]
        try:
            parts = [part(0)] + ([part(k) for k in range(1, shards)] if executor is None else [])
        finally:
            parts_after = [f.result() for f in futures]  # waits for every part, also when part 0 raised
        parts += parts_after
        weights = [(edges[k + 1] - edges[k]) / B for k in range(shards)]
        loss = sum(w * part_loss for w, (part_loss, _, _) in zip(weights, parts))
        grads = {}
        for name, g in parts[0][1].items():
            g *= weights[0]  # the parts' own arrays, scaled in place
            for w, (_, part_grads, _) in zip(weights[1:], parts[1:]):
                part_grads[name] *= w
                g += part_grads[name]
            grads[name] = g
        final = [tuple(np.concatenate([p[2][k][j] for p in parts]) for j in range(len(parts[0][2][k])))  # (B, H) each
                 for k in range(len(self.cells))]
        return loss, grads, final

    # --- stepping -----------------------------------------------------------------------------
    def step(self, x_t, state=None):
        """One timestep for the whole stack. ``x_t``: token ids ``(B,)`` or values ``(B, D)``.

        Returns ``(output (B, O), new_state, records)``: probabilities, predictions or h, the
        state per layer, and per layer the cell's record (i, f, g, o, c, h or r, z, n, h; and pre).
        """
        x_t = self.check_inputs(x_t, 1)
        B = x_t.shape[0]
        state = self._check_state(state, B)
        layer_in, records, new_state = x_t, [], []
        if self.config.input_kind in ("embedding", "scaled_index"):
            layer_in = self.encode_tokens(x_t)  # (B, E) or (B, 1)
        for k, (cell, prep) in enumerate(zip(self.cells, self.prepared())):
            if k == 0 and self.config.input_kind == "onehot":
                xp = prep.Wx_s[layer_in] + prep.b_s  # (B, G)
            else:
                xp = layer_in @ prep.Wx_s + prep.b_s  # (B, G)
            s, record = cell.step_projected(prep, xp, state[k])
            new_state.append(s)
            records.append(record)
            layer_in = record["h"]  # (B, H)
        output, _, _ = self._head(self._scores(layer_in), None, B, 1)  # (B, O)
        return output, new_state, records

    def trace(self, inputs, state=None, text: str | None = None) -> Trace:
        """Forward one sequence (token ids ``(T,)`` or values ``(T, D)``) and record everything."""
        inputs = np.asarray(inputs)
        result = self.forward(inputs[None], None if state is None else state, keep_pre=True)
        layers = []
        for cell, c in zip(self.cells, result.cache["caches"]):
            record = {"h": c["hs"][1:, 0].copy(), "pre": cell.pre_activations(c["pre"][:, 0])}  # (T, H), (T, G)
            if cell.kind != "rnn":
                gates = cell.gate_views(c["acts"][:, 0])  # (T, H) views of the (T, G) gate activations
                record.update({name: gate.copy() for name, gate in gates.items()})  # (T, H) each
            if cell.kind == "lstm":
                record["c"] = c["cs"][1:, 0].copy()  # (T, H)
            layers.append(record)
        start = self._check_state(state, 1)
        return Trace(
            cell=self.config.cell,
            names=self.cells[0].record_names,
            layers=layers,
            inputs=inputs.copy(),
            outputs=result.outputs[0],
            initial_state=[tuple(s[0].copy() for s in layer) for layer in start],
            text=text,
        )
