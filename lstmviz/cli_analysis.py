"""Command line for unit analysis (no Qt): ``lstmviz probe`` and ``lstmviz saturation``.

    lstmviz probe MODEL.npz (--text TEXT | --text-file FILE) --feature NAME|regex:PATTERN
                  [--quantity h|c|i|f|g|o] [--layer N] [--top K] [--json] [--csv FILE]
    lstmviz saturation MODEL.npz (--text-file FILE | --text TEXT) [--json] [--csv FILE]

``probe`` ranks every unit of every layer and quantity (or the ones chosen) by Pearson's r with
a continuous feature or the ROC AUC for a binary one (``engine.analysis.probe``); ``saturation``
prints, per sigmoid gate and layer, each unit's fraction of steps < 0.1 and > 0.9
(``engine.analysis.saturation``). Both stream the text in chunks (bounded memory on long texts).
``--csv FILE`` writes the whole table (every unit) atomically. Bad arguments: exit 2 with one
line ``lstmviz: error: ...`` (raised here as ``UsageError``/``ValueError``, reported by ``cli.main``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys

from engine.analysis.features import BUILTIN_FEATURES, REGEX_PREFIX, feature
from engine.analysis.probe import probe
from engine.analysis.saturation import LEFT, RIGHT, saturation
from engine.analysis.stream import QUANTITIES
from engine.atomic import atomic_writer
from engine.checkpoint import load_char_checkpoint
from engine.data import load_text

from .cli_args import UsageError, non_negative_int, positive_int

COMMANDS = ("probe", "saturation")
DEFAULT_TOP = 10
SCORE_NAMES = {"pearson": "Pearson r", "auc": "ROC AUC"}


def add_parsers(subparsers) -> None:
    """Add the ``probe`` and ``saturation`` sub-commands (handlers set as ``handler``)."""
    p = subparsers.add_parser(
        "probe", help="rank units by how well they track a feature of the text",
        description="Rank every unit of every layer and quantity by Pearson's r with a continuous feature "
                    "or the ROC AUC with a binary one, strongest first (|r|, |AUC - 0.5|). Features: "
                    f"{', '.join(BUILTIN_FEATURES)}, or {REGEX_PREFIX}PATTERN (inside a match).")
    p.add_argument("model", metavar="MODEL.npz")
    _add_text_options(p)
    p.add_argument("--feature", required=True, metavar="NAME|regex:PATTERN", help="the feature to probe for")
    p.add_argument("--quantity", choices=QUANTITIES, help="only this quantity (default: every one the cell has)")
    p.add_argument("--layer", type=non_negative_int, help="only this layer (default: all)")
    p.add_argument("--top", type=positive_int, default=DEFAULT_TOP, help=f"units printed (default: {DEFAULT_TOP})")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--csv", metavar="FILE", help="also write the whole ranking (every unit) to FILE")
    p.set_defaults(handler=run_probe)

    s = subparsers.add_parser(
        "saturation", help="print each gate's per-unit saturation fractions",
        description=f"For each sigmoid gate (i, f, o) and layer, the fraction of steps each unit is < {LEFT} "
                    f"(left-saturated) and > {RIGHT} (right-saturated) over the text (Karpathy et al. 2015).")
    s.add_argument("model", metavar="MODEL.npz")
    _add_text_options(s)
    s.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    s.add_argument("--csv", metavar="FILE", help="also write the fractions to FILE (layer, gate, unit, left, right)")
    s.set_defaults(handler=run_saturation)


def _add_text_options(parser) -> None:
    text = parser.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", metavar="TEXT", help="the text to run through the model")
    text.add_argument("--text-file", metavar="FILE", help="read the text from FILE")


def _load(args):
    """``(checkpoint, text, ids (T,))``; UsageError for an empty text or an unwritable --csv."""
    if args.csv is not None:
        folder = os.path.dirname(os.path.abspath(args.csv))
        if not os.path.isdir(folder):
            raise UsageError(f"cannot write {args.csv}: folder {folder} does not exist")
    ckpt = load_char_checkpoint(args.model)
    text = load_text(args.text_file) if args.text_file else args.text
    if not text:
        raise UsageError("the text is empty; give at least two characters")
    return ckpt, text, ckpt.vocab.encode(text, source="the text")


def _finite(x: float):
    """``x`` for JSON: None instead of NaN."""
    return x if math.isfinite(x) else None


def _write_csv(path: str, header: list, rows) -> None:
    with atomic_writer(path, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def run_probe(args) -> int:
    ckpt, text, ids = _load(args)
    L = ckpt.model.config.num_layers
    if args.layer is not None and args.layer >= L:
        raise UsageError(f"--layer must be in [0, {L - 1}] for this model, got {args.layer}")
    feat = feature(text, args.feature)
    ranked = probe(ckpt.model, ids, feat, layers=None if args.layer is None else [args.layer],
                   quantities=None if args.quantity is None else [args.quantity])
    if args.csv is not None:
        _write_csv(args.csv, ["rank", "layer", "quantity", "unit", "score", "kind", "bound"],
                   ([n, s.layer, s.quantity, s.unit, repr(s.score), s.kind, repr(s.bound)]
                    for n, s in enumerate(ranked, 1)))
    top = ranked[: args.top]
    kind = "auc" if feat.binary else "pearson"
    if args.json:
        units = [{"rank": n, "layer": s.layer, "quantity": s.quantity, "unit": s.unit, "score": _finite(s.score),
                  "kind": s.kind, "bound": s.bound} for n, s in enumerate(top, 1)]
        print(json.dumps({"feature": feat.name, "binary": feat.binary, "kind": kind, "steps": len(text),
                          "units": units}))
        return 0
    print(f"feature {feat.name} ({'binary' if feat.binary else 'continuous'}) over {len(text)} steps: "
          f"{SCORE_NAMES[kind]}, strongest first")
    print(f"{'rank':>4}  {'layer':>5}  {'quantity':>8}  {'unit':>4}  {'score':>8}  kind")
    for n, s in enumerate(top, 1):
        note = f" (+-{s.bound:.1e})" if kind == "auc" else ""
        print(f"{n:>4}  {s.layer:>5}  {s.quantity:>8}  {s.unit:>4}  {s.score:>8.4f}  {SCORE_NAMES[s.kind]}{note}")
    return 0


def run_saturation(args) -> int:
    ckpt, text, ids = _load(args)
    result = saturation(ckpt.model, ids)
    if args.csv is not None:
        _write_csv(args.csv, ["layer", "gate", "unit", "left", "right"],
                   ([s.layer, s.gate, u, repr(float(s.left[u])), repr(float(s.right[u]))]
                    for s in result for u in range(s.left.size)))
    if args.json:
        print(json.dumps({"steps": len(text), "left_below": LEFT, "right_above": RIGHT,
                          "gates": [{"layer": s.layer, "gate": s.gate, "left": s.left.tolist(),
                                     "right": s.right.tolist()} for s in result]}))
        return 0
    out = sys.stdout
    for s in result:
        print(f"layer {s.layer} gate {s.gate}: fraction of {s.steps} steps < {LEFT} (left) and > {RIGHT} (right)",
              file=out)
        print(f"{'unit':>4}  {'left':>6}  {'right':>6}", file=out)
        for u in range(s.left.size):
            print(f"{u:>4}  {s.left[u]:>6.3f}  {s.right[u]:>6.3f}", file=out)
    return 0
