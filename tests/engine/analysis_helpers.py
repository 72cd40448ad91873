"""Small models and the bundled demo, shared by the engine.analysis tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import ModelConfig, SequenceModel

ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL = ROOT / "assets" / "demo.npz"
DEMO_TEXT = ROOT / "assets" / "demo.txt"
DEMO_CHARS = 20_000  # the README's claims are measured over the first 20k characters


def tiny_model(cell: str = "lstm", layers: int = 2, hidden: int = 6, vocab: int = 7, dtype: str = "float64",
               seed: int = 0) -> SequenceModel:
    config = ModelConfig(vocab, vocab, cell=cell, hidden_size=hidden, num_layers=layers, dtype=dtype)
    return SequenceModel(config, rng=np.random.default_rng(seed))


def tiny_inputs(T: int = 50, vocab: int = 7, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, size=T)  # (T,)
