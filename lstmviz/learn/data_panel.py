"""Data panel: choose the training text (a file or pasted text) and see what it holds.

Shows the source, its size, the vocabulary (count and the characters, escaped) and the
training/validation split. A text that cannot be used (empty, binary, badly encoded, too
large, or too short for the chosen sequence length and batch size) is refused with an error
dialog (``dialogs.show_error``) and nothing changes. Emits ``corpus_changed(TextCorpus)``.
A file larger than ``threads.BACKGROUND_BYTES`` is read, decoded and encoded in a worker thread
(``lstmviz.threads``) while the panel says so and offers Cancel.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QPlainTextEdit,
                               QPushButton, QVBoxLayout, QWidget)

from engine.data import DEFAULT_MAX_BYTES, TextCorpus, decode_text, display_char, load_text
from engine.errors import DataError

from .. import dialogs, threads
from ..crash_handler import one_line


TEXT_FILTER = "Text files (*.txt *.md *.py *.csv *.tsv *.json *.xml *.html);;All files (*)"
def escape_chars(chars) -> str:
    """The characters as one visible string (each as ``engine.data.display_char`` shows it)."""
    return "".join(display_char(c) for c in chars)


class DataPanel(QWidget):
    """See the module docstring. ``check`` is called with a candidate corpus and raises the
    engine's DataError when it is too short for the current model settings."""

    corpus_changed = Signal(object)

    def __init__(self, check: Callable[[TextCorpus], None] | None = None, parent: QWidget | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES):
        super().__init__(parent)
        self._check = check
        self._max_bytes = max_bytes
        self.corpus: TextCorpus | None = None
        self.source = ""
        self.open_button = QPushButton("Open text file…")
        self.open_button.setToolTip("Train on a plain-text (UTF-8) file.")
        self.open_button.clicked.connect(self.open_file)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop reading the text file.")
        self.cancel_button.clicked.connect(self.cancel_read)
        self.cancel_button.setVisible(False)
        self._reader: threads.Call | None = None
        self.paste = QPlainTextEdit()
        self.paste.setPlaceholderText("…or paste training text here and press “Use pasted text”.")
        self.paste.setToolTip("Text to train on; it is used only when you press “Use pasted text”.")
        self.paste.setMaximumHeight(90)
        self.use_paste_button = QPushButton("Use pasted text")
        self.use_paste_button.setToolTip("Train on the text typed or pasted above.")
        self.use_paste_button.clicked.connect(self._use_pasted)
        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.0, 0.5)
        self.val_fraction.setDecimals(2)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setValue(0.1)
        self.val_fraction.setToolTip("Share of the text, taken from its end, held out to measure the "
                                     "validation loss (0 = no validation).")
        self.val_fraction.valueChanged.connect(self._on_val_fraction)
        self.source_label = _info("No training text yet.", "Where the training text comes from.")
        self.size_label = _info("", "Characters in the text.")
        self.vocab_label = _info("", "Distinct characters (the model's vocabulary); "
                                     "\\n is a newline, \u2423 a space.")
        self.split_label = _info("", "Characters used for training and held out for validation.")
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.use_paste_button)
        form = QFormLayout()
        form.addRow("Validation share", self.val_fraction)
        form.addRow("Source", self.source_label)
        form.addRow("Size", self.size_label)
        form.addRow("Vocabulary", self.vocab_label)
        form.addRow("Split", self.split_label)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.paste)
        layout.addLayout(form)
        layout.addStretch(1)

    # --- commands ---------------------------------------------------------------------------
    def open_file(self) -> bool:
        """Ask for a file and use it; False if cancelled or refused. A file larger than
        ``threads.BACKGROUND_BYTES`` is read in a worker thread (True: started; ``reading`` meanwhile)."""
        path = dialogs.ask_open_path(self, "Open training text", TEXT_FILTER)
        if not path:
            return False
        if os.path.isfile(path) and os.path.getsize(path) > threads.BACKGROUND_BYTES:
            self._read_in_background(path)
            return True
        try:
            text = load_text(path, max_bytes=self._max_bytes)
        except (ValueError, OSError, MemoryError) as exc:
            dialogs.show_error(self, "Cannot use this text", one_line(exc))
            return False
        return self.use_text(text, path)

    def use_text(self, text: str, source: str) -> bool:
        """Use ``text`` (named ``source`` in messages); refused texts show an error and change
        nothing. Returns True when the text was taken."""
        try:
            corpus = TextCorpus(text, val_fraction=self.val_fraction.value())
            if self._check is not None:
                self._check(corpus)
        except (ValueError, MemoryError) as exc:
            message = one_line(exc)
            dialogs.show_error(self, "Cannot use this text", message if source in message else f"{source}: {message}")
            return False
        self.source = source
        self._set_corpus(corpus)
        return True

    def _use_pasted(self) -> bool:
        data = self.paste.toPlainText().encode("utf-8")
        try:
            if len(data) > self._max_bytes:
                raise DataError(f"the pasted text is too big ({len(data)} bytes); the limit is {self._max_bytes} bytes")
            text = decode_text(data, source="the pasted text")
        except DataError as exc:
            dialogs.show_error(self, "Cannot use this text", str(exc))
            return False
        return self.use_text(text, "the pasted text")

    @property
    def reading(self) -> bool:
        """True while a file is read in the background."""
        return self._reader is not None

    def _read_in_background(self, path: str) -> None:
        self.cancel_read()
        max_bytes, val_fraction = self._max_bytes, self.val_fraction.value()
        reader = threads.Call(lambda: TextCorpus(load_text(path, max_bytes=max_bytes), val_fraction=val_fraction), path)
        threads.Relay(reader, self, done=self._on_read, failed=self._on_read_failed)
        self._reader = reader
        self.source_label.setText(f"Reading {Path(path).name}…")
        self.cancel_button.setVisible(True)
        threads.start(reader, "read-corpus")

    def cancel_read(self) -> None:
        """Stop reading a file in the background; the current text stays."""
        if self._reader is not None:
            self._reader.stop_requested.set()
            self._done_reading()

    def _done_reading(self) -> None:
        self._reader = None
        self.cancel_button.setVisible(False)
        self.source_label.setText(self.source or "No training text yet.")

    def _on_read(self, reader: threads.Call, corpus) -> None:
        if reader is not self._reader:
            return
        self._done_reading()
        try:
            if self._check is not None:
                self._check(corpus)
        except (ValueError, MemoryError) as exc:
            dialogs.show_error(self, "Cannot use this text", one_line(exc))
            return
        self.source = reader.tag
        self._set_corpus(corpus)

    def _on_read_failed(self, reader: threads.Call, message: str) -> None:
        if reader is self._reader:
            self._done_reading()
            dialogs.show_error(self, "Cannot use this text", message)

    def _on_val_fraction(self, value: float) -> None:
        if self.corpus is not None:
            self._set_corpus(TextCorpus(self.corpus.text, val_fraction=value))

    def _set_corpus(self, corpus: TextCorpus) -> None:
        self.corpus = corpus
        chars = corpus.vocab.chars
        self.source_label.setText(self.source)
        self.size_label.setText(f"{len(corpus.text):,} characters")
        self.vocab_label.setText(f"{len(chars)} characters: {escape_chars(chars)}")
        self.split_label.setText(f"{len(corpus.train_ids):,} training, {len(corpus.val_ids):,} validation")
        self.corpus_changed.emit(corpus)


def _info(text: str, tooltip: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setToolTip(tooltip)
    return label
