""""What am I looking at?": a short guided tour of the window for a first-time learner.

``Tour(window)`` is a non-modal dialog of a few pages; each page brings the panels it talks
about to the front (``WindowHooks.raise_panel``) and, on the demo, selects what it points at
(unit 50 of layer 0, which tracks bracket depth). It opens on the first start (``show_first_time``
remembers that in the settings) and from Help > What am I looking at?.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6 import QtCore, QtWidgets

from .app import DEMO_UNIT, TOUR_SEEN_KEY


@dataclass(frozen=True)
class Page:
    title: str
    text: str  # rich text
    panels: tuple = ()  # docks brought to the front
    select_demo_unit: bool = False


PAGES = (
    Page("What am I looking at?",
         "<p>An <b>LSTM</b> (a recurrent neural network with a memory cell) reads the text at the top, "
         "one character per <b>step</b>, and tries to predict the next character. Every panel shows "
         "what happens inside it at the step the transport at the bottom is on.</p>"
         "<p>The demo model was trained on a small made-up language with quotes and nested "
         "brackets. This tour takes a minute; Help &gt; What am I looking at? brings it back.</p>"),
    Page("The gates and their colours",
         "<p><b>Gate heatmaps</b>: one row per hidden unit, one column per step. Each unit has four "
         "gates: <b>f</b> (forget: keep the old memory), <b>i</b> (input: write something new), "
         "<b>g</b> (candidate: what to write) and <b>o</b> (output: how much to show); <b>c</b> is "
         "the cell's memory and <b>h</b> what it shows the next layer.</p>"
         "<p>f, i, o run from 0 (dark: closed) to 1 (yellow: open); g, c and h are signed: "
         "blue is negative, red positive, white near 0. Hover a cell to read its value.</p>",
         panels=("gates",)),
    Page("Unit 50 counts brackets",
         "<p>The demo selects <b>unit 50</b> of layer 0 (the red line). Its cell state "
         "<b>c</b> rises at every opening bracket and falls at every closing one: it has "
         "learned to count how deep inside brackets the text is, which the model needs to "
         "close them correctly.</p>"
         "<p>The text at the top is coloured by this unit's hidden state: watch the colour "
         "change inside brackets.</p>",
         panels=("gates", "text"), select_demo_unit=True),
    Page("Stepping",
         "<p>The <b>Transport</b> moves through the text: → and ← step one character, "
         "Home goes back to the start, Play runs on its own. \"step 150 of 562\" means 150 "
         "characters have been read; every panel names the same step.</p>"
         "<p><b>Current step</b> shows all units' gates at that step as coloured strips, and "
         "the model's guesses for the next character.</p>",
         panels=("transport", "step")),
    Page("The equations",
         "<p><b>Equations</b> writes out the selected unit's update at this step with every "
         "number filled in: each gate's input part + recurrent part + bias, through its "
         "activation, then c<sub>t</sub> = f·c<sub>t-1</sub> + i·g and h<sub>t</sub> = "
         "o·tanh(c<sub>t</sub>). Click a cell in a heatmap to inspect another unit or step.</p>"
         "<p>Next: train your own model (Training tab), or read Help &gt; User guide.</p>",
         panels=("equations",)),
)


class Tour(QtWidgets.QDialog):
    """The tour's dialog over ``window`` (see the module docstring); ``page`` is the shown index."""

    def __init__(self, window):
        super().__init__(window)
        self.window_ = window
        self.setWindowTitle("What am I looking at?")
        self.setModal(False)
        self.title = QtWidgets.QLabel()
        self.title.setStyleSheet("font-weight: bold; font-size: 13pt")
        self.body = QtWidgets.QLabel()
        self.body.setWordWrap(True)
        self.body.setTextFormat(QtCore.Qt.RichText)
        self.body.setAlignment(QtCore.Qt.AlignTop | QtCore.Qt.AlignLeft)
        self.counter = QtWidgets.QLabel()
        self.back_button = QtWidgets.QPushButton("Back")
        self.next_button = QtWidgets.QPushButton("Next")
        self.close_button = QtWidgets.QPushButton("Close")
        self.back_button.clicked.connect(lambda: self.show_page(self.page - 1))
        self.next_button.clicked.connect(lambda: self.show_page(self.page + 1))
        self.close_button.clicked.connect(self.close)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.counter)
        buttons.addStretch(1)
        for button in (self.back_button, self.next_button, self.close_button):
            buttons.addWidget(button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.body, 1)
        layout.addLayout(buttons)
        self.setMinimumSize(420, 240)
        window.hooks.on_close(self.close)
        self.page = 0
        self.show_page(0)

    def show_page(self, index: int) -> None:
        """Show page ``index`` (clamped to the pages), bring its panels forward and select the
        demo unit where the page talks about it."""
        self.page = max(0, min(index, len(PAGES) - 1))
        page = PAGES[self.page]
        self.title.setText(page.title)
        self.body.setText(page.text)
        self.counter.setText(f"{self.page + 1} of {len(PAGES)}")
        self.back_button.setEnabled(self.page > 0)
        self.next_button.setEnabled(self.page < len(PAGES) - 1)
        for name in page.panels:
            if name in self.window_.docks:
                self.window_.hooks.raise_panel(name)
        session = self.window_.session
        layer, unit = DEMO_UNIT
        if page.select_demo_unit and session.ready and layer < session.num_layers and unit < session.hidden_size:
            session.select(layer, unit, -1)


def show_tour(window) -> Tour:
    """Open (or bring back) the tour of ``window`` at its first page."""
    tour = window.findChild(Tour)
    if tour is None:
        tour = Tour(window)
    tour.show_page(0)
    tour.show()
    tour.raise_()
    return tour


def show_first_time(window, settings) -> Tour | None:
    """Open the tour if ``settings`` say it has never been shown, and remember that it has."""
    if settings.value(TOUR_SEEN_KEY, False, type=bool):
        return None
    settings.setValue(TOUR_SEEN_KEY, True)
    return show_tour(window)
