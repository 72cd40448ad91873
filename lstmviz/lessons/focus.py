"""Which (layer, unit, step) the lesson panels explain.

The unit and layer are the session's selection. The step follows the cursor (the step just
taken, ``t - 1``) until the user clicks a heatmap cell, which pins that cell's step; the next
step, back or seek follows the cursor again. One ``LessonFocus`` is shared by the equation
inspector and the cell diagram so both always show the same numbers.
"""

from __future__ import annotations

from PySide6 import QtCore


class LessonFocus(QtCore.QObject):
    """Tracks the explained position; emits ``changed`` whenever it (or the trace) may have changed."""

    changed = QtCore.Signal()

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self._pinned: int | None = None  # a clicked step, or None: follow the cursor
        session.selection_changed.connect(self._on_selection)
        session.stepped.connect(self._on_stepped)
        session.model_changed.connect(self.changed)
        session.colormap_changed.connect(self.changed)
        session.levels_changed.connect(self.changed)

    def position(self) -> tuple | None:
        """``(layer, unit, step)`` to explain, or None (no model, no unit selected, or no step taken)."""
        s = self.session
        if not s.ready or s.unit < 0 or s.t == 0:
            return None
        step = self._pinned if self._pinned is not None and self._pinned < s.t else s.t - 1
        return s.layer, s.unit, step

    def _on_selection(self, layer: int, unit: int, step: int) -> None:
        self._pinned = step if step >= 0 else None
        self.changed.emit()

    def _on_stepped(self, _t: int) -> None:
        self._pinned = None
        self.changed.emit()
