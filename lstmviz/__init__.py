"""lstmviz: step a NumPy LSTM one timestep at a time and watch every gate, live.

The desktop app (PySide6 + pyqtgraph) and the command line (``lstmviz.cli``). Importing this
package imports no Qt: only the viewer's modules do, when the GUI starts.
"""

__version__ = "0.1.0"
