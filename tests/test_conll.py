"""CoNLL reader/writer, validation with file:line, and tag-scheme conversion."""

from __future__ import annotations

import pytest

from seqkit.data.conll import (
    convert_tags,
    detect_scheme,
    iob1_to_iob2,
    iob2_to_iobes,
    iobes_to_iob2,
    read_conll,
    tag_set,
    write_conll,
)
from seqkit.errors import SeqkitError

SAMPLE = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
"""


def test_read_columns_docstart_and_blank_lines(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text(SAMPLE)
    sents = read_conll(p)
    assert [s.tokens for s in sents] == [["EU", "rejects", "German"], ["Peter", "Blackburn"], ["BRUSSELS"]]
    assert sents[1].tags == ["B-PER", "I-PER"] and sents[1].line == 7


@pytest.mark.parametrize(
    "text, message",
    [
        ("EU NNP B-ORG\nrejects VBZ\n", "a.txt:2: expected 3 columns, found 2"),
        ("EU\tB-ORG\n\tO\n", "a.txt:2: empty token"),
        ("EU\tB-ORG\nx\t\n", "a.txt:2: empty tag"),
        ("EU NNP\n", "a.txt:1: unknown tag format 'NNP'"),
        ("EU X-ORG\n", "a.txt:1: unknown tag format"),
        ("\n\n", "a.txt: no sentences"),
    ],
)
def test_validation_names_file_and_line(tmp_path, text, message):
    p = tmp_path / "a.txt"
    p.write_text(text)
    with pytest.raises(SeqkitError, match=message.replace("(", r"\(")):
        read_conll(p)


def test_scheme_restriction_and_missing_columns(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("EU S-ORG\n")
    with pytest.raises(SeqkitError, match=r"a.txt:1: tag 'S-ORG' is not valid in the IOB2 scheme"):
        read_conll(p, scheme="IOB2")
    with pytest.raises(SeqkitError, match=r"a.txt:1: tag column 5 does not exist"):
        read_conll(p, tag_column=5)
    with pytest.raises(SeqkitError, match="file not found"):
        read_conll(tmp_path / "missing.txt")


def test_scheme_conversions_round_trip():
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]
    iob2 = ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG"]
    iobes = ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "S-ORG"]
    assert iob1_to_iob2(iob1) == iob2
    assert iob2_to_iobes(iob2) == iobes
    assert iobes_to_iob2(iobes) == iob2
    assert convert_tags(iob2, "IOB2", "IOB1") == iob1
    assert convert_tags(iob1, "IOB1", "IOBES") == iobes
    assert convert_tags(iobes, "IOBES", "IOB1") == iob1
    assert detect_scheme([iob1]) == "IOB1" and detect_scheme([iob2]) == "IOB2" and detect_scheme([iobes]) == "IOBES"
    assert tag_set(["LOC"], "IOBES") == ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]


def test_writer_output_reads_back(tmp_path):
    tokens = [["Harry", "Potter", "visited", "Paris", "."], ["EU"]]
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-ORG"]]
    pred = [["B-PER", "O", "O", "B-LOC", "O"], ["O"]]
    p = write_conll(tmp_path / "out.txt", tokens, gold, pred, docstart=True)
    assert [s.tags for s in read_conll(p, tag_column=1)] == gold
    assert [s.tags for s in read_conll(p, tag_column=2)] == pred
    assert [s.tokens for s in read_conll(p)] == tokens
    with pytest.raises(ValueError, match="whitespace"):
        write_conll(tmp_path / "bad.txt", [["a b"]], [["O"]])
