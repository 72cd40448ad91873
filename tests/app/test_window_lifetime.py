"""A closed and deleted main window frees what it built: no widget of it outlives it, and no
Python object of its panels stays reachable (a notebook or test process opens many windows)."""

import gc
import weakref

from PySide6 import QtCore, QtWidgets

from .conftest import make_window


def test_a_deleted_window_leaves_no_widgets_and_no_panels_behind(qtbot, settings_path, model_path, text_path):
    app = QtWidgets.QApplication.instance()
    gc.collect()
    widgets_before = len(app.allWidgets())
    window = make_window(settings_path)
    window.session.load_model(model_path)
    window.session.load_text(text_path)
    window.show()
    qtbot.waitExposed(window)
    built = len(app.allWidgets()) - widgets_before
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

    assert len(app.allWidgets()) == widgets_before
    assert session() is None and gates() is None
    assert all(view() is None for view in views)
