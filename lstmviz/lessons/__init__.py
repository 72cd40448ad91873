"""The tutorials' lessons, live: equation inspector, cell diagram, gradient flow through time,
vanilla RNN vs LSTM, and numeric series forecasting. ``install.install_lessons`` adds them."""

from .install import Lessons, install_lessons

__all__ = ["Lessons", "install_lessons"]
