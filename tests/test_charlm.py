"""Character LM: TBPTT layout, state carry, seeded sampling, UTF-8, UNK policy, "hello", cell visualiser."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from seqkit.config import from_dict
from seqkit.data.corpus import CharVocab, read_text, split_text, tbptt_dataset, tbptt_indices, tbptt_layout
from seqkit.errors import SeqkitError
from seqkit.sampling import CharLM
from seqkit.tbptt import TBPTTTrainer, lm_metrics
from seqkit.visualize import best_cells, correlations, render_page, text_properties
from tasks.charlm import CharLMConfig, build_char_model

ROOT = Path(__file__).resolve().parents[1]


def _tiny(cell="lstm", units=(6, 5), vocab_size=10, seed=3, **extra):
    from seqkit.seed import set_seed

    set_seed(seed)
    cfg = from_dict(
        CharLMConfig,
        dict(cell=cell, units=list(units), embedding_dim=4, jit_compile=False, seed=seed, **extra),
        source="test",
    )
    return build_char_model(cfg, vocab_size)


# --- corpus --------------------------------------------------------------------------------------
def test_nanogpt_split_arithmetic():
    train, valid = split_text("x" * 1_115_394, 0.1)
    assert (len(train), len(valid)) == (1_003_854, 111_540)


def test_tbptt_rows_continue_across_batches():
    n, b, t = 103, 3, 5
    idx = tbptt_indices(n, b, t)
    row_len, n_batches = tbptt_layout(n, b, t)
    assert idx.shape == (n_batches, b, t) and row_len == n_batches * t
    # Row i of batch k+1 starts exactly where row i of batch k ended.
    np.testing.assert_array_equal(idx[1:, :, 0], idx[:-1, :, -1] + 1)
    # Rows are disjoint contiguous segments; targets stay inside the stream.
    assert len(np.unique(idx)) == idx.size and idx.max() + 1 < n
    ids = np.arange(n, dtype=np.int32) * 7 % 11
    batches = list(tbptt_dataset(ids, b, t).as_numpy_iterator())
    assert len(batches) == n_batches
    for k, (x, y) in enumerate(batches):
        np.testing.assert_array_equal(x, ids[idx[k]])
        np.testing.assert_array_equal(y, ids[idx[k] + 1])


def test_tbptt_too_short_text_is_a_clear_error():
    with pytest.raises(SeqkitError, match="too short"):
        tbptt_layout(10, 4, 8)


def test_korean_utf8_round_trip(tmp_path):
    text = "안녕하세요, 세계!\n한국어 문장.\n"
    p = tmp_path / "ko.txt"
    p.write_text(text, encoding="utf-8")
    assert read_text(p) == text
    vocab = CharVocab.build(text)
    assert vocab.decode(vocab.encode(text)) == text
    vocab.save(tmp_path / "vocab.json")
    again = CharVocab.load(tmp_path / "vocab.json")
    assert again.chars == vocab.chars and again.unk == vocab.unk


def test_non_utf8_bytes_name_file_offset_and_line(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"good line\nbad \xff byte\n")
    with pytest.raises(SeqkitError, match=r"bad\.txt:2: not valid UTF-8 at byte offset 14"):
        read_text(p)


def test_unknown_character_policy():
    strict = CharVocab.build("ab\nc", unknown="error")
    assert strict.size == 4
    with pytest.raises(SeqkitError, match=r"x\.txt:2: character 'z' \(U\+007A\) at character offset 4"):
        strict.encode("abc\nz", source="x.txt")
    lenient = CharVocab.build("abc", unknown="replace")
    assert lenient.size == 4
    np.testing.assert_array_equal(lenient.encode("azc"), [1, 0, 3])
    assert lenient.decode([1, 0, 3]) == "a\ufffdc"
    with pytest.raises(SeqkitError):
        CharVocab.build("abc", unknown="ignore")


# --- state carry and sampling ---------------------------------------------------------------------
@pytest.mark.parametrize("cell,extra", [("lstm", {}), ("gru", {}), ("lstm", {"regularizer": "zoneout"})])
def test_step_by_step_equals_full_sequence(cell, extra):
    import tensorflow as tf

    # Zoneout's inference step mixes the previous and the new state: the sampler must do the same.
    model = _tiny(cell, **({"regularizer_rate": 0.3, **extra} if extra else {}))
    ids = np.array([[1, 4, 2, 9, 3, 3, 7, 0, 5, 6, 8, 2]], np.int32)
    full = tf.nn.log_softmax(model(ids)).numpy()[0]
    lm = CharLM(model, CharVocab(list("abcdefghi"), unk=True), jit_compile=False)
    stepped = lm.steps.trace(ids[0])["logprobs"]
    np.testing.assert_allclose(stepped, full, atol=1e-5)
    # Truncated BPTT: two chunks with the state carried equal one pass over the whole sequence.
    trainer = TBPTTTrainer(model, jit_compile=False)
    a, st = trainer.forward(ids[:, :5], trainer.zero_state(1), training=False)
    b, _ = trainer.forward(ids[:, 5:], st, training=False)
    np.testing.assert_allclose(np.concatenate([a[0], b[0]]), model(ids)[0], atol=1e-5)
    # Feeding a prefix once then continuing gives the same state as feeding it all.
    s1, l1 = lm.steps.feed(ids[:, :7])
    s2, l2 = lm.steps.feed(ids[:, 7:], s1, l1)
    s3, l3 = lm.steps.feed(ids)
    np.testing.assert_allclose(l2, l3, atol=1e-5)
    for x, y in zip(s2, s3):
        np.testing.assert_allclose(x, y, atol=1e-5)


def test_seeded_sampling_greedy_and_truncation():
    model = _tiny("lstm")
    lm = CharLM(model, CharVocab(list("abcdefghi"), unk=True), jit_compile=False)
    a = lm.sample("abc", 40, 1.0, seed=11)
    assert a == lm.sample("abc", 40, 1.0, seed=11)
    assert a != lm.sample("abc", 40, 1.0, seed=12)
    assert len(a) == 40 and "\ufffd" not in a  # the reserved UNK is never sampled
    greedy = lm.sample("abc", 20, 0.0, seed=1)
    assert greedy == lm.sample("abc", 20, 0.0, seed=2) == lm.sample("abc", 20, 0.7, top_k=1, seed=3)
    assert greedy == lm.sample("abc", 20, 1.0, top_p=1e-6, seed=4)
    # Greedy continuation equals the argmax chain of full-sequence passes.
    text = "abc"
    for _ in range(5):
        text += lm.next_chars(text)[-1]
    assert text[3:] == greedy[:5]
    streams = lm.sample("ab", 15, 1.0, seed=5, streams=3)
    assert len(streams) == 3 and all(len(s) == 15 for s in streams)
    with pytest.raises(SeqkitError):
        lm.sample("abc", 5, -1.0)


def test_korean_model_trains_and_samples():
    text = "가나다라 마바사. 아자차카 타파하!\n" * 8
    vocab = CharVocab.build(text)
    model = _tiny("gru", units=(8,), vocab_size=vocab.size)
    trainer = TBPTTTrainer(model, jit_compile=False)
    ds = tbptt_dataset(vocab.encode(text), 2, 8)
    state = trainer.zero_state(2)
    losses = []
    for _ in range(3):
        for x, y in ds:
            loss, state = trainer.train_step(x, y, state)
            losses.append(float(loss))
    assert losses[-1] < losses[0]
    out = CharLM(model, vocab, jit_compile=False).sample("가나", 30, 0.8, seed=1)
    assert len(out) == 30 and set(out) <= set(vocab.chars)


def test_hello_example_predicts_ello():
    spec = importlib.util.spec_from_file_location("hello_charlm", ROOT / "examples" / "hello_charlm.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    lm, losses = mod.train_hello(steps=120)
    assert lm.vocab.chars == ["h", "e", "l", "o"] and lm.vocab.size == 4
    assert lm.next_chars("hell") == "ello"
    assert losses[-1] < 0.05


def test_lm_metrics_units():
    m = lm_metrics(np.log(2.0))
    assert m["bpc"] == pytest.approx(1.0) and m["perplexity"] == pytest.approx(2.0)


# --- visualiser ------------------------------------------------------------------------------------
def test_text_properties_on_a_constructed_example():
    text = 'a "b"\n  (c)\n'
    p = text_properties(text)
    #             a     "  b  "  \n  _  _  (  c  )  \n
    assert p["in_quotes"].tolist() == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert p["in_brackets"].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0]
    assert p["line_position"].tolist() == [1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0]
    assert p["indentation"].tolist() == [0, 0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 0]
    assert p["after_newline"].tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]


def test_correlations_rank_the_planted_cells():
    text = 'say "hi there" (now)\n' * 5
    props = text_properties(text)
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(len(text), 4)) * 0.01
    acts[:, 1] = props["in_quotes"]  # a perfect quote cell
    acts[:, 2] = -props["in_brackets"]  # a perfect (negative) bracket cell
    acts[:, 3] = 0.5  # constant: undefined correlation -> 0
    corr = correlations(acts, props)
    assert corr["in_quotes"][1] == pytest.approx(1.0)
    assert corr["in_brackets"][2] == pytest.approx(-1.0)
    assert corr["line_position"][3] == 0.0
    np.testing.assert_allclose(corr["in_quotes"][0], np.corrcoef(acts[:, 0], props["in_quotes"])[0, 1])
    ranked = best_cells(corr, top=2)
    assert ranked["in_quotes"][0] == (1, pytest.approx(1.0))
    assert ranked["in_brackets"][0][0] == 2
    names = [f"cell{i}" for i in range(4)]
    page = render_page(text, np.tanh(acts), corr, ranked, names, title="t <&>", chosen=3)
    assert page.startswith("<!DOCTYPE html>") and "t &lt;&amp;&gt;" in page
    assert "&quot;" in page and "<span" in page and "cell1 (+1.000)" in page
    visible = "".join(ch for ch in text[:20])
    assert all(f">{c}</span>" in page for c in "sayhi" if c in visible)
