"""engine.safe_read: only regular files are read, never blocking, never beyond a bound; .npz
archives are validated member by member before any data is decompressed."""

import io
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.errors import DataError
from engine.safe_read import format_size, open_npz, read_bytes, read_entries, read_npz

ROOT = Path(__file__).resolve().parents[2]



def test_regular_file_is_read_whole(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"\x00\x01abc")
    assert read_bytes(path, 5) == b"\x00\x01abc"


@pytest.mark.parametrize("size, expected", [(0, "0 bytes"), (1023, "1023 bytes"), (1024, "1.0 KiB"),
                                            (int(2.5 * 1024 ** 2), "2.5 MiB"), (298 * 1024 ** 3 + 5, "298 GiB"),
                                            (3 * 1024 ** 4, "3.0 TiB")])
def test_format_size(size, expected):
    assert format_size(size) == expected


def test_fifo_is_refused_at_once(tmp_path, alarm):
    fifo = tmp_path / "m.npz"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match=r"m\.npz is a named pipe \(FIFO\), not a regular file; give a model saved"):
        read_bytes(fifo, 100, what="model")


def test_devices_sockets_and_folders_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"/dev/zero is a device, not a regular file"):
        read_bytes("/dev/zero", 100)
    with pytest.raises(DataError, match=r"is a folder, not a text file"):
        read_bytes(tmp_path, 100, what="text file")
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(DataError, match=r"s\.sock is a socket"):
            read_bytes(sock_path, 100)


def test_missing_and_too_big(tmp_path):
    with pytest.raises(DataError, match=r"none\.npz: no such checkpoint file$"):
        read_bytes(tmp_path / "none.npz", 10, what="checkpoint file")
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(DataError, match=r"big\.bin is too big \(2\.0 KiB\); the limit is 1.5 KiB"):
        read_bytes(big, 1536)


def _run_without_file_privileges(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a Python subprocess that cannot bypass file permissions: as is when not
    root, else as root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH (capsh)."""
    argv = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        capsh = shutil.which("capsh")
        if capsh is None:
            pytest.skip("running as root without capsh: cannot drop the right to read any file")
        quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
        argv = [capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", quoted]
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_permission_denied_is_reported_as_such(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("hidden")
    path.chmod(0)
    result = _run_without_file_privileges(
        "import sys\nfrom engine.safe_read import read_bytes\nfrom engine.errors import DataError\n"
        f"try:\n    read_bytes({str(path)!r}, 100)\nexcept DataError as e:\n    print(e)\n")
    assert result.stdout.strip() == f"{path}: permission denied (cannot read the file; check its permissions)"


# --- .npz archives -------------------------------------------------------------------------------
def _npz(path, members: dict):
    """Write a zip whose members are ``{name: bytes}`` (deflated)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _npy(array, allow_pickle=False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def test_npz_round_trip_matches_numpy(tmp_path):
    arrays = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.asfortranarray(np.ones((2, 3))),
              "s": np.array("text"), "c": np.array(list("xyz")), "e": np.zeros((0, 5)), "big": np.arange(5, dtype=">i4")}
    np.savez(tmp_path / "x.npz", **arrays)
    got = read_npz(tmp_path / "x.npz", 10 ** 6, 10 ** 6)
    assert sorted(got) == sorted(arrays)
    for key, value in arrays.items():
        assert got[key].dtype == value.dtype and got[key].shape == value.shape
        np.testing.assert_array_equal(got[key], value)
    assert got["b"].flags.f_contiguous


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    path = _npz(tmp_path / "p.npz", {"x.npy": _npy(np.array([{"a": 1}], dtype=object), allow_pickle=True)})
    with pytest.raises(DataError, match=r"entry 'x' has dtype object; only plain numbers and text"):
        read_npz(path, 10 ** 6, 10 ** 6)
    record = np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")])
    path = _npz(tmp_path / "r.npz", {"x.npy": _npy(record)})
    with pytest.raises(DataError, match=r"entry 'x' has dtype"):
        read_npz(path, 10 ** 6, 10 ** 6)


def _header(descr, shape) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


@pytest.mark.parametrize("data, message", [
    (_header("<U0", (10 ** 12,)), r"has dtype <U0; only plain numbers"),  # numpy would allocate it as <U1: 3.6 TiB
    (_header("<f4", (-1,)) + bytes(4), r"has a negative dimension in its shape \(-1,\)"),
    (_header("<M8[s]", (1,)) + bytes(8), r"has dtype datetime64\[s\]"),
    (_header("|S3", (1,)) + b"abc", r"has dtype \|S3"),
])
def test_odd_headers_are_refused_before_allocating(tmp_path, data, message):
    path = _npz(tmp_path / "o.npz", {"x.npy": data})
    with pytest.raises(DataError, match=message):
        read_npz(path, 10 ** 6, 10 ** 6)


def test_header_must_account_for_the_data(tmp_path):
    data = _npy(np.zeros(4, np.float64))
    lying = data.replace(b"(4,)", b"(9,)")  # same header length, shape says 72 bytes, data has 32
    path = _npz(tmp_path / "l.npz", {"x.npy": lying})
    with pytest.raises(DataError, match=r"entry 'x' declares shape \(9,\) of float64 but holds 32 bytes"):
        read_npz(path, 10 ** 6, 10 ** 6)
    path = _npz(tmp_path / "g.npz", {"x.npy": b"\x93NUMPY garbage"})
    with pytest.raises(DataError, match=r"entry 'x' is not a valid \.npy array"):
        read_npz(path, 10 ** 6, 10 ** 6)


def test_plain_members_are_refused_when_read(tmp_path):
    path = _npz(tmp_path / "m.npz", {"meta": b'{"format_version": 1}', "a.npy": _npy(np.arange(3))})
    with open_npz(path, 10 ** 6) as (z, entries):
        assert sorted(entries) == ["a", "meta"]
        np.testing.assert_array_equal(read_entries(z, entries, ["a"], str(path), 1000)["a"], np.arange(3))
        with pytest.raises(DataError, match=r"entry 'meta' is stored as a plain zip member, not a \.npy array"):
            read_entries(z, entries, ["meta"], str(path), 1000)


def test_declared_total_is_checked_before_reading(tmp_path):
    path = _npz(tmp_path / "t.npz", {"a.npy": _npy(np.zeros(1000))})
    with pytest.raises(DataError, match=r"would take 7\.9 KiB uncompressed; the limit is 1000 bytes"):
        read_npz(path, 10 ** 6, 1000)


def test_not_a_zip_and_a_bare_npy(tmp_path):
    junk = tmp_path / "j.npz"
    junk.write_bytes(b"hello")
    with pytest.raises(DataError, match=r"j\.npz is not a readable trace file: not an \.npz \(zip\) archive"):
        read_npz(junk, 100, 100, what="trace file")
    np.save(tmp_path / "a.npy", np.arange(3))
    with pytest.raises(DataError, match=r"a\.npy is a single \.npy array, not a trace file \(\.npz\)"):
        read_npz(tmp_path / "a.npy", 1000, 1000, what="trace file")
