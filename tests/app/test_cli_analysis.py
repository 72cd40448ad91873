"""``lstmviz probe`` and ``lstmviz saturation`` in-process through ``main([...])``, plus one
subprocess that checks the commands never import Qt."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.analysis.features import feature
from engine.analysis.probe import probe
from engine.checkpoint import load_char_checkpoint
from lstmviz.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "demo.npz"
VIEW = ROOT / "assets" / "demo_view.txt"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def demo():
    ckpt = load_char_checkpoint(DEMO)
    text = VIEW.read_text(encoding="utf-8")
    return ckpt, text, ckpt.vocab.encode(text)


def test_probe_table_ranks_the_depth_unit_first(capsys):
    code, out, err = run(capsys, "probe", DEMO, "--text-file", VIEW, "--feature", "depth", "--quantity", "h", "--top", "3")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("feature depth (continuous) over 562 steps: Pearson r")
    assert len(lines) == 2 + 3
    rank, layer, quantity, unit, score = lines[2].split()[:5]
    assert (rank, layer, quantity, unit) == ("1", "0", "h", "50") and float(score) > 0.8


def test_probe_json_and_csv_equal_the_engine_ranking(capsys, demo, tmp_path):
    ckpt, text, ids = demo
    expected = probe(ckpt.model, ids, feature(text, "quote"))
    out_csv = tmp_path / "ranking.csv"
    code, out, _ = run(capsys, "probe", DEMO, "--text", text, "--feature", "quote", "--top", "4", "--json",
                       "--csv", out_csv)
    assert code == 0
    data = json.loads(out)
    assert data["kind"] == "auc" and data["binary"] and data["steps"] == len(text)
    assert [(u["layer"], u["quantity"], u["unit"], u["score"], u["bound"]) for u in data["units"]] == \
        [(s.layer, s.quantity, s.unit, s.score, s.bound) for s in expected[:4]]
    with open(out_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 64 * 6  # every unit of every quantity, not only --top
    assert [(int(r["layer"]), r["quantity"], int(r["unit"]), float(r["score"])) for r in rows] == \
        [(s.layer, s.quantity, s.unit, s.score) for s in expected]


def test_probe_regex_feature_and_layer_filter(capsys):
    code, out, _ = run(capsys, "probe", DEMO, "--text-file", VIEW, "--feature", r"regex:x+=\d", "--layer", "0",
                       "--quantity", "c", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["feature"] == r"regex:x+=\d" and len(data["units"]) == 10
    assert {u["quantity"] for u in data["units"]} == {"c"}


def test_saturation_json_and_csv_equal_a_direct_count(capsys, demo, tmp_path):
    ckpt, text, ids = demo
    trace = ckpt.model.trace(ids)
    out_csv = tmp_path / "sat.csv"
    code, out, _ = run(capsys, "saturation", DEMO, "--text-file", VIEW, "--json", "--csv", out_csv)
    assert code == 0
    data = json.loads(out)
    assert data["steps"] == len(text) and [(g["layer"], g["gate"]) for g in data["gates"]] == [(0, "i"), (0, "f"), (0, "o")]
    for g in data["gates"]:
        a = trace.gate(g["gate"], 0)  # (T, H)
        assert g["left"] == ((a < 0.1).sum(axis=0) / len(text)).tolist()
        assert g["right"] == ((a > 0.9).sum(axis=0) / len(text)).tolist()
    with open(out_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 64
    assert float(rows[64 + 5]["right"]) == data["gates"][1]["right"][5] and rows[64 + 5]["gate"] == "f"


def test_saturation_table(capsys):
    code, out, _ = run(capsys, "saturation", DEMO, "--text", "Ka said \"lo\".\n")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "layer 0 gate i: fraction of 14 steps < 0.1 (left) and > 0.9 (right)"
    assert len(lines) == 3 * (2 + 64)
    unit, left, right = lines[2].split()
    assert unit == "0" and 0 <= float(left) <= 1 and 0 <= float(right) <= 1


@pytest.mark.parametrize("argv, message", [
    (["probe", DEMO, "--text", "ka", "--feature", "regex:("], "bad regular expression"),
    (["probe", DEMO, "--text", "ka", "--feature", "colour"], "unknown feature 'colour'"),
    (["probe", DEMO, "--text", "ka", "--feature", "depth", "--layer", "1"], "--layer must be in [0, 0]"),
    (["probe", DEMO, "--text", "ka", "--feature", "depth", "--top", "0"], "--top"),
    (["probe", DEMO, "--text", "ka", "--feature", "depth", "--quantity", "x"], "--quantity"),
    (["probe", DEMO, "--text", "kaka", "--feature", "depth"], "the feature is constant"),
    (["probe", DEMO, "--text", "kaka", "--feature", "quote"], "always off"),
    (["probe", DEMO, "--text", "", "--feature", "depth"], "the text is empty"),
    (["probe", DEMO, "--text", "k@", "--feature", "depth"], "not in the vocabulary"),
    (["probe", DEMO, "--feature", "depth"], "one of the arguments --text --text-file is required"),
    (["probe", DEMO, "--text", "ka"], "--feature"),
    (["probe", "/nonexistent.npz", "--text", "ka", "--feature", "depth"], "nonexistent.npz"),
    (["saturation", DEMO, "--text-file", "/nonexistent.txt"], "/nonexistent.txt"),
    (["saturation", DEMO, "--text", "ka", "--csv", "/nonexistent/s.csv"], "folder /nonexistent does not exist"),
])
def test_bad_arguments_exit_2_with_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("lstmviz: error: ") and message in err


def test_a_failed_csv_write_leaves_the_old_file(capsys, tmp_path, monkeypatch):
    target = tmp_path / "sat.csv"
    target.write_text("old\n", encoding="utf-8")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("lstmviz.cli_analysis.csv.writer", fail)
    code, _, err = run(capsys, "saturation", DEMO, "--text", "ka", "--csv", target)
    assert code == 2 and "No space left on device" in err
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["sat.csv"]


def test_commands_do_not_import_qt():
    code = ("import sys; from lstmviz.cli import main; "
            f"rc = main(['probe', {str(DEMO)!r}, '--text', 'ka (lo)', '--feature', 'depth', '--top', '1']); "
            "main(['saturation', " + repr(str(DEMO)) + ", '--text', 'ka']); "
            "sys.exit(10 if any(m.startswith(('PySide6', 'pyqtgraph')) for m in sys.modules) else rc)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Pearson r" in result.stdout and "layer 0 gate o" in result.stdout
