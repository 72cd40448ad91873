"""Command line: ``lstmviz [gui|train|sample|trace|export] ...`` (``python -m lstmviz``).

    lstmviz [MODEL.npz [TEXT]]                 open the viewer (the default command)
    lstmviz train CORPUS --out MODEL.npz ...   train a character model, headless
    lstmviz sample MODEL.npz [--prime TEXT]    print generated text
    lstmviz trace MODEL.npz --text TEXT --out TRACE.npz
    lstmviz export MODEL.npz --text TEXT --out DIR   (lstmviz.export_cli)

``train``'s model and training options are built from the fields of ``ModelConfig`` and
``TrainConfig`` (``engine.settings``: type, range, default, help). Only ``gui`` (and ``export``
when it draws pictures) imports Qt, lazily. Exit codes: 0 done; 2 bad arguments, unusable
files, an output that cannot be written, or work too big for the memory available (estimated
before allocating, or a ``MemoryError`` caught) — one line ``lstmviz: error: ...`` on stderr,
never a traceback; 1 training diverged, the GUI could not start, or an unexpected internal
error (one line naming where); 130 interrupted (Ctrl+C; ``train`` saves its checkpoint first).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import traceback

import numpy as np

from engine import memory
from engine.atomic import check_writable
from engine.checkpoint import MAX_CHECKPOINT_BYTES, load_char_checkpoint, load_checkpoint
from engine.data import DEFAULT_MAX_BYTES, TextCorpus, load_text
from engine.errors import CheckpointError, DataError, FileWriteError
from engine.model import ModelConfig, SequenceModel
from engine.safe_read import check_regular_file
from engine.sample import sample
from engine.settings import Setting, settings_of, split_values
from engine.analysis.stream import check_range, iter_chunks
from engine.trace_io import save_trace_chunks
from engine.train import LONG_RUN_S, TrainConfig, Trainer, TrainingDiverged, estimate_time

from . import __version__
from .cli_analysis import add_parsers as add_analysis_parsers
from .cli_args import EXIT_USAGE, PROG, UsageError, _Parser, non_negative_int, positive_float, positive_int, setting_type
from .cli_interop import add_parsers as add_interop_parsers
from .export_cli import add_export_parser
from .core.presets import PRESETS, preset_named
from .progress import ProgressBar, format_duration, format_loss

COMMANDS = ("gui", "train", "sample", "trace", "export", "probe", "saturation", "import", "export-weights")
INIT_STREAM = 0x1517  # mixed with --seed for the weight initialisation (the trainer uses the seed alone)
EXIT_FAILED, EXIT_INTERRUPTED = 1, 130
# config fields offered as `train` options -> their flag names (without "--")
MODEL_OPTIONS = {"cell": "cell", "hidden_size": "hidden", "num_layers": "layers", "dropout": "dropout",
                 "forget_bias": "forget-bias", "init": "init", "init_range": "init-range", "dtype": "dtype"}
TRAIN_OPTIONS = {"steps": "steps", "seq_len": "seq-len", "batch_size": "batch", "lr": "lr", "optimizer": "optimizer",
                 "momentum": "momentum", "clip_norm": "clip", "clip_value": "clip-value", "seed": "seed",
                 "val_fraction": "val-fraction", "eval_every": "eval-every", "batching": "batching",
                 "rmsprop_decay": "rmsprop-decay", "lr_schedule": "lr-schedule", "lr_decay": "lr-decay",
                 "lr_decay_every": "lr-decay-every", "lr_decay_start": "lr-decay-start", "lr_warmup": "warmup"}
# options that would change a resumed run; with --resume the checkpoint's values are used
RESUME_FIXED = tuple(name for name in (*MODEL_OPTIONS, *TRAIN_OPTIONS) if name != "steps")


def _default_text(spec: Setting) -> str:
    value = spec.form_value(spec.default)
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{text} (off)" if spec.off and value == 0 else text


def add_setting_options(group, config_class, options: dict) -> None:
    """Add one option per config field: ``options`` maps field names to flag names (without
    "--"). Type, choices and help (with the range and default) come from the field's
    ``Setting``; an option not given is absent from the parsed namespace."""
    specs = settings_of(config_class)
    for name, flag in options.items():
        spec = specs[name]
        if spec.choices is not None:
            group.add_argument(f"--{flag}", dest=name, choices=spec.choices, default=argparse.SUPPRESS,
                               help=f"{spec.help} (default: {spec.default})")
        else:
            group.add_argument(f"--{flag}", dest=name, type=setting_type(spec), default=argparse.SUPPRESS,
                               metavar=flag.upper().replace("-", "_"),
                               help=f"{spec.help} ({spec.requirement(off_as='0')}; default: {_default_text(spec)})")


def given_settings(args, options: dict) -> dict:
    """``{field: value}`` of the ``options`` given on the command line."""
    return {name: value for name, value in vars(args).items() if name in options}


# --- the parser: one function per sub-command registers its parser and handler -----------------
def _add_gui_parser(sub) -> None:
    gui = sub.add_parser("gui", help="open the viewer (default)", description="Open the viewer.")
    gui.add_argument("model", nargs="?", metavar="MODEL.npz", help="checkpoint to open (default: the demo)")
    gui.add_argument("text", nargs="?", metavar="TEXT", help="text file to run through the model")
    gui.set_defaults(handler=run_gui)


def _add_train_parser(sub) -> None:
    t = sub.add_parser("train", help="train a character model without a window",
                       description="Train a character-level model on CORPUS and save it to --out.")
    t.add_argument("corpus", metavar="CORPUS", help="UTF-8 (or UTF-16 with BOM) text file")
    t.add_argument("--out", required=True, metavar="MODEL.npz",
                   help="checkpoint to write (atomically) at every evaluation and at the end")
    t.add_argument("--resume", metavar="MODEL.npz",
                   help="continue this checkpoint exactly (its settings; up to --steps steps in total)")
    t.add_argument("--json", action="store_true", help="print one JSON object per evaluation on stdout")
    t.add_argument("--backend", choices=("numpy", "torch"), default="numpy",
                   help="run the steps in the NumPy engine (default) or in PyTorch: on a GPU when one is present, "
                        "on several processes or machines under torchrun (needs the 'torch' extra)")
    t.add_argument("--max-bytes", type=positive_int, default=DEFAULT_MAX_BYTES, help="refuse larger corpora")
    t.add_argument("--preset", choices=[p.name for p in PRESETS], metavar="NAME",
                   help="start from a published recipe's settings (options given override them): "
                        + ", ".join(repr(p.name) for p in PRESETS))
    add_setting_options(t.add_argument_group("model (ignored with --resume)"), ModelConfig, MODEL_OPTIONS)
    add_setting_options(t.add_argument_group("training"), TrainConfig, TRAIN_OPTIONS)
    t.set_defaults(handler=run_train)


def _add_sample_parser(sub) -> None:
    s = sub.add_parser("sample", help="print text generated by a model",
                       description="Generate text from a character model and print it (prime included).")
    s.add_argument("model", metavar="MODEL.npz")
    prime = s.add_mutually_exclusive_group()
    prime.add_argument("--prime", default="", metavar="TEXT", help="text to start from")
    prime.add_argument("--prime-file", metavar="FILE", help="read the prime from FILE")
    s.add_argument("--length", type=non_negative_int, default=200, help="characters to generate (default: 200)")
    s.add_argument("--temperature", type=positive_float, default=1.0, help="> 1 flattens, < 1 sharpens")
    s.add_argument("--top-k", type=positive_int, help="sample only from the K most likely characters")
    s.add_argument("--greedy", action="store_true", help="always take the most likely character")
    s.add_argument("--seed", type=non_negative_int, help="random seed (default: fresh randomness)")
    s.set_defaults(handler=run_sample)


def _add_trace_parser(sub) -> None:
    tr = sub.add_parser("trace", help="write every gate of a forward pass to an .npz",
                        description="Run a text through the model; write layer{k}_{i,f,g,o,c,h} (T, H), "
                                    "chars, probs (T, V) and vocab to --out, streamed in chunks (memory "
                                    "independent of the text's length; the file takes about "
                                    "(layers x 6H + V) x 4 + 12 bytes per character in float32).")
    tr.add_argument("model", metavar="MODEL.npz")
    text = tr.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", metavar="TEXT")
    text.add_argument("--text-file", metavar="FILE")
    tr.add_argument("--out", required=True, metavar="TRACE.npz")
    tr.add_argument("--start", type=non_negative_int, default=0, help="first step written (default: 0)")
    tr.add_argument("--end", type=positive_int, help="step after the last one written (default: the end)")
    tr.add_argument("--dtype", choices=("float16", "float32", "float64"),
                    help="store the values in this type (default: the model's; float16 halves the file)")
    tr.add_argument("--compress", action="store_true", help="deflate the file (smaller, slower)")
    tr.set_defaults(handler=run_trace)


# every sub-command, in help order: a function taking argparse's subparsers (a new command: one entry
# here, its name in COMMANDS)
SUBCOMMANDS = (_add_gui_parser, _add_train_parser, _add_sample_parser, _add_trace_parser, add_export_parser,
               add_analysis_parsers, add_interop_parsers)


def build_parser() -> argparse.ArgumentParser:
    """The ``lstmviz`` parser with every sub-command of ``SUBCOMMANDS`` (each sets ``handler``)."""
    parser = _Parser(prog=PROG, description="Step an LSTM one timestep at a time and watch its gates.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add_parser in SUBCOMMANDS:
        add_parser(sub)
    return parser


def _with_default_command(argv: list) -> list:
    """``lstmviz`` and ``lstmviz MODEL.npz [TEXT]`` mean ``lstmviz gui ...``."""
    if not argv:
        return ["gui"]
    first = argv[0]
    if first in COMMANDS or first in ("-h", "--help", "--version"):
        return argv
    looks_like_path = os.path.exists(first) or os.sep in first or os.path.splitext(first)[1] != ""
    return ["gui", *argv] if looks_like_path else argv


# --- commands --------------------------------------------------------------------------------
def run_gui(args) -> int:
    for path, limit in ((args.model, MAX_CHECKPOINT_BYTES), (args.text, DEFAULT_MAX_BYTES)):
        if path is not None:
            check_regular_file(path, limit)
    try:
        from .app import run_app
    except ImportError as e:
        print(f"{PROG}: error: the viewer cannot start: {e}", file=sys.stderr)
        return EXIT_FAILED
    return run_app(model_path=args.model, text_path=args.text)


def _new_trainer(args, text: str) -> Trainer:
    model_preset, train_preset = split_values(preset_named(args.preset).values if args.preset else {},
                                              ModelConfig, TrainConfig)
    config = TrainConfig(**{**train_preset, **given_settings(args, TRAIN_OPTIONS)})
    corpus = TextCorpus(text, val_fraction=config.val_fraction)
    V = len(corpus.vocab)
    model_config = ModelConfig(V, V, **{**model_preset, **given_settings(args, MODEL_OPTIONS)})
    memory.check_training(model_config, config, len(text))
    model = SequenceModel(model_config, rng=np.random.default_rng([INIT_STREAM, config.seed]))
    return Trainer(model, corpus, config)


def _resumed_trainer(args, text: str) -> Trainer:
    fixed = [name for name in RESUME_FIXED if name in vars(args)]
    if args.preset:
        raise UsageError("--preset cannot be used with --resume (the checkpoint's settings are used)")
    if fixed:
        flags = ", ".join(f"--{MODEL_OPTIONS.get(name) or TRAIN_OPTIONS[name]}" for name in fixed)
        raise UsageError(f"{flags} cannot be changed with --resume (the checkpoint's settings are used)")
    ckpt = load_checkpoint(args.resume)
    if ckpt.vocab is None or ckpt.train_config is None or ckpt.train_state is None:
        raise CheckpointError(f"{args.resume} holds no training state to resume (not saved by lstmviz train)")
    try:
        saved = TrainConfig.from_dict(ckpt.train_config)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{args.resume}: invalid training settings ({e})") from None
    unknown = ckpt.vocab.unknown(text)
    if unknown:
        raise DataError(f"{args.corpus} has characters the checkpoint's vocabulary lacks ({''.join(unknown[:10])!r}); "
                        f"resume on the text it was trained on")
    memory.check_training(ckpt.model.config, saved, len(text), loaded=memory.model_bytes(ckpt.model.config))
    corpus = TextCorpus(text, vocab=ckpt.vocab, val_fraction=saved.val_fraction)
    return Trainer.from_checkpoint(ckpt, corpus, steps=getattr(args, "steps", None))


def _progress_json(p) -> str:
    record = {
        "step": p.step, "total_steps": p.total_steps, "train_loss": p.train_loss, "smooth_loss": p.smooth_loss,
        "val_loss": p.val_loss, "val_bpc": p.val_bpc, "grad_norm": p.grad_norm,
        "steps_per_s": p.steps_per_s, "elapsed_s": p.elapsed_s, "done": p.done, "lr": p.lr,
    }
    return json.dumps({k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()})


class _StopOnSigint:
    """While active, the first Ctrl+C sets ``stop`` (the loop ends after the current step and
    the checkpoint is saved) and says so on stderr; a second one interrupts at once, unless
    ``forwarded``: under ``torchrun``, whose agent passes a Ctrl+C on to every process that the
    terminal signals too, the later ones are the same Ctrl+C (the agent ends processes that do
    not stop). No-op outside the main thread."""

    def __init__(self, stop: threading.Event, forwarded: bool = False):
        self.stop = stop
        self.forwarded = forwarded
        self._previous = None

    def _handle(self, signum, frame):
        if self.stop.is_set():
            return  # forwarded: the same Ctrl+C again
        self.stop.set()
        again = "" if self.forwarded else " (Ctrl+C again quits without saving)"
        try:  # unbuffered: the handler may run in the middle of a buffered write to stderr
            os.write(sys.stderr.fileno(), f"{PROG}: stopping after this step to save{again}\n".encode())
        except (OSError, ValueError):
            pass
        if not self.forwarded:
            signal.signal(signal.SIGINT, self._previous)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            # forwarded and stopped: the process exits with 130 now; another copy of the same
            # Ctrl+C from torchrun's agent may still come meanwhile, and must not interrupt the exit
            late_copy = self.forwarded and self.stop.is_set()
            signal.signal(signal.SIGINT, signal.SIG_IGN if late_copy else self._previous)


def estimate_line(estimate) -> str:
    """``estimated time: 2:05 (1000 steps x 118 ms + 10 evaluations x 0.70 s)``, and a warning
    sentence when it is over LONG_RUN_S."""
    line = (f"estimated time: {format_duration(estimate.total_s)} ({estimate.steps} steps x "
            f"{estimate.step_s * 1e3:.0f} ms + {estimate.evaluations} evaluation{'s' * (estimate.evaluations != 1)} x "
            f"{estimate.eval_s:.2f} s)")
    if estimate.total_s > LONG_RUN_S:
        line += (f"; warning: over {LONG_RUN_S // 60:.0f} minutes (fewer --steps or a smaller model is faster; "
                 f"Ctrl+C stops and saves)")
    return line


def run_train(args) -> int:
    check_writable(args.out)
    if args.backend == "torch":
        from . import torch_backend

        torch_backend.require_torch()
    elif os.environ.get("WORLD_SIZE", "1") != "1":
        raise UsageError("the NumPy engine trains in one process; under torchrun use --backend torch")
    text = load_text(args.corpus, max_bytes=args.max_bytes)
    trainer = _resumed_trainer(args, text) if args.resume else _new_trainer(args, text)
    if args.backend == "torch":
        trainer = torch_backend.on_torch(trainer)
    stop = threading.Event()  # set by Ctrl+C
    try:  # under torchrun: the process group joined by on_torch is left in the finally
        check_writable(args.out, size=memory.model_bytes(trainer.model.config) * (1 + len(trainer.optimizer.slot_names)))  # params + slots
        bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
        human = sys.stderr if args.json else sys.stdout
        if args.backend == "torch":
            print(torch_backend.device_line(trainer), file=human, flush=True)
        if trainer.step < trainer.config.steps:
            print(estimate_line(estimate_time(trainer)), file=human, flush=True)
        forwarded = args.backend == "torch" and torch_backend.under_torchrun()
        with _StopOnSigint(stop, forwarded):  # up to the last save: torchrun's copy of a Ctrl+C may come late
            return _train_and_save(trainer, args, stop, bar, human)
    finally:
        if args.backend == "torch" and not stop.is_set():
            # after a Ctrl+C torchrun closes its rendezvous store; leaving the group then aborted a
            # rank in 1-5 of 10 runs (the checkpoint already saved), staying in it in none of 8
            torch_backend.stop_distributed()


def _train_and_save(trainer, args, stop: threading.Event, bar, human) -> int:
    """``run_train``'s loop: progress to ``bar`` (or lines), a checkpoint at every evaluation and
    at the end (or when ``stop`` is set, or the run diverges); returns the exit code."""
    final, saved_step = None, None
    try:
        for p in trainer.run(stop=stop):
            if bar is not None:
                bar.update(p)
            if p.val_loss is not None and not p.done:
                trainer.save(args.out)
                saved_step = p.step
                if args.json:
                    print(_progress_json(p), flush=True)
                elif bar is None:
                    print(f"step {p.step}/{p.total_steps}: train loss {format_loss(p.smooth_loss)}, "
                          f"val loss {format_loss(p.val_loss)} {p.loss_unit}", file=sys.stderr, flush=True)
            final = p
    except TrainingDiverged as e:
        if bar is not None:
            bar.finish()
        trainer.save(args.out)
        print(f"{PROG}: error: {e}; saved the last good weights (step {trainer.step}) to {args.out}",
              file=sys.stderr)
        return EXIT_FAILED
    if bar is not None:
        bar.finish()
    if saved_step != trainer.step:
        trainer.save(args.out)
    if stop.is_set():
        print(f"{PROG}: interrupted at step {trainer.step}; saved {args.out} "
              f"(continue with --resume {args.out})", file=sys.stderr)
        return EXIT_INTERRUPTED
    if final.val_loss is not None:
        print(f"step {final.step}: validation loss {format_loss(final.val_loss)} nats/char "
              f"({final.val_bpc:.4f} bits/char); saved {args.out}", file=human)
    else:
        print(f"step {final.step}: no validation split (--val-fraction 0); saved {args.out}", file=human)
    return 0


def run_sample(args) -> int:
    ckpt = load_char_checkpoint(args.model)
    prime = load_text(args.prime_file) if args.prime_file else args.prime
    memory.check_fits(f"sampling {args.length} characters", memory.sample_bytes(ckpt.model.config, len(prime) + args.length),
                      detail="the recorded gates of every step")
    rng = np.random.default_rng(args.seed)
    result = sample(ckpt.model, ckpt.vocab, prime=prime, length=args.length, temperature=args.temperature,
                    top_k=args.top_k, greedy=args.greedy, rng=rng, keep_trace=False)
    text = prime + result.generated
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


TRACE_CHUNK = 4096  # steps computed and written at a time by ``lstmviz trace``


def run_trace(args) -> int:
    check_writable(args.out)
    ckpt = load_char_checkpoint(args.model)
    text = load_text(args.text_file) if args.text_file else args.text
    if not text:
        raise UsageError("--text is empty; give at least one character")
    config = ckpt.model.config
    ids = ckpt.vocab.encode(text, source="the text")  # (T,)
    start, end = check_range(ids.shape[0], args.start, args.end)
    # records held at once: one chunk of the range, or of the steps before it (iter_chunks runs them alike)
    chunk = min(TRACE_CHUNK, max(start, end - start))
    before = " (the steps before --start are run in chunks too)" if start > end - start else ""
    memory.check_fits(f"a trace of {end - start} steps", memory.trace_bytes(config, chunk),
                      detail=f"every gate and state of every layer for {chunk} steps at a time{before}")
    size = memory.trace_file_bytes(config, end - start, None if args.dtype is None else np.dtype(args.dtype).itemsize)
    check_writable(args.out, 2 * size)  # the entries streamed to a temporary folder, then the archive
    chunks = (trace for _, trace in iter_chunks(ckpt.model, ids, start, end, chunk=TRACE_CHUNK))
    save_trace_chunks(args.out, chunks, end - start, vocab=ckpt.vocab, dtype=args.dtype, compress=args.compress,
                      start=start)
    print(f"wrote {args.out}: steps {start}..{end} ({end - start} steps), {config.num_layers} layer(s) of "
          f"{config.hidden_size} units")
    return 0


# --- entry point -----------------------------------------------------------------------------
def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror and not isinstance(error, FileWriteError):
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror}"
    return " ".join(str(error).split()) or type(error).__name__


def main(argv: list | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(_with_default_command(argv))
    except SystemExit as e:  # --help (0) or a usage error (2, already reported)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    try:
        return args.handler(args)
    except (UsageError, DataError, CheckpointError, ValueError, OSError) as e:
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError as e:
        print(f"{PROG}: error: not enough memory ({_one_line(e)}); try a smaller model, batch or text",
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # a bug: still one line, naming where it happened
        where = traceback.extract_tb(e.__traceback__)[-1]
        print(f"{PROG}: error: internal error {type(e).__name__}: {_one_line(e)} (at {os.path.basename(where.filename)}:"
              f"{where.lineno}; please report it)", file=sys.stderr)
        return EXIT_FAILED
