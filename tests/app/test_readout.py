"""Readouts: labels that change many times a second must not make the main window lay out
all its docks again on every change (what a plain QLabel does)."""

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


def test_a_readout_with_a_rich_reserve_shows_new_rich_texts_without_laying_them_out_to_measure(qtbot):
    """Stepping shows a new rich title each time: a readout sized by a rich reserve neither
    measures them nor changes size; it is as large as the reserve laid out in a plain label."""
    reserve = "step 999999: <b>WW</b> &nbsp; layer 9"
    readout = MeasuredReadout("step 1: <b>a</b> &nbsp; layer 0", reserve=reserve)
    qtbot.addWidget(readout)
    readout.show()
    size = readout.size()
    assert size == QtWidgets.QLabel(reserve).sizeHint()
    readout.measured = 0
    for step, char in enumerate("abcdefgh"):
        readout.setText(f"step {1000 + step}: <b>{char}</b> &nbsp; layer 0")
    assert readout.measured == 0 and readout.size() == size
    assert readout.text() == "step 1007: <b>h</b> &nbsp; layer 0"


def test_a_new_reserve_resizes_the_readout_and_none_lets_it_grow(qtbot):
    readout = Readout("<b>x</b>", reserve="<b>W</b>")
    qtbot.addWidget(readout)
    narrow = readout.width()
    readout.set_reserve("<b>WWWWWWWWWW</b>")
    assert readout.width() > narrow
    readout.set_reserve(None)
    wide = "a much longer text than any reserve so far"
    readout.setText(wide)
    assert readout.width() >= QtWidgets.QLabel(wide).sizeHint().width()
