"""The viewer's dock panels. Each reads the Session (and its Trace) and writes through it;
no panel reaches into the engine or into another panel."""

from .gates import GatesPanel
from .step import CurrentStepPanel
from .text import TextPanel
from .transport import TransportPanel

__all__ = ["GatesPanel", "CurrentStepPanel", "TextPanel", "TransportPanel"]
