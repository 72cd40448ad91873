"""Help > User guide: the guide that ships with the app (``assets/guide.md``, also
``docs/guide.md``), rendered as Markdown in a non-modal window; its pictures are looked up
next to it."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from .assets_path import asset_path

GUIDE = "guide.md"


class GuideWindow(QtWidgets.QDialog):
    """The user guide in a ``QTextBrowser`` (``browser``); a note if the file is missing."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("lstmviz user guide")
        self.browser = QtWidgets.QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        path = asset_path(GUIDE)
        if path is None:
            self.browser.setPlainText("The user guide is missing from this installation; see docs/guide.md "
                                      "in the source repository.")
        else:
            self.browser.setSearchPaths([str(path.parent)])
            self.browser.setMarkdown(path.read_text(encoding="utf-8"))
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.browser)
        self.resize(760, 640)


def show_guide(parent) -> GuideWindow:
    """Open (or bring back) the guide window of ``parent``."""
    guide = parent.findChild(GuideWindow)
    if guide is None:
        guide = GuideWindow(parent)
    guide.show()
    guide.raise_()
    guide.setWindowState(guide.windowState() & ~QtCore.Qt.WindowMinimized)
    return guide
