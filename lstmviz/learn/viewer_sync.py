"""Swap the learning weights into the viewer without starving the training thread.

``Session.set_model`` re-runs the viewer's text up to the current step on the GUI thread; while
it runs, the GUI holds the GIL and the training thread mostly waits. ``ViewerSync`` applies the
newest offered model at most every ``min_interval_s`` (0.25 s: <= 4 refreshes per second) and,
when refreshes are expensive, spaces them so that they take at most ``gui_share`` of the time:
after a refresh that cost ``c`` seconds, the next comes no sooner than ``c / gui_share``.
Models offered in between replace each other (only the newest is applied); ``flush()``
applies the pending one at once (used for a run's final weights).
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Slot

MIN_INTERVAL_S = 0.25  # at most four refreshes per second
GUI_SHARE = 0.05  # refreshes may use at most this share of the GUI thread's time


class ViewerSync(QObject):
    """Rate-limited ``session.set_model`` (see the module docstring)."""

    def __init__(self, session, parent: QObject | None = None, min_interval_s: float = MIN_INTERVAL_S,
                 gui_share: float = GUI_SHARE):
        super().__init__(parent)
        self.session = session
        self.min_interval_s = min_interval_s
        self.gui_share = gui_share
        self.last_cost_s = 0.0  # duration of the last refresh, seconds
        self._pending = None  # (model, vocab) waiting to be applied
        self._next_allowed = 0.0  # time.monotonic() before which no refresh starts
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.flush)

    def offer(self, model, vocab) -> None:
        """Show ``model`` (with ``vocab``) in the viewer as soon as the rate limit allows."""
        self._pending = (model, vocab)
        if not self._timer.isActive():
            delay = max(0.0, self._next_allowed - time.monotonic())
            self._timer.start(int(round(delay * 1000)))

    @Slot()
    def flush(self) -> None:
        """Apply the pending model now (nothing if none is pending)."""
        self._timer.stop()
        if self._pending is None:
            return
        model, vocab = self._pending
        self._pending = None
        started = time.monotonic()
        self.session.set_model(model, vocab)
        finished = time.monotonic()
        self.last_cost_s = finished - started
        self._next_allowed = finished + max(self.min_interval_s, self.last_cost_s / self.gui_share)
