"""A one-line terminal progress bar for ``lstmviz train`` (stderr, when it is a TTY).

    1200/2000 [##################------------]  60% | 48.1 steps/s | loss 1.8342 | val 1.9021 | ETA 0:00:16

Redraws at most ``MAX_HZ`` times a second (always on an evaluation and at the end); ``finish``
ends the line so later messages start on a fresh one. Knows nothing of Qt.
"""

from __future__ import annotations

import math
import time

MAX_HZ = 10.0  # redraws per second, at most
BAR_WIDTH = 30  # characters between the brackets


def format_duration(seconds: float) -> str:
    """``h:mm:ss``, or ``m:ss`` under an hour, for a non-negative number of seconds; ``?`` if
    unknown (the terminal's progress bar and the app's training panel both show it)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def format_loss(loss: float) -> str:
    """A loss for a progress line: 4 decimals (``1.8342``), or scientific notation when its
    magnitude is 1e4 or more (``6.0312e+30``), so a runaway never prints 30 digits."""
    return f"{loss:.4e}" if math.isfinite(loss) and abs(loss) >= 1e4 else f"{loss:.4f}"


def progress_line(step: int, total: int, steps_per_s: float, loss: float, val_loss: float | None) -> str:
    """The bar's text (without carriage return) for ``step`` of ``total`` steps."""
    share = min(max(step / total, 0.0), 1.0) if total > 0 else 1.0
    filled = int(share * BAR_WIDTH)
    eta = (total - step) / steps_per_s if steps_per_s > 0 else math.nan
    parts = [
        f"{step:>{len(str(total))}}/{total} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {share * 100:3.0f}%",
        f"{steps_per_s:.1f} steps/s",
        f"loss {format_loss(loss)}",
    ]
    if val_loss is not None:
        parts.append(f"val {format_loss(val_loss)}")
    parts.append(f"ETA {format_duration(eta)}")
    return " | ".join(parts)


class ProgressBar:
    """Draws ``progress_line`` on ``stream`` with ``\\r``, rate-limited to ``MAX_HZ``."""

    def __init__(self, stream):
        self.stream = stream
        self._last_draw = -math.inf
        self._last_val = None
        self._width = 0

    def update(self, progress, force: bool = False) -> None:
        """Show an ``engine.train.Progress``; the latest validation loss stays on the line."""
        if progress.val_loss is not None:
            self._last_val = progress.val_loss
            force = True
        now = time.monotonic()
        if not (force or progress.done) and now - self._last_draw < 1.0 / MAX_HZ:
            return
        self._last_draw = now
        line = progress_line(progress.step, progress.total_steps, progress.steps_per_s,
                             progress.smooth_loss, self._last_val)
        pad = max(self._width - len(line), 0)
        self._width = len(line)
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()

    def finish(self) -> None:
        """End the bar's line (if anything was drawn)."""
        if self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
