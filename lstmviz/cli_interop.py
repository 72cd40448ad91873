"""The ``import`` and ``export-weights`` commands (registered by ``lstmviz.cli``; Qt-free).

    lstmviz import SOURCE --out MODEL.npz [--vocab FILE | --vocab-chars STRING] [--layer-prefix NAME ...]
    lstmviz export-weights MODEL.npz --format torch|safetensors|onnx --out FILE

``import`` reads a PyTorch state_dict (``.pt``/``.pth``/``.bin``, ``.safetensors``), a Keras
model (``.keras``, ``.h5``) or an ONNX file, prints what it recognised and the parity line, and
writes an lstmviz checkpoint (``engine.interop``). Without a vocabulary it still writes the
weights (``lstmviz.trace(MODEL, inputs=...)`` returns their gates) and says on stderr, in one
``lstmviz: note:`` line (``no_vocabulary_note``, the app's words too), what the model lacks. ``export-weights`` writes a checkpoint's
weights for PyTorch or onnxruntime (``engine.interop.export`` documents the module names).
Errors: one line, exit 2, nothing written (raised as ``ValueError``s that ``cli.main`` prints).
"""

from __future__ import annotations

import os
import sys

from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.interop import InteropError, import_model
from engine.interop.export import FORMATS, export_weights
from engine.model import TOKEN_INPUTS

from .cli_args import PROG


def add_parsers(subparsers) -> None:
    """Add ``import`` and ``export-weights`` to ``subparsers`` (an argparse subparsers action),
    each with its handler set as ``handler``."""
    imp = subparsers.add_parser(
        "import", help="convert a PyTorch, Keras or ONNX recurrent model into an lstmviz checkpoint",
        description="Import an LSTM or GRU model (with an embedding before and a dense layer after, when "
                    "present) from a PyTorch state_dict or training checkpoint (.pt, .pth, .bin, .ckpt, "
                    ".safetensors), Keras (.keras, .h5) or ONNX (.onnx) file; print the parity check against the "
                    "source framework.")
    imp.add_argument("source", metavar="SOURCE")
    imp.add_argument("--out", required=True, metavar="MODEL.npz")
    vocab = imp.add_mutually_exclusive_group()
    vocab.add_argument("--vocab", metavar="FILE",
                       help="characters in id order: plain text, a JSON list, or a JSON object char -> id")
    vocab.add_argument("--vocab-chars", metavar="STRING", help="the characters in id order")
    imp.add_argument("--layer-prefix", nargs="+", default=[], metavar="NAME",
                     help="what to use when the file holds several candidates (the error lists them): PyTorch "
                          "module names (recurrent modules are stacked in the order given), Keras layer names, "
                          "ONNX node names or prefixes of node or initializer names")
    imp.set_defaults(handler=run_import)

    exp = subparsers.add_parser(
        "export-weights", help="write a model's weights for PyTorch or ONNX",
        description="Write the weights of an lstmviz checkpoint as a PyTorch state_dict (modules embed, rnn, "
                    "head), a .safetensors file with the same names, or an ONNX model.")
    exp.add_argument("model", metavar="MODEL.npz")
    exp.add_argument("--format", required=True, choices=FORMATS)
    exp.add_argument("--out", required=True, metavar="FILE")
    exp.set_defaults(handler=run_export_weights)


def run_import(args) -> int:
    """``lstmviz import``: print the report, write the checkpoint atomically."""
    if os.path.abspath(args.out) == os.path.abspath(args.source):
        raise InteropError(f"{args.out}: --out must not be the source file")
    result = import_model(args.source, vocab_file=args.vocab, vocab_chars=args.vocab_chars,
                          prefixes=args.layer_prefix)
    for line in result.report:
        print(line)
    save_checkpoint(args.out, result.model, vocab=result.vocab,
                    extra={"imported_from": os.path.basename(args.source), "import_report": result.report})
    print(f"wrote {args.out}")
    if result.vocab is None:
        print(f"{PROG}: note: {no_vocabulary_note(result.model.config, args.source)}; to step text, import again "
              "with --vocab FILE or --vocab-chars STRING", file=sys.stderr)
    return 0


def no_vocabulary_note(config, source) -> str:
    """What an import of ``source`` without a vocabulary gives (one sentence, shared with the
    app's File > Import model…): a model of ``config`` (``engine.model.ModelConfig``) reading
    token ids or numbers, whose gates ``lstmviz.trace(MODEL, inputs=...)`` returns, but not a
    character model (``engine.checkpoint.load_char_checkpoint``): the viewer, ``sample``,
    ``trace`` and ``export`` refuse it until it is imported with the characters in id order."""
    reads = (f"token ids 0..{config.input_size - 1}" if config.input_kind in TOKEN_INPUTS
             else f"{config.input_size} number{'s' * (config.input_size != 1)} per step")
    return (f"{os.path.basename(source)} was imported without a vocabulary: the model reads {reads}, not "
            "characters, so its gates can be traced from Python (lstmviz.trace(MODEL, inputs=...)) but the "
            "viewer, sample, trace and export refuse it (they need the characters, in id order)")


def run_export_weights(args) -> int:
    """``lstmviz export-weights``: write the checkpoint's weights in ``args.format``."""
    if os.path.abspath(args.out) == os.path.abspath(args.model):
        raise InteropError(f"{args.out}: --out must not be the checkpoint itself")
    model = load_checkpoint(args.model).model
    export_weights(model, args.out, args.format)
    print(f"wrote {args.out} ({args.format})")
    return 0
