"""``lstmviz export``: gate plots and their data from a terminal, with no window and no display.

    lstmviz export MODEL.npz (--text TEXT | --text-file FILE) --out DIR
                   [--format png,svg,csv,npz] [--panels f,i,o,g,c,h] [--layer N]
                   [--width PX] [--colormap NAME] [--style dark|light] [--start N] [--end N]

Writes ``DIR/layer{N}_{gate}.{png,svg,csv}`` for every chosen layer, panel and format, and
``DIR/trace.npz`` once (all layers), creates ``DIR`` if needed and prints each written path.
Pictures come from ``lstmviz.export.export_panel_image``, the same code the app's export uses;
``--style light`` draws them for print (white background, dark axes and text). Only steps
``[--start, --end)`` are drawn and written (their values computed from the true state before
``--start``, the text run through in chunks); without either, a text longer than
``DEFAULT_STEPS`` gives its first ``DEFAULT_STEPS`` steps and a one-line note on stderr. A range
whose records and largest file would not fit in the memory available (``engine.memory``: the
range's records, not the whole text's, and a picture's images only when a picture is asked
for; a CSV or NPZ counts its own size), whose records exceed ``engine.stepper.TRACE_BYTES``, or
whose picture would be wider than ``MAX_PICTURE_STEPS`` steps is refused with one line.

Exit codes: 0 done; 2 bad arguments, an unusable model or text, or an output that cannot be
written (the folder cannot be created or a file in it cannot be written): one line
``lstmviz: error: ...`` on stderr, files already written stay. Qt is imported only when
``run_export`` runs.
"""

from __future__ import annotations

import os
import sys

PROG = "lstmviz"
EXIT_USAGE = 2  # the exit code of every refusal (module docstring)
DEFAULT_STEPS = 2000  # steps exported when the text is longer and no range is given
MAX_PICTURE_STEPS = 100_000  # widest picture, in steps (columns of the heatmap)
PICTURE_FORMATS = ("png", "svg", "gif")  # the formats drawn as pictures; csv and npz are data
CSV_VALUE_CHARS = 24  # longest CSV value: 17 significant digits, sign, point, exponent, comma
CSV_FLOAT_BYTES = 32  # one value as a Python float in a list: the object and its pointer
CSV_ROW_BYTES = 256  # per row: its list, step number and character


class _UsageError(Exception):
    """A bad argument: reported as one line and exit code 2."""


def add_export_parser(subparsers) -> None:
    """Register the ``export`` sub-command (parser and handler ``run_export``) on an argparse
    ``subparsers`` object.

    Lists, numbers and names are checked by ``run_export`` (one-line errors), not by argparse.
    """
    p = subparsers.add_parser(
        "export",
        help="export gate plots (PNG/SVG) and their data (CSV/NPZ) without opening a window",
        description="Run TEXT through the model and write one file per layer, panel and format: "
                    "DIR/layer{N}_{gate}.{png,svg,csv,gif}, plus DIR/trace.npz (every layer) for npz.",
    )
    p.add_argument("model", metavar="MODEL.npz", help="checkpoint of a character model")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the text to run through the model")
    source.add_argument("--text-file", metavar="FILE", help="read the text from FILE (UTF-8 or UTF-16)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--format", default="png", metavar="LIST",
                   help="comma-separated formats among png, svg, csv, npz, gif (gif: an animation of "
                        "stepping through the text, at most 200 frames; needs Pillow) (default: png)")
    p.add_argument("--panels", default=None, metavar="LIST",
                   help="comma-separated quantities among f, i, o, g, c, h (default: all the model "
                        "records: f,i,o,g,c,h for an LSTM, h for a vanilla RNN)")
    p.add_argument("--layer", default=None, metavar="N", help="only layer N, counted from 0 (default: every layer)")
    p.add_argument("--width", default=None, metavar="PX", help="PNG width in pixels, 16..20000 (default: 800)")
    p.add_argument("--style", default="dark", choices=("dark", "light"),
                   help="picture style: dark (as on screen, the default) or light (white background, dark "
                        "axes and text, for print)")
    p.add_argument("--colormap", default=None, metavar="NAME",
                   help="'colorblind' for the colour-blind-safe defaults, or any pyqtgraph colormap "
                        "name (e.g. viridis, CET-D1) for every panel (default: the app's maps)")
    p.add_argument("--start", default=None, metavar="N", help="first step exported, counted from 0 (default: 0)")
    p.add_argument("--end", default=None, metavar="N",
                   help=f"step after the last one exported (default: the end, at most {DEFAULT_STEPS} steps "
                        "after --start when neither is given)")
    p.set_defaults(handler=run_export)


def _split(value: str, allowed: tuple, what: str) -> list:
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise _UsageError(f"--{what} is empty; choose from {','.join(allowed)}")
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise _UsageError(f"unknown {what} {', '.join(map(repr, unknown))}; choose from {','.join(allowed)}")
    return list(dict.fromkeys(items))  # drop repeats, keep order


def _whole_number(value: str, option: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _UsageError(f"{option} must be a whole number, got {value!r}") from None


def _use_offscreen_qt() -> None:
    """Draw without a display on Linux/BSD unless the user chose a Qt platform.

    The export never shows a window, so it never needs the display: offscreen works over SSH, in
    CI and with a stale DISPLAY (where Qt would abort), and gives the same pixels everywhere.
    """
    if not os.environ.get("QT_QPA_PLATFORM") and sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"


_APP = None  # the QApplication this module created, kept alive for the rest of the process


def _ensure_qt_application() -> None:
    """Make sure a QApplication exists (a new one draws offscreen when there is no display)."""
    global _APP
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance()
    if app is None:
        _use_offscreen_qt()
        _APP = QtWidgets.QApplication([PROG])
    elif not isinstance(app, QtWidgets.QApplication):
        raise _UsageError("export needs a QApplication, but a non-widget Qt application is running")


def _prepare(args):
    """Validate everything and compute the trace: ``(plan, trace, vocab)``; raises _UsageError."""
    from engine.atomic import check_folder_writable, check_target
    from engine.checkpoint import load_char_checkpoint
    from engine.data import load_text
    from engine.errors import CheckpointError, DataError
    from engine.quantities import RECORDED_NAMES as PANEL_ORDER, display_order as panel_names

    from . import export

    try:
        check_folder_writable(args.out)
    except OSError as error:
        raise _UsageError(str(error)) from None
    formats = _split(args.format, export.FORMATS, "format")
    if "gif" in formats and export.gif_support() is not None:
        raise _UsageError(export.gif_support())
    width = export.DEFAULT_FIGURE_WIDTH if args.width is None else _whole_number(args.width, "--width")
    try:
        export.check_width(width)
        colorblind, colormap = export.resolve_colormap(args.colormap)
    except ValueError as error:
        raise _UsageError(str(error)) from None
    try:
        text = args.text if args.text is not None else load_text(args.text_file)
        checkpoint = load_char_checkpoint(args.model)
    except (DataError, CheckpointError) as error:
        raise _UsageError(str(error)) from None
    model, vocab = checkpoint.model, checkpoint.vocab
    names = panel_names(model.config.cell)
    if args.panels is None:
        panels = list(names)
    else:
        panels = _split(args.panels, PANEL_ORDER, "panels")
        missing = [p for p in panels if p not in names]
        if missing:
            raise _UsageError(f"a {model.config.cell} model has no {', '.join(missing)}; "
                              f"it records only {','.join(names)}")
    L = model.config.num_layers
    if args.layer is None:
        layers = list(range(L))
    else:
        layer = _whole_number(args.layer, "--layer")
        if not 0 <= layer < L:
            raise _UsageError(f"--layer must be in 0..{L - 1} (the model has {L} layer{'s' * (L > 1)}), got {layer}")
        layers = [layer]
    if not text:
        raise _UsageError("the text is empty")
    try:
        ids = vocab.encode(text, "--text" if args.text is not None else args.text_file)  # (T,)
    except DataError as error:
        raise _UsageError(str(error)) from None
    plan = {"formats": formats, "panels": panels, "layers": layers, "width": width,
            "colorblind": colorblind, "colormap": colormap, "style": args.style}
    if os.path.isdir(args.out):  # a folder still to be made holds no file yet
        try:
            for path, *_ in _targets(args.out, plan):
                check_target(path)  # the folder was tested once above
        except OSError as error:
            raise _UsageError(str(error)) from None
    T = ids.shape[0]
    pictures = [fmt for fmt in formats if fmt in PICTURE_FORMATS]
    start, end = _steps(args, T, pictures)
    _check_memory(model.config, end - start, formats, pictures, width)
    if args.start is None and args.end is None and end < T:
        print(f"{PROG}: note: the text has {T:,} steps; exporting steps 0..{end} "
              "(choose others with --start/--end)", file=sys.stderr)
    trace = _window(model, ids, text, start, end)
    return plan, trace, vocab


def _steps(args, T: int, pictures: list) -> tuple[int, int]:
    """The steps ``[start, end)`` to export of a text of ``T`` steps (module docstring: the
    default window when neither bound is given), ``pictures`` the picture formats asked for;
    raises _UsageError on a bad or too large range."""
    start = 0 if args.start is None else _whole_number(args.start, "--start")
    end = T if args.end is None else _whole_number(args.end, "--end")
    if args.start is None and args.end is None and T > DEFAULT_STEPS:
        end = DEFAULT_STEPS
    if not 0 <= start < end <= T:
        raise _UsageError(f"need 0 <= --start < --end <= {T} (the text's steps), got {start}..{end}")
    if pictures and end - start > MAX_PICTURE_STEPS:
        raise _UsageError(f"a {','.join(pictures)} picture of {end - start:,} steps is too large: draw at most "
                          f"{MAX_PICTURE_STEPS:,} steps (--start/--end)")
    return start, end


def _csv_bytes(config, steps: int) -> int:
    """Memory to write one gate's CSV of ``steps`` steps (``export.gate_csv_chunks``, which
    formats ``export.CSV_CHUNK_ROWS`` steps at a time): for each step of one piece, each value
    as a Python float (``tolist``) and its text twice (the rows, then the piece's text), at most
    ``CSV_VALUE_CHARS`` characters a value. An upper bound: 1.5 to 2 times the peak that
    ``tracemalloc`` measures (H = 8..128, float32 and float64)."""
    from . import export

    rows = min(steps, export.CSV_CHUNK_ROWS)
    return rows * (config.hidden_size * (CSV_FLOAT_BYTES + 2 * CSV_VALUE_CHARS) + CSV_ROW_BYTES)


def _check_memory(config, steps: int, formats: list, pictures: list, width: int) -> None:
    """Raise ``engine.memory.NotEnoughMemory`` unless the records of ``steps`` steps and the
    largest file made from them fit: a picture (png/svg/gif: the rendered images), one CSV
    (``_csv_bytes``) or the NPZ (its arrays, ``engine.memory.trace_file_bytes``). The files
    are made one after another, so only the largest counts. ``pictures``: the picture formats
    among ``formats``."""
    from engine import memory

    from . import export

    made = []  # (what, bytes) of each kind of file asked for
    if pictures:
        frames = export.MAX_GIF_FRAMES if "gif" in pictures else 1
        made.append(("the rendered images",
                     memory.export_image_bytes(width, round(width * export.FIGURE_ASPECT), frames)))
    if "csv" in formats:
        made.append(("one CSV file", _csv_bytes(config, steps)))
    if "npz" in formats:
        made.append(("the NPZ file", memory.trace_file_bytes(config, steps)))
    name, largest = max(made, key=lambda item: item[1])
    at = f" at {width} pixels wide" if pictures else ""
    memory.check_fits(f"exporting a trace of {steps} steps{at}", memory.trace_bytes(config, steps) + largest,
                      detail=f"every gate of the exported steps and {name}")


def _window(model, ids, text: str, start: int, end: int):
    """The records of steps ``[start, end)`` of ``ids (T,)`` as a ``Trace`` whose ``start`` is
    ``start`` (the steps before it run through, their records not kept); raises _UsageError
    when they cannot be computed."""
    from engine.stepper import Stepper

    try:
        return Stepper(model, ids, text).records(start, end)
    except ValueError as error:
        raise _UsageError(str(error)) from None


def _targets(out: str, plan: dict) -> list:
    """Every file the export writes, in order: ``(path, layer, gate, fmt)``, the panel files
    (``export.panel_path``) then ``trace.npz`` (layer and gate None)."""
    from . import export

    targets = [(export.panel_path(out, layer, gate, fmt), layer, gate, fmt)
               for layer in plan["layers"] for gate in plan["panels"] for fmt in plan["formats"] if fmt != "npz"]
    if "npz" in plan["formats"]:
        targets.append((os.path.join(out, "trace.npz"), None, None, "npz"))
    return targets


def _write_all(out: str, plan: dict, trace, vocab) -> list:
    """Write every requested file (``_targets``); returns the written paths in order."""
    from . import export

    written = []
    for path, layer, gate, fmt in _targets(out, plan):
        if fmt in ("png", "svg"):
            export.export_panel_image(path, trace, gate, layer, fmt, plan["width"],
                                      plan["colorblind"], plan["colormap"], style=plan["style"])
        elif fmt == "gif":
            export.export_panel_gif(path, trace, gate, layer, plan["width"], plan["colorblind"], plan["colormap"])
        elif fmt == "csv":
            export.export_gate_csv(path, trace, gate, layer)
        else:
            export.export_trace_npz(path, trace, vocab)
        print(path, flush=True)
        written.append(path)
    return written


def run_export(args) -> int:
    """Run ``lstmviz export`` with parsed ``args``; returns the exit code (module docstring)."""
    try:
        plan, trace, vocab = _prepare(args)
        if set(PICTURE_FORMATS) & set(plan["formats"]):
            _ensure_qt_application()
    except _UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    from .export import ExportError

    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as error:
        print(f"{PROG}: error: cannot create folder {args.out}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        _write_all(args.out, plan, trace, vocab)
    except ExportError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return 0
