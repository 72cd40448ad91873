"""lstmviz: step a NumPy LSTM one timestep at a time and watch every gate, live.

The desktop app (PySide6 + pyqtgraph) and the command line (``lstmviz.cli``). Importing this
package imports no Qt: only the viewer's modules do, when the GUI starts. From Python:
``lstmviz.trace(model, text, vocab=...)`` (gates as NumPy, no Qt) and
``lstmviz.show(model, text=..., vocab=...)`` (the viewer window; see ``lstmviz.notebook``),
both loaded on first use.
"""

__version__ = "0.1.0"
__all__ = ["show", "trace"]


def __getattr__(name: str):
    """``show`` and ``trace`` from ``lstmviz.notebook``, imported on first use (PEP 562)."""
    if name in __all__:
        from . import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'lstmviz' has no attribute {name!r}")
