"""Atomic file writes: every file the project writes goes through here.

The data is written to a temporary file ``.<name>.<8 random characters>.tmp`` in the
destination's folder (same file system, so the final ``os.replace`` is atomic), flushed and
fsync'ed, then moved over the destination. On any exception the temporary file is removed and
the destination is left exactly as it was. An ``OSError`` of the file system (full disk,
read-only folder, permission denied) is raised as ``FileWriteError`` naming the file the caller
asked for, never the hidden temporary file; any other exception propagates unchanged.

While a save runs its temporary file is locked (``flock``); a save that starts removes the
unlocked temporary files of earlier saves of the same file that were killed before cleaning up.
``check_writable`` lets a command refuse an unusable destination before doing any work.
A destination that is a symbolic link is written through: the link stays, and the file it
points to receives the data (its temporary file sits next to that file). Only a regular file is ever replaced: an existing destination that is a folder, device, named
pipe or socket (``check_target``) is refused, before the data is written and again just before
the rename, so that ``--out /dev/full`` can never turn a device node into a file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import time

from .errors import FileWriteError
from .safe_read import format_size, kind_of

try:
    import fcntl
except ImportError:  # not on Windows: stale temporary files are then only removed by age
    fcntl = None

STALE_AGE_S = 5.0  # an unlocked temporary file older than this belongs to a killed save
STALE_AGE_UNLOCKED_S = 3600.0  # without flock: only files this old are taken as stale
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


def write_error(path: str, e: OSError) -> FileWriteError:
    """``e`` (from writing ``path`` or its temporary file) as a message naming ``path``."""
    if e.errno in _DISK_FULL:
        return FileWriteError(path, f"the disk is full ({e.strerror}); free some space or choose another folder",
                              e.errno)
    folder = os.path.dirname(os.path.abspath(path))
    if e.errno == errno.ENOENT and not os.path.isdir(folder):
        return FileWriteError(path, f"folder {folder} does not exist", e.errno)
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return FileWriteError(path, f"{e.strerror} (folder {folder}); choose another folder", e.errno)
    if e.errno == errno.EISDIR or os.path.isdir(path):
        return FileWriteError(path, "it is a folder; give a file name", e.errno)
    return FileWriteError(path, str(e.strerror or e), e.errno)


def _temp_pattern(path: str) -> re.Pattern:
    """The names ``tempfile.mkstemp`` gives the temporary files of ``path`` (``atomic_writer``)."""
    return re.compile(re.escape("." + os.path.basename(path) + ".") + r"[a-z0-9_]{8}" + re.escape(".tmp"))


def remove_stale_temps(path) -> list:
    """Remove the temporary files of earlier saves of ``path`` that were killed before they
    could clean up: those matching ``_temp_pattern`` that no running save holds locked and
    that were not modified in the last STALE_AGE_S seconds. Returns the removed paths."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    pattern = _temp_pattern(path)
    removed = []
    try:
        names = [n for n in os.listdir(folder) if pattern.fullmatch(n)]
    except OSError:
        return removed
    now = time.time()
    for n in names:
        tmp = os.path.join(folder, n)
        with contextlib.suppress(OSError):
            age = now - os.lstat(tmp).st_mtime
            if fcntl is None:
                if age > STALE_AGE_UNLOCKED_S:
                    os.unlink(tmp)
                    removed.append(tmp)
                continue
            if age <= STALE_AGE_S:
                continue
            fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while a save holds it
                os.unlink(tmp)
                removed.append(tmp)
            finally:
                os.close(fd)
    return removed


def check_target(path) -> None:
    """Raise ``FileWriteError`` (naming ``path``) unless ``path`` does not exist or is a regular
    file (by ``os.stat``, so a link is judged by what it points to): an existing folder, device,
    named pipe (FIFO) or socket is never replaced by the saved file."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except OSError:  # absent (or not reachable: the write itself then says why)
        return
    kind = kind_of(mode)
    if kind == "a folder":
        raise FileWriteError(path, "it is a folder; give a file name", errno.EISDIR)
    if kind is not None:
        raise FileWriteError(path, f"it is {kind}, not a regular file; choose a file path", errno.EINVAL)


def check_writable(path, size: int = 0) -> None:
    """Raise ``FileWriteError`` (naming ``path``) unless a file of about ``size`` bytes can be
    saved at ``path`` now: ``path`` is absent or a regular file (``check_target``), its folder
    exists and accepts a new file (tested by creating and removing a temporary file there, which
    also catches read-only file systems), and the disk has ``size`` bytes free for an
    unprivileged user (``statvfs``)."""
    path = os.fspath(path)
    check_target(path)
    folder = os.path.dirname(os.path.realpath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    except OSError as e:
        raise write_error(path, e) from None
    os.close(fd)
    os.unlink(tmp)
    if size > 0 and hasattr(os, "statvfs"):
        disk = os.statvfs(folder)
        free = disk.f_bavail * disk.f_frsize
        if free < size:
            raise FileWriteError(path, f"the disk is full (it needs about {format_size(size)}, {format_size(free)} "
                                       "are free); free some space or choose another folder", errno.ENOSPC)


def check_folder_writable(folder) -> None:
    """Raise ``FileWriteError`` (naming ``folder``) unless files can be saved in ``folder``:
    it is a folder that accepts a new file, or it does not exist yet and its nearest existing
    parent is a folder that accepts one (so it can be created). Nothing is created."""
    folder = os.path.abspath(os.fspath(folder))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    action = "write into" if existing == folder else "create"
    if not os.path.isdir(existing):
        kind = kind_of(os.stat(existing).st_mode) or "a file"
        raise FileWriteError(folder, f"{existing} is {kind}, not a folder", errno.ENOTDIR, action=f"{action} folder")
    try:
        fd, tmp = tempfile.mkstemp(dir=existing, prefix=".lstmviz-probe.", suffix=".tmp")
    except OSError as e:
        raise FileWriteError(folder, f"{e.strerror} (in {existing}); choose another folder", e.errno,
                             action=f"{action} folder") from None
    os.close(fd)
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_writer(path, mode: str = "wb"):
    """Context manager yielding a file object open on a temp file next to ``path``.

    ``mode`` is ``"wb"`` (bytes) or ``"w"`` (text, UTF-8, ``\\n`` newlines). When the block
    exits normally the file is flushed, fsync'ed and renamed over ``path``; when it raises, the
    temp file is deleted and ``path`` is untouched. File-system errors are raised as
    ``FileWriteError`` naming ``path`` (see the module docstring); so is an existing ``path``
    that is not a regular file (``check_target``), before the block runs and before the rename.
    A symbolic link ``path`` is written through: the file it points to is replaced, the link kept.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    check_target(path)
    target = os.path.realpath(path)  # the file a link points to: the link itself is kept
    folder = os.path.dirname(target)
    remove_stale_temps(target)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(target) + ".", suffix=".tmp")
    except OSError as e:
        raise write_error(path, e) from None
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # marks the temp file as in use (remove_stale_temps)
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
            check_target(path)  # it may have been created while the block ran
            _keep_mode(target, tmp)
            os.replace(tmp, target)  # before the lock is released with the file's closing
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if e.filename not in (None, tmp, path, target) or isinstance(e, FileWriteError):
            raise  # another file's problem (e.g. one the block reads): not ours to rename
        raise write_error(path, e) from None
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
