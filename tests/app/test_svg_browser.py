"""Every SVG export draws in a real browser (headless Chromium) and in librsvg as the PNG of the
same panel does: axes and ticks present, cells where they should be, nothing outside the
picture. Skipped only where the renderer's binary is missing (CI installs Debian's
``chromium`` and ``librsvg2-bin``)."""

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from lstmviz import export

pytestmark = pytest.mark.slow  # each browser render takes a second or more

RENDERERS = ("chromium", "rsvg-convert")
MARGIN = 40  # px of page the browser shows around the picture (must stay empty)


@pytest.fixture
def trace(model, vocab):
    from .conftest import TEXT

    return model.trace(vocab.encode(TEXT), text=TEXT)


def render_svg(renderer: str, svg_path, width: int, height: int, out_dir) -> np.ndarray:
    """``svg_path`` drawn by ``renderer`` as an ``(height, width, 3) uint8`` array, plus (for
    the browser) the page ``MARGIN`` px beyond it: ``(height + MARGIN, width + MARGIN, 3)``."""
    binary = shutil.which(renderer)
    if binary is None:
        pytest.skip(f"{renderer} is not installed")
    out = out_dir / f"{svg_path.stem}-{renderer}.png"
    if renderer == "chromium":
        page = out_dir / f"{svg_path.stem}.html"  # the SVG at its size on a white page, top left
        page.write_text(f"<html><body style='margin:0;background:#fff'><img src='{svg_path.name}' "
                        f"width='{width}' height='{height}'></body></html>")
        command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   "--force-device-scale-factor=1", f"--window-size={width + MARGIN},{height + MARGIN}",
                   f"--screenshot={out}", page.as_uri()]
    else:
        command = [binary, "-w", str(width), "-h", str(height), "-o", str(out), str(svg_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert out.exists(), done.stderr[-2000:]
    return np.asarray(Image.open(out).convert("RGB"))


def read_png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def block_means(image: np.ndarray, block: int = 8) -> np.ndarray:
    """Mean grey level of each ``block`` x ``block`` tile: ``(H // block, W // block)``."""
    grey = image.astype(np.float64).mean(axis=2)  # (H, W)
    h, w = (s // block * block for s in grey.shape)
    return grey[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3))


def line_rows(image: np.ndarray, x: int, rows: slice, background: np.ndarray) -> int:
    """How many of ``rows`` have a pixel in columns ``x - 1 .. x + 1`` that stands out from
    ``background`` (an RGB colour) by more than 40 levels: the length of a vertical line at
    ``x`` (antialiased across two columns in a browser)."""
    band = image[rows, max(0, x - 1):x + 2].astype(int)  # (h, 3, 3)
    return int((np.abs(band - background).max(axis=2) > 40).any(axis=1).sum())


def strongest_line(image: np.ndarray, columns: range, rows: slice) -> tuple:
    """``(x, background)``: the column in ``columns`` with the longest line over ``rows``,
    measured against the median colour of the whole band."""
    background = np.median(image[rows, columns.start:columns.stop].reshape(-1, 3), axis=0)
    lengths = {x: int((np.abs(image[rows, x].astype(int) - background).max(axis=1) > 40).sum()) for x in columns}
    x = max(lengths, key=lengths.get)
    return x, background, lengths[x]


def check_axis(reference: np.ndarray, picture: np.ndarray, columns: range, rows: slice, what: str) -> None:
    x, background, length = strongest_line(reference, columns, rows)
    assert length > (rows.stop - rows.start) // 3, (what, "the PNG has no axis line here?", length)
    drawn = line_rows(picture, x, rows, background)
    assert drawn >= 0.8 * length, (what, x, length, drawn)


def compare(reference: np.ndarray, shown: np.ndarray, what: str, margin: float = 1 / 8) -> None:
    """``shown`` (a renderer's picture, at least as large) draws what ``reference`` (the PNG)
    does: tile by tile nearly the same grey levels, and the longest line of the left margin
    (the left axis) and of the bottom margin (the time axis) in the same place, at least 80%
    as long (the margins: ``margin`` of the width, twice that of the height); in the browser, a
    white page beyond the picture."""
    h, w, _ = reference.shape
    picture = shown[:h, :w]
    diff = np.abs(block_means(reference) - block_means(picture))  # (h / 8, w / 8)
    assert diff.mean() < 6 and np.quantile(diff, 0.98) < 40, (what, diff.mean(), np.quantile(diff, 0.98))
    check_axis(reference, picture, range(0, int(w * margin)), slice(h // 8, h * 7 // 8), f"{what}: left axis")
    turn = lambda a: np.ascontiguousarray(np.rot90(a, -1))  # noqa: E731  rows become columns
    check_axis(turn(reference), turn(picture), range(0, int(2 * h * margin)), slice(w // 8, w * 7 // 8),
               f"{what}: bottom axis")
    if shown.shape[0] > h:  # the browser's page: white beyond the picture
        assert (shown[h:, :w] > 245).all() and (shown[:h, w:] > 245).all(), (what, "something outside the picture")


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("gate", ["f", "c"])
def test_a_panel_svg_draws_like_its_png(qapp, tmp_path, trace, renderer, gate):
    svg, png = tmp_path / f"{gate}.svg", tmp_path / f"{gate}.png"
    export.export_panel_image(svg, trace, gate, 0, "svg", 800)
    export.export_panel_image(png, trace, gate, 0, "png", 800)
    reference = read_png(png)
    h, w, _ = reference.shape
    compare(reference, render_svg(renderer, svg, w, h, tmp_path), f"{gate} in {renderer}")


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a_window_svg_draws_like_its_png(window, tmp_path, renderer):
    from PySide6 import QtCore

    window.session.seek(40)
    window.session.select(0, 5, -1)  # the text is coloured by this unit: every character highlighted
    svg, png = tmp_path / "window.svg", tmp_path / "window.png"
    export.export_svg(window, svg)
    export.export_png(window, png)
    reference = read_png(png)
    h, w, _ = reference.shape
    shown = render_svg(renderer, svg, w, h, tmp_path)
    picture = shown[:h, :w]
    diff = np.abs(block_means(reference) - block_means(picture))  # (h / 8, w / 8)
    assert diff.mean() < 6, diff.mean()
    for name, view in window.panel("gates").views.items():  # each heatmap: axes and cells in place
        corner = view.mapTo(window, QtCore.QPoint(0, 0))
        box = (slice(corner.y(), corner.y() + view.height()), slice(corner.x(), corner.x() + view.width()))
        left = view.plot.getAxis("left")  # the left axis line is at its right edge
        margin = (left.mapRectToScene(left.boundingRect()).right() + 3) / view.width()
        compare(reference[box], picture[box], f"heatmap {name} in {renderer}", margin)
    check_text_highlights(window, reference, picture, renderer)
    if shown.shape[0] > h:
        assert (shown[h:, :w] > 245).all() and (shown[:h, w:] > 245).all(), "something outside the window"


def character_cells(window) -> list:
    """The window rectangles ``(x0, y0, x1, y1)`` of the text panel's characters shown whole
    (a character's cell: from its cursor position to the next one's, one line high)."""
    from PySide6 import QtCore, QtGui

    editor = window.panel("text").editor
    viewport = editor.viewport()
    origin = viewport.mapTo(window, QtCore.QPoint(0, 0))
    cursor = QtGui.QTextCursor(editor.document())
    cells = []
    for k in range(editor.document().characterCount() - 1):
        cursor.setPosition(k)
        here = editor.cursorRect(cursor)
        cursor.setPosition(k + 1)
        after = editor.cursorRect(cursor)
        cell = QtCore.QRect(QtCore.QPoint(here.left() + 1, here.top()), QtCore.QPoint(after.left(), here.bottom()))
        if after.top() == here.top() and cell.width() > 2 and viewport.rect().contains(cell):
            cells.append(cell.translated(origin).getCoords())
    return cells


def check_text_highlights(window, reference: np.ndarray, picture: np.ndarray, renderer: str) -> None:
    """Each character's highlight (its cell's median colour, which the glyph does not sway;
    most cells differ from the editor's background) is drawn whole: the same colour in the renderer's picture as in the PNG, within 40 levels,
    for all but 2% of the cells."""
    cells = character_cells(window)
    assert len(cells) > 40, "the text panel shows its lines"
    median = lambda image, x0, y0, x1, y1: np.median(image[y0:y1 + 1, x0:x1 + 1].reshape(-1, 3), axis=0)  # noqa: E731
    differ = [(cell, median(reference, *cell), median(picture, *cell)) for cell in cells]
    differ = [d for d in differ if np.abs(d[1] - d[2]).max() > 40]
    from PySide6 import QtGui

    base = window.panel("text").editor.palette().color(QtGui.QPalette.Base)
    base = np.array([base.red(), base.green(), base.blue()])
    highlighted = sum(np.abs(median(reference, *cell) - base).max() > 40 for cell in cells)
    assert highlighted > 20, ("the PNG shows highlights", highlighted)
    assert len(differ) <= 0.02 * len(cells), (renderer, len(differ), len(cells), differ[:3])


BAR_COLOURS = ((0xDC, 0x3C, 0x3C), (0x5A, 0x8C, 0xDC))  # the Current step panel's probability bars


def bar_pixels(image: np.ndarray) -> int:
    """Pixels within 30 levels of a probability bar's colour."""
    near = [(np.abs(image.astype(int) - colour).max(axis=2) <= 30) for colour in BAR_COLOURS]
    return int(np.logical_or(*near).sum())


def bar_centres(image: np.ndarray) -> np.ndarray:
    """The middle row of each run of rows of ``image`` that hold a probability bar's colour."""
    rows = np.flatnonzero(np.logical_or(*[(np.abs(image.astype(int) - colour).max(axis=2) <= 30).any(axis=1)
                                          for colour in BAR_COLOURS]))  # (n,)
    runs = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    return np.array([run.mean() for run in runs if run.size])


@pytest.mark.parametrize("renderer", RENDERERS)
def test_the_current_step_svg_draws_its_probability_bars(window, tmp_path, renderer):
    """The bars are ``<rect>``s under a scaling transform: baked into device coordinates like the
    lines (``export._thin_cosmetic_lines``), in place and as long as in the PNG."""
    window.session.seek(30)
    panel = window.panel("step")
    svg, png = tmp_path / "step.svg", tmp_path / "step.png"
    export.export_svg(panel, svg)
    export.export_png(panel, png)
    reference = read_png(png)
    h, w, _ = reference.shape
    picture = render_svg(renderer, svg, w, h, tmp_path)[:h, :w]
    drawn, expected = bar_pixels(picture), bar_pixels(reference)  # librsvg antialiases the bars' grey edges wider
    assert expected > 200 and 0.5 * expected < drawn < 1.25 * expected, (drawn, expected)
    plot = (slice(h // 10, h), slice(w // 2, w))  # the predictions plot, below the titles (one is red too)
    drawn_at, expected_at = bar_centres(picture[plot]), bar_centres(reference[plot])
    assert drawn_at.shape == expected_at.shape and np.abs(drawn_at - expected_at).max() <= 2  # in place
