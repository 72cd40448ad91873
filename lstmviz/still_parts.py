"""Pixmap caches for the still parts of the plots, and renders for export that do without them.

A pyqtgraph item paints through Python, and PySide keeps the GIL for the whole of that paint,
so every repaint of a plot's axes (tick labels replayed from a ``QPicture``), titles and legend
stalls the training thread. These parts change far less often than the image or curves beside
them, yet their bounding boxes overlap the data area, so they are repainted with it.
``cache_still_parts`` gives them Qt's ``DeviceCoordinateCache``: Qt keeps each as a pixmap in
device pixels (exact on HiDPI screens too) and blits it in C++, calling Python again only after
the item itself calls ``update()`` (new range, new size, new levels). Measured: a refresh of
the viewer while training (swap and repaint, ``ViewerSync.last_cost_s``) fell from a median of
46-51 ms to 39-42 ms; ``bench/gui_frame.py``'s window paint from 67.8 to 64.4 ms.

Exports must not reuse those pixmaps: a PNG at another width would scale them and an SVG would
hold bitmaps instead of text. ``uncached(widget)`` switches every cache in a widget's graphics
views off for the duration of a render and restores it after.
"""

from __future__ import annotations

from contextlib import contextmanager

import pyqtgraph as pg
from pyqtgraph.graphicsItems.LegendItem import ItemSample
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGraphicsItem, QGraphicsView, QGraphicsWidget, QWidget

STILL_PARTS = (pg.AxisItem, pg.LabelItem, pg.LegendItem, ItemSample)  # axes, titles, legends


def cache_still_parts(view: QGraphicsView) -> None:
    """Cache every axis, title, legend and legend sample now in ``view``'s scene, and mark the
    items that draw nothing themselves as having no contents: pyqtgraph's layouts, plot items
    and colour bars (Python ``QGraphicsWidget`` subclasses keeping Qt's empty ``paint``) and
    view boxes without a border. On every repaint Qt asks each item with contents for its
    bounding rectangle, a call into Python, to find out whether it intersects what is exposed,
    and paints those that do."""
    for item in view.scene().items():
        if isinstance(item, STILL_PARTS):
            item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        elif _draws_nothing(item):
            item.setFlag(QGraphicsItem.ItemHasNoContents, True)


def _draws_nothing(item: QGraphicsItem) -> bool:
    """A Python ``QGraphicsWidget`` that keeps Qt's empty ``paint``, or a view box without a
    border (pyqtgraph's ``ViewBox.paint`` only strokes its border; its background is a child)."""
    if isinstance(item, pg.ViewBox):
        return item.border is None or item.border.style() == Qt.PenStyle.NoPen
    return isinstance(item, QGraphicsWidget) and type(item).paint is QGraphicsWidget.paint


def _graphics_views(widget: QWidget) -> list:
    views = widget.findChildren(QGraphicsView)
    return [widget, *views] if isinstance(widget, QGraphicsView) else views


@contextmanager
def uncached(widget: QWidget):
    """Within this block, every item in ``widget``'s graphics views paints itself (no cache)."""
    switched = []  # (item, its cache mode)
    for view in _graphics_views(widget):
        if view.scene() is None:
            continue
        for item in view.scene().items():
            mode = item.cacheMode()
            if mode != QGraphicsItem.NoCache:
                item.setCacheMode(QGraphicsItem.NoCache)
                switched.append((item, mode))
    try:
        yield
    finally:
        for item, mode in switched:
            item.setCacheMode(mode)
