"""Export gate plots (PNG, SVG) and the data behind them (CSV, NPZ); shared by the app and the CLI.

Pictures: ``build_panel_figure`` lays out one gate of one layer exactly as the app draws it
(``HeatmapView``: same colormaps, levels from ``gate_levels`` over the whole trace), and
``export_png`` / ``export_svg`` render any widget (such a figure, a dock's contents, the whole
main window). ``export_panel_image`` does both in one call, so the app's and the CLI's pictures
of a panel are the same pixels.

PNG: rendered with antialiasing at ``width_px`` pixels wide (16 .. 20000), height by the widget's
aspect. A figure is laid out at a readable logical width (``figure_width_for``) and then scaled,
so text keeps its proportions. Heatmap cells are never smoothed (nearest neighbour).

SVG: drawn with ``QSvgGenerator`` (pyqtgraph 0.14's SVGExporter is broken, DESIGN.md §5), SVG
1.1, then made to draw the same in browsers and librsvg as in Qt (``render_svg_bytes``): a
figure is one drawing, a window or a dock's contents one nested ``<svg>`` viewport per widget
(Qt misplaces child widgets' clip paths; a viewport clips in every renderer). Each
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
import html
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
CSV_CHUNK_ROWS = 1024  # steps of a gate CSV formatted at a time (``gate_csv_chunks``)
MAX_GIF_FRAMES = 200  # an animated export shows at most this many steps, evenly spaced
GIF_FRAME_MS = 80  # display time of one GIF frame, milliseconds
MIN_WIDTH_PX = 16  # narrowest PNG export
MAX_WIDTH_PX = 20000  # widest PNG export
DEFAULT_FIGURE_WIDTH = 800  # logical width of a panel figure when none is asked for (px)
FIGURE_WIDTH_RANGE = (480, 1600)  # logical layout widths; wider/narrower PNGs are scaled renders
FIGURE_ASPECT = 0.5  # height / width of a panel figure
MIN_FIGURE_HEIGHT = 260  # px: room for title, heatmap and axes


STYLES = {  # picture styles of a panel figure: background, axes and text
    "dark": {"background": "k", "foreground": (150, 150, 150)},  # as on screen
    "light": {"background": "w", "foreground": (30, 30, 30)},  # for print: white paper, dark ink
}


def check_style(style: str) -> str:
    """``style`` if it is one of :data:`STYLES`, else ValueError naming them."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; use {' or '.join(STYLES)}")
    return style


def apply_style(view: pg.GraphicsView, style: str) -> None:
    """Paint ``view`` (a never-on-screen figure) in ``style``: its background, every axis's
    line, ticks and labels, and its title."""
    colours = STYLES[check_style(style)]
    view.setBackground(colours["background"])
    for item in view.scene().items():
        if isinstance(item, pg.AxisItem):
            item.setPen(colours["foreground"])
            item.setTextPen(colours["foreground"])
        elif isinstance(item, pg.LabelItem):
            item.setText(item.text, color=colours["foreground"])


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
                       levels: tuple | None = None, style: str = "dark") -> HeatmapView:
    """A laid-out, never-on-screen ``HeatmapView`` of ``gate`` in ``layer`` over the whole trace.

    ``width`` is the logical width in pixels (height ``FIGURE_ASPECT`` of it, at least
    ``MIN_FIGURE_HEIGHT``); ``colormap`` overrides the gate's default map. ``levels`` default to
    ``gate_levels`` over the full trace (the app passes the levels its view uses); ``style``
    one of :data:`STYLES` (``apply_style``). Close the figure (``close()``) when done with it.
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
    apply_style(figure, style)
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


_FONT_FAMILY = re.compile(rb'font-family="([^"]*)"')
_MONOSPACE = re.compile(rb"mono|courier|consol|fixed", re.IGNORECASE)
_DRAWING = re.compile(rb"<(?:path|polyline|polygon|image|text|rect|line|ellipse|circle)\b")


_SCALED_GROUP = re.compile(rb'(<g\b[^>]*?)transform="matrix\(([^)]*)\)"([^>]*>)((?:(?!<g\b|</g>).)*)</g>', re.DOTALL)
_COORDINATES = re.compile(rb'( points="| d=")([^"]*)"')
_PAIR = re.compile(rb"(-?[\d.]+(?:e-?\d+)?),(-?[\d.]+(?:e-?\d+)?)")
_NUMBER = rb'"(-?[\d.]+(?:e-?\d+)?)"'
_RECT = re.compile(rb"(<rect\b[^>]*?) x=" + _NUMBER + rb" y=" + _NUMBER + rb" width=" + _NUMBER + rb" height=" + _NUMBER)


def _fmt(value: float) -> bytes:
    return (f"{value:.4f}".rstrip("0").rstrip(".") or "0").encode()


def _thin_cosmetic_lines(svg: bytes) -> bytes:
    """Keep cosmetic lines one pixel wide in renderers without ``vector-effect``.

    Qt draws a cosmetic pen (pyqtgraph's curves, bars and axes) under the item's scaling
    transform with ``vector-effect="non-scaling-stroke"``; librsvg does not implement that and
    scales the stroke with the transform (a curve becomes a ribbon). In every group that holds
    such lines and nothing that needs the transform (text, images, gradients, a rectangle under
    a rotation), the transform is applied to the coordinates instead: the points of lines and
    paths, and the corners of rectangles (the same geometry in every renderer)."""
    def bake(match: re.Match) -> bytes:
        head, matrix, rest, body = match.groups()
        a, b, c, d, e, f = (float(x) for x in matrix.split(b","))
        if (a, b, c, d) == (1.0, 0.0, 0.0, 1.0) or b"non-scaling-stroke" not in body \
                or re.search(rb"<text\b|<image\b|url\(", head + rest + body) \
                or (b"<rect" in body and (b, c) != (0.0, 0.0)):  # a rotated rectangle is no <rect>
            return match.group(0)

        def point(pair: re.Match) -> bytes:
            x, y = float(pair.group(1)), float(pair.group(2))
            return _fmt(a * x + c * y + e) + b"," + _fmt(b * x + d * y + f)

        def rect(found: re.Match) -> bytes:  # (a, d) scale and (e, f) shift the rectangle's corners
            x, y, w, h = (float(v) for v in found.group(2, 3, 4, 5))
            x0, x1 = sorted((a * x + e, a * (x + w) + e))
            y0, y1 = sorted((d * y + f, d * (y + h) + f))
            return (found.group(1) + b' x="' + _fmt(x0) + b'" y="' + _fmt(y0) + b'" width="' + _fmt(x1 - x0)
                    + b'" height="' + _fmt(y1 - y0) + b'"')

        body = _COORDINATES.sub(lambda m: m.group(1) + _PAIR.sub(point, m.group(2)) + b'"', body)
        body = _RECT.sub(rect, body)
        return head + b'transform="matrix(1,0,0,1,0,0)"' + rest + body + b"</g>"

    return _SCALED_GROUP.sub(bake, svg)


_CLIP_PATH = re.compile(rb'<clipPath id="([^"]+)">\s*<path vector-effect="([^"]+)"[^>]* d="([^"]*)"')
_CLIPPED_GROUP = re.compile(rb'<g clip-path="url\(#([^"]+)\)"><g\b([^>]*)>((?:(?!<g\b|</g>).)*)</g>', re.DOTALL)
_MATRIX = re.compile(rb'transform="matrix\(([^)]*)\)"')
_TEXT_LENGTH = re.compile(rb'textLength="([\d.]+)"')
_TEXT_AT = re.compile(rb'<text\b[^>]*? x="(-?[\d.]+)" y="(-?[\d.]+)"[^>]*?font-size="([\d.]+)"[^>]*>([^<]*)<')


def _box(points: list) -> tuple | None:
    """``(x0, y0, x1, y1)`` around ``points`` ``[(x, y)]``, None if there are none."""
    if not points:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _content_box(attributes: bytes, body: bytes) -> tuple | None:
    """Where a Qt group draws: the box around its lines' points and its texts (their
    ``textLength``, else estimated from the font size), through the group's transform; None if
    it draws nothing measurable."""
    matrix = _MATRIX.search(attributes)
    a, b, c, d, e, f = (float(x) for x in matrix.group(1).split(b",")) if matrix else (1, 0, 0, 1, 0, 0)
    points = [(float(m.group(1)), float(m.group(2))) for coords in _COORDINATES.finditer(body)
              for m in _PAIR.finditer(coords.group(2))]
    for m in _TEXT_AT.finditer(body):
        x, y, size = float(m.group(1)), float(m.group(2)), float(m.group(3))
        length = _TEXT_LENGTH.search(m.group(0))  # the laid-out width where it is known
        width = float(length.group(1)) if length else 0.6 * size * len(m.group(4))
        points += [(x, y - size), (x + width, y)]
    return _box([(a * x + c * y + e, b * x + d * y + f) for x, y in points])


def _drop_wrong_clips(svg: bytes) -> bytes:
    """Remove the clip paths Qt 6.11 writes in the wrong place (only QSvgRenderer ignores them;
    Chromium and librsvg clip pyqtgraph's axis lines, ticks and labels away): every clip set
    while a cosmetic pen was active (the only ones Qt writes with ``non-scaling-stroke``), every
    clip that does not even touch what its group draws (but a text line's rest,
    ``_rest_of_line_clip``), and a text fragment's clip left set on the fill drawn next
    (``_leftover_clip``). A clip that cuts through what it clips (a zoomed plot's frame) stays."""
    clips = {}
    for name, effect, path in _CLIP_PATH.findall(svg):
        box = _box([(float(x), float(y)) for x, y in _PAIR.findall(path)])
        clips[name] = None if effect == b"non-scaling-stroke" else box
    previous = {"clip": None, "text": False}  # the clipped group before the one checked

    def check(match: re.Match) -> bytes:
        name, attributes, body = match.groups()
        after_text = previous["clip"] == name and previous["text"]
        if body.strip():  # Qt writes empty groups for pen changes in between
            previous.update(clip=name, text=b"<text" in body)
        if name not in clips:
            return match.group(0)
        clip, drawn = clips[name], _content_box(attributes, body)
        touches = clip is not None and (drawn is None or (drawn[0] <= clip[2] and clip[0] <= drawn[2]
                                                          and drawn[1] <= clip[3] and clip[1] <= drawn[3]))
        if touches and not (after_text and _leftover_clip(clip, drawn, attributes, body)) \
                or not touches and _rest_of_line_clip(clip, body):
            return match.group(0)
        return match.group(0).replace(b' clip-path="url(#' + name + b')"', b"", 1)

    return _CLIPPED_GROUP.sub(check, svg)


def _rest_of_line_clip(clip: tuple | None, body: bytes) -> bool:
    """Whether ``clip`` is the part of a text line beside a text that it clips away: a text
    editor draws a line's unformatted characters as the whole line clipped to where they are,
    so a fully highlighted line's is clipped to the empty rest of the line, beyond its end (Qt
    draws nothing there; without the clip the line would be drawn over its highlights). True
    when the group draws one text, on a baseline inside the clip's band of at most two text
    heights."""
    texts = list(_TEXT_AT.finditer(body))
    if clip is None or len(texts) != 1:
        return False
    y, size = float(texts[0].group(2)), float(texts[0].group(3))
    return clip[1] <= y <= clip[3] and clip[3] - clip[1] <= 2 * size


_FILLED_PATHS = re.compile(rb'\s*(?:<path\b[^>]*/>\s*)+')
LEFTOVER_CLIP_PX = 2.0  # a fill a text fragment's clip leaves less of than this (px) was not meant to be clipped


def _leftover_clip(clip: tuple, drawn: tuple | None, attributes: bytes, body: bytes) -> bool:
    """Whether ``clip`` is a text fragment's clip that Qt's SVG writer left set on the filled
    shapes drawn next (the group before, with the same clip, drew text): a text editor draws
    each character's highlight unclipped, then the character clipped to its cell, and the
    file clips the next character's highlight to the previous cell, a 1 px sliver in
    browsers and librsvg. True when the group only fills paths and the clip leaves less than
    LEFTOVER_CLIP_PX of them in x or y."""
    if drawn is None or b'fill="none"' in attributes or not _FILLED_PATHS.fullmatch(body):
        return False
    overlap_x = min(clip[2], drawn[2]) - max(clip[0], drawn[0])
    overlap_y = min(clip[3], drawn[3]) - max(clip[1], drawn[1])
    return min(overlap_x, overlap_y) < LEFTOVER_CLIP_PX < min(drawn[2] - drawn[0], drawn[3] - drawn[1])


def _browser_safe(svg: bytes) -> bytes:
    """Make a ``QSvgGenerator`` SVG draw in browsers and librsvg as it does in Qt: no misplaced
    clip paths (``_drop_wrong_clips``); font families replaced by the generic ``sans-serif``
    (``monospace`` for fixed-width families), as the file cannot name fonts the reader has;
    cosmetic lines thin (``_thin_cosmetic_lines``); cells crisp (``_pixelated_images``)."""
    def generic(match: re.Match) -> bytes:
        return b'font-family="monospace"' if _MONOSPACE.search(match.group(1)) else b'font-family="sans-serif"'

    svg = _FONT_FAMILY.sub(generic, _drop_wrong_clips(svg))
    return _pixelated_images(_thin_cosmetic_lines(svg))


def _generate_svg(widget: QtWidgets.QWidget, size: QtCore.QSize, paint, title: str) -> bytes:
    """Raw SVG 1.1 of ``paint(painter)`` on a ``QSvgGenerator`` of ``size`` logical pixels."""
    array = QtCore.QByteArray()
    buffer = QtCore.QBuffer(array)
    buffer.open(QtCore.QIODevice.WriteOnly)
    generator = QtSvg.QSvgGenerator(QtSvg.QSvgGenerator.SvgVersion.Svg11)
    generator.setOutputDevice(buffer)
    generator.setSize(size)
    generator.setViewBox(QtCore.QRect(QtCore.QPoint(0, 0), size))
    generator.setResolution(widget.logicalDpiX())  # without it text and axes are mis-scaled
    generator.setTitle(title)
    painter = QtGui.QPainter(generator)
    try:
        painter.setRenderHint(QtGui.QPainter.Antialiasing, True)
        paint(painter)
    finally:
        painter.end()
    buffer.close()
    return bytes(array)


_SVG_BODY = re.compile(rb"<svg\b[^>]*>(.*)</svg>", re.DOTALL)
_ID = re.compile(rb'(id="|url\(#|xlink:href="#)([A-Za-z][\w.-]*)')


def _fragment(svg: bytes, prefix: bytes) -> bytes:
    """The body of one generated SVG (title and description dropped), every id prefixed by
    ``prefix`` so that fragments of several widgets can share one document."""
    body = _SVG_BODY.search(svg).group(1)
    body = re.sub(rb"<title>.*?</title>|<desc>.*?</desc>", b"", body, flags=re.DOTALL)
    return _ID.sub(lambda m: m.group(1) + prefix + m.group(2), body)


def _painted_widgets(root: QtWidgets.QWidget) -> list:
    """``[(widget, visible rect in root coordinates)]`` of every visible widget under ``root``
    (``root`` first, then in painting order: a parent before its children, siblings in stacking
    order). The visible rect is the widget's rect cut by all its ancestors' (a scrolled panel's
    contents only where its scroll area shows them)."""
    out = []

    def walk(widget, clip: QtCore.QRect) -> None:
        rect = QtCore.QRect(widget.mapTo(root, QtCore.QPoint(0, 0)), widget.size()) if widget is not root \
            else widget.rect()
        visible = rect.intersected(clip)
        if visible.isEmpty():
            return
        if isinstance(widget, QtWidgets.QGraphicsView):  # its scene, drawn into its viewport
            viewport = widget.viewport()
            area = QtCore.QRect(viewport.mapTo(root, QtCore.QPoint(0, 0)), viewport.size()).intersected(visible)
            if not area.isEmpty():
                out.append((viewport, area))
            return
        out.append((widget, visible))
        for child in widget.children():
            if isinstance(child, QtWidgets.QWidget) and child.isVisible() and not child.isWindow():
                walk(child, visible)

    walk(root, root.rect())
    return out


_TEXT = re.compile(rb'<text\b([^>]*?)font-size="([\d.]+)"([^>]*)>([^<]*)</text>')


def _fit_text_lengths(svg: bytes, font: QtGui.QFont, dpi: float) -> bytes:
    """Give every ``<text>`` drawn in ``font`` (as a widget paints its own text) the width Qt
    laid it out at (``textLength``): a browser's glyph advances differ slightly from Qt's hinted
    ones, which over a line of an editor drifts the characters out of the per-character
    highlight rectangles Qt draws under them."""
    size = font.pointSizeF() * dpi / 72.0 if font.pointSizeF() > 0 else float(font.pixelSize())
    metrics = QtGui.QFontMetricsF(font)

    def fit(match: re.Match) -> bytes:
        before, px, after, content = match.groups()
        if abs(float(px) - size) > 0.05 or b"textLength" in before + after or not content.strip():
            return match.group(0)
        width = metrics.horizontalAdvance(html.unescape(content.decode("utf-8")))
        return (b"<text" + before + b'font-size="' + px + b'"' + after
                + f' textLength="{width:.2f}" lengthAdjust="spacing"'.encode() + b">" + content + b"</text>")

    return _TEXT.sub(fit, svg)


def _composed_svg(root: QtWidgets.QWidget, size: QtCore.QSize, title: str) -> bytes:
    """SVG of a widget tree (a window, a dock's contents): every widget drawn alone by Qt into
    its own nested ``<svg>`` viewport at its place, cut to its visible rect. A nested ``<svg>``
    clips in every renderer, so a scrolled panel cannot spill over its neighbours, while Qt's
    SVG writer never has to clip one widget's children (it misplaces such clips)."""
    parts = []
    for k, (widget, visible) in enumerate(_painted_widgets(root)):
        origin = widget.mapTo(root, QtCore.QPoint(0, 0)) if widget is not root else QtCore.QPoint(0, 0)
        flags = QtWidgets.QWidget.RenderFlag.DrawWindowBackground if widget is root \
            else QtWidgets.QWidget.RenderFlag(0)
        view = widget.parentWidget()
        if isinstance(view, QtWidgets.QGraphicsView) and view.viewport() is widget:
            paint = lambda p, v=view, w=widget: _render_now(v, p, w.size())  # noqa: E731
        else:
            paint = lambda p, w=widget, f=flags: QtWidgets.QWidget.render(  # noqa: E731
                w, p, QtCore.QPoint(0, 0), QtGui.QRegion(w.rect()), f)
        raw = _fit_text_lengths(_generate_svg(widget, widget.size(), paint, title), widget.font(),
                                widget.logicalDpiY())
        body = _fragment(raw, f"w{k}_".encode())
        if not _DRAWING.search(body):
            continue
        inner = visible.translated(-origin)
        parts.append(f'<svg x="{visible.x()}" y="{visible.y()}" width="{visible.width()}" '
                     f'height="{visible.height()}" viewBox="{inner.x()} {inner.y()} {inner.width()} '
                     f'{inner.height()}" overflow="hidden">'.encode() + body + b"</svg>\n")
    w, h = size.width(), size.height()
    head = (f'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
            f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg" '
            f'xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1">\n'
            f"<title>{html.escape(title)}</title>\n")
    return head.encode() + b"".join(parts) + b"</svg>\n"


def render_svg_bytes(widget: QtWidgets.QWidget, title: str = "lstmviz export") -> bytes:
    """SVG bytes of ``widget`` at its logical size (viewBox in logical pixels) that draw the
    same in browsers, librsvg and Qt (``_browser_safe``). A graphics view (a plot) is one
    drawing; any other widget is composed of its widgets' drawings (``_composed_svg``)."""
    size = _logical_size(widget)
    with uncached(widget):
        if isinstance(widget, QtWidgets.QGraphicsView):
            svg = _generate_svg(widget, size, lambda p: _render_now(widget, p, size), title)
        else:
            svg = _composed_svg(widget, size, title)
    return _browser_safe(svg)


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
                       levels: tuple | None = None, style: str = "dark") -> None:
    """Write the ``build_panel_figure`` picture of one panel as ``fmt`` ("png" or "svg") in
    ``style`` ("dark" as on screen, "light" for print).

    PNG: ``width_px`` wide (default ``DEFAULT_FIGURE_WIDTH``). SVG: laid out ``width_px`` wide
    (within ``FIGURE_WIDTH_RANGE``). The app and the CLI both export panels through here.
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"image format must be 'png' or 'svg', got {fmt!r}")
    width_px = DEFAULT_FIGURE_WIDTH if width_px is None else check_width(width_px)
    figure = build_panel_figure(trace, gate, layer, colorblind, figure_width_for(width_px), colormap, levels, style)
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


def gate_csv_chunks(trace, gate: str, layer: int, rows: int | None = None):
    """The CSV text of ``gate`` in ``layer`` (format: module docstring) in pieces of at most
    ``rows`` steps (default ``CSV_CHUNK_ROWS``; the header comes with the first piece), so that
    memory follows one piece, not the number of steps."""
    rows = CSV_CHUNK_ROWS if rows is None else rows
    data = trace.gate(gate, layer)  # (T, H)
    T, H = data.shape
    digits = 17 if data.dtype == np.float64 else 9
    spec = f".{digits}g"
    chars = trace.text if trace.text is not None and len(trace.text) == T else None
    header = ["step", "char"] + [f"unit{k}" for k in range(H)]
    for lo in range(0, max(T, 1), rows):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if lo == 0:
            writer.writerow(header)
        for t, row in enumerate(data[lo : lo + rows].tolist(), start=lo):
            char = escape_char(chars[t]) if chars is not None else ""
            writer.writerow([trace.start + t, char] + [format(x, spec) for x in row])
        yield out.getvalue()


def export_gate_csv(path, trace, gate: str, layer: int) -> None:
    """Write ``gate`` of ``layer`` as CSV to ``path`` (format: module docstring), streamed in
    pieces of ``CSV_CHUNK_ROWS`` steps (``gate_csv_chunks``)."""
    try:
        with atomic_writer(path, "w") as f:
            for piece in gate_csv_chunks(trace, gate, layer):
                f.write(piece)
    except OSError as error:
        raise _write_failed(path, error) from error


def panel_table(widget: QtWidgets.QWidget) -> tuple | None:
    """The data a panel shows, as ``(header, rows)`` for a CSV file, or None if it shows none.

    A panel may say itself (a ``table()`` method returning ``(header, rows)`` or None); a panel
    with a ``values`` dict of numbers (the Equations panel) gives ``quantity,value``; otherwise
    every curve of its plots (``pg.PlotDataItem``: loss histories, series, forecasts, gradient
    norms) gives ``plot,curve,x,y``, one row per point, full float64 precision (17 digits)."""
    if callable(getattr(widget, "table", None)):
        return widget.table()
    values = getattr(widget, "values", None)
    if isinstance(values, dict) and values and all(isinstance(v, (int, float)) for v in values.values()):
        return ["quantity", "value"], [[k, format(float(v), ".17g")] for k, v in values.items()]
    rows = []
    views = [widget] if isinstance(widget, QtWidgets.QGraphicsView) else []
    for view in views + widget.findChildren(QtWidgets.QGraphicsView):
        scene = view.scene()
        if scene is None:
            continue
        for plot in (item for item in scene.items() if isinstance(item, pg.PlotItem)):
            title = plot.titleLabel.text or plot.getAxis("left").labelText or "plot"
            for k, curve in enumerate(plot.listDataItems()):
                if not isinstance(curve, pg.PlotDataItem) or curve.xData is None:
                    continue
                name = curve.name() or f"curve {k}"
                rows += [[title, name, format(float(x), ".17g"), format(float(y), ".17g")]
                         for x, y in zip(curve.xData, curve.yData)]
    return (["plot", "curve", "x", "y"], rows) if rows else None


def export_table_csv(path, header: list, rows: list) -> None:
    """Write ``header`` and ``rows`` (lists of strings or numbers) as CSV to ``path``."""
    try:
        with atomic_writer(path, "w") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
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
