"""Readouts: labels that change many times a second must not make the main window lay out
all its docks again on every change (what a plain QLabel does)."""

import pytest
from PySide6 import QtCore, QtWidgets

from lstmviz.readout import Readout

TEXTS = [f"{k * 1.37:.1f} steps/s — elapsed 0:{k:02d}" for k in range(12)]


class LayoutRequests(QtCore.QObject):
    """Counts the LayoutRequest events a widget receives."""

    def __init__(self, widget):
        super().__init__()
        self.count = 0
        widget.installEventFilter(self)

    def eventFilter(self, _watched, event):
        if event.type() == QtCore.QEvent.LayoutRequest:
            self.count += 1
        return False


def settle() -> None:
    """Deliver posted events until none are left (a layout request climbs one level per pass)."""
    for _ in range(10):
        QtWidgets.QApplication.sendPostedEvents()
        QtWidgets.QApplication.processEvents()


def requests_while_showing(window, label, texts) -> int:
    """LayoutRequests at the main window while ``label`` shows ``texts`` one by one."""
    widest = max(texts, key=len)
    label.setText(widest + "  ")  # a readout is then wide enough for all of them
    settle()
    counter = LayoutRequests(window)
    for text in texts:
        label.setText(text)
        settle()
    window.removeEventFilter(counter)
    return counter.count


def test_readouts_in_the_window_do_not_relayout_it_but_a_plain_label_does(window):
    plain = QtWidgets.QLabel()
    window.panel("transport").layout().addWidget(plain)
    assert requests_while_showing(window, plain, TEXTS) > 0  # what the readouts avoid
    for readout in (window.panel("transport").position, window.position_label):
        assert isinstance(readout, Readout)
        assert requests_while_showing(window, readout, TEXTS) == 0


def test_a_readout_grows_to_fit_its_text_and_never_shrinks(qtbot):
    readout = Readout("short")
    qtbot.addWidget(readout)
    short_width = readout.width()
    assert readout.minimumSize() == readout.maximumSize() == readout.sizeHint()
    readout.setText("a much longer text than before")
    wide = readout.size()
    assert wide.width() > short_width
    assert wide.width() >= readout.sizeHint().width()
    readout.setText("short")
    assert readout.size() == wide and readout.minimumSize() == readout.maximumSize() == wide


def test_a_readout_refits_when_its_font_grows(qtbot):
    readout = Readout("12.3 steps/s")
    qtbot.addWidget(readout)
    before = readout.width()
    font = readout.font()
    font.setPointSizeF(font.pointSizeF() * 2)
    readout.setFont(font)
    assert readout.width() > before
    assert readout.width() >= readout.sizeHint().width()


class MeasuredReadout(Readout):
    """A readout that counts how often its text is measured as laid out (``sizeHint``)."""

    measured = 0

    def sizeHint(self):  # noqa: N802 - Qt's name
        self.measured += 1
        return super().sizeHint()


def test_a_readout_with_room_shows_new_rich_texts_without_laying_them_out_to_measure(qtbot):
    """Stepping shows a new rich title each time: once the readout is as wide as they need,
    it neither measures them nor changes size; a text needing more room is measured and fits."""
    readout = MeasuredReadout("step 999999: <b>W</b> &nbsp; layer 0")
    qtbot.addWidget(readout)
    readout.show()
    size = readout.size()
    assert size.width() >= QtWidgets.QLabel(readout.text()).sizeHint().width()
    readout.measured = 0
    for step, char in enumerate("abcdefgh"):
        readout.setText(f"step {1000 + step}: <b>{char}</b> &nbsp; layer 0")
    assert readout.measured == 0 and readout.size() == size
    readout.setText("step 1000: <b>a</b> &nbsp; layer 0 <big>big</big>")  # other markup: measured
    assert readout.measured == 1
    longer = "step 1000000000: <b style='color:#dc3c3c'>W</b> &nbsp; layer 0"
    readout.setText(longer)
    assert readout.width() > size.width()
    assert readout.width() >= QtWidgets.QLabel(longer).sizeHint().width()  # it fits as laid out


ROOMY = "i" * 30 + "W" * 10 + "iii"  # the unstyled text below, and some room to spare


@pytest.mark.parametrize("style", ["font-size:24pt", "font-weight:bold", "font-family:monospace",
                                   "color:#dc3c3c; font-size:24pt"])
def test_a_span_styled_to_widen_its_text_is_measured_and_fits(qtbot, style):
    """A span setting a font's size, weight or family is not estimated in the label's font (it
    would be clipped): the readout measures it and grows to fit it as laid out."""
    readout = MeasuredReadout(ROOMY)
    qtbot.addWidget(readout)
    readout.show()
    styled = f"<span style='{style}'>{'i' * 30 + 'W' * 10}</span>"
    needed = QtWidgets.QLabel(styled).sizeHint().width()
    assert needed > readout.width()  # the styled text needs more room than the readout has
    readout.measured = 0
    readout.setText(styled)
    assert readout.measured >= 1
    assert readout.width() >= needed


@pytest.mark.parametrize("markup", ["<span>{}</span>", "<span style='color:#dc3c3c'>{}</span>",
                                    "<span style=\"color: red; background-color: #102030;\">{}</span>"])
def test_a_bare_or_colour_only_span_is_shown_without_measuring(qtbot, markup):
    readout = MeasuredReadout(ROOMY)
    qtbot.addWidget(readout)
    readout.show()
    size = readout.size()
    readout.measured = 0
    readout.setText(markup.format("i" * 30 + "W" * 10))
    assert readout.measured == 0 and readout.size() == size
