"""The bad-input and fault matrix of issue 19: whatever a user hands the program, the result is
the right one or one readable line (exit 2) naming the file and the cause; never a hang, a
traceback or silently wrong data.

``MATRIX`` holds the command-line cases as data: (case id, input maker, command, expected exit
code, pattern of the one stderr line). They run in-process through ``lstmviz.cli.main`` under
an alarm (a hang fails instead of blocking the suite); a few run as real subprocesses (marked
``slow``). The engine-level kinds (CSV parsing, text decoding, interruptible validation) follow.
"""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine import memory
from engine.data import TextCorpus, decode_text, load_text
from engine.errors import DataError
from engine.model import ModelConfig, SequenceModel
from engine.series import csv_columns, read_csv, read_csv_column
from engine.evaluation import evaluate
from engine.train import TrainConfig, Trainer
from lstmviz.cli import main

ROOT = Path(__file__).resolve().parents[1]
TEXT = "abcd abce xyz\n" * 40


# --- input makers: each writes into folder d and returns the placeholders it defines -------------
@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A corpus and a resumable checkpoint trained on it (tiny)."""
    d = tmp_path_factory.mktemp("base")
    (d / "corpus.txt").write_text(TEXT, encoding="utf-8")
    corpus = TextCorpus(TEXT)
    model = SequenceModel(ModelConfig(len(corpus.vocab), len(corpus.vocab), hidden_size=8),
                          rng=np.random.default_rng(0))
    trainer = Trainer(model, corpus, TrainConfig(seq_len=8, batch_size=4, steps=3, eval_every=3))
    for _ in trainer.run():
        pass
    trainer.save(d / "model.npz")
    return d


def _arrays(path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _zip_with_plain(path, arrays, plain_key):
    """``arrays`` as an .npz, except ``plain_key`` stored as a plain zip member (no .npy header)."""
    with zipfile.ZipFile(path, "w") as z:
        for key, value in arrays.items():
            if key == plain_key:
                z.writestr(key, str(value) if key == "meta" else value.tobytes())
            else:
                buffer = io.BytesIO()
                np.save(buffer, value)
                z.writestr(key + ".npy", buffer.getvalue())


def fifo(d, base):
    os.mkfifo(d / "fifo")


def plain_meta(d, base):
    _zip_with_plain(d / "plain.npz", _arrays(base / "model.npz"), "meta")


def plain_param(d, base):
    _zip_with_plain(d / "plain.npz", _arrays(base / "model.npz"), "param/l0.Wx")


def meta_with(**changes):
    def make(d, base):
        arrays = _arrays(base / "model.npz")
        meta = json.loads(str(arrays["meta"]))
        for key, value in changes.items():
            target = meta
            *path, last = key.split(".")
            for part in path:
                target = target[part]
            target[last] = value
        arrays["meta"] = np.array(json.dumps(meta))
        np.savez(d / "bad.npz", **arrays)
    return make


def mac_corpus(d, base):
    (d / "mac.txt").write_bytes(TEXT.replace("\n", "\r").encode())


def out_parent_is_a_file(d, base):
    (d / "file").write_text("x")


def nothing(d, base):
    pass


TRAIN = ["--hidden", "8", "--seq-len", "8", "--batch", "4", "--eval-every", "5", "--steps", "5"]
FIFO = r"{d}/fifo is a named pipe \(FIFO\), not a regular file"
MATRIX = [
    # 2. special files: refused at once, never blocking
    ("sample-fifo-model", fifo, ["sample", "{d}/fifo"], 2, FIFO),
    ("trace-fifo-model", fifo, ["trace", "{d}/fifo", "--text", "ab", "--out", "{d}/t.npz"], 2, FIFO),
    ("export-fifo-model", fifo, ["export", "{d}/fifo", "--text", "ab", "--out", "{d}/ex", "--format", "csv"], 2, FIFO),
    ("resume-fifo-model", fifo, ["train", "{base}/corpus.txt", "--resume", "{d}/fifo", "--out", "{d}/m.npz"], 2, FIFO),
    ("train-fifo-corpus", fifo, ["train", "{d}/fifo", "--out", "{d}/m.npz"], 2, FIFO),
    ("sample-fifo-prime", fifo, ["sample", "{base}/model.npz", "--prime-file", "{d}/fifo"], 2, FIFO),
    ("trace-fifo-text", fifo, ["trace", "{base}/model.npz", "--text-file", "{d}/fifo", "--out", "{d}/t.npz"], 2, FIFO),
    ("gui-fifo-model", fifo, ["gui", "{d}/fifo"], 2, FIFO),
    ("sample-device-model", nothing, ["sample", "/dev/zero"], 2, r"/dev/zero is a device, not a regular file"),
    ("sample-folder-model", nothing, ["sample", "{d}"], 2, r"{d} is a folder, not a checkpoint file"),
    # 3. untrusted archives
    ("sample-plain-meta", plain_meta, ["sample", "{d}/plain.npz"], 2,
     r"{d}/plain\.npz: entry 'meta' is stored as a plain zip member, not a \.npy array"),
    ("trace-plain-param", plain_param, ["trace", "{d}/plain.npz", "--text", "ab", "--out", "{d}/t.npz"], 2,
     r"entry 'param/l0\.Wx' is stored as a plain zip member"),
    ("sample-meta-model-list", meta_with(model=[1, 2]), ["sample", "{d}/bad.npz"], 2,
     r"'meta' entry 'model' must be a JSON object, got list"),
    ("sample-meta-vocab-string", meta_with(vocab="abc"), ["sample", "{d}/bad.npz"], 2,
     r"'meta' entry 'vocab' must be a list of characters or null, got str"),
    ("resume-train-config-wrong-type", meta_with(**{"train_config.seq_len": "long"}),
     ["train", "{base}/corpus.txt", "--resume", "{d}/bad.npz", "--out", "{d}/m.npz"], 2,
     r"{d}/bad\.npz: invalid training settings|seq_len"),
    ("resume-optimizer-slots-list", meta_with(**{"optimizer.slots": ["m"]}),
     ["train", "{base}/corpus.txt", "--resume", "{d}/bad.npz", "--out", "{d}/m.npz"], 2,
     r"malformed optimizer state"),
    ("resume-train-state-ref-to-param", meta_with(**{"train_state.carry": {"$array": "param/l0.b"}}),
     ["train", "{base}/corpus.txt", "--resume", "{d}/bad.npz", "--out", "{d}/m.npz"], 2,
     r"train state refers to a missing array 'param/l0\.b'"),
    # 4. sizes that cannot fit
    ("train-hidden-100000", nothing, ["train", "{base}/corpus.txt", "--hidden", "100000", "--out", "{d}/m.npz"], 2,
     r"a model with hidden size 100000 needs about [\d.]+ TiB \(parameters and adam state\); "
     r"this machine has [\d.]+ [GMT]iB available"),
    ("train-batch-too-big", nothing, ["train", "{base}/corpus.txt", "--hidden", "1000", "--batch", "100000",
                                      "--seq-len", "1000", "--out", "{d}/m.npz"], 2,
     r"training a model with hidden size 1000 on 560 characters in batches of 100000 x 1000 needs about"),
    # 5. text decoding: lone \r are line breaks
    ("train-mac-line-endings", mac_corpus, ["train", "{d}/mac.txt", "--out", "{d}/m.npz", *TRAIN], 0, None),
    # 6. outputs checked before any work, naming the file asked for
    ("train-out-missing-folder", nothing, ["train", "{d}/missing.txt", "--out", "{d}/no/m.npz"], 2,
     r"cannot write {d}/no/m\.npz: folder {d}/no does not exist"),
    ("train-out-parent-is-file", out_parent_is_a_file, ["train", "{base}/corpus.txt", "--out", "{d}/file/m.npz"], 2,
     r"cannot write {d}/file/m\.npz: "),
    ("train-out-is-folder", nothing, ["train", "{base}/corpus.txt", "--out", "{d}"], 2,
     r"cannot write {d}: it is a folder; give a file name"),
    ("trace-out-missing-folder", nothing, ["trace", "{d}/fifo-not-read", "--text", "ab", "--out", "{d}/no/t.npz"], 2,
     r"cannot write {d}/no/t\.npz: folder {d}/no does not exist"),
    ("train-out-fifo", fifo, ["train", "{base}/corpus.txt", "--out", "{d}/fifo", *TRAIN], 2,
     r"cannot write {d}/fifo: it is a named pipe \(FIFO\), not a regular file; choose a file path"),
    ("trace-out-fifo", fifo, ["trace", "{base}/model.npz", "--text", "ab", "--out", "{d}/fifo", "--end", "2"], 2,
     r"cannot write {d}/fifo: it is a named pipe \(FIFO\), not a regular file; choose a file path"),
    ("export-out-under-a-file", out_parent_is_a_file,
     ["export", "{base}/model.npz", "--text", "ab", "--out", "{d}/file/ex", "--format", "csv"], 2,
     r"cannot create folder {d}/file/ex: {d}/file is a file, not a folder"),
]



def _fill(items, d, base):
    return [str(a).format(d=d, base=base) for a in items]


@pytest.mark.parametrize("case, make, argv, code, pattern", MATRIX, ids=[row[0] for row in MATRIX])
def test_matrix(case, make, argv, code, pattern, base, tmp_path, capsys, alarm):
    make(tmp_path, base)
    before = sorted(os.listdir(tmp_path))
    got = main(_fill(argv, tmp_path, base))
    out, err = capsys.readouterr()
    assert got == code, (out, err)
    assert "Traceback" not in err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("lstmviz: error: "), err
        assert re.search(pattern.format(d=re.escape(str(tmp_path)), base=re.escape(str(base))), lines[0]), lines[0]
        assert not [n for n in os.listdir(tmp_path) if n not in before], "a refused command left files behind"


def test_mac_line_endings_train_on_newlines(base, tmp_path, capsys):
    (tmp_path / "mac.txt").write_bytes(TEXT.replace("\n", "\r").encode())
    assert main(["train", str(tmp_path / "mac.txt"), "--out", str(tmp_path / "m.npz"), *TRAIN]) == 0
    from engine.checkpoint import load_checkpoint

    chars = load_checkpoint(tmp_path / "m.npz").vocab.chars
    assert "\n" in chars and "\r" not in chars


LONG = "abcd " * 2000


@pytest.mark.parametrize("argv, estimate", [
    (["trace", "{base}/model.npz", "--text", LONG, "--out", "{d}/t.npz"], r"a trace of 10000 steps needs about"),
    (["sample", "{base}/model.npz", "--length", "10000"], r"sampling 10000 characters needs about"),
    (["export", "{base}/model.npz", "--text", LONG, "--out", "{d}/ex", "--format", "csv", "--start", "0", "--end", "10000"],
     r"exporting a trace of 10000 steps needs about"),
], ids=["trace", "sample", "export"])
def test_estimates_refuse_before_allocating(argv, estimate, base, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1024 ** 2)  # the 10 KiB checkpoint still loads
    assert main(_fill(argv, tmp_path, base)) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(rf"lstmviz: error: {estimate} [\d.]+ MiB \(.*\); this machine has 1\.0 MiB available\n",
                        err), err
    assert os.listdir(tmp_path) == []


def test_memory_error_anywhere_is_one_line(base, tmp_path, capsys, monkeypatch):
    def exhausted(*args, **kwargs):
        np.empty((2 ** 50,), np.float64)  # 8 PiB: numpy raises its own MemoryError

    monkeypatch.setattr(SequenceModel, "trace", exhausted)
    code = main(["trace", str(base / "model.npz"), "--text", "ab", "--out", str(tmp_path / "t.npz")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("lstmviz: error: not enough memory (Unable to allocate ") and \
        err.endswith("; try a smaller model, batch or text\n") and err.count("\n") == 1, err


def test_unexpected_internal_error_is_one_line_naming_where(base, capsys, monkeypatch):
    def bug(*args, **kwargs):
        raise KeyError("nope")

    monkeypatch.setattr("lstmviz.cli.sample", bug)
    assert main(["sample", str(base / "model.npz")]) == 1
    err = capsys.readouterr().err
    assert re.fullmatch(r"lstmviz: error: internal error KeyError: 'nope' \(at test_bad_inputs\.py:\d+; please "
                        r"report it\)\n", err), err


@pytest.mark.parametrize("where", ["engine.trace_io.shutil.copyfileobj", "engine.trace_io.np.lib.format.write_array_header_2_0"])
def test_full_disk_names_the_target(base, tmp_path, capsys, monkeypatch, where):
    def full(*args):  # the archive's copy (src, dst), or a temporary entry file's header (f, header)
        next(a for a in reversed(args) if hasattr(a, "write")).write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(where, full)
    out = tmp_path / "t.npz"
    assert main(["trace", str(base / "model.npz"), "--text", "ab", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"lstmviz: error: cannot write {out}: the disk is full (No space left on "
                                       "device); free some space or choose another folder\n")
    assert os.listdir(tmp_path) == []


def test_too_little_disk_space_is_refused_before_training(base, tmp_path, capsys, monkeypatch):
    real_statvfs = os.statvfs

    def nearly_full(path):
        disk = real_statvfs(path)
        return os.statvfs_result((disk.f_bsize, 1, disk.f_blocks, disk.f_bfree, 100, *tuple(disk)[5:]))

    monkeypatch.setattr(os, "statvfs", nearly_full)
    monkeypatch.setattr(Trainer, "run", lambda *a, **k: pytest.fail("training started"))
    out = tmp_path / "m.npz"
    assert main(["train", str(base / "corpus.txt"), "--out", str(out), *TRAIN]) == 2
    assert re.fullmatch(rf"lstmviz: error: cannot write {re.escape(str(out))}: the disk is full \(it needs about "
                        r"[\d.]+ (bytes|KiB), 100 bytes are free\); free some space or choose another folder\n",
                        capsys.readouterr().err)


def test_malformed_saved_training_state_never_crashes_resume(base, tmp_path, capsys):
    """Every wrong JSON type in what --resume uses: a refusal (exit 2) or a resumed run (exit 0)."""
    meta = json.loads(str(_arrays(base / "model.npz")["meta"]))
    mutations = [(k, v) for k in meta["train_config"] for v in (None, "x", -1, [], {})]
    mutations += [(f"train_state.{k}", v) for k in meta["train_state"] for v in (None, "x", [], {"a": 1})]
    for key, value in mutations:
        meta_with(**{key if "." in key else f"train_config.{key}": value})(tmp_path, base)
        code = main(["train", str(base / "corpus.txt"), "--resume", str(tmp_path / "bad.npz"),
                     "--out", str(tmp_path / "m.npz"), "--steps", "4"])
        err = capsys.readouterr().err
        assert code in (0, 2) and "Traceback" not in err, (key, value, err)
        if code == 2:
            assert err.count("\n") == 1 and err.startswith("lstmviz: error: "), (key, value, err)


# --- subprocesses: the real program, no in-process shortcuts -------------------------------------
def _lstmviz(*argv, timeout=60, prefix=()):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*prefix, sys.executable, "-m", "lstmviz", *map(str, argv)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=timeout)


@pytest.mark.slow
def test_fifo_model_exits_at_once_in_a_real_process(tmp_path):
    os.mkfifo(tmp_path / "m.npz")
    started = time.perf_counter()
    result = _lstmviz("sample", tmp_path / "m.npz", timeout=30)
    assert result.returncode == 2 and time.perf_counter() - started < 20
    assert result.stderr == (f"lstmviz: error: {tmp_path}/m.npz is a named pipe (FIFO), not a regular file; "
                             "give a checkpoint file saved on disk\n")


@pytest.mark.slow
def test_unreadable_checkpoint_says_permission_denied_in_a_real_process(base, tmp_path):
    model = tmp_path / "m.npz"
    shutil.copy(base / "model.npz", model)
    model.chmod(0)
    if os.geteuid() == 0:
        if shutil.which("capsh") is None:
            pytest.skip("running as root without capsh: cannot drop the right to read any file")
        code = f"import sys; sys.argv = ['lstmviz', 'sample', {str(model)!r}]; from lstmviz.cli import main; sys.exit(main())"
        result = subprocess.run(["capsh", "--drop=cap_dac_override,cap_dac_read_search", "--", "-c",
                                 f"{sys.executable} -c \"{code}\""], capture_output=True, text=True, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    else:
        result = _lstmviz("sample", model)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"lstmviz: error: {model}: permission denied (cannot read the file; check its permissions)\n"


@pytest.mark.slow
def test_huge_model_refused_in_a_real_process(base, tmp_path):
    result = _lstmviz("train", base / "corpus.txt", "--hidden", "100000", "--out", tmp_path / "m.npz")
    assert result.returncode == 2
    assert re.fullmatch(r"lstmviz: error: a model with hidden size 100000 needs about [\d.]+ TiB \(parameters and "
                        r"adam state\); this machine has [\d.]+ [GMT]iB available\n", result.stderr), result.stderr


# --- 1. CSV: never silently wrong numbers ----------------------------------------------------------
def _csv(tmp_path, text, name="f.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_unquoted_thousands_separators_are_refused_naming_the_row(tmp_path):
    path = _csv(tmp_path, "date,price\n2024-01-02,10,012.6\n2024-01-03,9,876.5\n")
    with pytest.raises(DataError) as refused:
        read_csv_column(path, "price", min_values=2).values
    assert str(refused.value) == (
        f"{path}: row 2 has 3 fields but the first row (row 1) has 2 (delimiter ','); a \",\" inside a number "
        "(thousands separator or decimal comma) must be quoted (\"10,012.6\"), or the file saved with another "
        "delimiter (';' or tab), or the delimiter chosen explicitly")


def test_quoted_thousands_separators_are_not_numbers(tmp_path):
    path = _csv(tmp_path, 'date,price\n2024-01-02,"10,012.6"\n2024-01-03,"9,876.5"\n')
    with pytest.raises(DataError, match=r"row 2, column 'price': '10,012\.6' is not a finite number; remove "
                                        r"thousands separators, or if ',' is the decimal separator, choose decimal ','"):
        read_csv_column(path, "price", min_values=2).values


def test_semicolons_with_commas_in_a_text_column(tmp_path):
    path = _csv(tmp_path, "id;note;cost\n1;a (b, c);10.5\n2;d, e;11.25\n3;f;-2\n")
    assert csv_columns(path) == ["id", "note", "cost"]
    assert read_csv_column(path, "cost", min_values=3).values.tolist() == [10.5, 11.25, -2.0]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_is_detected(tmp_path, delimiter):
    rows = [["t", "value", "note"], ["1", "2.5", 'x "quoted" y'], ["2", "-3e2", "z"]]
    text = "".join(delimiter.join(f'"{c}"' if '"' in c else c for c in r).replace('"quoted"', '""quoted""') + "\n"
                   for r in rows)
    path = _csv(tmp_path, text)
    table = read_csv(path)
    assert table.delimiter == delimiter and [cells for _, cells in table.rows][1][2] == 'x "quoted" y'
    assert read_csv_column(path, "value", min_values=2).values.tolist() == [2.5, -300.0]


def test_user_overrides_delimiter_and_decimal(tmp_path):
    path = _csv(tmp_path, "date;price\n2024-01-02;10,5\n2024-01-03;9,75\n")
    with pytest.raises(DataError, match=r"'10,5' is not a finite number.*choose decimal ','"):
        read_csv_column(path, "price", min_values=2).values
    assert read_csv_column(path, "price", min_values=2, decimal=",").values.tolist() == [10.5, 9.75]
    assert read_csv_column(path, "price", min_values=2, delimiter=";", decimal=",").values.tolist() == [10.5, 9.75]
    with pytest.raises(DataError, match=r"'1\.010,5' is not a finite number; remove thousands separators"):
        read_csv_column(_csv(tmp_path, "p\n1.010,5\n2,5\n", "g.csv"), "p", min_values=2, decimal=",").values
    forced = _csv(tmp_path, "a|b\n1|2\n3|4\n", "h.csv")
    with pytest.raises(DataError, match=r"no column named 'b'; the first row has: 'a\|b'"):
        read_csv_column(forced, "b", min_values=2, delimiter=",").values
    with pytest.raises(ValueError, match=r"the delimiter and the decimal separator must differ"):
        read_csv(forced, delimiter=",", decimal=",")
    with pytest.raises(ValueError, match=r"delimiter must be one character"):
        read_csv(forced, delimiter=";;")


@pytest.mark.parametrize("cell", ["1_000", "\u0661\u0662", "inf", "0x10", "1.2.3", "--1"])
def test_only_plain_ascii_numbers_are_numbers(tmp_path, cell):
    path = _csv(tmp_path, f"v\n{cell}\n2\n")
    with pytest.raises(DataError, match=rf"row 2, column 'v': {re.escape(repr(cell))} is not a finite number"):
        read_csv_column(path, "v", min_values=2).values


@pytest.mark.parametrize("cell", ["nan", "NaN", "NULL", "#N/A"])
def test_missing_value_markers_are_missing_not_numbers(tmp_path, cell):
    path = _csv(tmp_path, f"v\n{cell}\n2\n")
    with pytest.raises(DataError, match=rf"row 2, column 'v': {re.escape(repr(cell))} marks a missing value"):
        read_csv_column(path, "v", min_values=2).values


def test_rows_with_other_field_counts_and_bad_quotes(tmp_path):
    with pytest.raises(DataError, match=r"row 3 has 1 field but the first row \(row 1\) has 2 \(delimiter ';'\); "
                                        r"fill in its missing fields"):
        read_csv(_csv(tmp_path, "a;b\n1;2\n3\n"))
    with pytest.raises(DataError, match=r"row 3 has 3 fields .*\(delimiter ';'\); quote fields that contain ';'"):
        read_csv(_csv(tmp_path, "a;b\n1;2\n3;4;5\n"))
    with pytest.raises(DataError, match=r"row 2 is not readable CSV \(unexpected end of data\); check its quotes"):
        read_csv(_csv(tmp_path, 'a,b\n1,"2\n3,4\n'))


def test_repeated_column_names_are_refused(tmp_path):
    path = _csv(tmp_path, "v,v\n1,2\n3,4\n")
    with pytest.raises(DataError, match=r"2 columns are named 'v' \(indices 0, 1\); choose one by its index"):
        read_csv_column(path, "v", min_values=2).values
    assert read_csv_column(path, 1, min_values=2).values.tolist() == [2.0, 4.0]


def test_quoted_multiline_cells_keep_row_numbers(tmp_path):
    path = _csv(tmp_path, 'note,v\n"two\nlines",1\nx,oops\n')
    with pytest.raises(DataError, match=r"row 4, column 'v': 'oops' is not a finite number"):
        read_csv_column(path, "v", min_values=1).values


def test_csv_from_a_fifo_is_refused(tmp_path, alarm):
    os.mkfifo(tmp_path / "f.csv")
    with pytest.raises(DataError, match=r"is a named pipe \(FIFO\)"):
        read_csv_column(tmp_path / "f.csv", 0).values


# --- 5. text decoding ----------------------------------------------------------------------------
SAMPLE = "line one\nline two\n\u00e9t\u00e9 \u00e0 Paris\n"


@pytest.mark.parametrize("data", [
    SAMPLE.replace("\n", "\r").encode(),  # old Mac
    SAMPLE.replace("\n", "\r\n").encode(),  # Windows
    SAMPLE.replace("\n", "\r\n", 1).replace("two\n", "two\r").encode(),  # mixed
    SAMPLE.encode("utf-16-le"),  # no BOM
    SAMPLE.encode("utf-16-be"),  # no BOM
    b"\xff\xfe" + SAMPLE.encode("utf-16-le"),
    b"\xfe\xff" + SAMPLE.encode("utf-16-be"),
    b"\xff\xfe\x00\x00" + SAMPLE.encode("utf-32-le"),
    b"\x00\x00\xfe\xff" + SAMPLE.encode("utf-32-be"),
    b"\xef\xbb\xbf" + SAMPLE.replace("\n", "\r\n").encode("utf-8"),
], ids=["cr", "crlf", "mixed", "utf16le", "utf16be", "utf16le-bom", "utf16be-bom", "utf32le-bom", "utf32be-bom",
        "utf8-bom-crlf"])
def test_every_encoding_and_line_ending_gives_the_same_text(data):
    assert decode_text(data, "t.txt") == SAMPLE


def test_binary_with_nul_bytes_says_how_to_convert_utf16_or_32():
    with pytest.raises(DataError, match=r"t\.txt looks like a binary file.*if it is UTF-16 or UTF-32 text without "
                                        r"a byte-order mark, convert it first, e\.g\. iconv -f UTF-16LE -t UTF-8"):
        decode_text(SAMPLE.encode("utf-32-le"), "t.txt")  # UTF-32 without BOM: not guessed


def test_non_latin_utf16_without_bom_says_how_to_convert():
    with pytest.raises(DataError, match=r"not valid UTF-8.*iconv -f UTF-16LE -t UTF-8"):
        decode_text(("\u4e2d\u6587\u6587\u672c\u3002" * 20).encode("utf-16-le"), "t.txt")  # no NUL bytes


def test_load_text_applies_the_same_decoding(tmp_path):
    path = tmp_path / "mac.txt"
    path.write_bytes(SAMPLE.replace("\n", "\r").encode("utf-16-le"))
    assert load_text(path) == SAMPLE


# --- 9. closing is prompt: validation stops between chunks -----------------------------------------
@pytest.fixture(scope="module")
def big_validation():
    """A model and 10 MiB of token ids (the validation part of a 100 MB corpus, or a 10 MB one whole)."""
    model = SequenceModel(ModelConfig(65, 65, hidden_size=128), rng=np.random.default_rng(0))
    ids = np.random.default_rng(1).integers(0, 65, size=10 * 1024 * 1024)  # (N,)
    return model, ids


def test_validation_with_stop_already_set_does_no_work(big_validation, monkeypatch):
    model, ids = big_validation
    stop = threading.Event()
    stop.set()
    monkeypatch.setattr(model, "forward", lambda *a, **k: pytest.fail("forward ran although stop was set"))
    assert evaluate(model, ids, 32, stop=stop) is None


def test_validation_stops_after_the_chunk_in_progress(big_validation, monkeypatch):
    model, ids = big_validation
    stop = threading.Event()
    calls = []
    real_forward = model.forward

    def forward_then_stop(*args, **kwargs):
        calls.append(1)
        stop.set()  # as a close request arriving during the first chunk
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", forward_then_stop)
    assert evaluate(model, ids, 32, stop=stop) is None
    assert len(calls) == 1  # of the 10 MiB / 32 / eval_chunk_length chunks


STOP_TIMING = """
import sys, threading, time
import numpy as np
from engine.model import ModelConfig, SequenceModel
from engine.runtime import keep_freed_memory
from engine.evaluation import evaluate
model = SequenceModel(ModelConfig(65, 65, hidden_size=int(sys.argv[1]), num_layers=int(sys.argv[2])),
                      rng=np.random.default_rng(0))
ids = np.random.default_rng(1).integers(0, 65, size=10 * 1024 * 1024)
stop = threading.Event()
forward = model.forward
def forward_then_stop(*args, **kwargs):
    stop.set()
    return forward(*args, **kwargs)
model.forward = forward_then_stop
keep_freed_memory()
assert evaluate(model, ids, 32, stop=stop) is None  # warm, as after the training steps that precede it
stop.clear()
started = time.perf_counter()
assert evaluate(model, ids, 32, stop=stop) is None
print(time.perf_counter() - started)
"""


@pytest.mark.slow
@pytest.mark.parametrize("hidden, layers", [(128, 1), (1024, 3)])
def test_stop_during_validation_returns_within_a_second(hidden, layers):
    """Timed as the app runs (one BLAS thread and freed memory kept, as ``python -m lstmviz``
    sets them; warm, as after training steps): a stop request during the first chunk of a
    10 MiB validation pass returns within 1 s, whatever the model size."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", STOP_TIMING, str(hidden), str(layers)], capture_output=True,
                            text=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) < 1.0


def test_training_run_stopped_during_validation_ends_at_once(monkeypatch):
    corpus = TextCorpus(TEXT * 50)
    model = SequenceModel(ModelConfig(len(corpus.vocab), len(corpus.vocab), hidden_size=8), rng=np.random.default_rng(0))
    trainer = Trainer(model, corpus, TrainConfig(seq_len=8, batch_size=4, steps=100, eval_every=1))
    stop = threading.Event()
    real_forward = model.forward
    evaluated = []

    def forward(*args, train=False, **kwargs):
        if not train:  # an evaluation chunk
            evaluated.append(1)
            stop.set()
        return real_forward(*args, train=train, **kwargs)

    monkeypatch.setattr(model, "forward", forward)
    progress = list(trainer.run(stop=stop))
    assert trainer.step == 1 and len(evaluated) == 1
    assert progress[-1].done and progress[-1].val_loss is None


def test_text_that_cannot_be_decoded_in_memory_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 4096)
    monkeypatch.setattr(memory, "available_bytes", lambda: 4096)
    with pytest.raises(memory.NotEnoughMemory, match=rf"^reading {re.escape(str(path))} needs about 24\.0 KiB \(the "
                                                     r"file's bytes and the decoded text\); this machine has 4\.0 KiB"):
        load_text(path)
