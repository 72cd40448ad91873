"""``lstmviz export``: argument checking (exit 2, one line), predictable files, headless run."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtGui

from engine.checkpoint import save_checkpoint
from lstmviz.cli import main
from tests.app.test_export import TEXT, make_char_model, read_image

ROOT = Path(__file__).resolve().parents[2]


def run_export(argv) -> int:
    """``lstmviz export ARGV...`` in this process (through the real command line)."""
    return main(["export", *argv])


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """An LSTM (2 layers) and a vanilla RNN checkpoint: ``{"lstm": (path, model, vocab), ...}``."""
    folder = tmp_path_factory.mktemp("models")
    models = {}
    for cell in ("lstm", "rnn"):
        model, vocab = make_char_model(cell=cell, seed=1)
        path = folder / f"{cell}.npz"
        save_checkpoint(path, model, vocab=vocab)
        models[cell] = (path, model, vocab)
    return models


def test_export_writes_the_predictable_files(qapp, tmp_path, saved_models, capsys):
    path, model, vocab = saved_models["lstm"]
    out = tmp_path / "new" / "folder"  # created by the command
    code = run_export([str(path), "--text", TEXT, "--out", str(out), "--format", "png,csv,svg,npz",
                       "--panels", "f,c", "--layer", "1", "--width", "400"])
    assert code == 0
    expected = [out / f"layer1_{g}.{ext}" for g in ("f", "c") for ext in ("png", "csv", "svg")] + [out / "trace.npz"]
    assert sorted(os.listdir(out)) == sorted(p.name for p in expected)
    assert capsys.readouterr().out.splitlines() == [str(p) for p in expected]
    assert read_image(out / "layer1_f.png").width() == 400
    reference = model.trace(vocab.encode(TEXT), text=TEXT)
    with open(out / "layer1_c.csv", newline="", encoding="utf-8") as f:
        values = np.array([[float(x) for x in row[2:]] for row in list(csv.reader(f))[1:]])  # (T, H)
    assert np.array_equal(values.astype(np.float32), reference.gate("c", 1))
    with np.load(out / "trace.npz", allow_pickle=False) as npz:
        assert np.array_equal(npz["layer0_h"], reference.gate("h", 0))


def test_defaults_are_every_layer_and_every_panel_as_png(qapp, tmp_path, saved_models, capsys):
    for cell, names in (("lstm", "fiogch"), ("rnn", "h")):
        path = saved_models[cell][0]
        out = tmp_path / cell
        assert run_export([str(path), "--text", "the cat", "--out", str(out)]) == 0
        assert sorted(os.listdir(out)) == sorted(f"layer{k}_{g}.png" for k in (0, 1) for g in names)
        assert read_image(out / "layer0_h.png").width() == 800


def test_text_file_is_read(qapp, tmp_path, saved_models):
    source = tmp_path / "text.txt"
    source.write_text("the dog\nran", encoding="utf-8")
    out = tmp_path / "out"
    code = run_export([str(saved_models["lstm"][0]), "--text-file", str(source), "--out", str(out),
                       "--format", "csv", "--panels", "h", "--layer", "0"])
    assert code == 0
    with open(out / "layer0_h.csv", newline="", encoding="utf-8") as f:
        assert [row[1] for row in list(csv.reader(f))[1:]] == list("the dog") + ["\\n"] + list("ran")


@pytest.mark.parametrize("argv, fragment", [
    (["--panels", "f,x"], "unknown panels 'x'"),
    (["--panels", ""], "--panels is empty"),
    (["--format", "png,mp4"], "unknown format 'mp4'"),
    (["--colormap", "jet"], "unknown colormap 'jet'"),
    (["--layer", "2"], "--layer must be in 0..1"),
    (["--layer", "-1"], "--layer must be in 0..1"),
    (["--layer", "one"], "--layer must be a whole number"),
    (["--width", "15"], "between 16 and 20000"),
    (["--width", "20001"], "between 16 and 20000"),
    (["--width", "wide"], "--width must be a whole number"),
    (["--text", "the cat 🐈"], "not in the vocabulary"),
    (["--text", ""], "the text is empty"),
    (["--text-file", "/nonexistent/text.txt"], "no such file"),
    (["--model", "/nonexistent/model.npz"], "no such checkpoint"),
    (["--model", "rnn", "--panels", "f,h"], "rnn model has no f"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, saved_models, capsys, argv, fragment):
    argv = list(argv)
    model = str(saved_models["lstm"][0])
    if "--model" in argv:
        at = argv.index("--model")
        model = argv[at + 1] if argv[at + 1] != "rnn" else str(saved_models["rnn"][0])
        del argv[at:at + 2]
    if "--text" not in argv and "--text-file" not in argv:
        argv += ["--text", "the cat"]
    out = tmp_path / "out"
    code = run_export([model, "--out", str(out), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("lstmviz: error: ") and fragment in err, err
    assert not out.exists()  # nothing written, not even the folder


def test_unwritable_output_exits_2_with_one_line(tmp_path, saved_models, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = run_export([str(saved_models["lstm"][0]), "--text", "the cat", "--out", str(blocker / "out"),
                       "--format", "csv"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("lstmviz: error: cannot create folder"), err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_a_special_later_target_is_refused_before_any_file_is_written(tmp_path, saved_models, capsys):
    """A FIFO at trace.npz (the last file written): one line, exit 2, and no file before it."""
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "trace.npz")
    code = run_export([str(saved_models["lstm"][0]), "--text", "the cat", "--out", str(out),
                       "--format", "csv,png,npz", "--panels", "f"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("lstmviz: error: "), err
    assert "trace.npz" in err and "pipe" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["trace.npz"]


@pytest.mark.slow  # a subprocess
def test_headless_subprocess_without_display(tmp_path, saved_models):
    """No DISPLAY, no WAYLAND_DISPLAY, no QT_QPA_PLATFORM: the command picks offscreen itself."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "lstmviz", "export", str(saved_models["lstm"][0]),
                             "--text", TEXT, "--out", str(out), "--format", "png,svg", "--panels", "g",
                             "--layer", "0", "--width", "500"],
                            env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(out / "layer0_g.png"), str(out / "layer0_g.svg")]
    image = QtGui.QImage(str(out / "layer0_g.png"))
    assert image.width() == 500


def test_missing_required_argument_exits_2_with_one_line(saved_models, capsys):
    code = run_export([str(saved_models["lstm"][0]), "--text", "the cat"])  # no --out
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("lstmviz: error: ") and "--out" in err


def test_gif_animates_stepping_through_the_text(qapp, tmp_path, saved_models):
    """``--format gif``: one frame per step (T <= the frame cap), the requested width and the
    still image's size, an endless loop, a heatmap that grows; with a lower cap, that many frames."""
    Image = pytest.importorskip("PIL.Image")
    from lstmviz import export

    path, model, vocab = saved_models["lstm"]
    assert run_export([str(path), "--text", TEXT, "--out", str(tmp_path), "--format", "gif,png",
                       "--panels", "h", "--layer", "1", "--width", "320"]) == 0
    gif = Image.open(tmp_path / "layer1_h.gif")
    assert gif.size[0] == 320 and gif.n_frames == len(TEXT) and gif.info["loop"] == 0
    frames = []
    for k in (0, gif.n_frames - 1):
        gif.seek(k)
        frames.append(np.asarray(gif.convert("RGB"), dtype=np.int16))
    assert np.abs(frames[0] - frames[1]).mean() > 1  # the heatmap grows from step to step
    png = np.asarray(Image.open(tmp_path / "layer1_h.png").convert("RGB"), dtype=np.int16)
    assert png.shape == frames[1].shape
    trace = model.trace(vocab.encode(TEXT), text=TEXT)
    few = export.stepping_frames(trace, "h", 1, 320, max_frames=5)
    assert len(few) == 5 and few[-1] != few[-2]


def test_gif_without_pillow_is_a_clear_usage_error(tmp_path, saved_models, capsys, monkeypatch):
    """Pillow is an optional extra: without it, asking for a GIF is refused before anything is written."""
    from lstmviz import export

    monkeypatch.setattr(export, "gif_support", lambda: "GIF export needs Pillow: pip install 'lstmviz[gif]'")
    path = saved_models["lstm"][0]
    assert run_export([str(path), "--text", TEXT, "--out", str(tmp_path), "--format", "gif"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs Pillow" in err
    assert not any(tmp_path.iterdir())


def test_a_range_is_exported_with_its_true_step_numbers(qapp, tmp_path, saved_models, capsys):
    """--start/--end: the CSV rows are steps start..end-1 of the whole text, with the values of
    the whole-text trace there (computed from the true state before --start)."""
    path, model, vocab = saved_models["lstm"]
    text = TEXT * 8
    code = run_export([str(path), "--text", text, "--out", str(tmp_path), "--format", "csv,npz",
                       "--panels", "h", "--layer", "1", "--start", "37", "--end", "90"])
    assert code == 0
    reference = model.trace(vocab.encode(text), text=text)
    with open(tmp_path / "layer1_h.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    assert [int(row[0]) for row in rows] == list(range(37, 90))
    values = np.array([[float(x) for x in row[2:]] for row in rows])  # (53, H)
    np.testing.assert_allclose(values, reference.gate("h", 1)[37:90], rtol=0, atol=1e-6)
    with np.load(tmp_path / "trace.npz", allow_pickle=False) as npz:
        assert int(npz["start"]) == 37 and npz["layer0_c"].shape[0] == 53


def test_a_long_text_gives_a_default_window_with_a_note_and_too_large_ranges_are_refused(
        qapp, tmp_path, saved_models, capsys, monkeypatch):
    import lstmviz.export_cli as export_cli

    monkeypatch.setattr(export_cli, "DEFAULT_STEPS", 30)
    monkeypatch.setattr(export_cli, "MAX_PICTURE_STEPS", 40)
    path, _, _ = saved_models["lstm"]
    text = TEXT * 3
    assert run_export([str(path), "--text", text, "--out", str(tmp_path), "--format", "csv", "--panels", "f"]) == 0
    out = capsys.readouterr()
    assert out.err.splitlines() == [f"lstmviz: note: the text has {len(text):,} steps; exporting steps 0..30 "
                                    "(choose others with --start/--end)"]
    with open(tmp_path / "layer0_f.csv", newline="", encoding="utf-8") as f:
        assert len(list(csv.reader(f))) == 31
    assert run_export([str(path), "--text", text, "--out", str(tmp_path), "--start", "0", "--end", "41"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmviz: error: a png picture of 41 steps is too large") and len(err.splitlines()) == 1
    assert run_export([str(path), "--text", text, "--out", str(tmp_path), "--start", "20", "--end", "10"]) == 2
    assert "--start < --end" in capsys.readouterr().err


def test_light_style_draws_on_white_with_dark_axes(qapp, tmp_path, saved_models, capsys):
    """--style light: a white background and dark axis text; the heatmap cells are the same."""
    path = saved_models["lstm"][0]
    pictures = {}
    for style in ("dark", "light"):
        out = tmp_path / style
        assert run_export([str(path), "--text", TEXT, "--out", str(out), "--panels", "c", "--layer", "0",
                           "--width", "600", "--style", style]) == 0
        image = read_image(out / "layer0_c.png").convertToFormat(QtGui.QImage.Format_RGB888)
        raw = bytes(image.constBits())[: image.bytesPerLine() * image.height()]
        pictures[style] = np.frombuffer(raw, np.uint8).reshape(image.height(), image.bytesPerLine())[
            :, : 3 * image.width()].reshape(image.height(), image.width(), 3)
    dark, light = pictures["dark"], pictures["light"]
    assert (dark[2, 2] == 0).all() and (light[2, 2] == 255).all()  # the corner: background
    margin = light[:, :30].astype(int).sum(axis=2)  # the left margin: tick labels, axis title
    assert (margin < 200).sum() > 50  # dark ink on white
    h, w, _ = light.shape
    centre = (slice(h // 3, h // 2), slice(w // 3, w // 2))  # inside the heatmap
    assert np.array_equal(dark[centre], light[centre])
    assert run_export([str(path), "--text", TEXT, "--out", str(tmp_path / "x"), "--style", "sepia"]) == 2
    assert "sepia" in capsys.readouterr().err


def test_the_memory_check_counts_the_exported_steps_not_the_text(qapp, tmp_path, saved_models, capsys,
                                                                  monkeypatch):
    """A text whose whole trace would not fit is exported in its default window (only the
    window's records are kept); a range whose records would not fit is refused with one line."""
    import lstmviz.export_cli as export_cli
    from engine import memory
    from engine.checkpoint import load_char_checkpoint

    monkeypatch.setattr(export_cli, "DEFAULT_STEPS", 30)
    path, _, _ = saved_models["lstm"]
    config = load_char_checkpoint(path).model.config
    text = TEXT * 400
    image = memory.export_image_bytes(800, 800)  # more than any one picture of the default width
    allowed = memory.trace_bytes(config, 60) + image
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * 1024)  # the checkpoint still loads
    assert run_export([str(path), "--text", text, "--out", str(tmp_path), "--format", "csv"]) == 2
    err = capsys.readouterr().err  # refused in one line, without the default window's note
    assert err.startswith("lstmviz: error: exporting a trace of 30 steps") and len(err.splitlines()) == 1
    monkeypatch.setattr(memory, "available_bytes", lambda: allowed)
    assert memory.trace_bytes(config, len(text)) > 2 * allowed
    argv = [str(path), "--text", text, "--out", str(tmp_path), "--format", "csv", "--panels", "c"]
    assert run_export(argv) == 0, capsys.readouterr().err
    with open(tmp_path / "layer0_c.csv", newline="", encoding="utf-8") as f:
        assert len(list(csv.reader(f))) == 31
    capsys.readouterr()
    assert run_export([*argv, "--start", "0", "--end", str(len(text))]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lstmviz: error: exporting a trace of {len(text)} steps") and len(err.splitlines()) == 1


def test_data_formats_are_checked_against_their_own_size_not_a_picture(qapp, tmp_path, saved_models, capsys,
                                                                        monkeypatch):
    """A CSV or NPZ export needs the range's records and its own file, not a rendered picture:
    where a picture does not fit, csv and npz still run; each is refused when its own file does
    not fit, and a picture when its images do not."""
    import tracemalloc

    from engine import memory
    from engine.memory import trace_file_bytes
    from lstmviz.export import export_gate_csv
    from lstmviz.export_cli import _csv_bytes

    path, model, vocab = saved_models["lstm"]
    config = model.config
    text = TEXT * 40  # 1840 steps: enough rows that the per-row costs outweigh the fixed ones
    T, H = len(text), config.hidden_size
    reference = model.trace(vocab.encode(text), text=text)
    records = memory.trace_bytes(config, T)
    tracemalloc.start()
    export_gate_csv(tmp_path / "measured.csv", reference, "c", 0)
    measured = tracemalloc.get_traced_memory()[1]  # peak bytes of writing one CSV
    tracemalloc.stop()
    csv_file = _csv_bytes(config, T)
    assert measured <= csv_file <= 3 * measured  # the estimate bounds what writing the CSV takes
    npz_file = T * ((config.num_layers * 6 * H + config.output_size) * 4 + 12)  # float32 entries and the char
    assert npz_file == trace_file_bytes(config, T)
    image = memory.export_image_bytes(800, 800)
    assert image > 2 * max(csv_file, npz_file)  # a picture would dominate the count
    for fmt, own in (("csv", csv_file), ("npz", npz_file)):
        argv = [str(path), "--text", text, "--out", str(tmp_path / fmt), "--format", fmt, "--panels", "c"]
        monkeypatch.setattr(memory, "available_bytes", lambda own=own: records + own)
        assert run_export(argv) == 0, capsys.readouterr().err
        capsys.readouterr()
        monkeypatch.setattr(memory, "available_bytes", lambda own=own: records + own - 1)
        assert run_export(argv) == 2
        err = capsys.readouterr().err
        what = "one CSV file" if fmt == "csv" else "the NPZ file"
        assert err.startswith(f"lstmviz: error: exporting a trace of {T} steps needs about "), err
        assert f"(every gate of the exported steps and {what})" in err and len(err.splitlines()) == 1, err
    with open(tmp_path / "csv" / "layer0_c.csv", newline="", encoding="utf-8") as f:
        values = np.array([[float(x) for x in row[2:]] for row in list(csv.reader(f))[1:]])  # (T, H)
    assert np.array_equal(values.astype(np.float32), reference.gate("c", 0))
    monkeypatch.setattr(memory, "available_bytes", lambda: records + max(csv_file, npz_file))
    assert run_export([str(path), "--text", text, "--out", str(tmp_path / "png"), "--format", "png,csv",
                       "--panels", "c"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lstmviz: error: exporting a trace of {T} steps at 800 pixels wide needs about"), err
    assert "and the rendered images)" in err and not (tmp_path / "png").exists()
