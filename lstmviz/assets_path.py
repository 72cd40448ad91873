"""Where the bundled assets (demo model and text, icons) are: Qt-free, so any module may ask."""

from __future__ import annotations

import importlib.resources
from pathlib import Path


def asset_path(name: str) -> Path | None:
    """A bundled asset: from the installed ``lstmviz.assets`` package, else the source tree's
    ``assets/`` folder; None if it is in neither."""
    try:
        candidate = importlib.resources.files("lstmviz.assets") / name
        if candidate.is_file():
            return Path(str(candidate))
    except ModuleNotFoundError:
        pass
    candidate = Path(__file__).resolve().parent.parent / "assets" / name
    return candidate if candidate.is_file() else None
