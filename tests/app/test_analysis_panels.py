"""The unit-analysis docks on the bundled demo, driven through their real widgets: brushing a
span lists the engine's matches, a feature ranks the units the README names, a clamp changes
the probabilities as the engine says, saturation and the loss strip equal the engine's, scrubbing
the training history changes the heatmaps, exports write files, and a long job can be cancelled."""

import csv
import threading

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from engine.analysis.features import feature
from engine.analysis.hypothesis import find_matches, select_units
from engine.analysis.intervene import Intervention, intervene
from engine.analysis.saturation import saturation
from engine.analysis.strip import strip
from engine.model import SequenceModel
from lstmviz import threads

from .helpers import add_intervention, shown

TIMEOUT_MS = 60_000


@pytest.fixture
def demo(qtbot, settings_path, errors):
    from lstmviz.app import build_window

    settings = QtCore.QSettings(str(settings_path), QtCore.QSettings.IniFormat)
    win = build_window(settings=settings)
    win.resize(1400, 900)
    with qtbot.waitExposed(win):
        win.show()
    QtWidgets.QApplication.processEvents()
    yield win
    win.close()
    win.deleteLater()


def whole(session, name="h", layer=0):
    ids = session.stepper.inputs
    trace = session.model.trace(ids)
    return ids, (np.tanh(trace.gate("c", layer)) if name == "tanh_c" else trace.gate(name, layer))


def click_row(qtbot, table, row):
    rect = table.visualItemRect(table.item(row, 0))
    qtbot.mouseClick(table.viewport(), QtCore.Qt.LeftButton, pos=rect.center())


def test_brushing_text_lists_the_engines_matches_and_a_click_seeks(qtbot, demo):
    s = demo.session
    panel = shown(demo, "hypothesis")
    text = s.text
    start = text.index('"') + 1
    end = text.index('"', start)
    editor = demo.panel("text").editor
    cursor = editor.textCursor()
    cursor.setPosition(start)
    cursor.setPosition(end, QtGui.QTextCursor.KeepAnchor)
    editor.setTextCursor(cursor)  # a selection in the text panel brushes the span
    assert s.brush_span == (start, end)
    qtbot.waitUntil(lambda: panel.result is not None and not panel.runner.busy, timeout=TIMEOUT_MS)

    _, h = whole(s)
    sel = select_units(h, start, end, panel.threshold_value(), panel.lead.value())
    expected = find_matches(h, sel, limit=50)
    got_sel, values, matches = panel.result
    assert got_sel.units == sel.units == (10,)  # the demo's quote unit
    assert matches == expected and len(expected) > 3
    np.testing.assert_allclose(values, h[start:end][:, list(sel.units)], atol=1e-6)
    assert panel.matches.rowCount() == len(expected)
    assert panel.matches.item(0, 0).text() == f"{expected[0].start}–{expected[0].end - 1}"
    click_row(qtbot, panel.matches, 1)
    qtbot.waitUntil(lambda: s.t == expected[1].end and not s.seeking, timeout=TIMEOUT_MS)

    panel.threshold.setValue(-100)  # every unit is on everywhere: the selection grows
    qtbot.waitUntil(lambda: len(panel.result[0].units) == s.hidden_size, timeout=TIMEOUT_MS)


def test_editing_the_text_reruns_the_match(qtbot, demo):
    s = demo.session
    panel = shown(demo, "hypothesis")
    s.brush(11, 34)
    qtbot.waitUntil(lambda: panel.result is not None and not panel.runner.busy, timeout=TIMEOUT_MS)
    before = panel.result[2]
    s.set_text(s.text[:200])
    qtbot.waitUntil(lambda: panel.result is not None and panel.result[2] != before and not panel.runner.busy,
                    timeout=TIMEOUT_MS)
    _, h = whole(s)
    assert panel.result[2] == find_matches(h, select_units(h, 11, 34, 0.3, 0), limit=50)
    assert all(m.end <= 200 for m in panel.result[2])


@pytest.mark.parametrize("name, unit, within", [("depth", 50, 1), ("quote", 10, 3), ("line_pos", 13, 1)])
def test_a_feature_ranks_the_demo_units(qtbot, demo, name, unit, within):
    s = demo.session
    panel = shown(demo, "probes")
    panel.feature_box.setCurrentText(name)
    qtbot.waitUntil(lambda: panel.scores is not None and not panel.runner.busy
                    and panel.status.text().startswith("Best"), timeout=TIMEOUT_MS)
    assert unit in [sc.unit for sc in panel.scores[:within]]
    assert panel.table.item(0, 3).text() == str(panel.scores[0].unit)
    strengths = [sc.strength for sc in panel.scores]
    assert strengths == sorted(strengths, reverse=True)
    y = feature(s.text, name).values
    best = panel.scores[0]
    if best.kind == "pearson":
        _, a = whole(s, best.quantity, best.layer)
        assert best.score == pytest.approx(np.corrcoef(a[:, best.unit], y)[0, 1], abs=1e-6)  # float32: batched rounding
    click_row(qtbot, panel.table, 0)  # colours the text by that unit and quantity
    assert (s.layer, s.unit) == (best.layer, best.unit)
    assert demo.panel("text").quantity == best.quantity


def test_clamp_changes_the_probabilities_as_the_engine_does(qtbot, demo):
    s = demo.session
    panel = shown(demo, "interventions")
    add_intervention(qtbot, panel, "c", 50, "clamp", -2.0)
    assert panel.list.count() == 1 and "1" in panel.badge.text()
    qtbot.waitUntil(lambda: panel.window is not None and panel.loss is not None and not panel.runner.busy
                    and not panel.window_runner.busy, timeout=TIMEOUT_MS)
    step = s.t - 1
    iv = Intervention(0, "c", 50, "clamp", -2.0, step, None)
    assert panel.interventions == [iv]
    ref = intervene(s.model, s.stepper.inputs, [iv], window=1)
    k = step - panel.window.lo
    np.testing.assert_allclose(panel.window.probs_after, ref.changed.outputs[0], atol=1e-6)
    np.testing.assert_allclose(panel.window.probs_before, ref.original.outputs[0], atol=1e-6)
    np.testing.assert_array_equal(panel.window.probs_after, panel.window.changed.outputs[k])
    assert not np.allclose(panel.window.probs_after, panel.window.probs_before, atol=1e-3)
    assert panel.loss.text_delta == pytest.approx(ref.delta, rel=1e-5)
    assert panel.loss.start == step - step % s.stepper.every  # from the stored checkpoint before it
    assert f"{panel.loss.delta:+.4f}" in panel.status.text()
    assert panel.window.sample_without != panel.window.sample_with
    params = s.model.params["l0.Wx"].copy() if "l0.Wx" in s.model.params else None
    panel.list.setCurrentRow(0)
    qtbot.mouseClick(panel.remove_button, QtCore.Qt.LeftButton)
    assert panel.list.count() == 0 and panel.badge.text() == "none"
    if params is not None:  # nothing was written into the model
        np.testing.assert_array_equal(s.model.params["l0.Wx"], params)


def test_intervened_heatmaps_beside_the_originals(qtbot, demo):
    s = demo.session
    gates = demo.panel("gates")
    panel = shown(demo, "interventions")
    start = 120  # inside the steps the gate heatmaps show
    iv = Intervention(0, "c", 50, "zero", 0.0, start, None)
    panel.shown.setCurrentText("c")
    panel.add(iv)
    qtbot.waitUntil(lambda: panel.window is not None and not panel.window_runner.busy, timeout=TIMEOUT_MS)
    lo, hi = (int(np.ceil(x)) for x in gates.views["h"].plot.viewRange()[0])
    assert panel.views["intervened"].plot.viewRange()[0] == gates.views["h"].plot.viewRange()[0]  # one time axis
    assert panel.window.lo == max(0, lo) and panel.window.original.steps == min(hi, s.steps) - panel.window.lo
    orig, changed, diff = (panel.views[p].displayed_image() for p in ("original", "intervened", "difference"))
    assert panel.views["intervened"].t0 == panel.window.lo == 0
    ref = intervene(s.model, s.stepper.inputs, [iv], window=changed.shape[1] - start)
    whole = s.model.trace(s.stepper.inputs[: changed.shape[1]]).gate("c", 0).T  # (H, n)
    np.testing.assert_allclose(orig, whole, atol=1e-5)
    np.testing.assert_allclose(changed[:, start:], ref.changed.gate("c", 0).T, atol=1e-5)
    assert np.all(changed[50, start:] == 0.0)
    assert np.array_equal(changed[:, :start], orig[:, :start])  # before the intervention: bit-identical
    assert not np.array_equal(changed[:, start], orig[:, start])
    np.testing.assert_array_equal(diff, changed - orig)
    panel.shown.setCurrentText("h")  # another quantity: redrawn from the same runs
    np.testing.assert_allclose(panel.views["intervened"].displayed_image()[:, start:], ref.changed.gate("h", 0).T,
                               atol=1e-5)


def test_whole_text_loss_equals_a_direct_computation(qtbot, demo):
    s = demo.session
    panel = shown(demo, "interventions")
    s.set_text(s.text[:500])
    qtbot.waitUntil(lambda: s.steps == 500 and not s.seeking, timeout=TIMEOUT_MS)
    iv = Intervention(0, "h", 50, "zero", 0.0, 300, None)
    panel.add(iv)
    qtbot.waitUntil(lambda: panel.loss is not None and not panel.runner.busy, timeout=TIMEOUT_MS)
    ids, model = s.stepper.inputs, s.model
    W, b = model.params["head.W"].astype(np.float64), model.params["head.b"].astype(np.float64)
    nll = {False: [], True: []}
    for edit in (False, True):  # the LSTM stepped by hand; from step 300 on, h[50] is set to 0
        state = None
        for t in range(len(ids) - 1):
            _, state, _ = model.step(ids[t : t + 1], state)
            h, c = state[0]
            if edit and t >= 300:
                h = h.copy()
                h[0, 50] = 0.0
                state = [(h, c)]
            scores = h[0].astype(np.float64) @ W + b
            nll[edit].append(np.log(np.exp(scores - scores.max()).sum()) + scores.max() - scores[ids[t + 1]])
    before, after = np.array(nll[False]), np.array(nll[True])
    assert panel.loss.start == 256 and panel.loss.steps == 499 - 256
    assert panel.loss.before == pytest.approx(before[256:].mean(), rel=1e-5)
    assert panel.loss.after == pytest.approx(after[256:].mean(), rel=1e-5)
    assert panel.loss.text_delta == pytest.approx((after - before).mean(), rel=1e-4)


def test_whole_text_loss_stops_at_its_next_cancel_point(qtbot, demo, monkeypatch):
    from lstmviz.analysis import intervene_panel

    s = demo.session
    panel = shown(demo, "interventions")
    s.set_text(s.text * 400)  # 225 k characters: about 440 chunks of the loss job
    cancelled = []  # set on the GUI thread when Cancel is clicked
    after_cancel = []  # chunks the worker finished after that
    loss_change = intervene_panel.loss_change

    def counting_loss_change(*args, progress, **kwargs):
        def counted(done, total):
            if cancelled:
                after_cancel.append(done)
            progress(done, total)  # the job's cancel point: raises once cancelled

        return loss_change(*args, progress=counted, **kwargs)

    monkeypatch.setattr(intervene_panel, "loss_change", counting_loss_change)

    def cancel_on_progress(fraction):
        if fraction > 0 and not cancelled:
            cancelled.append(fraction)
            qtbot.mouseClick(cancel_button(panel), QtCore.Qt.LeftButton)

    panel.runner.progressed.connect(cancel_on_progress)
    panel.add(Intervention(0, "h", 50, "zero", 0.0, 10, None))
    qtbot.waitUntil(lambda: bool(cancelled), timeout=TIMEOUT_MS)
    assert not panel.runner.busy
    qtbot.waitUntil(lambda: not [t for t in threads.live_threads() if t.objectName() == "analysis-interventions"],
                    timeout=TIMEOUT_MS)
    assert len(after_cancel) <= 1  # the chunk under way when Cancel came, then the cancel point stopped it
    QtWidgets.QApplication.processEvents()
    assert panel.loss is None  # the cancelled job delivered nothing


def cancel_button(panel):
    return [b for b in panel.findChildren(QtWidgets.QPushButton) if b.text() == "Cancel"][0]


def test_saturation_and_strip_equal_the_engine(qtbot, demo, tmp_path, monkeypatch):
    from lstmviz import export_actions

    s = demo.session
    panel = shown(demo, "saturation")
    qtbot.waitUntil(lambda: panel.result is not None and not panel.runner.busy, timeout=TIMEOUT_MS)
    ref = saturation(s.model, s.stepper.inputs)
    assert [(r.layer, r.gate) for r in panel.result] == [(r.layer, r.gate) for r in ref]
    for got, want in zip(panel.result, ref):
        np.testing.assert_array_equal(got.left, want.left)
        np.testing.assert_array_equal(got.right, want.right)
    x, y = panel.scatters["f"].getData()
    np.testing.assert_array_equal(x, ref[1].left)
    path = tmp_path / "sat.csv"
    monkeypatch.setattr(export_actions, "ask_save_path", lambda *a: str(path))
    panel.export_csv()
    rows = list(csv.reader(path.open()))
    assert rows[0][:3] == ["layer", "gate", "unit"] and len(rows) == 1 + 3 * s.hidden_size
    assert float(rows[1][3]) == ref[0].left[0]

    strip_panel = demo.panel("strip")
    qtbot.waitUntil(lambda: strip_panel.losses is not None, timeout=TIMEOUT_MS)
    np.testing.assert_allclose(strip_panel.losses, strip(s.model, s.stepper.inputs, k=0).loss, rtol=1e-4)  # float32: batched rounding
    png = tmp_path / "strip.png"
    monkeypatch.setattr(export_actions, "ask_save_path", lambda *a: str(png))
    strip_panel.export_picture()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_zooming_in_labels_the_time_axis_and_the_strip(qtbot, demo):
    s = demo.session
    gates = demo.panel("gates")
    gates.views["f"].plot.setXRange(s.t - 20, s.t - 1, padding=0)
    QtWidgets.QApplication.processEvents()
    ticks = gates.views["h"].plot.getAxis("bottom")._tickLevels
    assert ticks is not None and (s.t - 1, repr(s.text[s.t - 1])[1:-1]) in ticks[0]
    strip_panel = demo.panel("strip")
    qtbot.waitUntil(lambda: len(strip_panel.labels) > 0, timeout=TIMEOUT_MS)
    lo, hi = strip_panel.visible_steps()
    assert len(strip_panel.labels) == (hi - lo) * 6  # the character and its top 5 predictions


def test_scrubbing_training_history_changes_the_heatmaps(qtbot, demo):
    s = demo.session
    history = shown(demo, "history")
    model, vocab = s.model, s.vocab
    early = SequenceModel(model.config, params={n: v * 0.3 for n, v in model.params.items()})
    history.record(early, vocab, 10)
    history.record(model, vocab, 500)
    view = demo.panel("gates").views["h"]
    latest = view.displayed_image().copy()
    history.slider.setValue(0)
    qtbot.waitUntil(lambda: s.model is early, timeout=TIMEOUT_MS)
    t = s.t
    expected = early.trace(s.stepper.inputs[:t]).gate("h", 0)[max(0, t - 200):t].T
    np.testing.assert_allclose(view.displayed_image(), expected, atol=1e-6)
    assert not np.allclose(view.displayed_image(), latest)
    assert "step 10" in history.label.text()
    qtbot.mouseClick(history.latest, QtCore.Qt.LeftButton)
    assert s.model is model
    np.testing.assert_allclose(view.displayed_image(), latest)


def test_history_is_bounded(qtbot, demo):
    from lstmviz.analysis.history_panel import MAX_SNAPSHOTS

    s = demo.session
    history = demo.panel("history")
    for k in range(3 * MAX_SNAPSHOTS):
        history.record(s.model, s.vocab, k)
    assert len(history.snapshots) <= MAX_SNAPSHOTS
    assert history.snapshots[0].step == 0 and history.snapshots[-1].step == 3 * MAX_SNAPSHOTS - 1


def test_a_long_probe_is_cancelled_and_its_worker_finishes(qtbot, demo):
    s = demo.session
    panel = shown(demo, "probes")
    qtbot.waitUntil(lambda: panel.scores is not None and not panel.runner.busy, timeout=TIMEOUT_MS)
    panel.scores = None
    s.set_text(s.text * 400)  # 225 k characters: several seconds of probing
    qtbot.waitUntil(lambda: panel.runner.busy and panel.findChild(QtWidgets.QProgressBar).value() > 0,
                    timeout=TIMEOUT_MS)
    cancel = [b for b in panel.findChildren(QtWidgets.QPushButton) if b.text() == "Cancel"][0]
    qtbot.mouseClick(cancel, QtCore.Qt.LeftButton)
    assert not panel.runner.busy
    qtbot.waitUntil(lambda: not threads.live_threads(), timeout=TIMEOUT_MS)
    QtWidgets.QApplication.processEvents()
    assert panel.scores is None  # the cancelled job delivered nothing


def test_new_weights_recompute_saturation(qtbot, demo):
    s = demo.session
    panel = shown(demo, "saturation")
    qtbot.waitUntil(lambda: panel.result is not None and not panel.runner.busy, timeout=TIMEOUT_MS)
    first = panel.result
    for scale in (0.5, 0.2):  # two updates in a row, as training relays them: the latest is shown
        s.set_model(SequenceModel(s.model.config, params={n: v * scale for n, v in s.model.params.items()}), s.vocab)
    latest = s.model
    qtbot.waitUntil(lambda: panel.result is not first and not panel.runner.busy, timeout=TIMEOUT_MS)
    for got, want in zip(panel.result, saturation(latest, s.stepper.inputs)):
        np.testing.assert_array_equal(got.left, want.left)


def test_brush_is_clipped_and_signalled_once(qtbot, demo):
    s = demo.session
    seen = []
    s.brushed.connect(lambda a, b: seen.append((a, b)))
    s.brush(-5, 10)
    s.brush(0, 10)  # unchanged: no signal
    s.brush(s.steps - 2, s.steps + 100)
    s.brush(7, 7)  # empty: cleared
    assert seen == [(0, 10), (s.steps - 2, s.steps), (0, 0)]
    assert s.brush_span == (0, 0)


def test_the_brush_shows_on_the_heatmap_and_dragging_it_rebrushes(qtbot, demo):
    s = demo.session
    regions = demo.panel("gates").brush_regions
    region = regions["f"]
    assert not region.isVisible()
    s.brush(100, 120)
    assert region.isVisible() and region.getRegion() == (99.5, 119.5)
    region.setRegion((104.5, 130.5))  # as a drag of its edges leaves it
    region.sigRegionChangeFinished.emit(region)
    assert s.brush_span == (105, 131)
    assert all(r.getRegion() == (104.5, 130.5) for r in regions.values())  # every heatmap follows
    s.brush(0, 0)  # cleared: gone from every heatmap
    assert not any(r.isVisible() for r in regions.values())


def test_probe_ranking_exports_as_csv_and_the_view_as_svg(qtbot, demo, tmp_path, monkeypatch):
    from lstmviz import export_actions

    panel = shown(demo, "probes")
    panel.feature_box.setCurrentText("line_pos")
    qtbot.waitUntil(lambda: panel.scores is not None and not panel.runner.busy
                    and panel.status.text().startswith("Best"), timeout=TIMEOUT_MS)
    path = tmp_path / "probe.csv"
    monkeypatch.setattr(export_actions, "ask_save_path", lambda *a: str(path))
    panel.export_csv()
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["rank", "layer", "quantity", "unit", "score", "kind", "bound"]
    assert len(rows) == 1 + len(panel.scores)
    assert rows[1][2:4] == [panel.scores[0].quantity, str(panel.scores[0].unit)]
    assert float(rows[1][4]) == panel.scores[0].score
    svg = tmp_path / "saturation.svg"
    sat = shown(demo, "saturation")
    monkeypatch.setattr(export_actions, "ask_save_path", lambda *a: str(svg))
    sat.export_picture()
    assert b"<svg" in svg.read_bytes()[:2000]
    assert sat.scatters["i"].opts["tip"](x=0.25, y=0.5, data=7) == "unit 7: < 0.1 25% of steps, > 0.9 50%"


def test_regex_and_brushed_span_features(qtbot, demo):
    from engine.analysis.probe import probe

    s = demo.session
    panel = shown(demo, "probes")
    panel.feature_box.setCurrentText("regular expression")
    panel.regex.setText("[")  # a bad pattern: one line in the status, no ranking
    panel.regex.editingFinished.emit()
    qtbot.waitUntil(lambda: not panel.runner.busy and "[" in panel.status.text()
                    and not panel.status.text().startswith("Ranking"), timeout=TIMEOUT_MS)
    panel.regex.setText(r"\d")
    panel.regex.editingFinished.emit()
    qtbot.waitUntil(lambda: panel.scores is not None and not panel.runner.busy, timeout=TIMEOUT_MS)
    ref = probe(s.model, s.stepper.inputs, feature(s.text, r"regex:\d"))
    assert [(x.layer, x.quantity, x.unit) for x in panel.scores[:5]] == [(x.layer, x.quantity, x.unit) for x in ref[:5]]
    panel.scores = None
    s.brush(100, 140)
    panel.feature_box.setCurrentText("brushed span")
    qtbot.waitUntil(lambda: panel.scores is not None and not panel.runner.busy, timeout=TIMEOUT_MS)
    assert panel.scores[0].kind == "auc"


def test_a_panel_behind_a_tab_computes_only_once_shown(qtbot, demo):
    s = demo.session
    panel = demo.panel("hypothesis")
    shown(demo, "gates")
    s.brush(11, 34)
    QtWidgets.QApplication.processEvents()
    assert not panel.runner.busy and panel.result is None
    shown(demo, "hypothesis")
    qtbot.waitUntil(lambda: panel.result is not None and not panel.runner.busy, timeout=TIMEOUT_MS)
    assert panel.result[0].units == (50,)


def test_dragging_across_a_heatmap_brushes_and_lists_the_matches(qtbot, demo):
    s = demo.session
    view = shown(demo, "gates").views["f"]  # any heatmap of the panel
    axis = view.mapFromScene(view.plot.getAxis("bottom").sceneBoundingRect().center())
    x_range = view.plot.viewRange()[0]
    qtbot.mousePress(view.viewport(), QtCore.Qt.LeftButton, pos=axis)
    for dx in (20, 60):
        qtbot.mouseMove(view.viewport(), axis + QtCore.QPoint(dx, 0))
    qtbot.mouseRelease(view.viewport(), QtCore.Qt.LeftButton, pos=axis + QtCore.QPoint(60, 0))
    assert view.plot.viewRange()[0][0] < x_range[0] - 5  # dragging the time axis still pans
    assert s.brush_span == (0, 0)
    press, middle, release = (view.mapFromScene(view.scene_pos_of(20, t)) for t in (33, 25, 11))  # right to left
    qtbot.mouseMove(view.viewport(), press)  # the pointer arrives over the cells first, as a hand moves it
    qtbot.mousePress(view.viewport(), QtCore.Qt.LeftButton, pos=press)
    qtbot.mouseMove(view.viewport(), middle)
    qtbot.mouseMove(view.viewport(), release)
    qtbot.mouseRelease(view.viewport(), QtCore.Qt.LeftButton, pos=release)
    assert s.brush_span == (11, 34)  # the steps the drag crossed, both ends included
    gates = demo.panel("gates")
    QtWidgets.QApplication.processEvents()
    for name in s.names:  # the brushed span stays on every heatmap, outlined in an opaque colour
        region = gates.brush_regions[name]
        assert region.isVisible() and region.getRegion() == (10.5, 33.5), name
        assert region.scene() is gates.views[name].plot.scene()
        for line in region.lines:
            assert line.isVisible() and line.pen.color().alpha() == 255 and line.pen.widthF() >= 2
    assert s.selected_step != 11 or s.unit != 20  # a drag is not a click on a cell
    panel = shown(demo, "hypothesis")
    qtbot.waitUntil(lambda: panel.result is not None and not panel.runner.busy, timeout=TIMEOUT_MS)
    _, h = whole(s)
    expected = find_matches(h, select_units(h, 11, 34, 0.3, 0), limit=50)
    assert panel.result[0].units == (50,)
    assert panel.matches.rowCount() == len(expected) > 0
    assert [panel.matches.item(r, 0).text() for r in range(len(expected))] == [f"{m.start}–{m.end - 1}" for m in expected]


def test_the_loss_strip_follows_the_heatmaps_steps_and_its_rows_are_readable(qtbot, demo):
    s = demo.session
    gates = shown(demo, "gates")
    strip_panel = demo.panel("strip")
    view = gates.views["h"]
    qtbot.waitUntil(lambda: strip_panel.losses is not None, timeout=TIMEOUT_MS)
    assert strip_panel.plot.viewRange()[0] == view.plot.viewRange()[0]
    view.plot.setXRange(s.t - 15, s.t - 1, padding=0)  # zoomed in: the characters and predictions
    qtbot.waitUntil(lambda: len(strip_panel.labels) > 0, timeout=TIMEOUT_MS)
    assert strip_panel.plot.viewRange()[0] == view.plot.viewRange()[0]
    line = QtGui.QFontMetricsF(strip_panel.font()).lineSpacing()

    def row_px():
        QtWidgets.QApplication.processEvents()
        vb = strip_panel.plot.vb
        return abs(vb.mapViewToScene(QtCore.QPointF(0, 1)).y() - vb.mapViewToScene(QtCore.QPointF(0, 0)).y())

    qtbot.waitUntil(lambda: row_px() >= line, timeout=TIMEOUT_MS)  # each prediction row holds a line of text


def test_intervened_heatmaps_far_down_a_long_text_resume_from_the_loss_pass(qtbot, demo, monkeypatch, tmp_path):
    from lstmviz import export_actions
    from lstmviz.analysis import intervene_panel

    s = demo.session
    gates = demo.panel("gates")
    panel = shown(demo, "interventions")
    s.set_text(s.text * 20)  # 11 k characters
    qtbot.waitUntil(lambda: s.stepper.done, timeout=TIMEOUT_MS)
    starts = []
    run_window = intervene_panel.run_window
    monkeypatch.setattr(intervene_panel, "run_window", lambda *a: starts.append(a[5]) or run_window(*a))
    iv = Intervention(0, "h", 50, "zero", 0.0, 10, None)
    panel.add(iv)
    qtbot.waitUntil(lambda: panel.loss is not None and panel.window is not None and not panel.window_runner.busy,
                    timeout=TIMEOUT_MS)
    T = s.steps
    gates.views["h"].plot.setXRange(T - 100.5, T - 0.5, padding=0)  # the end of the text
    qtbot.waitUntil(lambda: panel.window.lo == T - 100 and not panel.window_runner.busy, timeout=TIMEOUT_MS)
    assert starts[-1] > T - 100 - intervene_panel.LOSS_CHUNK  # from the loss pass's kept state, not step 10
    ref = intervene(s.model, s.stepper.inputs, [iv], window=T)
    panel.shown.setCurrentText("h")
    shown_h = panel.views["intervened"].displayed_image()
    np.testing.assert_allclose(shown_h, ref.changed.gate("h", 0)[T - 100 - 10 :].T, atol=1e-5)
    png = tmp_path / "interventions.png"
    monkeypatch.setattr(export_actions, "ask_save_path", lambda *a: str(png))
    panel.export_picture()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def computed(qtbot, demo, name, done):
    """Raise the panel ``name`` and wait until ``done(panel)`` and its job is over."""
    panel = shown(demo, name)
    qtbot.waitUntil(lambda: done(panel) and not panel.runner.busy, timeout=TIMEOUT_MS)
    return panel


def test_a_new_text_clears_every_analysis_panel_at_once_and_new_weights_mark_them(qtbot, demo):
    from lstmviz.core.recipes import copy_model

    s = demo.session
    s.brush(11, 34)
    strip_panel = computed(qtbot, demo, "strip", lambda p: p.losses is not None)
    probes = computed(qtbot, demo, "probes", lambda p: p.scores is not None)
    sat = computed(qtbot, demo, "saturation", lambda p: p.result is not None)
    hyp = computed(qtbot, demo, "hypothesis", lambda p: p.result is not None)
    iv = shown(demo, "interventions")
    iv.add(Intervention(0, "h", 50, "zero", 0.0, 0, None))
    qtbot.waitUntil(lambda: iv.loss is not None and iv.window is not None and not iv.window_runner.busy,
                    timeout=TIMEOUT_MS)
    old_caption = strip_panel.status.text()
    assert "mean" in old_caption

    s.set_model(copy_model(s.model), s.vocab)  # new weights, same model and text (as training gives)
    assert strip_panel.losses is not None and strip_panel.status.text().startswith("(updating")

    s.set_text("a new text, [quite] unlike the demo (short).")  # nothing runs before these lines
    assert strip_panel.losses is None and strip_panel.image.image is None
    assert "mean" not in strip_panel.status.text()
    assert probes.scores is None and probes.table.rowCount() == 0
    assert sat.result is None and all(len(sc.data) == 0 for sc in sat.scatters.values())
    assert hyp.result is None and hyp.matches.rowCount() == 0 and not hyp.curves
    assert iv.loss is None and iv.window is None and len(iv.bars_after.opts["height"]) == 0
    assert all(v.displayed_image().size == 0 for v in iv.views.values())
    strip_panel = computed(qtbot, demo, "strip", lambda p: p.losses is not None)
    assert strip_panel.losses.shape == (s.steps,)  # the new text's


def visible_size(widget) -> tuple:
    """``(width, height)`` px of ``widget`` inside its dock's scroll area viewport (0: scrolled out)."""
    area = widget.parent()
    while not isinstance(area, QtWidgets.QScrollArea):
        area = area.parent()
    viewport = area.viewport()
    rect = QtCore.QRect(widget.mapTo(viewport, QtCore.QPoint(0, 0)), widget.size()).intersected(viewport.rect())
    return (rect.width(), rect.height()) if widget.isVisible() else (0, 0)


RESULTS_SEEN_PX = 80  # the least useful height of a result (a heatmap of the units, the bars, three matches)


def test_the_results_are_visible_at_the_default_window_size(qtbot, demo):
    s = demo.session
    hyp = shown(demo, "hypothesis")
    s.brush(11, 34)
    qtbot.waitUntil(lambda: hyp.result is not None, timeout=TIMEOUT_MS)
    QtWidgets.QApplication.processEvents()
    for widget in (hyp.plot, hyp.matches):
        assert min(visible_size(widget)) >= RESULTS_SEEN_PX, widget
    iv = shown(demo, "interventions")
    iv.add(Intervention(0, "h", 50, "zero", 0.0, 0, None))
    qtbot.waitUntil(lambda: iv.window is not None and not iv.window_runner.busy, timeout=TIMEOUT_MS)
    QtWidgets.QApplication.processEvents()
    for widget in (*iv.views.values(), iv.plot):
        assert min(visible_size(widget)) >= RESULTS_SEEN_PX, widget  # neither below the fold nor beside it


def test_interventions_name_the_step_as_the_transport_does_and_export_heatmaps_and_bars(qtbot, demo, tmp_path,
                                                                                      monkeypatch):
    from lstmviz import export_actions

    s = demo.session
    iv = shown(demo, "interventions")
    iv.add(Intervention(0, "h", 50, "zero", 0.0, 0, None))
    qtbot.waitUntil(lambda: iv.window is not None and not iv.window_runner.busy, timeout=TIMEOUT_MS)
    title = iv.plot.getPlotItem().titleLabel.text
    assert f"after step {s.t}" in title  # the cursor after s.t steps, "step s.t of T" in the transport
    picture = iv.figure()
    assert picture.isAncestorOf(iv.plot) and all(picture.isAncestorOf(v) for v in iv.views.values())
    png = tmp_path / "iv.png"
    monkeypatch.setattr(export_actions, "ask_save_path", lambda *a: str(png))
    iv.export_picture()
    image = QtGui.QImage(str(png))
    scale = image.width() / picture.width()
    bars = iv.plot.mapTo(picture, QtCore.QPoint(0, 0))
    assert bars.x() > iv.views["difference"].mapTo(picture, QtCore.QPoint(0, 0)).x()  # beside the heatmaps
    assert (bars.x() + iv.plot.width()) * scale <= image.width() + 1  # and inside the exported picture


def contrast_on_black(colour: QtGui.QColor) -> float:
    """WCAG 2 contrast ratio of ``colour`` on black (relative luminance with the sRGB curve)."""
    def linear(v):
        v /= 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    lum = 0.2126 * linear(colour.red()) + 0.7152 * linear(colour.green()) + 0.0722 * linear(colour.blue())
    return (lum + 0.05) / 0.05


def test_every_prediction_row_of_the_zoomed_strip_is_legible(qtbot, demo):
    s = demo.session
    strip_panel = shown(demo, "strip")
    qtbot.waitUntil(lambda: strip_panel.losses is not None, timeout=TIMEOUT_MS)
    demo.panel("gates").views["h"].plot.setXRange(s.t - 15, s.t - 1, padding=0)
    qtbot.waitUntil(lambda: len(strip_panel.labels) > 0, timeout=TIMEOUT_MS)
    rows = [(item.pos().y(), item.color) for item in strip_panel.labels if item.pos().y() >= 1]
    assert {y for y, _ in rows} == {1, 2, 3, 4, 5}
    assert min(contrast_on_black(c) for _, c in rows) >= 4.5  # WCAG AA for text, rows #3-#5 included
    by_row = {y: [c.lightness() for yy, c in rows if yy == y] for y in range(1, 6)}
    assert np.mean(by_row[1]) > np.mean(by_row[5])  # still brighter where more likely


def tick_gaps(axis) -> list:
    """Pixels between the drawn tick labels of ``axis`` (a horizontal pyqtgraph AxisItem)."""
    image = QtGui.QImage(10, 10, QtGui.QImage.Format_ARGB32)
    painter = QtGui.QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    rects = sorted((rect for rect, _flags, text in specs[2] if text), key=lambda r: r.left())
    return [b.left() - a.right() for a, b in zip(rects, rects[1:])]


def test_crowded_labels_are_gone(qtbot, demo):
    step = demo.panel("step")
    demo.docks["step"].raise_()
    QtWidgets.QApplication.processEvents()
    space = QtGui.QFontMetricsF(step.font()).averageCharWidth()
    gaps = tick_gaps(step.predictions.getAxis("bottom"))
    assert gaps and min(gaps) >= space  # "0  0.5  1", never "0.20.40.60.8"
    for name in ("strip", "hypothesis", "probes", "saturation", "interventions"):
        button = shown(demo, name).export_button
        style = button.style()
        needed = (button.fontMetrics().horizontalAdvance(button.text())
                  + style.pixelMetric(QtWidgets.QStyle.PM_MenuButtonIndicator, None, button)
                  + 2 * style.pixelMetric(QtWidgets.QStyle.PM_ButtonMargin, None, button))
        assert button.width() >= needed, name  # margin, text, menu arrow, margin: the arrow covers no text


RESULTS = {"strip": "losses", "hypothesis": "result", "probes": "scores", "saturation": "result",
           "interventions": "loss"}  # each analysis panel's attribute holding its shown result


@pytest.fixture
def job_starts(monkeypatch):
    """``(thread name, worker)`` of every worker started from now on."""
    started = []
    start = threads.start

    def counting(worker, name):
        started.append((name, worker))
        return start(worker, name)

    monkeypatch.setattr(threads, "start", counting)
    return started


def analysis_starts(started) -> list:
    return [name for name, _ in started if name.startswith("analysis-")]


@pytest.mark.parametrize("name", RESULTS)
@pytest.mark.parametrize("new", ["weights", "file"])
def test_a_new_model_starts_the_shown_panels_job_once(qtbot, demo, job_starts, model_path, name, new):
    s = demo.session
    s.brush(2, 9)  # within the short text the file's vocabulary keeps too
    panel = shown(demo, name)
    if name == "interventions":
        panel.add(Intervention(0, "h", 5, "zero", 0.0, 0, None))  # a unit both models have

    def settled():
        return (getattr(panel, RESULTS[name]) is not None and not panel.status.text().startswith("(updating")
                and not threads.live_threads())

    qtbot.waitUntil(settled, timeout=TIMEOUT_MS)
    del job_starts[:]
    if new == "weights":
        s.set_model(SequenceModel(s.model.config, params={n: v * 0.5 for n, v in s.model.params.items()}), s.vocab)
    else:
        s.load_model(model_path)  # another shape and vocabulary: model_changed, then text_changed
    qtbot.waitUntil(lambda: bool(job_starts) and settled(), timeout=TIMEOUT_MS)
    for _ in range(3):  # a start still due would be in the next turns
        QtWidgets.QApplication.processEvents()
    want = [f"analysis-{name}"] + (["analysis-interventions-window"] if name == "interventions" else [])
    assert sorted(analysis_starts(job_starts)) == want  # once each; none for the docks behind tabs


@pytest.mark.parametrize("turn", ["same", "next"])
def test_a_hidden_panel_brought_to_the_front_as_new_weights_arrive_starts_its_job_once(qtbot, demo, job_starts,
                                                                                     turn):
    """The saturation dock, behind a tab and out of date, comes to the front in the event-loop
    turn new weights arrive (its due refresh still pending) or in a later one: one job, on them."""
    s = demo.session
    panel = demo.panel("saturation")
    qtbot.waitUntil(lambda: not threads.live_threads(), timeout=TIMEOUT_MS)
    assert panel.result is None and not panel.on_screen()
    del job_starts[:]
    s.set_model(SequenceModel(s.model.config, params={n: v * 0.5 for n, v in s.model.params.items()}), s.vocab)
    if turn == "next":
        QtWidgets.QApplication.processEvents()
    demo.hooks.raise_panel("saturation")  # the user clicks its tab right then
    qtbot.waitUntil(lambda: panel.result is not None and not threads.live_threads(), timeout=TIMEOUT_MS)
    for _ in range(3):  # a start still due would be in the next turns
        QtWidgets.QApplication.processEvents()
    assert [name for name, _ in job_starts if name == "analysis-saturation"] == ["analysis-saturation"]
    for got, want in zip(panel.result, saturation(s.model, s.stepper.inputs)):
        np.testing.assert_array_equal(got.left, want.left)



def test_a_cancel_is_not_undone_by_the_refresh_due_for_an_earlier_change(qtbot, demo, job_starts):
    """The text changes and, in the same event-loop turn, the user adds an intervention (its job
    starts at once) and presses Cancel: the refresh due for the text change starts nothing."""
    s = demo.session
    panel = shown(demo, "interventions")
    qtbot.waitUntil(lambda: not threads.live_threads(), timeout=TIMEOUT_MS)
    del job_starts[:]
    s.set_text(s.text * 2)
    panel.add(Intervention(0, "h", 5, "zero", 0.0, 0, None))
    assert panel.runner.busy
    qtbot.mouseClick(cancel_button(panel), QtCore.Qt.LeftButton)
    for _ in range(3):  # the due refresh would run in these turns
        QtWidgets.QApplication.processEvents()
    assert not panel.runner.busy
    assert analysis_starts(job_starts).count("analysis-interventions") == 1

@pytest.fixture
def gated_strip(monkeypatch):
    """The strip's jobs wait (checking for a cancel) until the returned event is set."""
    from lstmviz.analysis import jobs, strip_panel

    release = threading.Event()

    def gated(model, ids, check, *args, **kwargs):
        while not release.wait(0.005):
            check(0.0)
        yield from jobs.chunks(model, ids, check, *args, **kwargs)

    monkeypatch.setattr(strip_panel, "chunks", gated)
    return release


@pytest.mark.parametrize("change, cancels", [("text", True), ("model", True), ("weights", False)])
def test_a_change_during_a_job_cancels_it_unless_only_the_weights_changed(qtbot, demo, job_starts, model_path,
                                                                        gated_strip, change, cancels):
    s = demo.session
    panel = shown(demo, "strip")
    qtbot.waitUntil(lambda: not threads.live_threads(), timeout=TIMEOUT_MS)
    del job_starts[:]
    s.set_text(s.text[:120])
    qtbot.waitUntil(lambda: panel.runner.busy, timeout=TIMEOUT_MS)
    if change == "text":
        s.set_text(s.text[:60])
    elif change == "model":
        s.load_model(model_path)
    else:
        s.set_model(SequenceModel(s.model.config, params={n: v * 0.5 for n, v in s.model.params.items()}), s.vocab)
    latest = s.model

    def jobs():
        return [worker for name, worker in job_starts if name == "analysis-strip"]

    if cancels:
        qtbot.waitUntil(lambda: len(jobs()) == 2, timeout=TIMEOUT_MS)
        assert jobs()[0].stop_requested.is_set() and not jobs()[1].stop_requested.is_set()
    else:
        for _ in range(3):  # a start still due would be in the next turns
            QtWidgets.QApplication.processEvents()
        assert len(jobs()) == 1 and not jobs()[0].stop_requested.is_set()  # the new weights' job waits for it
    gated_strip.set()
    qtbot.waitUntil(lambda: panel.losses is not None and not panel.runner.busy, timeout=TIMEOUT_MS)
    assert len(jobs()) == 2 and analysis_starts(job_starts) == ["analysis-strip"] * 2  # the first, one for the change
    assert s.model is latest and panel.losses.shape == (s.steps,)
    np.testing.assert_allclose(panel.losses, strip(s.model, s.stepper.inputs, k=0).loss, rtol=1e-4)
