"""Import contracts and the single-owner rules, checked on the source (AST, no imports run).

* A panel bundle (``lstmviz/panels``, ``lstmviz/learn``, ``lstmviz/lessons``) imports no module
  of another bundle; what bundles share lives outside them (``lstmviz/readout.py``,
  ``lstmviz/shown.py``, ``lstmviz/training.py``, ``lstmviz/forms.py``, ``lstmviz/core/`` ...).
* Qt-free code (``engine/``, ``lstmviz/core/``) imports neither PySide6 nor pyqtgraph, and the
  engine never imports ``lstmviz``.
* ``moveToThread`` appears in exactly one module of ``lstmviz/`` (``lstmviz/threads.py``), and
  no module reaches into the window with ``hasattr(window`` or ``getattr(self.window``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLES = ("lstmviz.panels", "lstmviz.learn", "lstmviz.lessons", "lstmviz.analysis")
QT = ("PySide6", "pyqtgraph", "shiboken6")
QT_FREE = ("engine", "lstmviz.core")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path) -> list[str]:
    """Every module ``path`` imports (relative imports resolved; ``from a import b`` gives
    ``a.b`` as well as ``a``, since ``b`` may be a module)."""
    name = module_name(path, root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.append(base)
            found += [f"{base}.{alias.name}" for alias in node.names]
    return found


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(root: Path) -> list[str]:
    """Every broken import contract under ``root`` (the folder holding ``engine``/``lstmviz``)."""
    found = []
    for path in sorted(root.glob("*/**/*.py")):
        if not (_within(module_name(path, root), "engine") or _within(module_name(path, root), "lstmviz")):
            continue
        name = module_name(path, root)
        bundle = next((b for b in BUNDLES if _within(name, b)), None)
        for target in imports(path, root):
            if bundle and any(_within(target, b) for b in BUNDLES if b != bundle):
                found.append(f"{name} imports {target} (another panel bundle)")
            if any(_within(name, q) for q in QT_FREE) and any(_within(target, q) for q in QT):
                found.append(f"{name} imports {target} (Qt in Qt-free code)")
            if _within(name, "engine") and _within(target, "lstmviz"):
                found.append(f"{name} imports {target} (the engine imports lstmviz)")
    return sorted(set(found))


def test_import_contracts_hold():
    assert violations(ROOT) == []


def test_the_checker_flags_each_kind_of_violation(tmp_path):
    files = {
        "engine/__init__.py": "", "engine/bad.py": "import pyqtgraph\nfrom lstmviz import app\n",
        "lstmviz/__init__.py": "", "lstmviz/core/__init__.py": "", "lstmviz/core/bad.py": "from PySide6 import QtCore\n",
        "lstmviz/panels/__init__.py": "", "lstmviz/panels/gates.py": "",
        "lstmviz/readout.py": "",
        "lstmviz/learn/__init__.py": "", "lstmviz/learn/bad.py": "from ..panels.gates import GatesPanel\n",
        "lstmviz/lessons/__init__.py": "", "lstmviz/lessons/good.py": "from ..readout import Readout\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    assert violations(tmp_path) == [
        "engine.bad imports lstmviz (the engine imports lstmviz)",
        "engine.bad imports lstmviz.app (the engine imports lstmviz)",
        "engine.bad imports pyqtgraph (Qt in Qt-free code)",
        "lstmviz.core.bad imports PySide6 (Qt in Qt-free code)",
        "lstmviz.core.bad imports PySide6.QtCore (Qt in Qt-free code)",
        "lstmviz.learn.bad imports lstmviz.panels.gates (another panel bundle)",
        "lstmviz.learn.bad imports lstmviz.panels.gates.GatesPanel (another panel bundle)",
    ]


def _sources_with(text: str) -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "lstmviz").rglob("*.py")
                  if text in p.read_text(encoding="utf-8"))


def test_move_to_thread_lives_in_one_module():
    assert _sources_with("moveToThread") == ["lstmviz/threads.py"]


def test_nothing_reaches_into_the_window():
    assert _sources_with("hasattr(window") == []
    assert _sources_with("getattr(self.window") == []
