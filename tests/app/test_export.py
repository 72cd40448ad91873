"""lstmviz.export: PNG/SVG pictures of gate panels, CSV/NPZ data, atomic writes and their errors.

Expected values come from the engine (``model.trace``), Qt's own image/XML readers, or are
written out by hand; never from the export module itself.
"""

from __future__ import annotations

import base64
import csv
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from engine.checkpoint import save_checkpoint
from engine.data import CharVocab
from engine.model import ModelConfig, SequenceModel
from lstmviz import export
from lstmviz.plots import HeatmapView

SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
TEXT = 'the cat sat, "on" the mat\\ \nthe dog\tran away.\n'  # comma, quotes, backslash, newline, tab


def make_char_model(text: str = TEXT, cell: str = "lstm", layers: int = 2, hidden: int = 10,
                    dtype: str = "float32", seed: int = 0):
    """A small untrained character model and its vocabulary."""
    vocab = CharVocab.from_text(text)
    config = ModelConfig(input_size=len(vocab), output_size=len(vocab), cell=cell, hidden_size=hidden,
                         num_layers=layers, dtype=dtype)
    return SequenceModel(config, rng=np.random.default_rng(seed)), vocab


@pytest.fixture(scope="module")
def model_vocab():
    return make_char_model()


@pytest.fixture(scope="module")
def trace(model_vocab):
    model, vocab = model_vocab
    return model.trace(vocab.encode(TEXT), text=TEXT)


@pytest.fixture
def checkpoint(tmp_path, model_vocab):
    """The fixture model saved as a checkpoint: ``(path, model, vocab)``."""
    model, vocab = model_vocab
    path = tmp_path / "model.npz"
    save_checkpoint(path, model, vocab=vocab)
    return path, model, vocab


def read_image(path) -> QtGui.QImage:
    image = QtGui.QImage(os.fspath(path))
    assert not image.isNull(), f"{path} is not a readable image"
    return image


def distinct_colours(image: QtGui.QImage) -> int:
    image = image.convertToFormat(QtGui.QImage.Format_RGB32)
    pixels = np.frombuffer(image.constBits(), np.uint32, image.width() * image.height())  # (W*H,)
    return len(np.unique(pixels))


# --- PNG ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [300, 800, 1900])
def test_panel_png_has_requested_width_and_real_content(qapp, tmp_path, trace, width):
    path = tmp_path / "f.png"
    export.export_panel_image(path, trace, "f", 1, "png", width)
    image = read_image(path)
    figure = export.build_panel_figure(trace, "f", 1, width=export.figure_width_for(width))
    layout = figure.viewport().size()
    figure.close()
    assert image.width() == width
    assert image.height() == round(layout.height() * width / layout.width())  # height by aspect
    assert distinct_colours(image) > 100  # a heatmap, text and axes, not a flat fill


def test_png_of_a_widget_defaults_to_its_logical_size(qapp, tmp_path, trace):
    figure = export.build_panel_figure(trace, "h", 0, width=520)
    try:
        size = figure.viewport().size()
        export.export_png(figure, tmp_path / "h.png")
        export.export_png(figure, tmp_path / "h2.png", width_px=2 * size.width())
    finally:
        figure.close()
    image = read_image(tmp_path / "h.png")
    assert (image.width(), image.height()) == (520, size.height())
    double = read_image(tmp_path / "h2.png")
    assert (double.width(), double.height()) == (1040, 2 * size.height())


def test_png_heatmap_cells_are_not_smoothed(qapp, tmp_path, trace):
    """Scaled up 4x, the figure still shows only colours of the 256-entry LUT inside the image
    area (nearest neighbour), and the number of colours there stays at most T*H."""
    figure = export.build_panel_figure(trace, "f", 0, width=600)
    try:
        vb_rect = figure.plot.vb.sceneBoundingRect()  # the heatmap area, logical pixels
        export.export_png(figure, tmp_path / "f.png", width_px=2400)
    finally:
        figure.close()
    image = read_image(tmp_path / "f.png")
    inner = vb_rect.adjusted(10, 10, -10, -10)
    crop = image.copy(QtCore.QRect(round(inner.x() * 4), round(inner.y() * 4),
                                   round(inner.width() * 4), round(inner.height() * 4)))
    T, H = trace.gate("f", 0).shape
    assert distinct_colours(crop) <= T * H


# --- SVG ----------------------------------------------------------------------------------------
def heatmap_images(root: ET.Element, T: int, H: int) -> list:
    return [e for e in root.iter(f"{SVG}image") if (e.get("width"), e.get("height")) == (str(T), str(H))]


def test_panel_svg_is_valid_xml_with_size_viewbox_and_one_crisp_image(qapp, tmp_path, trace):
    figure = export.build_panel_figure(trace, "c", 1, width=700)
    try:
        size = figure.viewport().size()
        dpi = figure.logicalDpiX()
        export.export_svg(figure, tmp_path / "c.svg")
    finally:
        figure.close()
    root = ET.parse(tmp_path / "c.svg").getroot()
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox").split() == ["0", "0", str(size.width()), str(size.height())]
    for attribute, pixels in (("width", size.width()), ("height", size.height())):
        value = root.get(attribute)
        assert value.endswith("mm")
        assert float(value[:-2]) == pytest.approx(pixels / dpi * 25.4, rel=1e-3)
    T, H = trace.gate("c", 1).shape
    images = heatmap_images(root, T, H)
    assert len(images) == 1
    for element in root.iter(f"{SVG}image"):
        assert "image-rendering:pixelated" in element.get("style", "")
    # Embedded at native resolution: one pixel per (step, unit).
    href = images[0].get(XLINK_HREF)
    assert href.startswith("data:image/png;base64,")
    embedded = QtGui.QImage.fromData(base64.b64decode(href.split(",", 1)[1]))
    assert (embedded.width(), embedded.height()) == (T, H)
    assert distinct_colours(embedded) > 10


def test_svg_of_a_window_embeds_one_image_per_heatmap(qapp, tmp_path, trace):
    window = QtWidgets.QWidget()
    window.setAttribute(QtCore.Qt.WA_DontShowOnScreen)
    layout = QtWidgets.QHBoxLayout(window)
    for name in ("i", "g", "h"):
        view = HeatmapView(name)
        view.set_data(trace.gate(name, 0))
        layout.addWidget(view)
    window.resize(900, 300)
    window.show()
    qapp.processEvents()
    try:
        export.export_svg(window, tmp_path / "window.svg")
        export.export_png(window, tmp_path / "window.png", width_px=450)
    finally:
        window.close()
    root = ET.parse(tmp_path / "window.svg").getroot()
    assert root.get("viewBox") == "0 0 900 300"
    T, H = trace.gate("i", 0).shape
    assert len(heatmap_images(root, T, H)) == 3
    image = read_image(tmp_path / "window.png")
    assert (image.width(), image.height()) == (450, 150)
    assert distinct_colours(image) > 100


def test_pixelated_style_is_merged_into_an_existing_style():
    svg = b'<svg><image x="0" style="opacity:1" width="2"/><image width="3"/></svg>'
    fixed = export._pixelated_images(svg)
    root = ET.fromstring(fixed)
    styles = [e.get("style") for e in root.iter("image")]
    assert styles == ["image-rendering:pixelated;opacity:1", "image-rendering:pixelated"]


# --- CSV ----------------------------------------------------------------------------------------
def test_gate_csv_holds_the_engines_values_and_characters(tmp_path, model_vocab):
    model, vocab = model_vocab
    reference = model.trace(vocab.encode(TEXT), text=TEXT)
    path = tmp_path / "layer1_c.csv"
    export.export_gate_csv(path, reference, "c", 1)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    H = model.config.hidden_size
    assert rows[0] == ["step", "char"] + [f"unit{k}" for k in range(H)]
    body = rows[1:]
    assert [int(r[0]) for r in body] == list(range(len(TEXT)))
    escapes = {"\n": "\\n", "\t": "\\t", "\\": "\\\\"}
    assert [r[1] for r in body] == [escapes.get(ch, ch) for ch in TEXT]
    values = np.array([[float(x) for x in r[2:]] for r in body])  # (T, H)
    expected = reference.gate("c", 1)  # (T, H)
    assert np.array_equal(values.astype(np.float32), expected)  # every float32 round-trips exactly


def test_gate_csv_keeps_float64_precision(tmp_path):
    model, vocab = make_char_model(dtype="float64", layers=1)
    reference = model.trace(vocab.encode(TEXT), text=TEXT)
    export.export_gate_csv(tmp_path / "h.csv", reference, "h", 0)
    with open(tmp_path / "h.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    values = np.array([[float(x) for x in r[2:]] for r in rows])  # (T, H)
    assert np.array_equal(values, reference.gate("h", 0))


def test_gate_csv_is_written_in_pieces_whose_memory_follows_the_piece(tmp_path, model_vocab, monkeypatch):
    """The CSV reaches the atomic writer in pieces of at most ``CSV_CHUNK_ROWS`` steps (the
    header with the first), the same bytes as the file written whole; writing a text four times
    longer takes no more memory beyond the longer trace itself (``tracemalloc``: counted bytes)."""
    import contextlib
    import tracemalloc

    model, vocab = model_vocab
    text = TEXT * 4
    reference = model.trace(vocab.encode(text), text=text)
    monkeypatch.setattr(export, "CSV_CHUNK_ROWS", 50)
    writes, writer = [], export.atomic_writer

    @contextlib.contextmanager
    def counted(path, mode):
        with writer(path, mode) as f:
            write = f.write
            f.write = lambda piece: writes.append(piece.count("\n")) or write(piece)
            yield f

    monkeypatch.setattr(export, "atomic_writer", counted)
    export.export_gate_csv(tmp_path / "pieces.csv", reference, "c", 0)
    T = len(text)
    assert writes == [51] + [50] * ((T - 50) // 50) + ([T % 50] if T % 50 else [])
    monkeypatch.setattr(export, "atomic_writer", writer)
    monkeypatch.setattr(export, "CSV_CHUNK_ROWS", T)
    export.export_gate_csv(tmp_path / "whole.csv", reference, "c", 0)
    assert (tmp_path / "pieces.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()

    monkeypatch.setattr(export, "CSV_CHUNK_ROWS", 64)
    peaks = []
    for n in (1, 4):
        trace = model.trace(vocab.encode(text * n), text=text * n)
        tracemalloc.start()
        export.export_gate_csv(tmp_path / f"x{n}.csv", trace, "c", 0)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0]  # the whole text's CSV would take about 4 times as much


def test_escape_char_spells_out_invisible_characters():
    assert [export.escape_char(c) for c in ("a", "é", " ", ",", "\n", "\r", "\t", "\\", "\x00", "\u2028")] == [
        "a", "é", " ", ",", "\\n", "\\r", "\\t", "\\\\", "\\x00", "\\u2028"]


# --- NPZ ----------------------------------------------------------------------------------------
def test_trace_npz_holds_every_layer_and_gate(tmp_path, model_vocab):
    model, vocab = model_vocab
    reference = model.trace(vocab.encode(TEXT), text=TEXT)
    path = tmp_path / "trace.npz"
    export.export_trace_npz(path, reference, vocab)
    with np.load(path, allow_pickle=False) as npz:  # layout: engine/trace_io.py
        stored = {k: npz[k] for k in npz.files}
    for layer in range(model.config.num_layers):
        for name in ("i", "f", "g", "o", "c", "h"):
            array = stored[f"layer{layer}_{name}"]
            assert array.dtype == np.float32
            assert np.array_equal(array, reference.gate(name, layer)), f"layer {layer} {name}"
    assert "".join(stored["chars"]) == TEXT
    assert tuple(stored["vocab"]) == vocab.chars


# --- errors and atomicity -----------------------------------------------------------------------
def writers(trace, vocab):
    return {
        "png": lambda p: export.export_panel_image(p, trace, "f", 0, "png", 200),
        "svg": lambda p: export.export_panel_image(p, trace, "f", 0, "svg"),
        "csv": lambda p: export.export_gate_csv(p, trace, "f", 0),
        "npz": lambda p: export.export_trace_npz(p, trace, vocab),
    }


@pytest.mark.parametrize("fmt", ["png", "svg", "csv", "npz"])
def test_writing_under_a_file_raises_export_error_and_leaves_nothing(qapp, tmp_path, trace, model_vocab, fmt):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("I am a file")
    target = blocker / f"out.{fmt}"
    with pytest.raises(export.ExportError) as info:
        writers(trace, model_vocab[1])[fmt](target)
    message = str(info.value)
    assert str(target) in message and "\n" not in message
    assert isinstance(info.value, OSError)
    assert sorted(os.listdir(tmp_path)) == ["not_a_folder"]
    assert blocker.read_text() == "I am a file"


@pytest.mark.parametrize("fmt", ["png", "csv", "npz"])
def test_failed_replace_removes_the_temp_file(qapp, tmp_path, trace, model_vocab, fmt):
    """The final rename fails (the target is a folder): the temp file must not be left behind."""
    target = tmp_path / f"out.{fmt}"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(export.ExportError, match="cannot write"):
        writers(trace, model_vocab[1])[fmt](target)
    assert sorted(os.listdir(tmp_path)) == [f"out.{fmt}"]
    assert os.listdir(target) == ["keep"]


def test_bad_arguments_are_value_errors(qapp, tmp_path, trace):
    with pytest.raises(ValueError, match="between 16 and 20000"):
        export.check_width(15)
    with pytest.raises(ValueError, match="between 16 and 20000"):
        export.export_panel_image(tmp_path / "x.png", trace, "f", 0, "png", 20001)
    with pytest.raises(ValueError, match="layer"):
        export.build_panel_figure(trace, "f", 5)
    with pytest.raises(ValueError, match="'z'"):
        export.export_gate_csv(tmp_path / "x.csv", trace, "z", 0)
    with pytest.raises(ValueError, match="unknown colormap 'jet'"):
        export.resolve_colormap("jet")
    assert os.listdir(tmp_path) == []


def test_resolve_colormap():
    assert export.resolve_colormap(None) == (False, None)
    assert export.resolve_colormap("colorblind") == (True, None)
    colorblind, cmap = export.resolve_colormap("inferno")
    assert not colorblind and cmap.name == "inferno"


def test_custom_colormap_is_used(qapp, tmp_path, trace):
    """The same panel in two different maps gives different pictures; 'colorblind' differs too."""
    for name, colormap, colorblind in (("default", None, False), ("cb", None, True),
                                       ("gray", export.resolve_colormap("CET-L1")[1], False)):
        export.export_panel_image(tmp_path / f"{name}.png", trace, "f", 0, "png", 400,
                                  colorblind=colorblind, colormap=colormap)
    images = [read_image(tmp_path / f"{n}.png") for n in ("default", "cb", "gray")]
    assert images[0] != images[1] and images[0] != images[2] and images[1] != images[2]


def test_svg_of_a_zoomed_figure_clips_the_heatmap_to_its_frame(qapp, tmp_path, trace):
    """Zoomed in, the image extends beyond the plot: the SVG must clip it like the screen does."""
    figure = export.build_panel_figure(trace, "f", 0, width=600)
    try:
        figure.plot.setXRange(10, 20, padding=0)
        export.export_svg(figure, tmp_path / "zoom.svg")
    finally:
        figure.close()
    root = ET.parse(tmp_path / "zoom.svg").getroot()
    T, H = trace.gate("f", 0).shape
    parents = {child: parent for parent in root.iter() for child in parent}
    (image,) = heatmap_images(root, T, H)
    ancestors = []
    node = image
    while node in parents:
        node = parents[node]
        ancestors.append(node)
    assert any(a.get("clip-path", "").startswith("url(#") for a in ancestors)


def test_texts_in_a_widgets_own_font_get_qts_width(qapp):
    """A widget's text keeps Qt's width in browsers (``textLength``); other text is left alone."""
    font = QtGui.QFont("DejaVu Sans Mono")
    font.setPointSizeF(11.0)
    px = 11.0 * 96 / 72
    svg = (f'<text x="4" y="17" font-family="monospace" font-size="{px:.4f}" >a &amp; b</text>'
           '<text x="4" y="40" font-size="9" >other</text>').encode()
    fitted = export._fit_text_lengths(svg, font, 96).decode()
    width = QtGui.QFontMetricsF(font).horizontalAdvance("a & b")
    assert f'textLength="{width:.2f}" lengthAdjust="spacing">a &amp; b</text>' in fitted
    assert '<text x="4" y="40" font-size="9" >other</text>' in fitted
