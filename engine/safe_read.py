"""Reading untrusted files: every file the program reads goes through here.

``open_regular`` opens a path with ``O_NONBLOCK`` (so a FIFO never blocks the open), then checks
with ``fstat`` on the open descriptor (no race with a swapped path) that it is a regular file of
at most ``max_bytes``; folders, FIFOs, devices and sockets are refused with one line naming the
file. ``read_bytes`` reads such a file whole, never more than the bound.

``read_npz`` reads chosen members of a ``.npz`` (zip) archive without trusting it: the zip
directory is read first; each member must be a ``.npy`` entry (not a plain zip member) whose
declared uncompressed size is within the limits *before* any of its data is decompressed; its
``.npy`` header must describe a plain dtype (no objects, no pickles) whose shape accounts for
exactly the declared size. Members not asked for are never read, so an unused member of
gigabytes of zeros costs nothing.

Every refusal raises the ``error`` class the caller passes (``DataError`` by default): a
``ValueError`` whose message is one line naming the file and the cause.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import zipfile

import numpy as np

from .errors import DataError

NPY_SUFFIX = ".npy"
NPY_MAGIC = b"\x93NUMPY"
MAX_NPY_HEADER = 64 * 1024  # bytes of a .npy header (numpy's own default limit is 10000)
ALLOWED_KINDS = "biufcU"  # bool, integers, floats, complex, unicode: never objects or records
_READ_BLOCK = 1 << 24  # bytes read per call while filling an array


def format_size(n: int) -> str:
    """Bytes as a short human-readable size: ``"512 bytes"``, ``"12.5 MiB"``, ``"298 GiB"``."""
    n = int(n)
    if n < 1024:
        return f"{n} bytes"
    units = ("KiB", "MiB", "GiB", "TiB", "PiB")
    exponent = min(int(math.log2(n)) // 10, len(units))
    value = n / 1024 ** exponent
    return f"{value:.0f} {units[exponent - 1]}" if value >= 100 else f"{value:.1f} {units[exponent - 1]}"


def kind_of(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _os_error_message(name: str, e: OSError, what: str) -> str:
    if isinstance(e, FileNotFoundError):
        return f"{name}: no such {what}"
    if isinstance(e, PermissionError):
        return f"{name}: permission denied (cannot read the file; check its permissions)"
    return f"{name}: cannot read the file ({e.strerror or e})"


def _check_stat(name: str, info: os.stat_result, max_bytes: int, what: str, error: type) -> None:
    kind = kind_of(info.st_mode)
    if kind == "a folder":
        raise error(f"{name} is a folder, not a {what}")
    if kind is not None:
        raise error(f"{name} is {kind}, not a regular file; give a {what} saved on disk")
    if info.st_size > max_bytes:
        raise error(f"{name} is too big ({format_size(info.st_size)}); the limit is {format_size(max_bytes)}")


def check_regular_file(path, max_bytes: int, what: str = "file", error: type = DataError) -> None:
    """Raise ``error`` unless ``path`` is, right now, a regular file of at most ``max_bytes``
    that exists (by ``os.stat``, without opening it); see ``open_regular``."""
    name = os.fspath(path)
    try:
        info = os.stat(name)
    except OSError as e:
        raise error(_os_error_message(name, e, what)) from None
    _check_stat(name, info, max_bytes, what, error)


@contextlib.contextmanager
def open_regular(path, max_bytes: int, what: str = "file", error: type = DataError):
    """Context manager yielding ``(binary file object, size in bytes)`` for the regular file
    at ``path``.

    Raises ``error`` (one line naming the file) if it is missing, unreadable (permission
    denied), a folder, a FIFO, a device, a socket, or larger than ``max_bytes``. ``what`` names
    the expected kind in messages, e.g. ``"checkpoint"``.
    """
    name = os.fspath(path)
    check_regular_file(name, max_bytes, what, error)  # before opening: opening some devices has side effects
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise error(_os_error_message(name, e, what)) from None
    try:
        info = os.fstat(fd)  # again on the open file: the path may have been swapped meanwhile
        _check_stat(name, info, max_bytes, what, error)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f, info.st_size


def read_bytes(path, max_bytes: int, what: str = "file", error: type = DataError, before_read=None) -> bytes:
    """The whole content of the regular file at ``path`` (at most ``max_bytes``; see
    ``open_regular`` for what is refused). A file that grew past the bound while being read
    is refused too. ``before_read(size)``, if given, runs once the size is known and before
    anything is read (e.g. a memory check that raises)."""
    name = os.fspath(path)
    with open_regular(name, max_bytes, what, error) as (f, size):
        if before_read is not None:
            before_read(size)
        try:
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise error(_os_error_message(name, e, what)) from None
    if len(data) > max_bytes:
        raise error(f"{name} is too big (over {format_size(max_bytes)})")
    return data


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _npy_header(f, name: str, member: str, declared: int, error: type):
    """``(shape, fortran_order, dtype)`` of the ``.npy`` stream ``f``, checked: a plain dtype
    and a shape whose data fills exactly the member's declared size."""
    try:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"unsupported .npy version {version}")
        shape, fortran, dtype = read_header(f, max_header_size=MAX_NPY_HEADER)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, zipfile.BadZipFile) as e:
        raise error(f"{name}: entry {member!r} is not a valid .npy array ({_first_line(e)})") from None
    if dtype.hasobject or dtype.kind not in ALLOWED_KINDS or dtype.fields is not None or dtype.itemsize == 0:
        raise error(f"{name}: entry {member!r} has dtype {dtype}; only plain numbers and text are accepted")
    if any(n < 0 for n in shape):
        raise error(f"{name}: entry {member!r} has a negative dimension in its shape {shape}")
    count = math.prod(shape)
    header_bytes = f.tell()
    if header_bytes + count * dtype.itemsize != declared:
        raise error(f"{name}: entry {member!r} declares shape {shape} of {dtype} but holds "
                    f"{declared - header_bytes} bytes of data")
    return shape, fortran, dtype


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, error: type,
                 expected_shape: tuple | None = None) -> np.ndarray:
    if not info.filename.endswith(NPY_SUFFIX):
        raise error(f"{name}: entry {info.filename!r} is stored as a plain zip member, not a .npy array "
                    f"(not a file this program wrote)")
    member = info.filename[: -len(NPY_SUFFIX)]
    with z.open(info) as f:
        shape, fortran, dtype = _npy_header(f, name, member, info.file_size, error)
        if expected_shape is not None and tuple(shape) != tuple(expected_shape):
            raise error(f"{name}: entry {member!r} must have shape {tuple(expected_shape)}, got {tuple(shape)}")
        array = np.empty(shape, dtype=dtype, order="F" if fortran else "C")  # (*shape)
        view = memoryview(array.reshape(-1, order="A").view(np.uint8))  # the array's bytes
        filled = 0
        while filled < len(view):
            n = f.readinto(view[filled : filled + _READ_BLOCK])
            if not n:
                raise error(f"{name}: entry {member!r} ends early (the file is truncated)")
            filled += n
    return array


def npz_entries(z: zipfile.ZipFile) -> dict:
    """``{entry name: ZipInfo}`` of an open archive, named as ``np.load`` names them (``"meta"``
    for ``meta.npy``). A plain member (no ``.npy`` suffix) is listed under its own name unless a
    ``.npy`` member has that name; reading it is refused (numpy would return raw bytes)."""
    entries = {}
    for info in z.infolist():
        if info.is_dir():
            continue
        if info.filename.endswith(NPY_SUFFIX):
            entries[info.filename[: -len(NPY_SUFFIX)]] = info
        else:
            entries.setdefault(info.filename, info)
    return entries


@contextlib.contextmanager
def open_npz(path, max_bytes: int, what: str = "file", error: type = DataError):
    """Context manager yielding ``(ZipFile, entries)`` for the ``.npz`` at ``path``; the file
    is opened by ``open_regular`` (bounded to ``max_bytes`` on disk) and the zip directory read
    (``entries`` as in ``npz_entries``). No member data is read yet (``read_entries``)."""
    name = os.fspath(path)
    with open_regular(name, max_bytes, what, error) as (f, _):
        try:
            z = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
            f.seek(0)
            if f.read(len(NPY_MAGIC)) == NPY_MAGIC:
                raise error(f"{name} is a single .npy array, not a {what} (.npz)") from None
            raise error(f"{name} is not a readable {what}: not an .npz (zip) archive ({_first_line(e)})") from None
        with z:
            yield z, npz_entries(z)


def read_entries(z: zipfile.ZipFile, entries: dict, keys, name: str, max_total: int,
                 error: type = DataError, shapes: dict | None = None) -> dict:
    """``{key: ndarray}`` for ``keys`` (all must be in ``entries``), reading only those members.

    The sum of their declared uncompressed sizes is checked against ``max_total`` bytes before
    anything is decompressed; each ``.npy`` header is validated (``_npy_header``) and, for keys
    in ``shapes``, its shape must equal the expected one before the data is read; a plain zip
    member, a truncated or a corrupt member (bad CRC, bad compressed data) raises ``error``.
    """
    keys = list(keys)
    shapes = shapes or {}
    total = sum(entries[k].file_size for k in keys)
    if total > max_total:
        raise error(f"{name}: its arrays would take {format_size(total)} uncompressed; the limit is "
                    f"{format_size(max_total)}")
    arrays = {}
    for key in keys:
        try:
            arrays[key] = _read_member(z, entries[key], name, error, shapes.get(key))
        except error:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as e:
            # an untrusted file: zipfile and zlib raise many types for corrupt members
            raise error(f"{name}: entry {key!r} cannot be read ({_first_line(e)})") from None
    return arrays


def read_npz(path, max_bytes: int, max_total: int, what: str = "file", error: type = DataError) -> dict:
    """Every ``.npy`` member of the ``.npz`` at ``path`` as ``{entry name: ndarray}`` (for
    archives without a directory of needed members, e.g. trace files); see ``open_npz`` and
    ``read_entries`` for the checks."""
    name = os.fspath(path)
    with open_npz(name, max_bytes, what, error) as (z, entries):
        return read_entries(z, entries, entries, name, max_total, error)
