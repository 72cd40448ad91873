"""Before Qt tries the xcb platform on Linux, check for a display and the X libraries it needs.

Qt's own failure message blames ``libxcb-cursor0`` whatever is actually missing; this check names
the Debian/Ubuntu packages to install instead. It is cheap: environment variables and
``ctypes.util.find_library`` (the ld cache), no Qt import.
"""

from __future__ import annotations

import ctypes.util
import os
import sys

# library soname stem (for find_library) -> Debian package that provides it (DESIGN.md §4)
XCB_LIBRARIES = {
    "EGL": "libegl1",
    "GL": "libgl1",
    "xkbcommon": "libxkbcommon0",
    "xkbcommon-x11": "libxkbcommon-x11-0",
    "fontconfig": "libfontconfig1",
    "dbus-1": "libdbus-1-3",
    "glib-2.0": "libglib2.0-0",
    "xcb-cursor": "libxcb-cursor0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-keysyms": "libxcb-keysyms1",
    "xcb-image": "libxcb-image0",
    "xcb-render-util": "libxcb-render-util0",
    "xcb-shape": "libxcb-shape0",
    "xcb-xkb": "libxcb-xkb1",
    "X11-xcb": "libx11-xcb1",
}
FONT_PACKAGE = "fonts-dejavu-core"


def needs_check(environ=os.environ, platform: str = sys.platform) -> bool:
    """True on Linux when Qt would pick xcb (QT_QPA_PLATFORM unset, empty or "xcb")."""
    return platform.startswith("linux") and environ.get("QT_QPA_PLATFORM", "") in ("", "xcb")


def missing_packages(find_library=ctypes.util.find_library) -> list:
    """Debian packages whose library is not found."""
    return [package for lib, package in XCB_LIBRARIES.items() if find_library(lib) is None]


def problem(environ=os.environ, find_library=ctypes.util.find_library) -> str | None:
    """A message explaining why the window cannot open, or None if xcb should work."""
    if not environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY"):
        return ("lstmviz: no display found (neither DISPLAY nor WAYLAND_DISPLAY is set).\n"
                "Run it inside a desktop session, or use a virtual one: xvfb-run lstmviz\n"
                "(or QT_QPA_PLATFORM=offscreen for screenshots only).")
    missing = missing_packages(find_library)
    if missing and environ.get("DISPLAY"):
        return ("lstmviz: the Qt window cannot open because these system libraries are missing.\n"
                "On Debian/Ubuntu install them with:\n"
                f"    sudo apt-get install {' '.join(missing + [FONT_PACKAGE])}\n"
                "(Qt's own message would wrongly blame only libxcb-cursor0.)")
    return None


def check_or_explain(stream=sys.stderr) -> int:
    """0 if the GUI can start (or xcb is not going to be used); else print why and return 1."""
    if not needs_check():
        return 0
    message = problem()
    if message is None:
        return 0
    print(message, file=stream)
    return 1
