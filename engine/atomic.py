"""Atomic file writes: every file the project writes goes through here.

The data is written to a temporary file in the destination's folder (same file system, so the
final ``os.replace`` is atomic), flushed and fsync'ed, then moved over the destination. On any
exception the temporary file is removed, the destination is left exactly as it was, and the
original exception propagates unchanged (turning it into a friendly message is the caller's job).
"""

from __future__ import annotations

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_writer(path, mode: str = "wb"):
    """Context manager yielding a file object open on a temp file next to ``path``.

    ``mode`` is ``"wb"`` (bytes) or ``"w"`` (text, UTF-8, ``\\n`` newlines). When the block
    exits normally the file is flushed, fsync'ed and renamed over ``path``; when it raises, the
    temp file is deleted and ``path`` is untouched.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        if mode == "wb":
            f = os.fdopen(fd, "wb")
        else:
            f = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _keep_mode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_umask() -> int:
    """The process umask, read once at import (``os.umask`` can only be read by setting it,
    which is not thread-safe, so it must not happen while a worker thread may create files)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK = _read_umask()


def _keep_mode(path: str, tmp: str) -> None:
    """Give the temp file the permissions a normally created file would get (mkstemp uses 0600):
    the existing file's mode if there is one, else 0666 minus the umask."""
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    os.chmod(tmp, mode)


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see module docstring)."""
    with atomic_writer(path, "wb") as f:
        f.write(data)
