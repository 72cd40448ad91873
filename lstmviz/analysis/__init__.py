"""The unit-analysis docks: hypothesis selection, feature probes, saturation, interventions,
the whole-text loss strip and training history (engine: ``engine.analysis``), built and wired by
``AnalysisService``."""

from .service import AnalysisService

__all__ = ["AnalysisService"]
