"""A closed and deleted main window frees what it built: no widget of it outlives it, and no
Python object of its panels stays reachable (a notebook or test process opens many windows)."""

import gc
import weakref

from PySide6 import QtCore, QtWidgets

from .conftest import make_window


def widget_count(app) -> int:
    """How many widgets exist, counted with the garbage collector off (a collection while
    ``allWidgets()`` is turned into Python objects could delete a widget still in its list)."""
    gc.disable()
    try:
        return len(app.allWidgets())
    finally:
        gc.enable()


def test_a_deleted_window_leaves_no_widgets_and_no_panels_behind(qtbot, settings_path, model_path, text_path):
    app = QtWidgets.QApplication.instance()
    gc.collect()
    widgets_before = widget_count(app)
    window = make_window(settings_path)
    window.session.load_model(model_path)
    window.session.load_text(text_path)
    window.show()
    qtbot.waitExposed(window)
    built = widget_count(app) - widgets_before
    assert built > 100  # every dock, plot and menu of the window
    session = weakref.ref(window.session)
    gates = weakref.ref(window.panel("gates"))
    views = [weakref.ref(view) for view in window.panel("gates").views.values()]
    assert len(views) > len(window.session.names)  # views of quantities this model does not have
    window.close()
    window.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)
    del window
    gc.collect()

    assert widget_count(app) == widgets_before
    assert session() is None and gates() is None
    assert all(view() is None for view in views)
