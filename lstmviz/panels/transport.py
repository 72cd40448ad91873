"""Transport: start, back, play/pause, forward, end, a speed slider (steps/s) and a time slider.

Playback is a QTimer on the GUI thread that calls ``Session.step`` and stops at the end. Its
interval is a whole number of milliseconds, so steps follow a schedule rather than the ticks:
the timer ticks at least as often as steps are due (every ``floor(1000 / speed)`` ms, a precise
timer) and a tick steps when the schedule since play (or the last speed change) says one is due
(up to ``EARLY`` of a step ahead, for a timer firing a little early). So 60 steps/s are 60, not
the 58.8 of a 17 ms timer. A frame that took longer than a step's interval is not made up by a
burst of steps: the schedule starts again from that step.
"""

from __future__ import annotations

import time

from PySide6 import QtCore, QtGui, QtWidgets

from ..core.labels import position_label
from ..session import Session
from .icons import media_icon
from ..readout import Readout

SPEED_RANGE = (1, 60)  # steps per second
DEFAULT_SPEED = 12
EARLY = 0.1  # of a step's interval: how early a tick may take a step that is due


class TransportPanel(QtWidgets.QWidget):
    """Buttons and sliders that move the Session's cursor."""

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.clock = time.perf_counter  # seconds; the playback schedule's clock (tests replace it)
        self._started = 0.0  # clock time the schedule counts from
        self._played = 0  # steps taken since then

        colour = self.palette().color(QtGui.QPalette.ButtonText)

        def button(kind, tip, slot):
            b = QtWidgets.QToolButton()
            b.setIcon(media_icon(kind, colour))
            b.setToolTip(tip)
            b.setAutoRaise(True)
            b.clicked.connect(slot)
            layout.addWidget(b)
            return b

        self.setSizePolicy(QtWidgets.QSizePolicy.Preferred, QtWidgets.QSizePolicy.Fixed)
        self.setAutoFillBackground(True)  # opaque: a step repaints the slider and position, not the dock under them
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        self._play_icon = media_icon("play", colour)
        self._pause_icon = media_icon("pause", colour)
        button("start", "Jump to the start (Home)", self.to_start)
        button("back", "Step back one step (Left)", session.back)
        self.play_button = button("play", "Play / pause (Space)", self.toggle_play)
        button("forward", "Step forward one step (Right)", session.step)
        button("end", "Jump to the end (End)", self.to_end)

        self.slider = TimeSlider(QtCore.Qt.Horizontal)
        self.slider.setToolTip("Time: drag to move the cursor to any step")
        self.slider.valueChanged.connect(self._on_slider)
        layout.addWidget(self.slider, 1)
        self.position = Readout(reserve="before step 1 of 000000")  # changes every step: fixed width
        self.position.setToolTip("Step t of T: t characters (or values) read so far, of T in the sequence")
        layout.addWidget(self.position)

        layout.addWidget(QtWidgets.QLabel("Speed"))
        self.speed = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.speed.setRange(*SPEED_RANGE)
        self.speed.setValue(DEFAULT_SPEED)
        self.speed.setFixedWidth(110)
        self.speed.setToolTip("Playback speed in steps per second")
        self.speed.valueChanged.connect(self._on_speed)
        layout.addWidget(self.speed)
        self.speed_label = QtWidgets.QLabel()
        self.speed_label.setMinimumWidth(56)
        layout.addWidget(self.speed_label)
        self._on_speed(self.speed.value())

        session.stepped.connect(self._on_stepped)
        session.text_changed.connect(self._on_stepped)
        session.model_changed.connect(self._on_stepped)
        self._on_stepped()

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def toggle_play(self):
        if self.playing:
            self.pause()
        else:
            self.play()

    def play(self):
        s = self.session
        if not s.ready:
            return
        if s.t >= s.steps:
            s.seek(0)
        self._restart_schedule()
        self.timer.start()
        self.play_button.setIcon(self._pause_icon)

    def pause(self):
        self.timer.stop()
        self.play_button.setIcon(self._play_icon)

    def to_start(self):
        self.pause()
        self.session.seek(0)

    def to_end(self):
        self.pause()
        self.session.seek(self.session.steps)

    def set_speed(self, steps_per_s: int):
        self.speed.setValue(int(steps_per_s))

    def _restart_schedule(self):
        self._started, self._played = self.clock(), 0

    def _tick(self):
        """Take a step if one is due by the schedule (module docstring)."""
        due = (self.clock() - self._started) * self.speed.value() - self._played  # steps due now
        if due < 1 - EARLY:
            return
        if due >= 2:  # behind (a slow frame): no burst, the schedule starts again from this step
            self._restart_schedule()
        else:
            self._played += 1
        if not self.session.step():
            self.pause()

    def _on_speed(self, value: int):
        self.timer.setInterval(1000 // value)  # at least as often as steps are due
        self._restart_schedule()
        self.speed_label.setText(f"{value} /s")

    def _on_slider(self, value: int):
        if value != self.session.t:
            self.session.seek(value)

    def _on_stepped(self, *_):
        s = self.session
        blocker = QtCore.QSignalBlocker(self.slider)
        self.slider.setRange(0, s.steps)
        self.slider.setValue(s.target)
        del blocker
        self.position.setText(position_label(s.t, s.steps))


class TimeSlider(QtWidgets.QSlider):
    """A slider that repaints on a new value only when its handle moves: one step of a long
    text moves the handle by less than a pixel (``painted`` counts its paints, for tests)."""

    def __init__(self, *args):
        super().__init__(*args)
        self._handle = None  # the handle's rectangle when last painted
        self.painted = 0

    def _handle_rect(self) -> QtCore.QRect:
        option = QtWidgets.QStyleOptionSlider()
        self.initStyleOption(option)
        return self.style().subControlRect(QtWidgets.QStyle.ComplexControl.CC_Slider, option,
                                           QtWidgets.QStyle.SubControl.SC_SliderHandle, self)

    def sliderChange(self, change) -> None:  # noqa: N802 - Qt's name
        if change != self.SliderChange.SliderValueChange or self._handle_rect() != self._handle:
            super().sliderChange(change)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().paintEvent(event)
        self._handle = self._handle_rect()
        self.painted += 1
