"""The analysis docks' service: hypothesis selection, feature probes, saturation,
interventions, the whole-text loss strip and the training history, and their wiring.

``AnalysisService(session, settings, hooks)`` builds the panels (``lstmviz.app``'s dock table
puts each in its dock); the strip follows the gate heatmaps' time axis
(``hooks.heatmaps()``), so both show the same steps, and cancels every running analysis job
when the window closes (``hooks.on_close``; ``lstmviz.threads.stop_all`` then waits for them).
``follow_training(controller)`` keeps training-history snapshots from a ``TrainingController``'s
``weights_updated`` relay (GUI thread).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QSettings

from .history_panel import HistoryPanel
from .hypothesis_panel import HypothesisPanel
from .intervene_panel import InterventionPanel
from .probe_panel import ProbePanel
from .saturation_panel import SaturationPanel
from .strip_panel import StripPanel


class AnalysisService(QObject):
    """The analysis panels and their wiring (see the module docstring)."""

    def __init__(self, session, settings: QSettings | None, hooks):
        super().__init__()
        self.session = session
        self.hypothesis = HypothesisPanel(session)
        self.probes = ProbePanel(session)
        self.saturation = SaturationPanel(session)
        self.interventions = InterventionPanel(session)
        self.strip = StripPanel(session)
        self.history = HistoryPanel(session)
        self.setParent(self.hypothesis)  # lives as long as the hypothesis dock
        heatmaps = hooks.heatmaps()
        if "f" in heatmaps:
            heatmaps["h"].plot.sigXRangeChanged.connect(lambda _vb, x_range: self.strip.show_steps(*x_range))
            self.interventions.follow_time_axis(heatmaps["h"].plot)
        hooks.on_close(self.shutdown)

    @property
    def panels(self) -> tuple:
        return (self.hypothesis, self.probes, self.saturation, self.interventions, self.strip)

    def follow_training(self, controller) -> None:
        """Keep a history snapshot of every model ``controller`` relays (``weights_updated``)."""
        controller.weights_updated.connect(
            lambda model, _trace: self.history.record(model, controller.trainer.corpus.vocab, controller.trainer.step))

    def shutdown(self) -> None:
        """Cancel every running analysis job."""
        for panel in self.panels:
            panel.runner.cancel()
        self.interventions.window_runner.cancel()
