"""RefreshWhenShown: costly panels skip updates while hidden and catch up when shown.

During training the weights change a few times per second; a panel behind another tab (or
closed) that rebuilt its HTML, drawing or gradient norms each time would stall the GUI thread
for nothing. Connect changes to ``refresh_soon``: it calls ``refresh`` at once when the panel is
on screen, and otherwise marks the panel stale; ``catch_up`` (called from ``showEvent`` and by
the dock when its tab comes to the front) then refreshes it. A dock behind another tab still
reports ``isVisible()``; its empty ``visibleRegion()`` is what says it is not on screen.
"""

from __future__ import annotations


class RefreshWhenShown:
    """Mixin for a QWidget subclass with a ``refresh()`` method (list it before the Qt class)."""

    _stale = False  # a change arrived while hidden

    def on_screen(self) -> bool:
        return self.isVisible() and not self.visibleRegion().isEmpty()

    def refresh_soon(self, *_args) -> None:
        if self.on_screen():
            self.refresh()
        else:
            self._stale = True

    def catch_up(self, *_args) -> None:
        """Refresh now if a change arrived while hidden."""
        if self._stale:
            self._stale = False
            self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.catch_up()
