"""engine.atomic: an existing destination that is not a regular file is refused, never replaced.

Special files are made in ``tmp_path`` (``os.mkfifo``, a bound Unix socket, a folder); real
``/dev`` nodes are never used.
"""

import os
import socket
import stat

import pytest

from engine.atomic import FileWriteError, atomic_write_bytes, atomic_writer, check_writable

SPECIAL = r"cannot write {p}: it is {kind}, not a regular file; choose a file path"
FOLDER = r"cannot write {p}: it is a folder; give a file name"


def _fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path, stat.S_ISFIFO, SPECIAL.format(p=path, kind=r"a named pipe \(FIFO\)")


def _folder(tmp_path):
    path = tmp_path / "folder"
    path.mkdir()
    return path, stat.S_ISDIR, FOLDER.format(p=path)


def _socket(tmp_path):
    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the socket file stays
    return path, stat.S_ISSOCK, SPECIAL.format(p=path, kind="a socket")


def _link_to_fifo(tmp_path):
    fifo, _, _ = _fifo(tmp_path)
    path = tmp_path / "link"
    path.symlink_to(fifo)
    return path, stat.S_ISLNK, SPECIAL.format(p=path, kind=r"a named pipe \(FIFO\)")


KINDS = [_fifo, _folder, _socket, _link_to_fifo]


def _unchanged(path, is_kind) -> bool:
    """``path`` is still what it was made as, and nothing else was left in its folder."""
    return is_kind(os.lstat(path).st_mode) and not [n for n in os.listdir(path.parent) if n.endswith(".tmp")]


@pytest.mark.parametrize("make", KINDS, ids=lambda f: f.__name__.strip("_"))
def test_atomic_writer_refuses_before_the_block_runs(tmp_path, make):
    path, is_kind, message = make(tmp_path)
    ran = []
    with pytest.raises(FileWriteError, match=f"^{message}$"):
        with atomic_writer(path) as f:
            ran.append(f)
    assert not ran
    assert _unchanged(path, is_kind)
    with pytest.raises(FileWriteError, match=f"^{message}$"):
        atomic_write_bytes(path, b"x")
    assert _unchanged(path, is_kind)


@pytest.mark.parametrize("make", KINDS, ids=lambda f: f.__name__.strip("_"))
def test_check_writable_refuses(tmp_path, make):
    path, is_kind, message = make(tmp_path)
    with pytest.raises(FileWriteError, match=f"^{message}$") as caught:
        check_writable(path, size=10)
    assert caught.value.filename == str(path)
    assert _unchanged(path, is_kind)


def test_a_fifo_made_while_the_block_runs_is_not_replaced(tmp_path):
    path = tmp_path / "out.bin"
    with pytest.raises(FileWriteError, match=r"it is a named pipe \(FIFO\), not a regular file"):
        with atomic_writer(path) as f:
            f.write(b"data")
            os.mkfifo(path)
    assert _unchanged(path, stat.S_ISFIFO)


def test_regular_files_and_links_to_them_are_still_replaced(tmp_path):
    path = tmp_path / "old.txt"
    path.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(path)
    check_writable(path)
    check_writable(link)
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    atomic_write_bytes(link, b"newer")  # written through the link, which stays a link
    assert link.is_symlink() and path.read_bytes() == b"newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.txt", "old.txt"]


def test_a_link_into_another_folder_is_written_through_and_kept(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    target = real / "model.npz"
    target.write_bytes(b"old")
    link = tmp_path / "model.npz"
    link.symlink_to(target)
    with atomic_writer(link) as f:
        f.write(b"new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == b"new"
    assert [p.name for p in real.iterdir()] == ["model.npz"]


def test_a_dangling_link_creates_the_file_it_names(tmp_path):
    target = tmp_path / "made.txt"
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    check_writable(link)
    atomic_write_bytes(link, b"data")
    assert link.is_symlink() and target.read_bytes() == b"data"
