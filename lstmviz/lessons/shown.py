"""RefreshWhenShown: costly panels skip updates while hidden and catch up when shown.

During training the weights change a few times per second; a panel behind another tab (or
closed) that rebuilt its HTML, drawing or gradient norms each time would stall the GUI thread
for nothing. Connect changes to ``refresh_soon``: it calls ``refresh`` at once when the panel is
visible, and otherwise marks the panel stale so that ``showEvent`` refreshes it.
"""

from __future__ import annotations


class RefreshWhenShown:
    """Mixin for a QWidget subclass with a ``refresh()`` method (list it before the Qt class)."""

    _stale = False  # a change arrived while hidden

    def refresh_soon(self, *_args) -> None:
        if self.isVisible():
            self.refresh()
        else:
            self._stale = True

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self.refresh()
