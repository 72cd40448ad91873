"""Swap the learning weights into the viewer without starving the training thread.

``Session.set_model`` swaps in the weights and, when the training thread has not already traced
the viewer's text under them, re-runs it on the GUI thread; then every panel redraws. While that
runs, the GUI holds the GIL and the training thread mostly waits. ``ViewerSync`` applies the
newest offered model at most every ``min_interval_s`` (0.25 s: <= 4 refreshes per second) and,
when refreshes are expensive, spaces them so that they take at most ``gui_share`` of the time:
after a refresh that cost ``c`` seconds, the next comes no sooner than ``c / gui_share`` (but
within ``MAX_INTERVAL_S``: a refresh that seemed to cost seconds because something else held the
event loop must not stop the viewer for minutes). The cost counts the repaint the swap causes,
not only the swap (the repaint is usually the larger part): it runs until the last turn below.

A refresh is cut into event-loop turns so that no single turn keeps the window busy for long:
the swap, then the paint events it posted, then the visible ``paint_later`` widgets (the gate
heatmap views and the current-step plots), one per turn: their updates are switched off during
the swap and switched back on, and repainted (``QWidget.repaint``), one at a time. Each turn is
started by a zero-interval timer: other timers due in the meantime (``bench/ui_latency.py``'s
tick) run between the turns. (A chain of posted events does not let them in: each pass
delivers the scene updates and repaints the previous one caused, so the timers wait for most of
the chain, measured at 167 ms at a run's start.) In total this costs more than painting everything at once
(each turn repaints and flushes the window), but no turn is long; ``bench/ui_latency.py``
measures the event-loop stalls while training.
``swap(change)`` does the same for another change of the viewer (a run's untrained model).

Models offered in between replace each other (only the newest is applied); ``flush()``
applies the pending one at once (used for a run's final weights and a pause's). With ``live``
off, offered models are only kept until ``flush()`` (the "Live heatmaps" check box of the
training panel). A refresh the rate limit applies (live, during training) starts no first pass
over the text beyond what the training thread traced (``Session.set_model``'s ``first_pass``):
restarted on every swap it would never end on a long text; ``flush()`` runs it.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Slot

MIN_INTERVAL_S = 0.25  # at most four refreshes per second
MAX_INTERVAL_S = 2.0  # and at least one every two seconds while models keep coming
GUI_SHARE = 0.05  # refreshes (swap and repaint) may use at most this share of the GUI thread's time


class ViewerSync(QObject):
    """Rate-limited ``session.set_model`` (see the module docstring)."""

    def __init__(self, session, parent: QObject | None = None, min_interval_s: float = MIN_INTERVAL_S,
                 gui_share: float = GUI_SHARE, paint_later: tuple = ()):
        super().__init__(parent)
        self.session = session
        self.paint_later = tuple(paint_later)  # widgets repainted in later event-loop turns, one each
        self.live = True  # False: offered models wait for flush()
        self.min_interval_s = min_interval_s
        self.gui_share = gui_share
        self.last_cost_s = 0.0  # duration of the last refresh, seconds
        self._pending = None  # (model, vocab, trace or None) waiting to be applied
        self._next_allowed = 0.0  # time.monotonic() before which no refresh starts
        self._started = None  # time.monotonic() when the refresh being painted started, else None
        self._rate_limited = True  # the refresh being painted spaces the next one by its cost
        self._unpainted = []  # paint_later widgets still to repaint, one per event-loop turn
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._refresh_live)
        self._turn = QTimer(self)  # starts the next turn of a refresh's repaint
        self._turn.setSingleShot(True)
        self._turn.setInterval(0)
        self._turn.timeout.connect(self._paint_next)

    @property
    def painting(self) -> bool:
        """True from a swap until its repaint is done (see the module docstring)."""
        return self._started is not None

    def offer(self, model, vocab, trace=None) -> None:
        """Show ``model`` (with ``vocab``; ``trace``: the viewer's trace under it, or None) in the
        viewer as soon as the rate limit allows."""
        self._pending = (model, vocab, trace)
        self._schedule()

    def _schedule(self) -> None:
        if not self.live or self._timer.isActive() or self.painting:  # held, due, or still painting
            return
        delay = max(0.0, self._next_allowed - time.monotonic())
        self._timer.start(int(round(delay * 1000)))

    @Slot()
    def flush(self) -> None:
        """Apply the pending model now (nothing if none is pending), with a first pass."""
        self._apply(first_pass=True)

    @Slot()
    def _refresh_live(self) -> None:
        """Apply the pending model when the rate limit allows it, without a first pass."""
        self._apply(first_pass=False)

    def _apply(self, first_pass: bool) -> None:
        """Apply the pending model (``Session.set_model``'s ``first_pass``)."""
        self._timer.stop()
        if self._pending is None:
            return
        model, vocab, trace = self._pending
        self._pending = None
        self.swap(lambda: self.session.set_model(model, vocab, trace, first_pass=first_pass))

    def swap(self, change, rate_limited: bool = True) -> None:
        """Run ``change()`` (it swaps a model or a text into the session) with the
        ``paint_later`` widgets' updates off, then repaint them one per event-loop turn (the
        module docstring). ``rate_limited``: the swap's cost spaces the next live refresh (False
        for a one-off swap, e.g. a run's untrained model: the next comes after
        ``min_interval_s``)."""
        for widget in self.paint_later:
            widget.setUpdatesEnabled(False)
        self._unpainted = list(self.paint_later)  # a refresh still being painted starts over
        chain = self._started is None  # else the chain of turns below is already under way
        if chain:
            self._started = time.monotonic()
            self._rate_limited = rate_limited
        try:
            change()
        finally:  # even if the swap failed, the heatmaps repaint and the refresh is settled
            if chain:
                self._turn.start()

    def _paint_next(self) -> None:
        """One visible ``paint_later`` widget repaints per event-loop turn (hidden ones are
        switched back on at once: they paint when shown); then the refresh is done."""
        while self._unpainted:
            widget = self._unpainted.pop(0)
            widget.setUpdatesEnabled(True)
            if widget.isVisible():
                widget.repaint()
                self._turn.start()
                return
        finished = time.monotonic()
        self.last_cost_s = finished - self._started
        self._started = None
        spacing = self.min_interval_s
        if self._rate_limited:
            spacing = min(max(spacing, self.last_cost_s / self.gui_share), MAX_INTERVAL_S)
        self._next_allowed = finished + spacing
        if self._pending is not None:
            self._schedule()
