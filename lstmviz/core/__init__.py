"""Qt-free logic of the viewer: what is being stepped (``sequence``), colour levels
(``levels``), loss histories (``history``), the lessons' training recipes (``recipes``) and the
published training recipes offered as presets (``presets``).

Nothing in this package imports PySide6 or pyqtgraph, so it is tested without a window.
"""
