"""Reference-count canary for the installed PySide6 build (DESIGN.md §5).

PySide6-Essentials 6.12.0 on Python < 3.12 drops one reference to ``True`` on every Python-side
``Signal.emit(True)`` and one to ``None`` on every void slot call; after enough emits the
interpreter frees a singleton and aborts. 100,000 emits of a bug like that would move the counts
by 100,000, so a tolerance of +-50 cleanly separates it from the harmless noise of the test
itself (references the interpreter, pytest and Qt take or release to True/None meanwhile: a
handful). On Python 3.12+ these singletons are immortal and their refcount is a fixed sentinel,
so the check still passes there (and cannot see the bug, which is masked by immortality anyway).
"""

import sys

from PySide6.QtCore import QObject, Signal, Slot

EMITS = 100_000
TOLERANCE = 50


class Emitter(QObject):
    flag = Signal(bool)


class Receiver(QObject):
    def __init__(self):
        super().__init__()
        self.calls = 0
        self.trues = 0

    @Slot(bool)
    def on_flag(self, value):
        self.calls += 1
        self.trues += value is True


def test_signal_emits_keep_true_and_none_refcounts(qapp):
    emitter, receiver = Emitter(), Receiver()
    emitter.flag.connect(receiver.on_flag)
    emit = emitter.flag.emit
    true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(EMITS):
        emit(True)
    true_after, none_after = sys.getrefcount(True), sys.getrefcount(None)
    assert receiver.calls == EMITS and receiver.trues == EMITS  # direct connection: all delivered
    assert abs(true_after - true_before) <= TOLERANCE, (true_before, true_after)
    assert abs(none_after - none_before) <= TOLERANCE, (none_before, none_after)
