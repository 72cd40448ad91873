"""Training and sampling inside the app: data, model, training, loss and sampling panels, the
worker-thread controller that trains while the gate heatmaps follow the learning weights, and
``LearningService``, which builds and wires them (``lstmviz.app`` docks them)."""

from .service import LearningService

__all__ = ["LearningService"]
