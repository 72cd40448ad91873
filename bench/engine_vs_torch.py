"""Training-step speed of the NumPy engine next to PyTorch, measured side by side in one process.

One training step = forward + BPTT backward + gradient clipping (global norm 5) + Adam update,
for a one-layer LSTM on one-hot characters (vocabulary 65) with a softmax head and mean
cross-entropy, float32. The engine runs ``Trainer.train_step`` (the product's step: the next
batch of a random text, carried state, gradients, clipping, Adam, the divergence checks and the
last-good snapshot); PyTorch uses ``nn.LSTM`` + ``nn.Linear`` +
``CrossEntropyLoss`` + ``clip_grad_norm_`` + ``optim.Adam`` at 1 and at 2 threads (``--torch-threads``),
with the one-hot input tensor built once outside the timed step (PyTorch's best case). All run
alternately after a warm-up (engine, torch 1t, torch 2t in each round; ``--reverse``: torch 2t,
torch 1t, engine, so that each run follows a different one),
each run once the machine is quiet (``bench.common.settle``: the process's other threads idle,
since OpenBLAS's workers spin about 0.1 s after a call, torch's OpenMP workers 10-20 ms, and a pool
still spinning slows the run after it; and other processes idle, waiting up to 2 s;
``--back-to-back`` runs without the pause); each figure is the median
(p25-p75) over ``--reps``; the ratio is the engine against the faster torch setting. The engine runs as the product runs it, by
``engine.runtime.training_plan`` as ``Trainer.run`` does: a large batch in two halves at once on two
threads with one BLAS thread each (data parallelism), else unsplit with the BLAS threads of
``blas_threads_for`` (problem size, cores, load); the "engine runs as" column is the plan the
trainer made and ran with (``Trainer.plan``), the load column the cores busy elsewhere it
measured (``engine.runtime.load_elsewhere``; measured for the row when the size alone decided). The floor is the step's multiply-adds
(``step_macs``) at the sgemm rate measured at the cores the step keeps busy: the time the matrix
products alone would take. The last columns say what two cores could do at best with the
engine's work: its CPU time per step on one core (``single_core_ms``: one BLAS thread, a split
batch's parts in turn), the floor of its products at one thread, and half of that CPU time,
the bound no sharing of the step between two cores can beat, against the faster torch (above
0.9, the ratio target cannot be met without cutting the work itself).

Also printed: single-timestep latency at batch 1 (``SequenceModel.step`` with its full gate
record vs ``torch.nn.LSTMCell`` under ``no_grad``) and the peak memory of one training step.

``--cpu-time`` compares engine and torch at one thread by the calling thread's CPU time
(``time.thread_time``), which a busy shared machine disturbs less than wall time (a split batch's
halves then run in turn on the calling thread).

Run from the repository root:
``python bench/engine_vs_torch.py [--reps 9] [--quick] [--cpu-time] [--reverse] [--back-to-back]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import SETTLE_MAX_S, alternate, machine_lines, quartiles, time_call  # noqa: E402
from engine import ModelConfig, SequenceModel  # noqa: E402
from engine.data import TextCorpus  # noqa: E402
from engine.runtime import TrainingPlan, blas_threads, load_elsewhere, training_plan  # noqa: E402
from engine.train import TrainConfig, Trainer  # noqa: E402

VOCAB = 65  # one-hot input size = softmax output size
LR = 2e-3  # Adam learning rate
CLIP = 5.0  # global gradient-norm limit
CONFIGS = {"small": (128, 32, 64), "medium": (256, 64, 100), "large": (512, 32, 64)}  # name -> (H, B, T)
MEMORY_CONFIG = (512, 64, 100)  # (H, B, T) of the peak-memory measurement
LATENCY_H = 512  # hidden size of the single-step latency measurement


def engine_trainer(H: int, B: int, T: int, seed: int = 0) -> Trainer:
    """An ``engine.train.Trainer`` (the product's training step: batch, gradients, clipping,
    Adam, divergence checks and snapshot) on a random text of ``VOCAB`` characters."""
    rng = np.random.default_rng(seed)
    alphabet = np.array([chr(33 + k) for k in range(VOCAB)])  # (V,) printable characters
    text = "".join(rng.choice(alphabet, size=max(200_000, 4 * B * (T + 1))))
    model = SequenceModel(ModelConfig(input_size=VOCAB, output_size=VOCAB, hidden_size=H), rng=rng)
    config = TrainConfig(seq_len=T, batch_size=B, steps=10**9, lr=LR, clip_norm=CLIP, seed=seed)
    return Trainer(model, TextCorpus(text, val_fraction=0.0), config)


def torch_trainer(H: int, B: int, T: int, seed: int = 0):
    """A closure running one PyTorch training step on fixed random ids."""
    import torch

    torch.manual_seed(seed)
    lstm, head = torch.nn.LSTM(VOCAB, H, batch_first=True), torch.nn.Linear(H, VOCAB)
    params = list(lstm.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    ids = torch.randint(0, VOCAB, (B, T))
    x = torch.nn.functional.one_hot(ids, VOCAB).float()  # (B, T, V)
    y = torch.randint(0, VOCAB, (B * T,))  # (B*T,)

    def step():
        optimizer.zero_grad(set_to_none=True)
        out, _ = lstm(x)  # (B, T, H)
        loss = loss_fn(head(out).reshape(B * T, VOCAB), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        optimizer.step()

    return step


def step_macs(H: int, B: int, T: int) -> int:
    """Multiply-adds of the engine's matrix products in one training step (one-hot input: the
    forward input projection is a row gather, its gradient one (V, BT) @ (BT, 4H) product)::

        forward   recurrent BT.H.4H + head BT.H.V
        backward  recurrent 2.BT.H.4H (dh, dWh) + input BT.V.4H (dWx) + head 2.BT.H.V (dh, dW)
    """
    N = B * T
    return 3 * N * H * 4 * H + N * VOCAB * 4 * H + 3 * N * H * VOCAB


def sgemm_rate(n: int = 1024, reps: int = 5, clock=time.perf_counter) -> float:
    """Measured float32 GEMM rate of NumPy's BLAS at its current threads, multiply-adds per
    second (best of ``reps`` (n, n) @ (n, n) products)."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)  # (n, n)
    b = rng.random((n, n), dtype=np.float32)  # (n, n)
    a @ b
    best = min(time_call(lambda: a @ b, clock) for _ in range(reps))
    return n**3 / best


def one_core_plan(trainer: Trainer) -> TrainingPlan:
    """The trainer's work on one core: its batch parts (if split) in turn, one BLAS thread."""
    return TrainingPlan(trainer.shards, 1, None, 1)


def single_core_ms(trainer: Trainer, reps: int) -> tuple[float, float]:
    """The engine's training step on one core: median CPU milliseconds of the calling thread
    (``time.thread_time``) over ``reps`` steps at one BLAS thread, a split batch's parts in
    turn (the same work the trainer's plan does, without its threads), and the floor of its
    products at the one-thread sgemm rate, milliseconds."""
    with blas_threads(1):
        trainer.plan = one_core_plan(trainer)
        times = alternate({"engine": trainer.train_step}, reps, clock=time.thread_time, quiet=False)["engine"]
        rate = sgemm_rate(clock=time.thread_time)  # multiply-adds per CPU second at one thread
    trainer.plan = None
    H, B, T = trainer.model.config.hidden_size, trainer.config.batch_size, trainer.config.seq_len
    return float(np.median(times)) * 1e3, step_macs(H, B, T) / rate * 1e3


def with_torch_threads(step, n: int):
    """``step`` run with torch at ``n`` threads (set before every call: the runs alternate)."""
    import torch

    def run():
        torch.set_num_threads(n)
        step()

    return run


def training_table(configs: list[str], reps: int, with_torch: bool, torch_threads: tuple,
                   cpu_time: bool = False, reverse: bool = False, quiet: bool = True) -> None:
    """The speed table; ``cpu_time``: the calling thread's CPU time instead of wall time, the
    engine at 1 BLAS thread and torch at 1 thread (a single-thread comparison that a busy
    machine disturbs less: waiting for a core is not counted). ``reverse``: each round runs
    torch's thread settings from the last to the first, then the engine (each run follows a
    different one than in the default order, engine first); ``quiet``: each run starts once the
    machine is quiet (``bench.common.settle``), else back to back."""
    clock = time.thread_time if cpu_time else time.perf_counter
    if cpu_time:
        torch_threads = (1,)
    what = ("CPU time of the calling thread, engine and torch at 1 thread" if cpu_time else
            "engine as the trainer runs it (engine.runtime.training_plan: batch halves at once on two threads, "
            f"or BLAS threads by size, cores, load), torch at {' and '.join(map(str, torch_threads))} thread(s)")
    torch_names = [f"torch {n}t" for n in torch_threads] if with_torch else []
    order = ["engine", *torch_names][::-1 if reverse else 1]  # the runs of a round
    print(f"\nTraining step (fwd + BPTT + clip + Adam), float32, V={VOCAB}, median (p25-p75) of {reps}; "
          f"{what}, alternating ({', '.join(order)} in each round), "
          + ("each run once the machine is quiet (bench.common.settle)" if quiet else "back to back")
          + "; floor = the step's multiply-adds / the sgemm rate (1024^3) at the "
          "cores the engine keeps busy, measured before each row"
          + ("" if cpu_time else
             "; 1 core = the engine's CPU ms per step at one thread (single_core_ms), its products' floor at "
             "one thread, and half of it: the least two cores could take if every part of the step were "
             "shared perfectly between them (bound), against the best torch")
          + ":")
    print(f"{'H':>5} {'B':>4} {'T':>4} | {'load':>4} {'engine runs as':>16} {'GMAC/s':>6} {'floor ms':>8} | "
          f"{'engine ms/step':>22} {'x floor':>7} | "
          + " | ".join(f"{name + ' ms/step':>22}" for name in torch_names)
          + f" | {'engine/best torch':>17}"
          + ("" if cpu_time else f" | {'1 core ms':>9} {'floor':>5} {'bound':>5} {'bound/torch':>11}")
          + (f" | quiet after, median ms; runs that started busy (waited {SETTLE_MAX_S:g} s)" if quiet else ""))
    for name in configs:
        H, B, T = CONFIGS[name]
        trainer = engine_trainer(H, B, T)
        # as Trainer.run: one plan for the whole run, the one printed; by CPU time, a split batch's halves run in turn
        with blas_threads(1) if cpu_time else trainer._threads():
            plan = one_core_plan(trainer) if cpu_time else trainer.plan
            load = load_elsewhere() if plan.load is None else plan.load  # cores busy elsewhere, at the row's start
            cores_used = plan.blas_threads if plan.executor is None else plan.shards
            with blas_threads(cores_used):
                rate = sgemm_rate(clock=clock)  # at the cores the step keeps busy
            fns = {label: with_torch_threads(torch_trainer(H, B, T), n) for label, n in zip(torch_names, torch_threads)}
            fns = {who: {"engine": trainer.train_step, **fns}[who] for who in order}
            waits = {}
            times = alternate(fns, reps, clock=clock, waits=waits, quiet=quiet)
        medians, cells = {}, {}
        for who, t in times.items():
            p25, p50, p75 = quartiles(t * 1e3)
            medians[who] = p50
            cells[who] = f"{p50:8.1f} ({p25:6.1f}-{p75:6.1f})"
        floor = step_macs(H, B, T) / rate * 1e3
        best = min((medians[n] for n in torch_names), default=None)
        ratio = f"{medians['engine'] / best:17.2f}" if best else f"{'-':>17}"
        bound = ""
        if not cpu_time:
            one_core, one_core_floor = single_core_ms(trainer, reps)
            bound_ratio = f"{one_core / 2 / best:11.2f}" if best else f"{'-':>11}"
            bound = f" | {one_core:9.1f} {one_core_floor:5.1f} {one_core / 2:5.1f} {bound_ratio}"
        settled = ""
        if quiet:
            busy_starts = sum(int((w >= SETTLE_MAX_S).sum()) for w in waits.values())
            settled = (" | " + ", ".join(f"{who} {np.median(w) * 1e3:.0f}" for who, w in waits.items())
                       + f"; {busy_starts}/{sum(w.size for w in waits.values())}")
        print(f"{H:5d} {B:4d} {T:4d} | {load:4.1f} {plan.label:>16} {rate / 1e9:6.1f} {floor:8.1f} | "
              f"{cells['engine']} {medians['engine'] / floor:7.1f} | "
              + " | ".join(cells[n] for n in torch_names) + f" | {ratio}" + bound + settled, flush=True)


def latency(calls: int, with_torch: bool) -> None:
    """Median time of one B=1 timestep: engine (with full record) vs torch.nn.LSTMCell."""
    H = LATENCY_H
    model = SequenceModel(ModelConfig(input_size=VOCAB, output_size=VOCAB, hidden_size=H),
                          rng=np.random.default_rng(0))
    ids = np.random.default_rng(1).integers(0, VOCAB, calls + 1)  # (calls+1,)
    state = model.zero_state(1)
    tokens = [ids[t : t + 1] for t in range(len(ids))]  # (1,) each

    def engine_steps():
        nonlocal state
        times = np.empty(calls)
        for t in range(calls):
            start = time.perf_counter()
            _, state, _ = model.step(tokens[t], state)
            times[t] = time.perf_counter() - start
        return times

    fns = {"engine": engine_steps}
    if with_torch:
        import torch

        cell = torch.nn.LSTMCell(VOCAB, H)
        hc = (torch.zeros(1, H), torch.zeros(1, H))
        onehots = torch.nn.functional.one_hot(torch.from_numpy(ids), VOCAB).float()  # (calls+1, V)

        def torch_steps():
            nonlocal hc
            times = np.empty(calls)
            with torch.no_grad():
                for t in range(calls):
                    start = time.perf_counter()
                    hc = cell(onehots[t : t + 1], hc)
                    times[t] = time.perf_counter() - start
            return times

        fns["torch"] = torch_steps
    engine_steps(), *(f() for f in list(fns.values())[1:])  # warm-up
    print(f"\nSingle timestep, B=1, H={H}, one-hot input, median (p25-p75) of {calls} calls:")
    for who, fn in fns.items():
        p25, p50, p75 = quartiles(fn() * 1e6)
        what = "SequenceModel.step (probs + full gate record)" if who == "engine" else "torch.nn.LSTMCell (h, c only)"
        print(f"  {who:6s} {p50:7.1f} us ({p25:.1f}-{p75:.1f})  {what}")


def memory_probe(who: str) -> None:
    """(Run in a fresh subprocess.) Print the peak memory of one training step in MiB:
    the rise of the process's peak RSS (VmHWM, after resetting it) and, for the engine, the
    tracemalloc peak (NumPy's array buffers and Python objects allocated during the step)."""
    H, B, T = MEMORY_CONFIG
    if who == "engine":
        trainer = engine_trainer(H, B, T)
        # the halves at once when split, as on an idle machine: both halves' buffers live together
        trainer.plan = training_plan(H, B, cores=2, load=0.0)
        step = trainer.train_step
    else:
        step = torch_trainer(H, B, T)
    step()  # warm-up: optimizer slots and allocator pools exist before measuring
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM (peak RSS) to the current RSS
    rss_before = _status_kib("VmRSS")
    tracemalloc.start()
    step()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_rise = _status_kib("VmHWM") - rss_before
    print(f"{rss_rise / 1024:.1f} {traced_peak / 2**20:.1f}")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_table(with_torch: bool) -> None:
    if not os.path.exists("/proc/self/clear_refs"):
        print("\nPeak memory: skipped (needs Linux /proc/self/clear_refs)")
        return
    H, B, T = MEMORY_CONFIG
    print(f"\nPeak memory of one training step, H={H} B={B} T={T} (fresh process each, after one warm-up step):")
    for who in ("engine", "torch") if with_torch else ("engine",):
        out = subprocess.run([sys.executable, __file__, "--memory-probe", who], capture_output=True, text=True,
                             check=True).stdout.split()
        traced = f", tracemalloc peak {float(out[1]):.1f} MiB" if who == "engine" else ""
        print(f"  {who:6s} peak RSS rise {float(out[0]):7.1f} MiB{traced}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=9, help="timed repetitions per configuration (default 9)")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help=f"comma-separated subset of {', '.join(CONFIGS)} (default all)")
    parser.add_argument("--quick", action="store_true", help="3 reps, fewer latency calls, no memory table")
    parser.add_argument("--no-torch", action="store_true", help="engine only")
    parser.add_argument("--torch-threads", default="1,2",
                        help="torch's thread counts, each run alternating with the engine (default 1,2; the "
                             "ratio is against the fastest)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="single-thread comparison by CPU time (engine and torch at 1 thread): on a busy "
                             "machine, the cost of the work without the wait for a core; training table only")
    parser.add_argument("--reverse", action="store_true",
                        help="each round in reverse order (torch's last thread setting first, the engine last): "
                             "each run then follows a different one")
    parser.add_argument("--back-to-back", action="store_true",
                        help="start each run at once, not after the other threads have gone idle: a thread "
                             "pool still spinning from the run before then slows the next")
    parser.add_argument("--memory-probe", choices=("engine", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        memory_probe(args.memory_probe)
        return
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown or args.reps < 1:
        parser.error(f"unknown configs {unknown}; expected some of {list(CONFIGS)}" if unknown else "--reps must be >= 1")
    reps = 3 if args.quick else args.reps
    with_torch = not args.no_torch
    if with_torch:
        try:
            import torch
        except ImportError:
            print("torch not installed: engine only")
            with_torch = False
    for line in machine_lines():
        print(line)
    torch_threads = tuple(int(n) for n in args.torch_threads.split(","))
    if with_torch:
        default_threads = torch.get_num_threads()
        print(f"torch {torch.__version__}, default threads {default_threads}")
    training_table(configs, reps, with_torch, torch_threads, args.cpu_time, args.reverse,
                   not args.back_to_back)
    if args.cpu_time:
        return
    if with_torch:
        torch.set_num_threads(default_threads)  # the latency figure: torch at its default
    latency(300 if args.quick else 3000, with_torch)
    if not args.quick:
        memory_table(with_torch)


if __name__ == "__main__":
    main()
