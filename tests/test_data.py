"""Text datasets: loading, label alignment, splits, tokenisation, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from synapse_lens.data import (
    TextDataset,
    align_labels,
    from_lists,
    load_texts,
    tokenize,
    train_test_split,
)

TEXTS = ["free cash now", "see you later", "win a prize", "ok then", "call now", "nice film"]
LABELS = ["spam", "ham", "spam", "ham", "spam", "ham"]


def test_from_lists_string_and_int_labels() -> None:
    ds = from_lists(TEXTS, LABELS, name="sms")
    assert ds.label_names == ("ham", "spam")
    assert ds.labels.dtype == np.int64 and ds.labels.tolist() == [1, 0, 1, 0, 1, 0]
    assert len(ds) == 6 and ds.name == "sms"
    ids = from_lists(TEXTS, [1, 0, 1, 0, 1, 0], label_names=["ham", "spam"])
    assert ids.label_names == ds.label_names and ids.labels.tolist() == ds.labels.tolist()
    assert ids.fingerprint == ds.fingerprint  # the name does not enter the fingerprint
    assert from_lists(TEXTS, [1, 0, 1, 0, 1, 2]).label_names == ("0", "1", "2")
    ordered = from_lists(TEXTS, LABELS, label_names=["spam", "ham"])
    assert ordered.labels.tolist() == [0, 1, 0, 1, 0, 1]
    assert ordered.fingerprint != ds.fingerprint
    with pytest.raises(ValueError):  # labels are read-only
        ds.labels[0] = 5


def test_subset_and_fingerprint() -> None:
    ds = from_lists(TEXTS, LABELS)
    sub = ds.subset([4, 0])
    assert sub.texts == ("call now", "free cash now") and sub.labels.tolist() == [1, 1]
    assert sub.label_names == ds.label_names
    assert len(ds.fingerprint) == 16 and int(ds.fingerprint, 16) >= 0
    assert from_lists(TEXTS[::-1], LABELS[::-1]).fingerprint != ds.fingerprint
    with pytest.raises(ValueError, match="subset indices"):
        ds.subset([6])


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_load_texts_formats(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"d{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps({"t": t, "y": y, "extra": 1}) + "\n"
                                for t, y in zip(TEXTS, LABELS)))
    else:
        sep = "," if suffix == ".csv" else "\t"
        path.write_text("t" + sep + "y\n" + "".join(f'"{t}"{sep}{y}\n'
                                                     for t, y in zip(TEXTS, LABELS)))
    ds = load_texts(path, "t", "y")
    assert ds.texts == tuple(TEXTS) and ds.label_names == ("ham", "spam")
    assert ds.name == "d" and ds.fingerprint == from_lists(TEXTS, LABELS).fingerprint


def test_load_texts_integer_csv_labels(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\n" + "".join(f"{t},{i % 3 * 5}\n" for i, t in enumerate(TEXTS)))
    ds = load_texts(path, "text", "label")
    assert ds.labels.tolist() == [0, 5, 10, 0, 5, 10]  # ints, not sorted strings
    named = load_texts(path, "text", "label", label_names=[f"c{i}" for i in range(11)])
    assert named.label_names[10] == "c10"


def test_align_labels() -> None:
    ds = from_lists(TEXTS, LABELS)
    aligned = align_labels(ds, ["spam", "ham", "other"])
    assert aligned.label_names == ("spam", "ham", "other")
    assert [aligned.label_names[i] for i in aligned.labels] == LABELS
    assert align_labels(ds, {0: "spam", 1: "ham"}).labels.tolist() == [0, 1, 0, 1, 0, 1]
    with pytest.raises(ValueError, match=r"\['spam'\].*unknown to the model"):
        align_labels(ds, ["ham", "not_spam"])


def test_split_is_stratified_and_seeded() -> None:
    texts = [f"text {i}" for i in range(40)]
    labels = ["a"] * 30 + ["b"] * 10
    ds = from_lists(texts, labels)
    train, test = train_test_split(ds, 0.25, seed=0)
    assert len(train) == 30 and len(test) == 10
    assert np.bincount(test.labels).tolist() == [8, 2]  # stratified
    assert set(train.texts).isdisjoint(test.texts) and len(set(train.texts) | set(test.texts)) == 40
    again = train_test_split(ds, 0.25, seed=0)
    assert again[1].texts == test.texts and again[0].fingerprint == train.fingerprint
    assert train_test_split(ds, 0.25, seed=1)[1].texts != test.texts


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("texts", "labels", "error", "match"),
    [
        ([], [], ValueError, "empty"),
        (["a", "b"], ["x", "x"], ValueError, "single class"),
        (["a", "b", "c"], ["x", "y"], ValueError, "3 texts but 2 labels"),
        (["a", "b"], ["x", float("nan")], ValueError, "missing"),
        (["a", "b"], ["x", ""], ValueError, "missing"),
        (["a", "b"], ["x", None], ValueError, "missing"),
        (["a", "b"], [0, -1], ValueError, ">= 0"),
        (["a", "b"], [0, 1.5], TypeError, "labels must be"),
        (["a", "b"], ["x", 1], TypeError, "mix"),
        (["a", 3], ["x", "y"], TypeError, None),  # raised by the annotation check under pytest
    ],
)
def test_from_lists_bad_input(texts: list, labels: list, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        from_lists(texts, labels)


def test_unknown_label_name() -> None:
    with pytest.raises(ValueError, match=r"\['spam'\] are not among"):
        from_lists(TEXTS, LABELS, label_names=["ham", "other"])
    with pytest.raises(ValueError, match="has no name"):
        from_lists(TEXTS, [0, 1, 2, 0, 1, 2], label_names=["a", "b"])


def test_load_texts_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_texts(tmp_path / "nope.csv", "t", "y")
    bad = tmp_path / "d.txt"
    bad.write_text("x")
    with pytest.raises(ValueError, match="unsupported file type"):
        load_texts(bad, "t", "y")
    csv = tmp_path / "d.csv"
    csv.write_text("t,y\nfree cash,spam\nhello,ham\nhi,\n")
    with pytest.raises(ValueError, match="column 'label' is missing.*\\['t', 'y'\\]"):
        load_texts(csv, "t", "label")
    with pytest.raises(ValueError, match="label 2 is missing"):
        load_texts(csv, "t", "y")
    csv.write_text("t,y\nfree cash,spam\nhello,NaN\n")
    with pytest.raises(ValueError, match="label 1 is missing"):
        load_texts(csv, "t", "y")
    csv.write_text("t,y\n")
    with pytest.raises(ValueError, match="empty dataset"):
        load_texts(csv, "t", "y")
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"t": "a", "y": "x"}\n{"t": "b"}\n')
    with pytest.raises(ValueError, match="column 'y' is missing"):
        load_texts(jsonl, "t", "y")


def test_dataset_constructor_checks() -> None:
    with pytest.raises(ValueError, match="class ids must lie"):
        TextDataset(("a", "b"), np.array([0, 2]), ("x", "y"))
    with pytest.raises(ValueError, match="unique"):
        TextDataset(("a", "b"), np.array([0, 1]), ("x", "x"))
    ds = from_lists(["a", "b", "c"], ["x", "y", "x"])
    with pytest.raises(ValueError, match="at least 2 examples"):
        train_test_split(ds, 0.5)
    with pytest.raises(ValueError, match="single class"):
        train_test_split(ds.subset([0, 2]))
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(from_lists(TEXTS, LABELS), 1.5)


def test_tokenize_right_pads_and_truncates(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    enc = tokenize(tiny_bert, ["the movie was good and i love it", "bad"], max_length=5)
    assert set(enc) == {"input_ids", "attention_mask"}
    assert enc["input_ids"].shape == (2, 5)
    assert enc["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert enc["input_ids"][1, 3:].tolist() == [0, 0]  # right padding with the pad id
    assert enc["attention_mask"].dtype == torch.long
    capped = tokenize(tiny_bert, [" ".join(["good"] * 100)], max_length=10_000)
    assert capped["input_ids"].shape == (1, 64)  # the tiny model's position table
    with pytest.raises(ValueError, match="max_length"):
        tokenize(tiny_bert, ["bad"], max_length=1)
    with pytest.raises(ValueError, match="no texts"):
        tokenize(tiny_bert, [])
    with pytest.raises(TypeError, match="single string"):
        tokenize(tiny_bert, "bad")


def test_truncation_stats_count_what_is_cut(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    from synapse_lens.data import truncation_stats
    from synapse_lens.testing import TINY_WORDS

    word = TINY_WORDS[0]
    texts = [" ".join([word] * n) for n in (3, 6, 10, 20)]  # + [CLS] and [SEP]
    lengths = [len(x) for x in tiny_bert.tokenizer(texts)["input_ids"]]
    assert lengths == [5, 8, 12, 22]  # one token per word: the counts below are exact
    stats = truncation_stats(tiny_bert, texts, max_length=8)
    assert stats == {"max_length": 8, "n_texts": 4, "n_truncated": 2, "share_truncated": 0.5,
                     "cut_tokens_median": 9.0, "cut_tokens_max": 14, "longest_tokens": 22}
    assert truncation_stats(tiny_bert, texts, max_length=64)["n_truncated"] == 0
    with pytest.raises(ValueError, match="max_length"):
        truncation_stats(tiny_bert, texts, max_length=1)


def test_stratified_split_is_the_one_splitter() -> None:
    """Sorted, disjoint, complete, stratified and seeded; ``sort=False`` keeps scikit-learn's
    order (the same rows); one-line errors name the classes."""
    from synapse_lens.data import stratified_split

    labels = np.array([0] * 30 + [1] * 10)
    train, test = stratified_split(labels, test_size=0.25, seed=3)
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    assert sorted([*train, *test]) == list(range(40)) and len(test) == 10
    assert np.bincount(labels[test]).tolist() == [8, 2]  # the class shares of the whole
    again = stratified_split(labels, test_size=0.25, seed=3)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)
    raw_train, raw_test = stratified_split(labels, test_size=0.25, seed=3, sort=False)
    assert set(raw_train) == set(train) and set(raw_test) == set(test)
    assert not np.all(np.diff(raw_train) > 0)
    assert len(stratified_split(labels, train_size=8, seed=0)[0]) == 8
    with pytest.raises(ValueError, match="test_size must be a fraction in \\(0, 1\\)"):
        stratified_split(labels, test_size=1.5)
    with pytest.raises(ValueError, match=r"at least 2 examples .* got \{'ham': 39, 'spam': 1\}"):
        stratified_split([0] * 39 + [1], test_size=0.5, label_names=["ham", "spam"])
