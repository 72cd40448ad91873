"""The analysis jobs read the viewed text from the first pass's checkpoints once it has them:
``jobs.text_source`` hands them with the ids, and ``jobs.chunks`` gives the same records as the
sequential stream."""

import os
import sys
import threading

import numpy as np
import pytest

from lstmviz import threads
from lstmviz.analysis import jobs
from lstmviz.session import Session

from .conftest import TEXT


@pytest.fixture
def session(qapp, model, vocab, monkeypatch):
    import lstmviz.session as session_module

    monkeypatch.setattr(session_module, "CHECKPOINT_EVERY", 16)
    monkeypatch.setattr(session_module, "LEVEL_STEPS_MAX", 10)  # the levels' forward covers 10 steps
    s = Session()
    s.set_model(model, vocab)
    yield s
    threads.stop_all()


def test_chunks_from_the_checkpoints_equal_the_sequential_stream(session, qtbot):
    s = session
    text = TEXT * 6
    s.set_text(text)
    qtbot.waitUntil(lambda: not s.passing, timeout=20000)
    model, ids, shown = jobs.text_source(s)
    assert shown == text and ids.every == 16 and len(ids.checkpoints) == len(text) // 16 + 1
    assert ids[5:].checkpoints is None and np.array_equal(ids, s.vocab.encode(text))
    reference = model.trace(np.asarray(ids))
    for start, end in ((0, None), (37, 301), (len(text) - 3, None)):
        seen, progress = start, []
        for t0, tr in jobs.chunks(model, ids, progress.append, start, end):
            assert t0 == seen
            for name in tr.names:
                for k in range(2):
                    np.testing.assert_allclose(tr.gate(name, k), reference.gate(name, k)[t0:t0 + tr.steps], rtol=0,
                                               atol=1e-12, err_msg=name)
            seen += tr.steps
        assert seen == (len(text) if end is None else end)
        assert progress == sorted(progress) and progress[-1] == 1.0


def test_before_the_pass_the_jobs_stream_from_the_checkpoints_known(session, monkeypatch):
    s = session
    text = TEXT * 6
    s.set_text(text)
    s.cancel_pass()
    model, ids, _ = jobs.text_source(s)
    assert len(ids.checkpoints) == s.stepper.computed // 16 + 1 < len(text) // 16 + 1
    got = np.concatenate([tr.gate("c", 0) for _, tr in jobs.chunks(model, ids, lambda f: None)])
    np.testing.assert_allclose(got, model.trace(np.asarray(ids)).gate("c", 0), rtol=0, atol=1e-12)


def test_a_whole_text_job_waits_for_the_first_pass_then_reads_its_checkpoints(session, qtbot, monkeypatch):
    """Started while the pass runs, a job streaming the whole text does not compute it a second
    time sequentially: it says it waits ("waiting for the first pass (n %)"), then reads every
    block from the pass's checkpoints (``iter_segments``), with the sequential stream's values.
    The checkpoints are copied once, when the pass has them (not by ``text_source`` nor per wait)."""

    from engine.stepper import Stepper

    gate = threading.Event()
    compute = Stepper.next_checkpoints

    def held(self, j, n, state=None, cells=None):
        if n > 0 and threading.current_thread() is not threading.main_thread():
            gate.wait()  # the pass worker waits here until the test lets it go
        return compute(self, j, n, state, cells)

    monkeypatch.setattr(Stepper, "next_checkpoints", held)
    copies, rows = [], Stepper._known_rows
    monkeypatch.setattr(Stepper, "_known_rows", lambda self: copies.append(self.computed) or rows(self))
    waits, wait = [], Stepper.wait_known
    monkeypatch.setattr(Stepper, "wait_known", lambda self, *a: waits.append(a) or wait(self, *a))
    sequential = []
    monkeypatch.setattr(jobs, "iter_chunks", lambda *a, **k: sequential.append(a) or iter(()))
    s, text = session, TEXT * 6
    s.set_text(text)
    runner, notes, results = jobs.JobRunner("test", s), [], []  # owned by the session, as by a panel
    runner.noted.connect(notes.append)
    runner.result.connect(results.append)
    try:
        assert s.passing
        model, ids, _ = jobs.text_source(s)
        assert ids.checkpoints is None and copies == []
        runner.run(lambda check: np.concatenate([tr.gate("c", 0) for _, tr in jobs.chunks(model, ids, check)]))
        qtbot.waitUntil(lambda: bool(notes) and len(waits) >= 3, timeout=20000)
        assert copies == []
        assert notes[0].startswith("waiting for the first pass (") and notes[0].endswith(" %)")
    finally:
        gate.set()
    qtbot.waitUntil(lambda: bool(results), timeout=20000)
    assert sequential == [] and notes[-1] == "" and not s.passing and copies == [len(text)]
    np.testing.assert_allclose(results[0], model.trace(np.asarray(ids)).gate("c", 0), rtol=0, atol=1e-12)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread niceness is Linux's")
def test_an_analysis_job_runs_at_a_lower_priority_than_the_gui_thread(session, qtbot):
    """A job's thread is niced ``BACKGROUND_NICE`` above the GUI thread (capped at 19), so a
    step on the GUI thread wins the CPU while a whole-text job runs; other workers keep the
    GUI's priority."""
    gui = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    runner, results = jobs.JobRunner("test", session), []
    runner.result.connect(results.append)
    runner.run(lambda check: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    qtbot.waitUntil(lambda: bool(results), timeout=20000)
    assert results == [min(gui + 10, 19)]  # BACKGROUND_NICE = 10 above the GUI, at most Linux's 19
    call = threads.Call(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    plain = []
    threads.Relay(call, session, done=lambda _w, nice: plain.append(nice))
    threads.start(call, "test-call")
    qtbot.waitUntil(lambda: bool(plain), timeout=20000)
    assert plain == [gui]


def test_a_job_streams_wide_batches_whatever_the_model_size(session, qtbot):
    """``segments_for``: checkpoint blocks per batched forward keep ``segments * H * L`` near
    ``BATCH_CELLS`` (each NumPy call of a job's loop works on that many numbers), within
    ``[SEGMENTS, SEGMENTS_MAX]`` blocks; ``chunks`` then hands over that many blocks per trace, so its
    Python-level loop runs ``ceil(blocks / segments)`` times."""
    from types import SimpleNamespace

    def sized(hidden, layers):
        return SimpleNamespace(config=SimpleNamespace(hidden_size=hidden, num_layers=layers))

    assert [jobs.segments_for(sized(h, k)) for h, k in ((128, 1), (64, 1), (12, 2), (256, 1), (256, 2), (1024, 3))] == [
        32, 64, 64, 16, 8, 8]
    s = session
    text = TEXT * 40
    s.set_text(text)
    qtbot.waitUntil(lambda: not s.passing, timeout=20000)
    model, ids, _ = jobs.text_source(s)
    segments = jobs.segments_for(model)
    blocks = len(text) // 16  # whole checkpoint blocks (every = 16)
    sizes = [tr.steps for _, tr in jobs.chunks(model, ids, lambda *a: None)]
    assert sum(sizes) == len(text)
    assert len(sizes) == -(-blocks // segments) + (len(text) % 16 > 0)
    assert sizes[0] == min(segments, blocks) * 16
