"""A closed and deleted main window frees what it built: no widget of it outlives it, and no
Python object of its panels stays reachable (a notebook or test process opens many windows)."""

import gc
import weakref

import pytest
import shiboken6
from PySide6 import QtCore, QtWidgets

from .conftest import make_window


def widget_count(app) -> int:
    """How many widgets exist, counted with the garbage collector off (a collection while
    ``allWidgets()`` is turned into Python objects could delete a widget still in its list);
    the collector's automatic runs are left as they were."""
    automatic = gc.isenabled()
    gc.disable()
    try:
        return len(app.allWidgets())
    finally:
        if automatic:
            gc.enable()


def close_and_delete(window) -> None:
    window.close()
    window.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)


@pytest.fixture
def open_window(qtbot, settings_path, model_path, text_path):
    """Builds and shows a window on the model and text; held only by weak references here (the
    test's own reference is the one whose deletion is tested), the windows still alive are
    closed and deleted after the test."""
    opened = []

    def build():
        window = make_window(settings_path)
        window.session.load_model(model_path)
        window.session.load_text(text_path)
        with qtbot.waitExposed(window):
            window.show()
        opened.append(weakref.ref(window))
        return window

    yield build
    for ref in opened:
        window = ref()
        if window is not None and shiboken6.isValid(window):
            close_and_delete(window)


def test_a_deleted_window_leaves_no_widgets_and_no_panels_behind(open_window):
    app = QtWidgets.QApplication.instance()
    gc.collect()
    widgets_before = widget_count(app)
    window = open_window()
    built = widget_count(app) - widgets_before
    assert built > 100  # every dock, plot and menu of the window
    session = weakref.ref(window.session)
    gates = weakref.ref(window.panel("gates"))
    views = [weakref.ref(view) for view in window.panel("gates").views.values()]
    assert len(views) > len(window.session.names)  # views of quantities this model does not have
    close_and_delete(window)
    del window
    gc.collect()

    assert widget_count(app) == widgets_before
    assert session() is None and gates() is None
    assert all(view() is None for view in views)
