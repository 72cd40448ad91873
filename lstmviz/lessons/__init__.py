"""The tutorials' lessons, live: equation inspector, cell diagram, gradient flow through time,
vanilla RNN vs LSTM, and numeric series forecasting. ``LessonsService`` builds and wires them
(``lstmviz.app`` docks them)."""

from .service import LessonsService

__all__ = ["LessonsService"]
