"""Qt-free logic of the viewer: what is being stepped (``sequence``), colour levels
(``levels``), loss histories (``history``) and the lessons' training recipes (``recipes``).

Nothing in this package imports PySide6 or pyqtgraph, so it is tested without a window.
"""
