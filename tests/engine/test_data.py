"""engine.data: vocabulary, safe text loading, corpus split and batching (sequential + random)."""

import numpy as np
import pytest

from engine.data import CharVocab, TextCorpus, decode_text, load_text
from engine.errors import DataError

TEXT = "the quick brown fox jumps over the lazy dog\n" * 20  # 880 chars


# --- vocabulary -------------------------------------------------------------------------------
def test_vocab_is_sorted_unique_and_deterministic():
    v1 = CharVocab.from_text("banana split")
    v2 = CharVocab.from_text("split banana")
    assert v1 == v2
    assert v1.chars == (" ", "a", "b", "i", "l", "n", "p", "s", "t")
    assert len(v1) == 9
    assert v1.index("a") == 1
    assert CharVocab(v1.to_list()) == v1


def test_vocab_encode_decode_round_trip():
    v = CharVocab.from_text("héllo wörld €")
    ids = v.encode("wörld €")
    assert ids.dtype == np.int64 and ids.shape == (7,)
    assert [v.chars[i] for i in ids] == list("wörld €")
    assert v.decode(ids) == "wörld €"
    assert v.encode("").shape == (0,)


def test_vocab_unknown_characters_are_listed():
    v = CharVocab.from_text("abc")
    assert v.unknown("abXcYX") == ["X", "Y"]
    with pytest.raises(DataError, match=r"'X', 'Y'"):
        v.encode("abXcYX")


def test_vocab_unknown_list_is_capped():
    v = CharVocab.from_text("a")
    with pytest.raises(DataError, match=r"and 6 more") as info:
        v.encode("".join(chr(0x4E00 + k) for k in range(26)))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("chars", [[], ["a", "a"], ["ab"], ["b", "a"], [1]])
def test_vocab_constructor_refuses_bad_chars(chars):
    with pytest.raises(DataError):
        CharVocab(chars)


def test_vocab_decode_refuses_out_of_range_ids():
    with pytest.raises(DataError, match=r"\[0, 2\]"):
        CharVocab.from_text("abc").decode([0, 3])


# --- decoding and loading ---------------------------------------------------------------------
def test_decode_plain_bom_and_crlf():
    assert decode_text("héllo\r\nworld\r\n".encode()) == "héllo\nworld\n"
    assert decode_text(b"\xef\xbb\xbfabc") == "abc"
    assert decode_text("ab\r\ncd".encode("utf-16")) == "ab\ncd"  # BOM-marked UTF-16


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n ", b"\xef\xbb\xbf  \n"])
def test_decode_refuses_empty(data):
    with pytest.raises(DataError, match=r"^in\.txt is empty"):
        decode_text(data, "in.txt")


@pytest.mark.parametrize("data", [b"text\x00more", bytes(range(1, 32)) * 4, b"PK\x03\x04\x14\x00\x06\x00"])
def test_decode_refuses_binary(data):
    with pytest.raises(DataError, match=r"^f\.bin looks like a binary file"):
        decode_text(data, "f.bin")


def test_decode_refuses_invalid_utf8_naming_the_offset():
    data = "héllo".encode() + b"\xff tail"  # 'héllo' is 6 bytes
    with pytest.raises(DataError, match=r"^x\.txt is not valid UTF-8.*0xff at byte offset 6"):
        decode_text(data, "x.txt")
    with pytest.raises(DataError, match=r"byte offset 4\b"):  # the BOM counts in the offset
        decode_text(b"\xef\xbb\xbfa\xc3(", "x.txt")


def test_decode_refuses_latin1_instead_of_guessing_and_says_how_to_convert():
    with pytest.raises(DataError, match=r"not valid UTF-8.*it reads as Windows-1252 / Latin-1.*"
                                        r"iconv -f WINDOWS-1252 -t UTF-8"):
        decode_text("Mois;Température\n1;20,5\n".encode("cp1252"))
    for data in (b"ab\x81\x8d\x90 cd",  # bytes that Windows-1252 leaves undefined
                 "Café crème\n".encode() + b"caf\xe9\n"):  # UTF-8 with one stray Latin-1 byte: iconv would garble it
        with pytest.raises(DataError, match=r"not valid UTF-8") as refused:
            decode_text(data)
        assert "Windows-1252" not in str(refused.value)


def test_load_text_reads_a_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"line one\r\nline two\n")
    assert load_text(path) == "line one\nline two\n"


def test_load_text_missing_and_directory(tmp_path):
    with pytest.raises(DataError, match=r"nope\.txt: no such file"):
        load_text(tmp_path / "nope.txt")
    with pytest.raises(DataError, match=r"is a folder"):
        load_text(tmp_path)


def test_load_text_size_checked_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 2048)
    import builtins

    def no_open(*args, **kwargs):
        raise AssertionError("the file was opened although it is too big")

    monkeypatch.setattr(builtins, "open", no_open)
    with pytest.raises(DataError, match=r"big\.txt is too big \(2\.0 KiB\); the limit is 1000 bytes"):
        load_text(path, max_bytes=1000)


def test_load_text_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "secret.txt"
    path.write_text("hidden")
    import os

    def denied(*args, **kwargs):  # chmod 0 cannot stop root, so simulate the refusal
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "open", denied)  # engine.safe_read opens with os.open (O_NONBLOCK)
    with pytest.raises(DataError, match=r"secret\.txt: permission denied"):
        load_text(path)


def test_load_text_refuses_special_files():
    with pytest.raises(DataError, match=r"not a regular file"):
        load_text("/dev/null")


# --- corpus -----------------------------------------------------------------------------------
def test_corpus_split_sizes_and_ids():
    corpus = TextCorpus(TEXT, val_fraction=0.1)
    assert len(corpus.val_ids) == 88 and len(corpus.train_ids) == 792
    assert corpus.vocab.decode(corpus.val_ids) == TEXT[-88:]  # the LAST tenth
    assert corpus.vocab.decode(corpus.train_ids) == TEXT[:-88]
    assert corpus.train_ids.dtype == np.int64
    assert len(TextCorpus(TEXT, val_fraction=0).val_ids) == 0


def test_corpus_with_given_vocab():
    vocab = CharVocab.from_text(TEXT + "XYZ")
    assert TextCorpus(TEXT, vocab=vocab).vocab is vocab
    with pytest.raises(DataError, match=r"'!'"):
        TextCorpus("hello!", vocab=vocab)


@pytest.mark.parametrize("fraction", [-0.1, 0.51, 1.0])
def test_corpus_refuses_bad_val_fraction(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        TextCorpus(TEXT, val_fraction=fraction)


def test_check_trainable_says_how_much_is_needed():
    corpus = TextCorpus("abcdefghij" * 3, val_fraction=0.0)  # 30 train chars
    corpus.check_trainable(seq_len=29, batch_size=1)
    with pytest.raises(DataError, match=r"has 30 characters .* needs at least 41"):
        corpus.check_trainable(seq_len=10, batch_size=4)
    short_val = TextCorpus("abcdefghij" * 3, val_fraction=0.05)  # 1 validation char
    with pytest.raises(DataError, match=r"validation part has 1 characters but needs at least 2"):
        short_val.check_trainable(seq_len=4, batch_size=1)


# --- batches ----------------------------------------------------------------------------------
def _take(iterator, n):
    return [next(iterator) for _ in range(n)]


def test_sequential_batches_continue_each_stream():
    corpus = TextCorpus(TEXT, val_fraction=0.1)
    B, T = 4, 10
    per_epoch = corpus.batches_per_epoch(B, T)
    assert per_epoch == (792 - 1) // B // T == 19
    batches = _take(corpus.batches(B, T, None), 2 * per_epoch + 1)
    L = (792 - 1) // B
    for k, (x, y, reset) in enumerate(batches):
        assert x.shape == y.shape == (B, T) and x.dtype == y.dtype == np.int64
        assert reset == (k % per_epoch == 0)
        j = (k % per_epoch) * T
        for b in range(B):  # row b reads stream b, independently of the code's slicing
            np.testing.assert_array_equal(x[b], corpus.train_ids[b * L + j : b * L + j + T])
            np.testing.assert_array_equal(y[b], corpus.train_ids[b * L + j + 1 : b * L + j + T + 1])
    for prev, nxt in zip(batches, batches[1:]):
        if not nxt.reset:  # y of one batch's row continues into the next batch's x
            np.testing.assert_array_equal(nxt.x[:, 0], prev.y[:, -1])
    assert batches[per_epoch].reset and np.array_equal(batches[per_epoch].x, batches[0].x)


def test_sequential_start_resumes_exactly():
    corpus = TextCorpus(TEXT, val_fraction=0.1)
    full = _take(corpus.batches(3, 7, None), 120)
    for k in (1, 36, 37, 100):
        resumed = _take(corpus.batches(3, 7, None, start=k), 20)
        for a, b in zip(full[k:k + 20], resumed):
            np.testing.assert_array_equal(a.x, b.x)
            np.testing.assert_array_equal(a.y, b.y)
            assert a.reset == b.reset


def test_random_batches_reproducible_and_valid():
    corpus = TextCorpus(TEXT, val_fraction=0.1)
    a = _take(corpus.batches(5, 8, np.random.default_rng(7), mode="random"), 10)
    b = _take(corpus.batches(5, 8, np.random.default_rng(7), mode="random"), 10)
    c = _take(corpus.batches(5, 8, np.random.default_rng(8), mode="random"), 10)
    assert all(np.array_equal(p.x, q.x) and np.array_equal(p.y, q.y) for p, q in zip(a, b))
    assert not all(np.array_equal(p.x, q.x) for p, q in zip(a, c))
    text = corpus.vocab.decode(corpus.train_ids)
    for batch in a:
        assert batch.reset is True
        for row_x, row_y in zip(batch.x, batch.y):
            window = corpus.vocab.decode(row_x) + corpus.vocab.decode(row_y[-1:])
            assert window in text  # a real (T+1)-character window of the training text
            np.testing.assert_array_equal(row_y[:-1], row_x[1:])


def test_random_batches_resume_by_restoring_the_rng():
    corpus = TextCorpus(TEXT, val_fraction=0.1)
    rng = np.random.default_rng(3)
    it = corpus.batches(2, 5, rng, mode="random")
    _take(it, 4)
    saved = rng.bit_generator.state
    expected = _take(it, 3)
    rng2 = np.random.default_rng()
    rng2.bit_generator.state = saved
    resumed = _take(corpus.batches(2, 5, rng2, mode="random", start=4), 3)
    assert all(np.array_equal(p.x, q.x) for p, q in zip(expected, resumed))


def test_batches_refuse_bad_arguments():
    corpus = TextCorpus(TEXT, val_fraction=0.1)
    with pytest.raises(ValueError, match="mode"):
        corpus.batches(2, 5, None, mode="shuffled")
    with pytest.raises(ValueError, match="Generator"):
        corpus.batches(2, 5, None, mode="random")
    with pytest.raises(ValueError, match="start"):
        corpus.batches(2, 5, None, start=-1)
    with pytest.raises(DataError, match="needs at least"):
        corpus.batches(100, 100, None)  # raised at the call, not at the first next()


def test_encode_across_chunks(monkeypatch):
    import engine.data

    monkeypatch.setattr(engine.data, "_ENCODE_CHUNK", 7)
    text = "héllo wörld, ça va?\n" * 5
    vocab = CharVocab.from_text(text)
    expected = [vocab.chars.index(c) for c in text]
    assert vocab.encode(text).tolist() == expected
    with pytest.raises(DataError, match=r"'!'"):
        vocab.encode(text + "!")  # the unknown character sits in the last chunk


def test_display_char_makes_invisible_characters_visible():
    from engine.data import display_char

    assert [display_char(c) for c in " \n\t\r\x07a€"] == ["\u2423", "\\n", "\\t", "\\r", "\\u0007", "a", "€"]
