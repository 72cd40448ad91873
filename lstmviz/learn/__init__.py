"""Training and sampling inside the app: data, model, training, loss and sampling docks, and the
worker-thread controller that trains while the gate heatmaps follow the learning weights.
Entry point: ``install_learning_panels(main_window, session, settings)``."""

from .install import LearningPanels, install_learning_panels

__all__ = ["LearningPanels", "install_learning_panels"]
