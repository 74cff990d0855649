"""NER pieces: conlleval-exact entity scores (cross-checked with seqeval), tokeniser, features, embeddings, predictor."""

from __future__ import annotations

import json

import numpy as np
import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from seqkit.metrics.ner import entity_scores, get_entities, token_type_confusion

CASES = [
    # (gold, predicted)
    ([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-LOC"]]),
    ([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "O", "O", "B-ORG"]]),
    # broken spans: I- without B- starts an entity (conlleval), type switch inside a span
    ([["O", "B-PER", "I-PER", "O"]], [["O", "I-PER", "I-PER", "O"]]),
    ([["B-PER", "I-PER", "I-PER"]], [["B-PER", "I-LOC", "I-PER"]]),
    ([["O", "I-MISC", "O", "B-LOC", "I-LOC"]], [["I-MISC", "I-MISC", "O", "I-LOC", "B-LOC"]]),
    # IOB1 input on both sides
    ([["I-ORG", "I-ORG", "B-ORG", "O", "I-PER"]], [["I-ORG", "O", "I-ORG", "O", "I-PER"]]),
    # IOBES
    ([["B-PER", "E-PER", "S-LOC", "O"]], [["B-PER", "E-PER", "B-LOC", "O"]]),
    # several sentences, entity at the end of one and the start of the next, nothing predicted
    ([["O", "B-LOC"], ["I-LOC", "O"]], [["O", "B-LOC"], ["B-LOC", "O"]]),
    ([["B-PER"], ["O"]], [["O"], ["O"]]),
]


@pytest.mark.parametrize("gold, pred", CASES)
def test_entity_scores_match_seqeval(gold, pred):
    s = entity_scores(gold, pred)
    assert s["precision"] == pytest.approx(precision_score(gold, pred))
    assert s["recall"] == pytest.approx(recall_score(gold, pred))
    assert s["f1"] == pytest.approx(f1_score(gold, pred))
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    for typ, v in s["per_type"].items():
        if typ in report:
            assert v["f1"] == pytest.approx(report[typ]["f1-score"])
            assert v["support"] == report[typ]["support"]


def test_hand_counted_case():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG"]]
    pred = [["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-MISC"]]
    s = entity_scores(gold, pred)
    # gold: PER(0-1) LOC(3) ORG(5); pred: PER(0-1) LOC(3-4) MISC(5): one of three right each way
    assert (s["n_true"], s["n_pred"], s["n_correct"]) == (3, 3, 1)
    assert s["f1"] == pytest.approx(1 / 3)
    assert s["per_type"]["PER"]["f1"] == 1.0 and s["per_type"]["LOC"]["f1"] == 0.0
    assert get_entities(["I-LOC", "B-LOC", "I-PER"]) == [("LOC", 0, 0), ("LOC", 1, 1), ("PER", 2, 2)]


def test_token_confusion():
    m, labels = token_type_confusion([["B-PER", "I-PER", "O"]], [["B-PER", "B-LOC", "B-LOC"]], ["LOC", "PER"])
    assert labels == ["LOC", "PER", "O"]
    assert m[1, 1] == 1 and m[1, 0] == 1 and m[2, 0] == 1 and m.sum() == 3


def test_tokenizer_offsets_and_features():
    from tasks.ner import CASINGS, casing_id, normalize_word, tokenize

    text = "Harry Potter's owl flew to the U.S. in 1997, didn't it?"
    toks = tokenize(text)
    assert [t for t, _, _ in toks][:5] == ["Harry", "Potter", "'s", "owl", "flew"]
    assert "U.S." in [t for t, _, _ in toks]
    assert all(text[a:b] == t for t, a, b in toks)
    assert CASINGS[casing_id("Paris")] == "initcap" and CASINGS[casing_id("EU")] == "allcaps"
    assert CASINGS[casing_id("1997")] == "numeric" and CASINGS[casing_id(",")] == "punct"
    assert normalize_word("Route66", True) == "route00"


def test_length_batches_group_similar_lengths():
    from tasks.ner import length_batches

    lengths = [5, 1, 9, 2, 8, 1, 7, 3]
    fixed = length_batches(lengths, 3, None)
    assert [list(np.asarray(lengths)[b]) for b in fixed] == [[1, 1, 2], [3, 5, 7], [8, 9]]
    shuffled = length_batches(lengths, 3, np.random.default_rng(0))
    assert sorted(i for b in shuffled for i in b) == list(range(8))


@pytest.mark.parametrize("word_dropout, singleton_unk", [(0.0, 0.0), (1.0, 0.0), (0.3, 0.0)])
def test_word_dropout_replaces_training_words_by_unk(tmp_path, word_dropout, singleton_unk):
    from seqkit.config import from_dict
    from seqkit.seed import set_seed
    from tasks.ner import PAD, TASK, UNK

    data, overrides = TASK.fixture(tmp_path / "data")
    cfg = from_dict(
        TASK.config_cls, {**overrides, "word_dropout": word_dropout, "singleton_unk": singleton_unk}, source="test"
    )
    set_seed(0)
    prepared = TASK.prepare(cfg, data)
    words = np.concatenate([x["words"].numpy().ravel() for x, _ in prepared.train])
    words = words[words != PAD]
    unk = float(np.mean(words == UNK))
    assert unk == pytest.approx(word_dropout, abs=0.08)
    # The characters stay: the tagger still sees the spelling of a dropped word.
    chars = np.concatenate([x["chars"].numpy()[..., 0].ravel() for x, _ in prepared.train])
    assert np.count_nonzero(chars) == len(words)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny CRF run with a tiny pretrained-vector file (seconds)."""
    from seqkit.cli import main
    from tasks.ner import TASK

    d = tmp_path_factory.mktemp("ner")
    data, overrides = TASK.fixture(d / "data")
    vec = d / "vectors.txt"
    vec.write_text("3 8\n" + "".join(f"{w} " + " ".join(["0.1"] * 8) + "\n" for w in ("paris", "harry", "zzz")))
    argv = ["train", "ner", "--out", str(d / "run"), "--train", data.train, "--valid", data.valid]
    argv += ["--test", data.test, "--set", f"embeddings={vec}"]
    for k, v in overrides.items():
        argv += ["--set", f"{k}={json.dumps(v)}"]
    assert main(argv) == 0
    return d / "run", data


def test_run_metrics_plots_and_coverage(trained_run):
    run, _ = trained_run
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("test_f1", "test_precision", "test_recall", "valid_f1", "test_f1_per_type", "train_seconds"):
        assert key in metrics
    cov = metrics["embeddings_coverage"]
    assert cov["vectors"] == 3 and 0 < cov["train_types_covered"] < 1
    for f in ("f1_per_type.png", "confusion_types.png", "vocab.json", "test_predictions.txt"):
        assert (run / f).exists(), f
    # the predictions file is conlleval input: token gold pred, and our scorer agrees with seqeval on it
    from seqkit.data.conll import read_conll

    gold = [s.tags for s in read_conll(run / "test_predictions.txt", tag_column=1)]
    pred = [s.tags for s in read_conll(run / "test_predictions.txt", tag_column=2)]
    assert entity_scores(gold, pred)["f1"] == pytest.approx(f1_score(gold, pred))
    assert metrics["test_f1"] == pytest.approx(f1_score(gold, pred))


def test_predictor_and_cli_json(trained_run, capsys, tmp_path):
    from seqkit.cli import main
    from tasks.ner import TASK

    run, _ = trained_run
    predictor = TASK.load(run)
    texts = ["Harry Potter visited Paris.", ""]
    ents = predictor.predict(texts)
    assert len(ents) == 2 and ents[1] == []
    for e in ents[0]:
        assert texts[0][e["start"] : e["end"]] == e["text"] and e["type"] in {"PER", "LOC", "ORG"}
    f = tmp_path / "in.txt"
    f.write_text("Maria Lopez visited Berlin.\nJohn visited Madrid.\n")
    capsys.readouterr()
    assert main(["predict", "--model", str(run), "--input", str(f), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [x["text"] for x in lines] == ["Maria Lopez visited Berlin.", "John visited Madrid."]


def test_save_load_identical_predictions(trained_run):
    from seqkit.training import load_model
    from tasks.ner import TASK

    run, data = trained_run
    a = TASK.load(run).tag([["Harry", "Potter", "visited", "Paris", "."]])
    model = load_model(run / "model.keras")
    x = {"words": np.array([[2, 3, 0]]), "chars": np.ones((1, 3, 20), "int32"), "casing": np.array([[1, 2, 0]])}
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(TASK.load(run).model(x)), atol=1e-6)
    assert a == TASK.load(run).tag([["Harry", "Potter", "visited", "Paris", "."]])


def test_bad_input_is_a_seqkit_error(tmp_path):
    from seqkit.cli import main
    from tasks.ner import TASK

    data, overrides = TASK.fixture(tmp_path / "data")
    bad = tmp_path / "bad.txt"
    bad.write_text("EU B-ORG\nrejects\n")
    argv = ["train", "ner", "--out", str(tmp_path / "r"), "--train", str(bad), "--valid", data.valid]
    assert main([*argv, "--test", data.test]) == 2
    assert main(["train", "ner", "--out", str(tmp_path / "r2"), "--train", data.train]) == 2


def test_predict_in_a_fresh_process(trained_run):
    """The CLI loads the run with nothing imported beforehand (custom layers must register themselves)."""
    import subprocess
    import sys
    from pathlib import Path

    run, _ = trained_run
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "seqkit", "predict", "--model", str(run), "--json", "Harry Potter visited Paris."],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-500:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["text"] == "Harry Potter visited Paris."
