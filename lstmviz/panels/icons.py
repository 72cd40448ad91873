"""Transport icons drawn with QPainter in the palette's text colour (the style's stock media
icons render greyed out on the dark palette)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui

ICON_SIZE = 32  # pixels; Qt scales it to the button

# Each icon: triangles (3 points) and bars (x, width), in a 32 x 32 box, y from 8 to 24.
_SHAPES = {
    "start": {"bars": [(7, 3)], "triangles": [((24, 8), (24, 24), (11, 16))]},
    "back": {"bars": [(22, 3)], "triangles": [((19, 8), (19, 24), (7, 16))]},
    "play": {"bars": [], "triangles": [((10, 7), (10, 25), (25, 16))]},
    "pause": {"bars": [(9, 5), (18, 5)], "triangles": []},
    "forward": {"bars": [(7, 3)], "triangles": [((13, 8), (13, 24), (25, 16))]},
    "end": {"bars": [(22, 3)], "triangles": [((8, 8), (8, 24), (21, 16))]},
}


def media_icon(kind: str, colour: QtGui.QColor) -> QtGui.QIcon:
    """A transport icon ("start", "back", "play", "pause", "forward", "end") in ``colour``."""
    shape = _SHAPES[kind]
    pixmap = QtGui.QPixmap(ICON_SIZE, ICON_SIZE)
    pixmap.fill(QtCore.Qt.transparent)
    painter = QtGui.QPainter(pixmap)
    try:
        painter.setRenderHint(QtGui.QPainter.Antialiasing)
        painter.setPen(QtCore.Qt.NoPen)
        painter.setBrush(colour)
        for x, width in shape["bars"]:
            painter.drawRect(QtCore.QRectF(x, 8, width, 16))
        for triangle in shape["triangles"]:
            painter.drawPolygon(QtGui.QPolygonF([QtCore.QPointF(x, y) for x, y in triangle]))
    finally:
        painter.end()
    return QtGui.QIcon(pixmap)
