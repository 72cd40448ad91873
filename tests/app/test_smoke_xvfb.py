"""Real-window smoke test: `python -m lstmviz` under Xvfb with the xcb platform, screenshot, quit."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_display() -> int:
    for n in range(90, 200):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    pytest.skip("no free X display number")


@pytest.mark.slow  # a subprocess
@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_app_opens_a_real_window_and_quits_cleanly(tmp_path):
    from PySide6 import QtGui

    n = free_display()
    xvfb = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{n}").exists():
            assert xvfb.poll() is None, "Xvfb exited"
            assert time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)  # waiting for an external process's socket, not for a thread
        shot = tmp_path / "window.png"
        env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "DISPLAY": f":{n}", "HOME": str(tmp_path),
               "XDG_CONFIG_HOME": str(tmp_path / "config"), "PYTHONPATH": str(ROOT),
               "LSTMVIZ_SMOKE_SCREENSHOT": str(shot), "LSTMVIZ_SMOKE_QUIT_AFTER_MS": "1500"}
        env.pop("WAYLAND_DISPLAY", None)
        result = subprocess.run([sys.executable, "-m", "lstmviz"], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    assert "QThread" not in result.stderr and "Destroyed while thread" not in result.stderr
    assert shot.is_file()
    image = QtGui.QImage(str(shot)).convertToFormat(QtGui.QImage.Format_RGB32)
    assert image.width() > 600 and image.height() > 400
    pixels = np.frombuffer(image.constBits(), np.uint32, image.width() * image.height())
    assert len(np.unique(pixels)) > 50, "screenshot looks blank"
