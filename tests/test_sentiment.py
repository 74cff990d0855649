"""Sentiment task: loaders, vectoriser, layers, train -> save -> load -> raw-text predict, and bad input."""

import io as _io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from seqkit.cli import main
from seqkit.data.text import (
    Vectorizer,
    length_batches,
    load_class_folders,
    load_split_source,
    load_table,
    load_texts,
    read_inputs,
    split_indices,
    tokenize,
    truncate,
)
from seqkit.errors import SeqkitError
from tasks.sentiment import TASK, TextClassifier, write_fixture_csv

TINY = dict(
    vocab_size=40,
    bigram_vocab_size=40,
    min_count=1,
    bigram_min_count=1,
    max_length=12,
    embedding_dim=8,
    units=[4],
    region_size=2,
    epochs=1,
    batch_size=8,
    max_train_minutes=None,
)


def _sets(overrides: dict) -> list[str]:
    argv = []
    for k, v in overrides.items():
        argv += ["--set", f"{k}={json.dumps(v)}"]
    return argv


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# --- loaders -------------------------------------------------------------------------------------


def test_csv_and_tsv_loaders(tmp_path):
    csv = _write(tmp_path / "a.csv", 'review,sentiment\n"great, really",pos\nawful,neg\n')
    d = load_table(csv, "review", "sentiment")
    assert d.texts == ["great, really", "awful"] and d.labels == ["pos", "neg"]
    assert d.origins == [f"{csv}:2", f"{csv}:3"]
    tsv = _write(tmp_path / "a.tsv", "text\tlabel\ngreat, really\tpos\nawful\tneg\n")
    assert load_texts(tsv).texts == ["great, really", "awful"]


def test_class_folders_and_imdb_tarball(tmp_path):
    for split in ("train", "test"):
        for lab, text in (("pos", "loved it"), ("neg", "hated it")):
            for i in range(2):
                _write(tmp_path / "aclImdb" / split / lab / f"{i}_7.txt", f"{text} {i}")
    _write(tmp_path / "aclImdb" / "train" / "unsup" / "0_0.txt", "unlabelled")
    folders = load_class_folders(tmp_path / "aclImdb" / "train", skip=("unsup",))
    assert sorted(set(folders.labels)) == ["neg", "pos"] and len(folders) == 4

    tar_path = tmp_path / "imdb.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        tf.add(tmp_path / "aclImdb", arcname="aclImdb")
    from_tar = load_split_source(tar_path)
    from_dir = load_split_source(tmp_path)
    for splits in (from_tar, from_dir):
        assert set(splits) == {"train", "test"}
        assert len(splits["train"]) == 4 and len(splits["test"]) == 4  # unsup skipped
        assert splits["train"].labels.count("pos") == 2
    assert from_tar["train"].texts == from_dir["train"].texts  # same order from both sources
    assert load_split_source(tar_path, ("train",)).keys() == {"train"}


def test_read_inputs_plain_and_single_column(tmp_path):
    assert read_inputs(_write(tmp_path / "x.txt", "one\ntwo\n")).texts == ["one", "two"]
    assert read_inputs(_write(tmp_path / "x.csv", "review\nfirst\nsecond\n")).texts == ["first", "second"]


def test_split_is_seeded():
    a, b = split_indices(100, 0.2, seed=3), split_indices(100, 0.2, seed=3)
    assert np.array_equal(a[1], b[1]) and len(a[1]) == 20
    assert not set(a[0]) & set(a[1])


# --- vectoriser and layers -----------------------------------------------------------------------


def test_tokenize_truncate_and_vectorizer_round_trip():
    assert tokenize("Great film!<br /><br />Don't MISS it?") == ["great", "film", "!", "don't", "miss", "it", "?"]
    toks = [str(i) for i in range(20)]
    assert truncate(toks, 8, "head_tail") == ["0", "1"] + [str(i) for i in range(14, 20)]
    assert truncate(toks, 8, "head") == toks[:8] and truncate(toks, 8, "tail") == toks[-8:]

    vec = Vectorizer.fit(
        ["good film good", "bad film"], vocab_size=10, bigram_vocab_size=10, min_count=1, bigram_min_count=1
    )
    x = vec(["good film", "unseen words here"], pad_to=4)
    assert x["tokens"].shape == x["bigrams"].shape == (2, 4)
    assert (x["tokens"][0, :2] >= 2).all() and x["tokens"][0, 2:].tolist() == [0, 0]
    assert x["tokens"][1, :3].tolist() == [1, 1, 1]  # out-of-vocabulary, still masked in
    again = Vectorizer.from_dict(json.loads(json.dumps(vec.to_dict())))
    assert np.array_equal(again(["good film"])["bigrams"], vec(["good film"])["bigrams"])


def test_length_batches_cover_everything_once():
    lengths = np.random.default_rng(0).integers(1, 50, 103)
    for shuffle in (True, False):
        batches = length_batches(lengths, 10, shuffle, np.random.default_rng(1), pool=3)
        assert sorted(np.concatenate(batches).tolist()) == list(range(103))


def test_pooling_layers_respect_the_mask():
    import keras

    from seqkit.layers.text import MaskedGlobalPooling, RegionPooling
    from seqkit.testing import run_layer_test

    x = np.arange(1, 11, dtype="float32").reshape(1, 5, 2)
    mask = np.array([[True, True, True, False, False]])
    r = RegionPooling(2)(x, mask=mask)
    np.testing.assert_allclose(np.asarray(r), [[[2, 3], [5, 6], [0, 0]]])
    assert np.asarray(RegionPooling(2).compute_mask(x, mask)).tolist() == [[True, True, False]]
    np.testing.assert_allclose(np.asarray(RegionPooling(2, "max")(x, mask=mask))[0, 1], [5, 6])
    p = np.asarray(MaskedGlobalPooling(["max", "mean"])(x, mask=mask))
    np.testing.assert_allclose(p, [[5, 6, 3, 4]])
    m = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype="float32")
    run_layer_test(lambda: RegionPooling(2), (2, 5, 3), mask=m)
    run_layer_test(lambda: MaskedGlobalPooling(["max", "mean"]), (2, 5, 3), mask=m)
    assert isinstance(keras.saving.get_registered_object("seqkit>RegionPooling"), type)


# --- train -> save -> load -> predict ------------------------------------------------------------


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("sentiment")
    csv = write_fixture_csv(d / "reviews.csv", n=48)
    run = d / "run"
    assert main(["train", "sentiment", "--data", str(csv), "--out", str(run), *_sets(TINY)]) == 0
    return run, csv


def test_train_writes_run_and_carves_test(binary_run):
    run, _ = binary_run
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("test_accuracy", "test_f1_macro", "n_test", "train_seconds"):
        assert key in metrics
    assert metrics["n_test"] == 10 and metrics["test_split"].startswith("carved")
    for f in ("model.keras", "vectorizer.json", "labels.json", "confusion_matrix.png", "learning_curves.png"):
        assert (run / f).exists(), f


def test_raw_text_predict_cli_python_and_csv(binary_run, tmp_path, capsys):
    run, csv = binary_run
    clf = TASK.load(run)
    out = clf.predict(["a wonderful film", "boring and awful"])
    assert [o["label"] in ("neg", "pos") for o in out] == [True, True]
    assert all(0.5 <= o["probability"] <= 1.0 for o in out)
    p = clf.predict_proba(["x " * 500])  # longer than max_length: truncated, still one row
    assert p.shape == (1, 2) and np.isclose(p.sum(), 1.0)
    texts = ["a wonderful film", "boring", "great great plot and moving acting but dull end"]
    plain = TextClassifier(clf.model, clf.vectorizer, clf.labels, jit=False, pad_to=1)  # padding is masked out
    np.testing.assert_allclose(plain.predict_proba(texts), clf.predict_proba(texts), atol=1e-5)

    capsys.readouterr()
    assert main(["predict", "--model", str(run), "a wonderful film"]) == 0
    label, prob, _ = capsys.readouterr().out.strip().split("\t")
    assert label == out[0]["label"] and abs(float(prob) - out[0]["probability"]) < 1e-3

    preds = tmp_path / "preds.csv"
    assert main(["predict", "--model", str(run), "--input", str(csv), "--output", str(preds)]) == 0
    rows = load_table(preds, "text", "label")
    assert len(rows) == 48
    assert main(["evaluate", "--model", str(run), "--data", str(csv)]) == 0


def test_three_classes_from_tsv(tmp_path):
    tsv = write_fixture_csv(tmp_path / "three.tsv", n=60, classes=3, sep="\t")
    run = tmp_path / "run"
    assert main(["train", "sentiment", "--data", str(tsv), "--out", str(run), *_sets(TINY)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["labels"] == ["neg", "neutral", "pos"]
    assert np.asarray(metrics["test_confusion_matrix"]).shape == (3, 3)
    probs = TASK.load(run).predict_proba(["okay and average"])
    assert probs.shape == (1, 3) and np.isclose(probs.sum(), 1.0, atol=1e-5)


# --- bad input -----------------------------------------------------------------------------------


def _fails(argv, capsys, *needles):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def test_bad_input_is_one_line_with_file_and_row(tmp_path, capsys):
    good = write_fixture_csv(tmp_path / "good.csv", n=24)
    lines = good.read_text().splitlines()

    empty = _write(tmp_path / "empty.csv", "\n".join(lines[:5] + ['"   ",pos'] + lines[5:]) + "\n")
    badbytes = _write(tmp_path / "bytes.csv", ("\n".join(lines[:3]) + "\n").encode() + b"caf\xe9 bad,pos\n")
    nolabel = _write(tmp_path / "cols.csv", "text,stars\ngood,5\n")
    unseen = _write(tmp_path / "unseen.csv", "text,label\nthe film was great,pos\nthe film was odd,weird\n")
    cases = [
        (["--data", str(empty)], (str(empty), ":6", "empty text")),
        (["--data", str(badbytes)], (str(badbytes), ":4", "UTF-8")),
        (["--data", str(nolabel)], (str(nolabel), "'label'", "label_column")),
        (["--data", str(good), "--test", str(unseen)], (f"{unseen}:3", "'weird'")),
    ]
    for i, (data_argv, needles) in enumerate(cases):
        out = tmp_path / f"run{i}"
        _fails(["train", "sentiment", "--out", str(out), *data_argv, *_sets(TINY)], capsys, *needles)
        assert not (out / "model.keras").exists() and not (out / "metrics.json").exists()
    _fails(
        ["train", "sentiment", "--out", str(tmp_path / "r"), "--data", str(good), "--set", "text_column=body"],
        capsys,
        "'body'",
        "text_column",
    )


def test_bad_predict_input(binary_run, tmp_path, capsys):
    run, _ = binary_run
    _fails(["predict", "--model", str(run), "  "], capsys, "argument 1", "empty text")
    blank = _write(tmp_path / "in.txt", "fine\n\nalso fine\n")
    _fails(["predict", "--model", str(run), "--input", str(blank), "--output", str(tmp_path / "p.csv")], capsys, ":2")
    assert not (tmp_path / "p.csv").exists()
    with pytest.raises(SeqkitError, match="empty text"):
        TASK.load(run).predict([""])


def test_tarball_missing_layout_is_an_error(tmp_path):
    tar_path = tmp_path / "x.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        info = tarfile.TarInfo("stuff/readme.txt")
        data = b"hello"
        info.size = len(data)
        tf.addfile(info, _io.BytesIO(data))
    with pytest.raises(SeqkitError, match="aclImdb layout"):
        load_split_source(tar_path)


def test_text_length_settings_follow_the_training_texts():
    from tasks.sentiment import text_lengths

    long = text_lengths([100] * 50 + [300] * 30 + [900] * 20, 0, 0)
    assert long["max_length"] == 400 and long["region_size"] == 4  # capped; long texts: 4-token regions
    short = text_lengths(list(range(5, 40)), 0, 0)
    # 90 % of the texts kept whole (p90 of 5..39 is 35.6 -> 48 after rounding up to 16), every token fed
    assert short["max_length"] == 48 and short["region_size"] == 1
    given = text_lengths(list(range(5, 40)), 200, 2)
    assert (given["max_length"], given["region_size"]) == (200, 2)
    assert given["max_length_source"] == given["region_size_source"] == "config"
