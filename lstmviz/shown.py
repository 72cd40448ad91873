"""RefreshWhenShown: costly panels skip updates while hidden and catch up when shown.

During training the weights change a few times per second; a panel behind another tab (or
closed) that rebuilt its HTML, drawing or gradient norms each time would stall the GUI thread
for nothing. Connect changes to ``refresh_soon``: it calls ``refresh`` at once when the panel is
on screen, and otherwise marks the panel stale; ``catch_up`` (called from ``showEvent``, and by
the dock when its tab comes to the front: ``MainWindow`` connects every dock's
``visibilityChanged`` to its panel's ``catch_up``) then refreshes it. A dock behind another tab
still reports ``isVisible()`` and receives a ``showEvent`` when the window is shown; its empty
``visibleRegion()`` (looked at again once the layout has settled) is what says it is not on
screen, so it stays stale until its tab comes to the front.
"""

from __future__ import annotations

from PySide6 import QtCore


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

    def catch_up(self, visible: bool = True) -> None:
        """Refresh now if a change arrived while hidden (``visible``: the dock's
        ``visibilityChanged`` argument; nothing happens when it goes out of sight, e.g. while
        the window closes)."""
        if self._stale and visible:
            self._stale = False
            self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.on_screen():
            self.catch_up()
        else:  # a dock being shown may not be laid out yet: look again once it is
            QtCore.QTimer.singleShot(0, self, self._catch_up_if_on_screen)

    def _catch_up_if_on_screen(self) -> None:
        if self.on_screen():
            self.catch_up()
