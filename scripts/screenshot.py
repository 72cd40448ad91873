"""Render the demo offscreen to docs/screenshot.png (the README's picture).

    python scripts/screenshot.py [--out docs/screenshot.png] [--step 150] [--layer 0 --unit N]

Opens the bundled demo exactly as ``lstmviz`` does, steps ``--step`` characters in, selects the
demo's quote-tracking unit (or ``--unit``) and grabs the whole window.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6 import QtCore, QtWidgets  # noqa: E402

from lstmviz import app as lstmviz_app  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    parser.add_argument("--step", type=int, default=lstmviz_app.DEMO_START_STEP)
    parser.add_argument("--layer", type=int, default=lstmviz_app.DEMO_UNIT[0])
    parser.add_argument("--unit", type=int, default=lstmviz_app.DEMO_UNIT[1])
    parser.add_argument("--size", default="1500x940", help="window size WxH")
    args = parser.parse_args(argv)

    qt = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    qt.setStyle("Fusion")
    qt.setPalette(lstmviz_app.dark_palette())
    with tempfile.TemporaryDirectory() as folder:
        settings = QtCore.QSettings(str(Path(folder) / "shot.ini"), QtCore.QSettings.IniFormat)
        window = lstmviz_app.build_window(settings=settings)
        if not window.session.ready:
            print("the demo model is missing (assets/demo.npz)", file=sys.stderr)
            return 1
        width, height = (int(v) for v in args.size.split("x"))
        window.resize(width, height)
        window.show()
        window.session.seek(min(args.step, window.session.steps))
        window.session.select(args.layer, args.unit, -1)
        for _ in range(5):
            qt.processEvents()
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(args.out):
            print(f"could not write {args.out}", file=sys.stderr)
            return 1
        window.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
