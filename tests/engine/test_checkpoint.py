"""engine.checkpoint (exact round trip, every corruption refused) and engine.atomic (atomic writes)."""

import errno
import fcntl
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from engine import ModelConfig, SequenceModel
from engine.atomic import FileWriteError, atomic_write_bytes, atomic_writer, check_writable
from engine.checkpoint import FORMAT_VERSION, load_char_checkpoint, load_checkpoint, save_checkpoint
from engine.data import CharVocab
from engine.errors import CheckpointError

ROOT = Path(__file__).resolve().parents[2]
VOCAB = CharVocab.from_text("hello, world!\n")


def make_model(cell="lstm", dtype="float32", layers=2, seed=0):
    config = ModelConfig(input_size=len(VOCAB), output_size=len(VOCAB), cell=cell, hidden_size=6,
                         num_layers=layers, dtype=dtype)
    return SequenceModel(config, rng=np.random.default_rng(seed))


def optimizer_state(model, rng):
    return {
        "name": "adam",
        "hyper": {"lr": 0.002, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
        "t": 41,
        "slots": {slot: {k: rng.standard_normal(a.shape).astype(a.dtype) for k, a in model.params.items()}
                  for slot in ("m", "v")},
    }


def train_state(model, rng):
    gen = np.random.Generator(np.random.PCG64(12345))
    gen.random(3)
    return {
        "rng": gen.bit_generator.state,  # PCG64 state: ints > 2**63
        "batches_taken": 17,
        "smooth_loss": 2.25,
        "elapsed_s": 1.5,
        "carry": rng.standard_normal((2, 2, 3, 6)).astype(model.dtype),  # (L, S, B, H)
        "nested": {"per_layer": [(np.arange(3), np.ones(2)), None]},
    }


def _files(folder):
    return sorted(os.listdir(folder))


# --- round trip -------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "rnn"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_exact(tmp_path, cell, dtype):
    model = make_model(cell, dtype)
    rng = np.random.default_rng(1)
    opt, ts = optimizer_state(model, rng), train_state(model, rng)
    path = tmp_path / "run.npz"
    save_checkpoint(path, model, vocab=VOCAB, step=41, optimizer_state=opt, train_state=ts,
                    train_config={"lr": 0.002, "seq_len": 25}, extra={"note": "ünïcode"})
    ckpt = load_checkpoint(path)
    assert _files(tmp_path) == ["run.npz"]
    assert ckpt.model.config == model.config and ckpt.vocab == VOCAB and ckpt.step == 41
    assert ckpt.path == str(path)
    for name, value in model.params.items():
        got = ckpt.model.params[name]
        assert got.dtype == value.dtype and got.tobytes() == value.tobytes()  # bitwise
    assert ckpt.optimizer_state["name"] == "adam" and ckpt.optimizer_state["t"] == 41
    assert ckpt.optimizer_state["hyper"] == opt["hyper"]
    for slot in ("m", "v"):
        for name, value in opt["slots"][slot].items():
            assert ckpt.optimizer_state["slots"][slot][name].tobytes() == value.tobytes()
    got = ckpt.train_state
    assert got["rng"] == ts["rng"] and got["batches_taken"] == 17 and got["smooth_loss"] == 2.25
    assert got["carry"].dtype == model.dtype and got["carry"].tobytes() == ts["carry"].tobytes()
    pair = got["nested"]["per_layer"][0]
    assert isinstance(pair, tuple) and np.array_equal(pair[0], np.arange(3)) and got["nested"]["per_layer"][1] is None
    restored = np.random.Generator(np.random.PCG64())
    restored.bit_generator.state = got["rng"]
    original = np.random.Generator(np.random.PCG64())
    original.bit_generator.state = ts["rng"]
    assert restored.random() == original.random()
    assert ckpt.train_config == {"lr": 0.002, "seq_len": 25} and ckpt.extra == {"note": "ünïcode"}
    x = VOCAB.encode("hello")
    np.testing.assert_array_equal(ckpt.model.trace(x).outputs, model.trace(x).outputs)


def test_minimal_checkpoint_and_layout(tmp_path):
    model = make_model(layers=1)
    path = tmp_path / "m.npz"
    save_checkpoint(path, model)
    ckpt = load_checkpoint(path)
    assert ckpt.vocab is None and ckpt.step == 0 and ckpt.optimizer_state is None
    assert ckpt.train_state is None and ckpt.train_config is None and ckpt.extra == {}
    with np.load(path, allow_pickle=False) as npz:  # the documented layout, readable without pickle
        assert set(npz.files) == {"meta", "param/l0.Wx", "param/l0.Wh", "param/l0.b", "param/head.W", "param/head.b"}
        meta = json.loads(str(npz["meta"]))
    assert meta["format_version"] == FORMAT_VERSION == 1
    assert meta["model"] == model.config.to_dict()


def test_save_refuses_unsavable_values(tmp_path):
    model = make_model(layers=1)
    with pytest.raises(ValueError, match="cannot save object"):
        save_checkpoint(tmp_path / "x.npz", model, train_state={"bad": object()})
    with pytest.raises(ValueError, match="step"):
        save_checkpoint(tmp_path / "x.npz", model, step=-1)
    with pytest.raises(ValueError, match="unknown parameters"):
        save_checkpoint(tmp_path / "x.npz", model, optimizer_state={"name": "sgd", "hyper": {}, "t": 0,
                                                                   "slots": {"m": {"nope": np.zeros(2)}}})
    assert _files(tmp_path) == []


# --- atomic writes ----------------------------------------------------------------------------
def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "good.npz"
    save_checkpoint(path, make_model(seed=1), step=5)
    before = path.read_bytes()

    def disk_full(f, **arrays):
        f.write(b"PK partial garbage")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, make_model(seed=2), step=6)
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["good.npz"]
    monkeypatch.undo()
    assert load_checkpoint(path).step == 5


def test_write_into_missing_folder_fails_cleanly(tmp_path):
    target = tmp_path / "missing" / "c.npz"
    with pytest.raises(FileWriteError, match=rf"^cannot write {target}: folder {target.parent} does not exist$"):
        save_checkpoint(target, make_model(layers=1))
    assert _files(tmp_path) == []


def test_disk_full_names_the_target_and_says_so(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"

    def full(f, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(FileWriteError, match=rf"^cannot write {path}: the disk is full \(No space left on device\)"):
        save_checkpoint(path, make_model(layers=1))
    assert _files(tmp_path) == []


def test_read_only_folder_names_the_target_not_the_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"

    def read_only(dir, prefix, suffix):
        raise OSError(errno.EROFS, "Read-only file system", os.path.join(dir, prefix + "qum3v2u6" + suffix))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    for attempt in (lambda: save_checkpoint(path, make_model(layers=1)), lambda: check_writable(path)):
        with pytest.raises(FileWriteError) as info:
            attempt()
        assert str(info.value) == f"cannot write {path}: Read-only file system (folder {tmp_path}); choose another folder"
        assert info.value.errno == errno.EROFS and info.value.filename == str(path)
        assert info.value.strerror == f"Read-only file system (folder {tmp_path}); choose another folder"


def test_check_writable(tmp_path):
    check_writable(tmp_path / "new.npz")
    assert _files(tmp_path) == []  # the probe leaves nothing behind
    with pytest.raises(FileWriteError, match=r"does not exist"):
        check_writable(tmp_path / "no" / "new.npz")
    with pytest.raises(FileWriteError, match=r"it is a folder; give a file name"):
        check_writable(tmp_path)


def test_unwritable_folder_without_privileges(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    from tests.engine.test_safe_read import _run_without_file_privileges

    result = _run_without_file_privileges(
        "from engine.atomic import check_writable\n"
        f"try:\n    check_writable({str(folder / 'm.npz')!r})\nexcept OSError as e:\n    print(e)\n")
    assert result.stdout.strip() == f"cannot write {folder / 'm.npz'}: Permission denied (folder {folder}); choose another folder"


def _stale_temp(path, name, age_s):
    tmp = path.parent / name
    tmp.write_bytes(b"half a checkpoint")
    os.utime(tmp, (time.time() - age_s, time.time() - age_s))
    return tmp


def test_stale_temp_files_of_a_killed_save_are_removed_by_the_next_save(tmp_path):
    path = tmp_path / "m.npz"
    stale = _stale_temp(path, ".m.npz.qum3v2u6.tmp", 60)
    fresh = _stale_temp(path, ".m.npz.abcd1234.tmp", 0)  # may belong to a save starting right now
    other = _stale_temp(path, ".other.npz.qum3v2u6.tmp", 60)  # another file's
    unlike = _stale_temp(path, ".m.npz.notours.tmp", 60)  # not our pattern
    locked = _stale_temp(path, ".m.npz.zzzz9999.tmp", 60)  # a save in progress holds its lock
    with open(locked, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        save_checkpoint(path, make_model(layers=1))
    assert not stale.exists()
    assert fresh.exists() and other.exists() and unlike.exists() and locked.exists()
    assert load_checkpoint(path).step == 0


def test_a_killed_save_leaves_a_temp_file_that_the_next_save_removes(tmp_path):
    """A real kill (SIGKILL in the middle of a save), then a normal save of the same file."""
    path = tmp_path / "m.npz"
    code = ("import os, signal\nfrom engine.atomic import atomic_writer\n"
            f"with atomic_writer({str(path)!r}) as f:\n    f.write(b'partial')\n    f.flush()\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60)
    assert result.returncode == -signal.SIGKILL
    (leftover,) = [p for p in tmp_path.iterdir()]
    assert leftover.name.startswith(".m.npz.") and leftover.name.endswith(".tmp")
    os.utime(leftover, (time.time() - 60, time.time() - 60))
    save_checkpoint(path, make_model(layers=1))
    assert _files(tmp_path) == ["m.npz"]


def test_atomic_writer_success_replaces_and_keeps_mode(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    path.chmod(0o640)
    with atomic_writer(path, "w") as f:
        f.write("new ünicode\n")
        assert path.read_text() == "old"  # nothing visible until the block ends
    assert path.read_bytes() == "new ünicode\n".encode()
    assert path.stat().st_mode & 0o777 == 0o640
    atomic_write_bytes(tmp_path / "fresh.bin", b"\x00\x01")
    assert (tmp_path / "fresh.bin").read_bytes() == b"\x00\x01"
    assert _files(tmp_path) == ["fresh.bin", "out.txt"]


def test_atomic_writer_exception_removes_temp_and_keeps_original(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"original")
    with pytest.raises(KeyError):
        with atomic_writer(path) as f:
            f.write(b"half")
            raise KeyError("boom")  # the original exception propagates unchanged
    assert path.read_bytes() == b"original"
    assert _files(tmp_path) == ["out.bin"]
    with pytest.raises(ValueError, match="mode"):
        with atomic_writer(path, "a"):
            pass


# --- corruption -------------------------------------------------------------------------------
@pytest.fixture
def good(tmp_path):
    model = make_model()
    path = tmp_path / "good.npz"
    save_checkpoint(path, model, vocab=VOCAB, step=3, optimizer_state=optimizer_state(model, np.random.default_rng(0)),
                    train_state={"batches_taken": 3})
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return path, arrays


def _rewrite(path, arrays, changes):
    """Write ``arrays`` with ``changes`` (key -> array; None deletes the key) as an .npz at ``path``."""
    arrays = dict(arrays)
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _meta_with(arrays, **updates):
    meta = json.loads(str(arrays["meta"]))
    meta.update(updates)
    return np.array(json.dumps(meta))


def _assert_refused(path, pattern):
    with pytest.raises(CheckpointError, match=pattern) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message


def test_missing_file_and_folder(tmp_path):
    _assert_refused(tmp_path / "none.npz", "no such checkpoint file")
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path)


def test_not_a_zip_and_truncated(good, tmp_path):
    path, _ = good
    junk = tmp_path / "junk.npz"
    junk.write_text("just some text, not a checkpoint")
    _assert_refused(junk, r"not an \.npz \(zip\) archive")
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(junk)
    assert "pickle" not in str(refused.value)  # numpy's own message would suggest unsafe loading
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 100):
        truncated = tmp_path / f"cut{cut}.npz"
        truncated.write_bytes(data[:cut])
        _assert_refused(truncated, "not a readable checkpoint file|cannot be read")


def test_pickled_and_npy_files_are_refused(tmp_path):
    pickled = tmp_path / "p.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _assert_refused(pickled, r"a single \.npy array, not a checkpoint file")
    plain = tmp_path / "a.npy"
    np.save(plain, np.zeros(3))
    _assert_refused(plain, r"a single \.npy array, not a checkpoint file")
    zipped = tmp_path / "other.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("readme.txt", "hello")
    _assert_refused(zipped, "no 'meta' entry: not an lstmviz checkpoint")


def test_meta_problems(good, tmp_path):
    path, arrays = good
    _assert_refused(_rewrite(tmp_path / "a.npz", arrays, {"meta": None}), "no 'meta' entry")
    _assert_refused(_rewrite(tmp_path / "b.npz", arrays, {"meta": np.array("{not json")}), "not valid JSON")
    _assert_refused(_rewrite(tmp_path / "c.npz", arrays, {"meta": np.array("[1, 2]")}), "must be a JSON object")
    _assert_refused(_rewrite(tmp_path / "d.npz", arrays, {"meta": np.zeros(3)}), "must be a JSON string")


def test_wrong_format_version_names_both(good, tmp_path):
    path, arrays = good
    bad = _rewrite(tmp_path / "v2.npz", arrays, {"meta": _meta_with(arrays, format_version=2)})
    _assert_refused(bad, r"format version 2; this version of lstmviz reads version 1")


def test_invalid_config(good, tmp_path):
    path, arrays = good
    meta = json.loads(str(arrays["meta"]))
    meta["model"]["cell"] = "mgu"
    _assert_refused(_rewrite(tmp_path / "a.npz", arrays, {"meta": np.array(json.dumps(meta))}), "invalid model config.*mgu")
    meta["model"] = {"input_size": 3}
    _assert_refused(_rewrite(tmp_path / "b.npz", arrays, {"meta": np.array(json.dumps(meta))}), "invalid model config")


def test_parameter_problems(good, tmp_path):
    path, arrays = good
    _assert_refused(_rewrite(tmp_path / "a.npz", arrays, {"param/l1.Wh": np.zeros((6, 25), np.float32)}), "l1.Wh.*shape")
    _assert_refused(_rewrite(tmp_path / "b.npz", arrays, {"param/head.b": None}), r"missing \['head.b'\]")
    nan = arrays["param/l0.b"].copy()
    nan[3] = np.nan
    _assert_refused(_rewrite(tmp_path / "c.npz", arrays, {"param/l0.b": nan}), "l0.b contains NaN")
    _assert_refused(_rewrite(tmp_path / "d.npz", arrays, {"param/l0.b": arrays["param/l0.b"].astype(np.float64)}),
                    "l0.b is float64 but the config says float32")
    _assert_refused(_rewrite(tmp_path / "e.npz", arrays, {"param/l2.b": np.zeros(24, np.float32)}), r"unexpected \['l2.b'\]")


def test_vocab_size_mismatch(good, tmp_path):
    path, arrays = good
    bad = _rewrite(tmp_path / "a.npz", arrays, {"meta": _meta_with(arrays, vocab=list("abc"))})
    _assert_refused(bad, "vocabulary has 3 characters but the model's input_size is 11")
    bad = _rewrite(tmp_path / "b.npz", arrays, {"meta": _meta_with(arrays, vocab=["a", "a"])})
    _assert_refused(bad, "invalid vocabulary")


def test_optimizer_and_train_state_problems(good, tmp_path):
    path, arrays = good
    _assert_refused(_rewrite(tmp_path / "a.npz", arrays, {"opt/m/l0.Wx": None}), "opt/m/l0.Wx is missing")
    _assert_refused(_rewrite(tmp_path / "b.npz", arrays, {"opt/v/head.b": np.zeros(3, np.float32)}),
                    r"opt/v/head.b. must have shape \(11,\), got \(3,\)")
    _assert_refused(_rewrite(tmp_path / "c.npz", arrays, {"meta": _meta_with(arrays, optimizer={"name": "adam"})}),
                    "malformed optimizer state")
    _assert_refused(_rewrite(tmp_path / "d.npz", arrays, {"meta": _meta_with(arrays, train_state={"x": {"$array": "train/x"}})}),
                    "missing array")
    _assert_refused(_rewrite(tmp_path / "e.npz", arrays, {"meta": _meta_with(arrays, step=-4)}), "step must be")


def test_flipped_bytes_never_crash_the_loader(good, tmp_path):
    path, arrays = good
    data = path.read_bytes()
    bad = tmp_path / "flipped.npz"
    refused = 0
    for offset in range(0, len(data), max(1, len(data) // 150)):
        corrupt = bytearray(data)
        corrupt[offset] ^= 0xFF
        bad.write_bytes(bytes(corrupt))
        try:
            ckpt = load_checkpoint(bad)
        except CheckpointError as e:
            refused += 1
            assert "\n" not in str(e) and str(bad) in str(e)
        else:  # only bytes the zip format ignores (e.g. timestamps) may change without harm
            for name, value in ckpt.model.params.items():
                assert value.tobytes() == arrays[f"param/{name}"].tobytes()
    assert refused > 100  # CRC checks catch flips inside the array data


def test_only_character_models_load_as_character_checkpoints(tmp_path):
    """The viewer, sample, trace and export share one rule: vocabulary, one-hot input, softmax head."""
    vocab = CharVocab.from_text("abc")
    rng = np.random.default_rng(0)
    char = SequenceModel(ModelConfig(input_size=3, output_size=3, hidden_size=2), rng=rng)
    save_checkpoint(tmp_path / "char.npz", char, vocab=vocab)
    assert load_char_checkpoint(tmp_path / "char.npz").vocab == vocab
    save_checkpoint(tmp_path / "novocab.npz", char)
    linear = SequenceModel(ModelConfig(input_size=3, output_size=3, hidden_size=2, head="linear"), rng=rng)
    save_checkpoint(tmp_path / "linear.npz", linear, vocab=vocab)
    series = SequenceModel(ModelConfig(input_size=4, output_size=1, hidden_size=2, input_kind="dense",
                                       head="linear"), rng=rng)
    save_checkpoint(tmp_path / "series.npz", series)
    for name in ("novocab", "linear", "series"):
        with pytest.raises(CheckpointError, match="not a character model"):
            load_char_checkpoint(tmp_path / f"{name}.npz")


# --- untrusted archives ---------------------------------------------------------------------------
ZERO_CHUNK = 1 << 24  # 16 MiB


class _RepeatingDeflate:
    """A deflate compressor for zipfile that compresses each 16 MiB zero chunk once: after a full
    flush deflate forgets its history, so every such chunk becomes the same bytes. Other data is
    compressed normally. Keeps a 2 GiB member's test file at ~2 MB and its writing at ~1 s."""

    def __init__(self):
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        fresh = zlib.compressobj(9, zlib.DEFLATED, -15)
        self._zero_block = fresh.compress(bytes(ZERO_CHUNK)) + fresh.flush(zlib.Z_FULL_FLUSH)

    def compress(self, data):
        if len(data) == ZERO_CHUNK and not any(data[:: 1 << 16]) and data == bytes(ZERO_CHUNK):
            return self._zero_block
        return self._deflate.compress(data) + self._deflate.flush(zlib.Z_FULL_FLUSH)

    def flush(self):
        return self._deflate.flush()


def _append_member(path, name, head: bytes, zero_chunks: int, monkeypatch):
    """Append member ``name`` = ``head`` + ``zero_chunks`` x 16 MiB of zeros, deflated and
    streamed through ``zipfile`` (a real zip64 member; its CRC covers all the data)."""
    with monkeypatch.context() as patch:
        patch.setattr(zipfile, "_get_compressor", lambda *args: _RepeatingDeflate())
        with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:
            with z.open(name, "w", force_zip64=True) as f:
                f.write(head)
                zeros = bytes(ZERO_CHUNK)
                for _ in range(zero_chunks):
                    f.write(zeros)


def _opened_members(monkeypatch) -> list:
    """Record the name of every zip member opened from now on."""
    opened = []
    real_open = zipfile.ZipFile.open

    def recording_open(self, name, *args, **kwargs):
        opened.append(name.filename if isinstance(name, zipfile.ZipInfo) else name)
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", recording_open)
    return opened


def test_unused_member_of_gigabytes_is_never_read(good, monkeypatch):
    path, arrays = good
    _append_member(path, "junk.npy", b"", 128, monkeypatch)  # 2 GiB of zeros
    assert path.stat().st_size < 4 * 1024 ** 2
    with zipfile.ZipFile(path) as z:
        assert z.getinfo("junk.npy").file_size == 2 * 1024 ** 3
    opened = _opened_members(monkeypatch)
    ckpt = load_checkpoint(path)
    assert "junk.npy" not in opened and "meta.npy" in opened
    np.testing.assert_array_equal(ckpt.model.params["l0.Wx"], arrays["param/l0.Wx"])


def test_needed_member_of_gigabytes_is_refused_from_its_header(good, tmp_path, monkeypatch):
    path, arrays = good
    del arrays["param/l0.Wh"]
    bomb = _rewrite(tmp_path / "bomb.npz", arrays, {})
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (128 * ZERO_CHUNK // 4,)})
    _append_member(bomb, "param/l0.Wh.npy", header.getvalue(), 128, monkeypatch)
    opened = _opened_members(monkeypatch)
    _assert_refused(bomb, r"entry 'param/l0\.Wh' must have shape \(6, 24\), got \(536870912,\)")
    assert opened.count("param/l0.Wh.npy") == 1  # the header only: refused before the data


@pytest.mark.parametrize("key", ["meta", "param/l0.b", "opt/m/head.W"])
def test_plain_zip_members_are_refused(good, tmp_path, key):
    path, arrays = good
    plain = tmp_path / "plain.npz"
    with zipfile.ZipFile(plain, "w") as z:
        for k, value in arrays.items():
            if k == key:
                z.writestr(k, str(value) if k == "meta" else value.tobytes())  # no .npy header
            else:
                buffer = io.BytesIO()
                np.save(buffer, value)
                z.writestr(k + ".npy", buffer.getvalue())
    _assert_refused(plain, rf"entry '{key}' is stored as a plain zip member, not a \.npy array")


def test_object_member_is_refused_without_unpickling(good, tmp_path):
    path, arrays = good
    evil = np.array([{"payload": 1}], dtype=object)
    bad = tmp_path / "obj.npz"
    with zipfile.ZipFile(bad, "w") as z:
        for k, value in {**arrays, "param/l0.b": evil}.items():
            buffer = io.BytesIO()
            np.save(buffer, value, allow_pickle=True)
            z.writestr(k + ".npy", buffer.getvalue())
    _assert_refused(bad, r"entry 'param/l0\.b' has dtype object")


WRONG_VALUES = [None, 0, -1, 2.5, True, "x", [], ["a"], {}, {"x": 1}]


def _meta(arrays):
    return json.loads(str(arrays["meta"]))


def _mutations(meta):
    """Every top-level and optimizer entry of ``meta`` replaced by each wrong JSON value."""
    for key in meta:
        for value in WRONG_VALUES:
            yield f"{key}={value!r}", {**meta, key: value}
    for key in meta["optimizer"]:
        for value in WRONG_VALUES:
            yield f"optimizer.{key}={value!r}", {**meta, "optimizer": {**meta["optimizer"], key: value}}
    for key in list(meta):
        yield f"without {key}", {k: v for k, v in meta.items() if k != key}
    yield "train_state tuple of int", {**meta, "train_state": {"x": {"$tuple": 3}}}
    yield "train_state array ref int", {**meta, "train_state": {"x": {"$array": 3}}}
    yield "train_state ref to a parameter", {**meta, "train_state": {"x": {"$array": "param/l0.b"}}}


def test_malformed_meta_structure_is_a_clear_refusal(good, tmp_path):
    """Wrong JSON types or missing keys anywhere in 'meta': a CheckpointError or a checkpoint
    whose fields have the documented types, never another exception."""
    path, arrays = good
    meta = _meta(arrays)
    for label, changed in _mutations(meta):
        bad = _rewrite(tmp_path / "m.npz", arrays, {"meta": np.array(json.dumps(changed))})
        try:
            ckpt = load_checkpoint(bad)
        except CheckpointError as e:
            assert "\n" not in str(e) and str(bad) in str(e), label
            continue
        assert isinstance(ckpt.step, int) and isinstance(ckpt.extra, dict), label
        assert ckpt.train_config is None or isinstance(ckpt.train_config, dict), label
        assert ckpt.vocab is None or isinstance(ckpt.vocab, CharVocab), label
        if ckpt.optimizer_state is not None:
            assert isinstance(ckpt.optimizer_state["hyper"], dict) and isinstance(ckpt.optimizer_state["t"], int)


def test_fifo_checkpoint_is_refused_at_once(tmp_path):
    fifo = tmp_path / "m.npz"
    os.mkfifo(fifo)
    _assert_refused(fifo, r"is a named pipe \(FIFO\), not a regular file; give a checkpoint file saved on disk")


def test_unreadable_checkpoint_says_permission_denied(good):
    path, _ = good
    path.chmod(0)
    from tests.engine.test_safe_read import _run_without_file_privileges

    result = _run_without_file_privileges(
        "from engine.checkpoint import load_checkpoint\nfrom engine.errors import CheckpointError\n"
        f"try:\n    load_checkpoint({str(path)!r})\nexcept CheckpointError as e:\n    print(e)\n")
    assert result.stdout.strip() == f"{path}: permission denied (cannot read the file; check its permissions)"


def test_deeply_nested_meta_is_a_clear_refusal(good, tmp_path):
    path, arrays = good
    deep = "[" * 100_000 + "]" * 100_000  # json.loads raises RecursionError, not ValueError
    _assert_refused(_rewrite(tmp_path / "a.npz", arrays, {"meta": np.array(deep)}), "'meta' is nested too deeply")
    for depth in (400, 800, 990):  # near the recursion limit: either read or refused, never a crash
        text = str(arrays["meta"]).replace('"train_state": {', '"train_state": {"deep": ' + "[" * depth + "]" * depth
                                           + ", ", 1)
        try:
            ckpt = load_checkpoint(_rewrite(tmp_path / "b.npz", arrays, {"meta": np.array(text)}))
        except CheckpointError as e:
            assert "nested too deeply" in str(e)
        else:
            assert "deep" in ckpt.train_state


def test_a_headless_character_model_loads_for_viewing_and_sampling_refuses_it(tmp_path):
    """A recurrent stack alone (head "none", e.g. imported) opens as a character checkpoint;
    sampling from it fails with the no-output-layer message."""
    from engine.sample import sample

    vocab = CharVocab.from_text("abc")
    cfg = ModelConfig(input_size=3, output_size=2, hidden_size=2, cell="gru", head="none")
    save_checkpoint(tmp_path / "stack.npz", SequenceModel(cfg, rng=np.random.default_rng(0)), vocab=vocab)
    ckpt = load_char_checkpoint(tmp_path / "stack.npz")
    assert ckpt.model.config.head == "none" and ckpt.vocab == vocab
    with pytest.raises(ValueError, match="no output layer"):
        sample(ckpt.model, vocab, prime="a", length=3, rng=np.random.default_rng(0))
