"""Learning parity: does the NumPy engine learn as well as PyTorch on the same real text?

Text: the Python standard library's ``.py`` sources (found via ``sysconfig``), sorted by path,
concatenated, first ``--chars`` characters (default 1,000,000), so it is available offline and
the same on every run. Both sides train a 1-layer LSTM (H=128) + linear head with batch 32,
seq-len 64, Adam lr 2e-3, global-norm clip 5 for ``--steps`` steps (default 2000), float32,
from the *same* initial weights, on the *same* batches in the same order (sequential streams,
truncated BPTT with the state carried between batches). Validation: mean cross-entropy in nats
per character over the whole validation split (last 10%), both with ``engine.evaluation.evaluate``'s
scheme (32 contiguous streams + the remainder), the PyTorch side in PyTorch.

    python bench/learning_parity.py [--steps 2000] [--chars 1000000] [--eval-every 500]

Target: |engine - torch| < 0.03 nats at the end.

``--defaults`` instead compares the two the way users run them: each side with its *own*
default initialisation and its *own* batches, over ``--seeds`` seeds, printing mean +- std
(sample std over seeds) of the validation loss per side at every evaluation. PyTorch side: a
plain ``nn.LSTM`` + ``nn.Linear`` script (PyTorch's default initialisation, random windows,
fresh zero state every step, Adam, ``clip_grad_norm_``). Engine side: ``lstmviz train``'s
defaults, plus one row per ``--variant`` (``field=value,...`` of ``ModelConfig``/``TrainConfig``,
e.g. ``forget_bias=1,batching=sequential``) to measure each factor, and with ``--torch-one-bias``
a PyTorch row whose two LSTM biases are one parameter, as in the engine::

    python bench/learning_parity.py --defaults --steps 1000 --seeds 3 --eval-every 250 \
        --variant forget_bias=1 --variant batching=sequential

Target of ``--defaults``: engine mean <= torch mean + 0.02 nats at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
import time

# One BLAS thread: on a busy 2-core machine OpenBLAS's threads on these small matrices cost ~10x
# more CPU than they save (measured: 667 -> 64 ms CPU per training step). Override by setting it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.data import TextCorpus  # noqa: E402
from engine.model import ModelConfig, SequenceModel  # noqa: E402
from engine.evaluation import EVAL_CHUNK, evaluate  # noqa: E402
from engine.settings import settings_of, split_values  # noqa: E402
from engine.train import TrainConfig, Trainer  # noqa: E402
from lstmviz.core.recipes import new_trainer  # noqa: E402

HIDDEN, BATCH, SEQ_LEN, LR, CLIP = 128, 32, 64, 2e-3, 5.0
TARGET_NATS = 0.03
DEFAULTS_TARGET_NATS = 0.02
TORCH_STREAM = 0x7041  # mixed with the seed for the PyTorch side's batch offsets


def stdlib_text(n_chars: int) -> str:
    """The first ``n_chars`` characters of the sorted stdlib ``.py`` sources (UTF-8 files only)."""
    root = sysconfig.get_paths()["stdlib"]
    paths = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "__pycache__"))
        paths.extend(os.path.join(folder, f) for f in files if f.endswith(".py"))
    parts, size = [], 0
    for path in sorted(paths):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        parts.append(text)
        size += len(text)
        if size >= n_chars:
            break
    return "".join(parts)[:n_chars]


def torch_model(engine_model: SequenceModel):
    """``nn.LSTM`` + ``nn.Linear`` holding the engine's initial weights (bias_hh frozen at 0, so
    the bias is one parameter as in the engine and Adam sees the same parameter set)."""
    import torch

    p = engine_model.params
    V = engine_model.config.input_size
    lstm = torch.nn.LSTM(V, HIDDEN, batch_first=True)
    head = torch.nn.Linear(HIDDEN, V)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(p["l0.Wx"].T.copy()))
        lstm.weight_hh_l0.copy_(torch.from_numpy(p["l0.Wh"].T.copy()))
        lstm.bias_ih_l0.copy_(torch.from_numpy(p["l0.b"]))
        lstm.bias_hh_l0.zero_()
        head.weight.copy_(torch.from_numpy(p["head.W"].T.copy()))
        head.bias.copy_(torch.from_numpy(p["head.b"]))
    lstm.bias_hh_l0.requires_grad_(False)
    return lstm, head


def torch_loss_sum(lstm, head, x, y, state):
    """Summed cross-entropy (nats) of ``y`` given ``x`` (B, T) and the final state."""
    import torch

    V = head.out_features
    onehot = torch.nn.functional.one_hot(torch.from_numpy(x), V).float()  # (B, T, V)
    out, state = lstm(onehot, state)  # (B, T, H)
    logits = head(out)  # (B, T, V)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(y).reshape(-1), reduction="sum")
    return loss, state


def torch_evaluate(lstm, head, ids: np.ndarray, batch_size: int = BATCH) -> float:
    """``engine.evaluation.evaluate``'s scheme in PyTorch: S streams + the remainder on the last one."""
    import torch

    N = ids.size - 1
    S = min(batch_size, N)
    L = N // S
    x = ids[: S * L].reshape(S, L)  # (S, L)
    y = ids[1 : S * L + 1].reshape(S, L)  # (S, L)
    total, state = 0.0, None
    with torch.no_grad():
        for j in range(0, L, EVAL_CHUNK):
            loss, state = torch_loss_sum(lstm, head, x[:, j : j + EVAL_CHUNK], y[:, j : j + EVAL_CHUNK], state)
            total += float(loss)
        last = tuple(s[:, S - 1 : S].contiguous() for s in state)
        for j in range(S * L, N, EVAL_CHUNK):
            stop = min(j + EVAL_CHUNK, N)
            loss, last = torch_loss_sum(lstm, head, ids[None, j:stop], ids[None, j + 1 : stop + 1], last)
            total += float(loss)
    return total / N


def train_torch(lstm, head, corpus: TextCorpus, steps: int, eval_every: int) -> dict:
    """Adam + clip_grad_norm_ on the corpus's sequential batches; {step: val loss}."""
    import torch

    params = [p for p in (*lstm.parameters(), *head.parameters()) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=LR)
    batches = corpus.batches(BATCH, SEQ_LEN, mode="sequential")
    state, vals = None, {}
    for step in range(1, steps + 1):
        batch = next(batches)
        if batch.reset:
            state = None
        opt.zero_grad()
        loss, state = torch_loss_sum(lstm, head, batch.x, batch.y, state)
        (loss / batch.x.size).backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        state = tuple(s.detach() for s in state)
        if step % eval_every == 0 or step == steps:
            vals[step] = torch_evaluate(lstm, head, corpus.val_ids)
    return vals


# --- --defaults: each side as its users run it ---------------------------------------------------
def parse_variant(text: str) -> dict:
    """``"forget_bias=1,batching=sequential"`` -> ``{field: value}`` (parsed by each field's Setting)."""
    specs = {**settings_of(ModelConfig), **settings_of(TrainConfig)}
    values = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name not in specs:
            raise SystemExit(f"unknown field {name!r} in --variant {text!r}")
        values[name] = specs[name].parse(value)
    return values


def engine_defaults_run(corpus: TextCorpus, seed: int, steps: int, eval_every: int, overrides: dict) -> dict:
    """The engine with its defaults (``lstmviz.core.recipes.new_trainer``, as the app and the CLI
    build it) except ``overrides`` and the benchmark's H, B, T, lr, clip; {step: val loss}."""
    V = len(corpus.vocab)
    model_values, train_values = split_values(overrides, ModelConfig, TrainConfig)
    train = TrainConfig(**{"seq_len": SEQ_LEN, "batch_size": BATCH, "lr": LR, "optimizer": "adam",
                           "clip_norm": CLIP, **train_values, "steps": steps, "eval_every": eval_every,
                           "seed": seed})
    model = ModelConfig(V, V, **{"hidden_size": HIDDEN, **model_values})
    trainer = new_trainer(model, corpus, train)
    return {p.step: p.val_loss for p in trainer.run() if p.val_loss is not None and not p.done}


def torch_defaults_run(corpus: TextCorpus, seed: int, steps: int, eval_every: int, one_bias: bool = False) -> dict:
    """A plain PyTorch script: ``torch.manual_seed(seed)``, default ``nn.LSTM``/``nn.Linear``
    initialisation, random windows (own generator), zero state every step; {step: val loss}.
    ``one_bias``: ``b_ih + b_hh`` moved into ``b_ih`` and ``b_hh`` frozen at 0, so the bias is one
    parameter as in the engine (Adam's per-parameter steps then move it half as far)."""
    import torch

    torch.manual_seed(seed)
    V = len(corpus.vocab)
    lstm = torch.nn.LSTM(V, HIDDEN, batch_first=True)
    head = torch.nn.Linear(HIDDEN, V)
    if one_bias:
        with torch.no_grad():
            lstm.bias_ih_l0 += lstm.bias_hh_l0
            lstm.bias_hh_l0.zero_()
        lstm.bias_hh_l0.requires_grad_(False)
    params = [p for p in (*lstm.parameters(), *head.parameters()) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=LR)
    batches = corpus.batches(BATCH, SEQ_LEN, np.random.default_rng([TORCH_STREAM, seed]), mode="random")
    vals = {}
    for step in range(1, steps + 1):
        batch = next(batches)
        opt.zero_grad()
        loss, _ = torch_loss_sum(lstm, head, batch.x, batch.y, None)
        (loss / batch.x.size).backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        if step % eval_every == 0 or step == steps:
            vals[step] = torch_evaluate(lstm, head, corpus.val_ids)
    return vals


def mean_std(values: list) -> str:
    a = np.asarray(values)  # (seeds,)
    std = a.std(ddof=1) if a.size > 1 else 0.0
    return f"{a.mean():.4f} +- {std:.4f}"


def run_defaults(corpus: TextCorpus, args) -> int:
    """Each side with its own defaults over ``args.seeds`` seeds; one row per side and variant."""
    rows = {"torch (own defaults)": lambda seed: torch_defaults_run(corpus, seed, args.steps, args.eval_every)}
    if args.torch_one_bias:
        rows["torch, one bias"] = lambda seed: torch_defaults_run(corpus, seed, args.steps, args.eval_every, True)
    for text in ["", *args.variant]:
        overrides = parse_variant(text)
        rows[f"engine {text or '(defaults)'}"] = (
            lambda seed, o=overrides: engine_defaults_run(corpus, seed, args.steps, args.eval_every, o))
    results = {name: [] for name in rows}  # name -> per seed {step: val}
    for seed in range(args.seeds):
        for name, run in rows.items():
            t0 = time.perf_counter()
            results[name].append(run(seed))
            print(f"  seed {seed} {name}: {results[name][-1][args.steps]:.4f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    steps = sorted(results["torch (own defaults)"][0])
    width = max(len(n) for n in rows)
    print(f"validation loss, nats/char, mean +- std over {args.seeds} seeds")
    print(f"{'':{width}} " + " ".join(f"{'step ' + str(s):>17}" for s in steps))
    for name, per_seed in results.items():
        print(f"{name:{width}} " + " ".join(f"{mean_std([r[s] for r in per_seed]):>17}" for s in steps))
    torch_mean = np.mean([r[args.steps] for r in results["torch (own defaults)"]])
    engine_mean = np.mean([r[args.steps] for r in results["engine (defaults)"]])
    diff = engine_mean - torch_mean
    verdict = "PASS" if diff <= DEFAULTS_TARGET_NATS else "FAIL"
    print(f"final: engine defaults {engine_mean:.4f} vs torch {torch_mean:.4f} nats/char, difference {diff:+.4f} "
          f"({verdict}: target engine <= torch + {DEFAULTS_TARGET_NATS})")
    return 0 if verdict == "PASS" else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--defaults", action="store_true",
                        help="each side with its own defaults, initialisation and batches, over --seeds seeds")
    parser.add_argument("--seeds", type=int, default=3, help="--defaults: seeds 0 .. N-1")
    parser.add_argument("--torch-one-bias", action="store_true",
                        help="--defaults: also run PyTorch with its two LSTM biases as one parameter")
    parser.add_argument("--variant", action="append", default=[], metavar="FIELD=VALUE,...",
                        help="--defaults: also run the engine with these settings changed (repeatable)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--chars", type=int, default=1_000_000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ["OPENBLAS_NUM_THREADS"]))  # same thread budget on both sides
    text = stdlib_text(args.chars)
    corpus = TextCorpus(text, val_fraction=0.1)
    V = len(corpus.vocab)
    if args.defaults:
        print(f"text: {len(text):,} chars of stdlib sources, V={V}; H={HIDDEN}, B={BATCH}, T={SEQ_LEN}, "
              f"adam lr={LR}, clip={CLIP}, {args.steps} steps, {args.seeds} seeds; torch {torch.__version__}, "
              f"{torch.get_num_threads()} torch / {os.environ['OPENBLAS_NUM_THREADS']} BLAS thread(s)", flush=True)
        return run_defaults(corpus, args)
    print(f"text: {len(text):,} chars of stdlib sources, V={V}, train {corpus.train_ids.size:,}, "
          f"val {corpus.val_ids.size:,}; H={HIDDEN}, B={BATCH}, T={SEQ_LEN}, adam lr={LR}, clip={CLIP}, "
          f"{args.steps} steps; torch {torch.__version__}, {torch.get_num_threads()} torch / {os.environ['OPENBLAS_NUM_THREADS']} BLAS thread(s)", flush=True)
    model = SequenceModel(ModelConfig(V, V, hidden_size=HIDDEN), rng=np.random.default_rng(args.seed))
    lstm, head = torch_model(model)  # same initial weights
    initial = evaluate(model, corpus.val_ids, BATCH)

    config = TrainConfig(seq_len=SEQ_LEN, batch_size=BATCH, steps=args.steps, lr=LR, optimizer="adam",
                         clip_norm=CLIP, eval_every=args.eval_every, seed=args.seed)
    trainer = Trainer(model, corpus, config)
    t0 = time.perf_counter()
    engine_vals = {p.step: p.val_loss for p in trainer.run() if p.val_loss is not None and not p.done}
    engine_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    torch_vals = train_torch(lstm, head, corpus, args.steps, args.eval_every)
    torch_s = time.perf_counter() - t0

    print(f"initial validation loss {initial:.4f} nats/char (uniform would be {np.log(V):.4f})")
    print(f"{'step':>6} {'engine':>10} {'torch':>10} {'diff':>9}   (validation loss, nats/char)")
    for step in sorted(engine_vals):
        e, t = engine_vals[step], torch_vals[step]
        print(f"{step:>6} {e:10.4f} {t:10.4f} {e - t:+9.4f}")
    diff = engine_vals[args.steps] - torch_vals[args.steps]
    print(f"engine: {engine_s:.1f} s ({args.steps / engine_s:.1f} steps/s incl. evaluation); "
          f"torch: {torch_s:.1f} s ({args.steps / torch_s:.1f} steps/s incl. evaluation)")
    verdict = "PASS" if abs(diff) < TARGET_NATS else "FAIL"
    print(f"final: engine {engine_vals[args.steps]:.4f} vs torch {torch_vals[args.steps]:.4f} nats/char, "
          f"difference {diff:+.4f} ({verdict}: target |diff| < {TARGET_NATS})")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
