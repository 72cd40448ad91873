"""Generate the demo corpus: seeded synthetic text with structure LSTM units are known to track.

    python scripts/make_demo_corpus.py [--out-dir assets] [--seed 7] [--kb 150]

Writes ``demo.txt`` (the training corpus, about ``--kb`` KB) and ``demo_view.txt`` (a few hundred
characters shown when the app opens). The text mixes
  * prose with quoted spans ("..."), so a unit can track "inside a quote";
  * nested brackets and parentheses, e.g. ``f(a, [b, (c)])``, so a unit can track depth;
  * lines wrapped at a fixed width (``WIDTH``), so a unit can count the position in a line;
  * counting runs like ``1 2 3 4 5.`` and ``xxxx=4``, so a unit can count.
No downloaded text: everything is made up from a fixed syllable list and an explicit generator.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.atomic import atomic_writer  # noqa: E402

WIDTH = 60  # characters per line (lines are wrapped at word boundaries to at most this)
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "da", "pe", "gu", "ha", "zo", "ri", "ma", "te")
VIEW_CHARS = 480  # length of demo_view.txt


def word(rng: np.random.Generator) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.integers(1, 4)))


def phrase(rng: np.random.Generator, n_min: int = 2, n_max: int = 7) -> str:
    return " ".join(word(rng) for _ in range(rng.integers(n_min, n_max + 1)))


def bracketed(rng: np.random.Generator, depth: int = 0) -> str:
    """A nested expression like ``mo(ka, [ri, (te)])``, at most 4 levels deep."""
    if depth >= 4 or (depth > 0 and rng.random() < 0.35):
        return word(rng)
    opener, closer = (("(", ")"), ("[", "]"))[int(rng.integers(0, 2))]
    items = [bracketed(rng, depth + 1) for _ in range(rng.integers(1, 4))]
    head = word(rng) if opener == "(" else ""
    return f"{head}{opener}{', '.join(items)}{closer}"


def sentence(rng: np.random.Generator) -> str:
    kind = rng.random()
    if kind < 0.35:
        return f'{phrase(rng).capitalize()} said "{phrase(rng, 2, 9)}".'
    if kind < 0.6:
        return f"{phrase(rng, 1, 3).capitalize()} is {bracketed(rng)}."
    if kind < 0.75:
        n = int(rng.integers(3, 10))
        return " ".join(str(k) for k in range(1, n + 1)) + "."
    if kind < 0.85:
        n = int(rng.integers(1, 9))
        return f"{'x' * n}={n}."
    return f"{phrase(rng, 3, 10).capitalize()}."


def paragraph(rng: np.random.Generator) -> str:
    body = " ".join(sentence(rng) for _ in range(rng.integers(2, 6)))
    return textwrap.fill(body, width=WIDTH, break_long_words=False, break_on_hyphens=False)


def corpus(rng: np.random.Generator, n_chars: int) -> str:
    parts, size = [], 0
    while size < n_chars:
        p = paragraph(rng)
        parts.append(p)
        size += len(p) + 2
    return "\n\n".join(parts) + "\n"


def demo_view(rng: np.random.Generator) -> str:
    """A short opening text: the first generated paragraphs (about VIEW_CHARS characters) that
    show at least two quotes and two nested bracket expressions."""
    while True:
        view = corpus(rng, VIEW_CHARS)
        if view.count('"') >= 4 and view.count("[") >= 2 and view.count("(") >= 2:
            return view


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(Path(__file__).resolve().parent.parent / "assets"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kb", type=int, default=150, help="approximate corpus size in KB")
    args = parser.parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = corpus(np.random.default_rng(args.seed), args.kb * 1000)
    view = demo_view(np.random.default_rng(args.seed + 1000))
    with atomic_writer(out / "demo.txt", "w") as f:
        f.write(text)
    with atomic_writer(out / "demo_view.txt", "w") as f:
        f.write(view)
    print(f"wrote {out / 'demo.txt'} ({len(text)} chars) and {out / 'demo_view.txt'} ({len(view)} chars)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
