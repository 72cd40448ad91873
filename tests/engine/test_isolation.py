"""The engine never imports Qt, pyqtgraph or the GUI package (checked in a fresh interpreter,
over every engine module found on disk, so new modules are covered automatically)."""

import subprocess
import sys
from pathlib import Path

import pytest

FORBIDDEN = ("PySide6", "shiboken6", "pyqtgraph", "lstmviz")

PROBE = f"""
import importlib, pkgutil, sys
import engine
names = ["engine"] + [m.name for m in pkgutil.walk_packages(engine.__path__, "engine.")]
for name in names:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r})
print(",".join(names))
print(",".join(loaded))
"""


@pytest.mark.slow  # a subprocess
def test_engine_imports_no_gui_modules():
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    names, loaded = done.stdout.splitlines()
    on_disk = {p.stem for p in (root / "engine").glob("*.py") if p.stem != "__init__"}
    assert {f"engine.{n}" for n in on_disk} <= set(names.split(",")), "pkgutil missed an engine module"
    assert loaded == "", f"engine imported GUI modules: {loaded}"
