"""Export gate plots (PNG, SVG) and the data behind them (CSV, NPZ); shared by the app and the CLI.

Pictures: ``build_panel_figure`` lays out one gate of one layer exactly as the app draws it
(``HeatmapView``: same colormaps, levels from ``gate_levels`` over the whole trace), and
``export_png`` / ``export_svg`` render any widget (such a figure, a dock's contents, the whole
main window). ``export_panel_image`` does both in one call, so the app's and the CLI's pictures
of a panel are the same pixels.

PNG: rendered with antialiasing at ``width_px`` pixels wide (16 .. 20000), height by the widget's
aspect. A figure is laid out at a readable logical width (``figure_width_for``) and then scaled,
so text keeps its proportions. Heatmap cells are never smoothed (nearest neighbour).

SVG: drawn with ``QSvgGenerator`` (pyqtgraph 0.14's SVGExporter is broken, DESIGN.md §5): SVG
1.1 with clip paths for a figure, SVG Tiny 1.2 without clipping for a whole window (Qt misplaces
child widgets' clip paths; parts of a plot outside its frame then show). Each
``ImageItem`` becomes one ``<image>`` embedded at native cell resolution (one pixel per step and
unit). Qt only writes the SVG 1.1 attribute ``image-rendering="optimizeSpeed"`` (or
``optimizeQuality``, depending on the painter's hints), which browsers do not reliably draw
nearest-neighbour, so every ``<image>`` also gets ``style="image-rendering:pixelated"`` (CSS,
overrides the attribute): cells stay crisp in browsers. librsvg and QSvgRenderer ignore both.

CSV: header ``step,char,unit0,...,unit{H-1}``, one row per step (``step`` counted in the whole
text when the trace is a window of it, ``Trace.start``). ``char`` is the input character
with the backslash and non-printable characters written as Python escapes (a newline is the two
characters ``\\n``, a tab ``\\t``, a backslash ``\\\\``); it is empty for numeric inputs. Values
keep full precision: 9 significant digits for float32 traces, 17 for float64 (both round-trip).

NPZ: ``engine.trace_io.save_trace_npz`` (every layer and quantity, plus the vocabulary).

Every file is written atomically (``engine.atomic``); a failed write raises ``ExportError`` with
a one-line message naming the path and leaves no partial file behind.
"""

from __future__ import annotations

import csv
import io
import os
import re

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtSvg, QtWidgets

from engine.atomic import atomic_write_bytes, atomic_writer
from engine.trace_io import save_trace_npz

from .core.levels import gate_levels
from .plots import GATE_STYLE, HeatmapView
from .still_parts import uncached

FORMATS = ("png", "svg", "csv", "npz", "gif")
MAX_GIF_FRAMES = 200  # an animated export shows at most this many steps, evenly spaced
GIF_FRAME_MS = 80  # display time of one GIF frame, milliseconds
MIN_WIDTH_PX = 16  # narrowest PNG export
MAX_WIDTH_PX = 20000  # widest PNG export
DEFAULT_FIGURE_WIDTH = 800  # logical width of a panel figure when none is asked for (px)
FIGURE_WIDTH_RANGE = (480, 1600)  # logical layout widths; wider/narrower PNGs are scaled renders
FIGURE_ASPECT = 0.5  # height / width of a panel figure
MIN_FIGURE_HEIGHT = 260  # px: room for title, heatmap and axes


class ExportError(OSError):
    """A file could not be written; the message is one line naming the path and the reason."""


# --- validation shared by the app and the CLI -------------------------------------------------
def check_width(width_px: int) -> int:
    """``width_px`` as an int, or ValueError unless it is in [MIN_WIDTH_PX, MAX_WIDTH_PX]."""
    if isinstance(width_px, bool) or not isinstance(width_px, (int, np.integer)):
        raise ValueError(f"width must be a whole number of pixels, got {width_px!r}")
    if not MIN_WIDTH_PX <= width_px <= MAX_WIDTH_PX:
        raise ValueError(f"width must be between {MIN_WIDTH_PX} and {MAX_WIDTH_PX} pixels, got {width_px}")
    return int(width_px)


def resolve_colormap(name: str | None) -> tuple:
    """``(colorblind, colormap)`` for a user's colormap choice.

    None: the default maps; ``"colorblind"``: the colour-blind-safe defaults; otherwise the name of
    one of pyqtgraph's bundled maps (``pg.colormap.listMaps()``), applied to every panel.
    """
    if name is None:
        return False, None
    if name == "colorblind":
        return True, None
    known = pg.colormap.listMaps()
    if name not in known:
        raise ValueError(f"unknown colormap {name!r}; use 'colorblind' or one of: {', '.join(sorted(known))}")
    return False, pg.colormap.get(name)


def figure_width_for(width_px: int) -> int:
    """Logical layout width of a panel figure exported ``width_px`` pixels wide."""
    lo, hi = FIGURE_WIDTH_RANGE
    return min(max(int(width_px), lo), hi)


# --- the panel figure -------------------------------------------------------------------------
def build_panel_figure(trace, gate: str, layer: int, colorblind: bool = False,
                       width: int = DEFAULT_FIGURE_WIDTH, colormap: pg.ColorMap | None = None,
                       levels: tuple | None = None) -> HeatmapView:
    """A laid-out, never-on-screen ``HeatmapView`` of ``gate`` in ``layer`` over the whole trace.

    ``width`` is the logical width in pixels (height ``FIGURE_ASPECT`` of it, at least
    ``MIN_FIGURE_HEIGHT``); ``colormap`` overrides the gate's default map. ``levels`` default to
    ``gate_levels`` over the full trace (the app passes the levels its view uses). Close the
    figure (``close()``) when done with it.
    """
    data = trace.gate(gate, layer)  # (T, H)
    width = int(width)
    if width < 1:
        raise ValueError(f"figure width must be positive, got {width}")
    figure = HeatmapView(gate, colorblind=colorblind)
    if colormap is not None:
        figure.colorbar.setColorMap(colormap)
    figure.set_data(data, levels=gate_levels(gate, data) if levels is None else levels, t0=trace.start)
    figure.plot.setTitle(f"{GATE_STYLE[gate].label} \u2014 layer {layer}", size="11pt")
    bottom = figure.plot.getAxis("bottom")
    bottom.setHeight(None)  # the view's compact fixed height leaves no room for an axis label
    figure.plot.setLabel("bottom", "time step")
    figure.plot.setLabel("left", "unit")
    figure.setAttribute(QtCore.Qt.WA_DontShowOnScreen)
    figure.resize(width, max(MIN_FIGURE_HEIGHT, round(width * FIGURE_ASPECT)))
    figure.show()  # delivers the resize so the scene is laid out; never appears on screen
    QtCore.QCoreApplication.sendPostedEvents()
    return figure


# --- rendering ----------------------------------------------------------------------------------
def _logical_size(widget: QtWidgets.QWidget) -> QtCore.QSize:
    view = widget.viewport() if isinstance(widget, QtWidgets.QGraphicsView) else widget
    size = view.size()
    if size.width() < 1 or size.height() < 1:
        raise ValueError("cannot export an empty widget (zero width or height)")
    return size


def _render(widget: QtWidgets.QWidget, painter: QtGui.QPainter, target: QtCore.QSize) -> None:
    """Draw ``widget`` scaled into ``(0, 0, target)`` on an active ``painter``, every plot part
    drawn afresh (not from the screen's pixmap caches, see ``still_parts``)."""
    with uncached(widget):
        _render_now(widget, painter, target)


def _render_now(widget: QtWidgets.QWidget, painter: QtGui.QPainter, target: QtCore.QSize) -> None:
    if isinstance(widget, QtWidgets.QGraphicsView):
        # Renders the scene itself at the target resolution: text and lines stay sharp.
        source = widget.viewport().rect()
        widget.render(painter, QtCore.QRectF(0, 0, target.width(), target.height()), source,
                      QtCore.Qt.IgnoreAspectRatio)
        return
    size = widget.size()
    painter.scale(target.width() / size.width(), target.height() / size.height())
    flags = QtWidgets.QWidget.RenderFlag.DrawWindowBackground | QtWidgets.QWidget.RenderFlag.DrawChildren
    widget.render(painter, QtCore.QPoint(0, 0), QtGui.QRegion(widget.rect()), flags)


def render_png_bytes(widget: QtWidgets.QWidget, width_px: int | None = None) -> bytes:
    """PNG bytes of ``widget`` ``width_px`` pixels wide (default: its logical width)."""
    return _encode(render_image(widget, width_px), "PNG")


def render_image(widget: QtWidgets.QWidget, width_px: int | None = None) -> QtGui.QImage:
    """``widget`` drawn ``width_px`` pixels wide (default: its logical width), height by aspect."""
    size = _logical_size(widget)
    width = size.width() if width_px is None else check_width(width_px)
    height = max(1, round(size.height() * width / size.width()))
    image = QtGui.QImage(width, height, QtGui.QImage.Format_ARGB32)
    image.fill(widget.palette().color(QtGui.QPalette.Window))
    painter = QtGui.QPainter(image)
    try:
        # No SmoothPixmapTransform: heatmap cells are scaled nearest-neighbour, so they stay crisp.
        painter.setRenderHint(QtGui.QPainter.Antialiasing, True)
        painter.setRenderHint(QtGui.QPainter.TextAntialiasing, True)
        _render(widget, painter, QtCore.QSize(width, height))
    finally:
        painter.end()
    return image


def _encode(image: QtGui.QImage, fmt: str) -> bytes:
    array = QtCore.QByteArray()
    buffer = QtCore.QBuffer(array)
    buffer.open(QtCore.QIODevice.WriteOnly)
    if not image.save(buffer, fmt):
        raise ValueError(f"Qt could not encode a {image.width()}x{image.height()} image as {fmt}")
    buffer.close()
    return bytes(array)


_IMAGE_TAG = re.compile(rb"<image\b[^>]*>")
_PIXELATED = b"image-rendering:pixelated"


def _pixelated_images(svg: bytes) -> bytes:
    """Add ``image-rendering:pixelated`` to the style of every ``<image>`` element."""

    def fix(match: re.Match) -> bytes:
        tag = match.group(0)
        if b' style="' in tag:
            return tag.replace(b' style="', b' style="' + _PIXELATED + b";", 1)
        return b"<image style=\"" + _PIXELATED + b"\"" + tag[len(b"<image"):]

    return _IMAGE_TAG.sub(fix, svg)


def _svg_version(widget: QtWidgets.QWidget) -> QtSvg.QSvgGenerator.SvgVersion:
    """SVG 1.1 (with clip paths) for a graphics view; SVG Tiny 1.2 (no clipping) for other widgets.

    Qt 6.11 writes the clip paths of child widgets without their offset in the window, which
    would clip their contents away, so a whole window is drawn unclipped instead.
    """
    if isinstance(widget, QtWidgets.QGraphicsView):
        return QtSvg.QSvgGenerator.SvgVersion.Svg11
    return QtSvg.QSvgGenerator.SvgVersion.SvgTiny12


def render_svg_bytes(widget: QtWidgets.QWidget, title: str = "lstmviz export") -> bytes:
    """SVG bytes of ``widget`` at its logical size (viewBox in logical pixels)."""
    size = _logical_size(widget)
    array = QtCore.QByteArray()
    buffer = QtCore.QBuffer(array)
    buffer.open(QtCore.QIODevice.WriteOnly)
    generator = QtSvg.QSvgGenerator(_svg_version(widget))
    generator.setOutputDevice(buffer)
    generator.setSize(size)
    generator.setViewBox(QtCore.QRect(QtCore.QPoint(0, 0), size))
    generator.setResolution(widget.logicalDpiX())  # without it text and axes are mis-scaled
    generator.setTitle(title)
    painter = QtGui.QPainter(generator)
    try:
        painter.setRenderHint(QtGui.QPainter.Antialiasing, True)
        _render(widget, painter, size)
    finally:
        painter.end()
    buffer.close()
    return _pixelated_images(bytes(array))


# --- writers ----------------------------------------------------------------------------------
def _write_failed(path, error: OSError) -> ExportError:
    reason = error.strerror or str(error)
    return ExportError(f"cannot write {os.fspath(path)}: {reason}")


def _write_bytes(path, data: bytes) -> None:
    try:
        atomic_write_bytes(path, data)
    except OSError as error:
        raise _write_failed(path, error) from error


def export_png(widget: QtWidgets.QWidget, path, width_px: int | None = None) -> None:
    """Write ``widget`` as a PNG ``width_px`` wide (default: logical size) to ``path``."""
    _write_bytes(path, render_png_bytes(widget, width_px))


def export_svg(widget: QtWidgets.QWidget, path) -> None:
    """Write ``widget`` as an SVG (logical size) to ``path``."""
    _write_bytes(path, render_svg_bytes(widget))


def export_panel_image(path, trace, gate: str, layer: int, fmt: str, width_px: int | None = None,
                       colorblind: bool = False, colormap: pg.ColorMap | None = None,
                       levels: tuple | None = None) -> None:
    """Write the ``build_panel_figure`` picture of one panel as ``fmt`` ("png" or "svg").

    PNG: ``width_px`` wide (default ``DEFAULT_FIGURE_WIDTH``). SVG: laid out ``width_px`` wide
    (within ``FIGURE_WIDTH_RANGE``). The app and the CLI both export panels through here.
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"image format must be 'png' or 'svg', got {fmt!r}")
    width_px = DEFAULT_FIGURE_WIDTH if width_px is None else check_width(width_px)
    figure = build_panel_figure(trace, gate, layer, colorblind, figure_width_for(width_px), colormap, levels)
    try:
        if fmt == "png":
            export_png(figure, path, width_px)
        else:
            export_svg(figure, path)
    finally:
        figure.close()
        figure.deleteLater()


def gif_support() -> str | None:
    """None if animated GIF export works here, else why not (Pillow, an optional extra, is missing)."""
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        return "GIF export needs Pillow: pip install 'lstmviz[gif]'"
    return None


def stepping_frames(trace, gate: str, layer: int, width_px: int | None = None, colorblind: bool = False,
                    colormap: pg.ColorMap | None = None, max_frames: int = MAX_GIF_FRAMES) -> list:
    """Frames (QImages ``width_px`` wide) of stepping through the trace: frame k shows the panel's
    heatmap up to step t_k with the cursor there, at the whole trace's levels and time axis.
    At most ``max_frames`` frames, evenly spaced over the T steps (the last one always shows all)."""
    width_px = DEFAULT_FIGURE_WIDTH if width_px is None else check_width(width_px)
    data = trace.gate(gate, layer)  # (T, H)
    T = data.shape[0]
    if T < 1:
        raise ValueError("the text is empty: nothing to animate")
    levels = gate_levels(gate, data)
    figure = build_panel_figure(trace, gate, layer, colorblind, figure_width_for(width_px), colormap, levels)
    try:
        figure.plot.setXRange(-0.5, T - 0.5, padding=0)
        figure.plot.disableAutoRange()
        frames = []
        for t in np.unique(np.linspace(1, T, min(T, max_frames)).round().astype(int)):  # steps shown
            figure.set_data(data[:t], levels=levels)
            figure.set_cursor(t - 1)
            frames.append(render_image(figure, width_px))
        return frames
    finally:
        figure.close()
        figure.deleteLater()


def gif_bytes(frames: list, frame_ms: int = GIF_FRAME_MS) -> bytes:
    """An endlessly looping GIF of QImage ``frames``, ``frame_ms`` milliseconds each."""
    reason = gif_support()
    if reason is not None:
        raise ValueError(reason)
    from PIL import Image

    pictures = []
    for frame in frames:
        rgb = frame.convertToFormat(QtGui.QImage.Format_RGB888)
        raw = bytes(rgb.constBits())[: rgb.bytesPerLine() * rgb.height()]
        picture = Image.frombuffer("RGB", (rgb.width(), rgb.height()), raw, "raw", "RGB", rgb.bytesPerLine(), 1)
        pictures.append(picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=256))
    out = io.BytesIO()
    pictures[0].save(out, format="GIF", save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0)
    return out.getvalue()


def export_panel_gif(path, trace, gate: str, layer: int, width_px: int | None = None, colorblind: bool = False,
                     colormap: pg.ColorMap | None = None) -> None:
    """Write the animated GIF of stepping through one panel (``stepping_frames``) to ``path``."""
    _write_bytes(path, gif_bytes(stepping_frames(trace, gate, layer, width_px, colorblind, colormap)))


def escape_char(ch: str) -> str:
    """``ch`` as CSV text: the backslash and non-printable characters as Python escapes."""
    if ch == "\\" or not ch.isprintable():
        return ch.encode("unicode_escape").decode("ascii")
    return ch


def gate_csv_text(trace, gate: str, layer: int) -> str:
    """The CSV text of ``gate`` in ``layer`` (format: module docstring)."""
    data = trace.gate(gate, layer)  # (T, H)
    T, H = data.shape
    digits = 17 if data.dtype == np.float64 else 9
    spec = f".{digits}g"
    chars = trace.text if trace.text is not None and len(trace.text) == T else None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["step", "char"] + [f"unit{k}" for k in range(H)])
    for t, row in enumerate(data.tolist()):
        char = escape_char(chars[t]) if chars is not None else ""
        writer.writerow([trace.start + t, char] + [format(x, spec) for x in row])
    return out.getvalue()


def export_gate_csv(path, trace, gate: str, layer: int) -> None:
    """Write ``gate`` of ``layer`` as CSV to ``path`` (format: module docstring)."""
    text = gate_csv_text(trace, gate, layer)
    try:
        with atomic_writer(path, "w") as f:
            f.write(text)
    except OSError as error:
        raise _write_failed(path, error) from error


def export_trace_npz(path, trace, vocab=None) -> None:
    """Write the whole trace (all layers, all quantities) and ``vocab`` to ``path`` as NPZ."""
    try:
        save_trace_npz(path, trace, vocab=vocab)
    except OSError as error:
        raise _write_failed(path, error) from error


def panel_path(folder, layer: int, gate: str, fmt: str) -> str:
    """The predictable file name of one panel export: ``folder/layer{N}_{gate}.{fmt}``."""
    return os.path.join(os.fspath(folder), f"layer{layer}_{gate}.{fmt}")
