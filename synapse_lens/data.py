"""Labelled text datasets: loading (CSV / TSV / JSONL / Python lists), label alignment with a
model's ``id2label``, stratified seeded splits, and tokenisation with attention masks.

Example:
    >>> ds = from_lists(["free cash now", "see you later", "win a prize", "ok"],
    ...                 ["spam", "ham", "spam", "ham"], name="sms")
    >>> ds.label_names, ds.labels.tolist()
    (('ham', 'spam'), [1, 0, 1, 0])
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jaxtyping import Int
from torch import Tensor

_MISSING = {"", "nan", "na", "n/a", "null", "none"}
_INT_RE = re.compile(r"[+-]?\d+")


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list after the one check every entry point makes: a non-empty sequence
    of strings (not a single string).

    Raises:
        TypeError: a single string, or an entry that is not a string (its position is named).
        ValueError: no texts.

    Example:
        >>> check_texts(("free cash", "see you"))
        ['free cash', 'see you']
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not a single string")
    out = list(texts)
    if not out:
        raise ValueError("empty dataset: no texts")
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is a {type(text).__name__}, expected str")
    return out


def stratified_split(
    labels: Sequence[int] | np.ndarray,
    *,
    test_size: float | int | None = None,
    train_size: float | int | None = None,
    seed: int = 0,
    label_names: Sequence[str] | None = None,
    what: str = "the dataset",
    sort: bool = True,
) -> tuple[Int[np.ndarray, " n_train"], Int[np.ndarray, " n_test"]]:
    """The one stratified, seeded split of synapse_lens: row indices ``(train, test)`` from
    scikit-learn's ``train_test_split`` (``stratify=labels``, ``random_state=seed``), each
    sorted (``sort=False``: in scikit-learn's shuffled order, to split a part again exactly as
    scikit-learn would). Give ``test_size`` and/or ``train_size`` (a fraction in (0, 1) or a
    count), as scikit-learn takes them.

    Raises:
        ValueError: a fraction outside (0, 1); a class with fewer than 2 rows (named, with the
            counts, by ``label_names``); a split scikit-learn cannot stratify (``what`` names
            the data in the message).

    Example:
        >>> train, test = stratified_split([0, 1] * 50, test_size=0.2, seed=0)
        >>> len(train), len(test)
        (80, 20)
    """
    from sklearn.model_selection import train_test_split as split

    y = np.asarray(labels, dtype=np.int64)
    for name, size in (("test_size", test_size), ("train_size", train_size)):
        if isinstance(size, float) and not 0.0 < size < 1.0:
            raise ValueError(f"{name} must be a fraction in (0, 1) or a count, got {size}")
    counts = np.bincount(y)
    if counts[counts > 0].min() < 2:
        names = list(label_names or ())
        names += [str(i) for i in range(len(names), counts.size)]
        shown = {names[i]: int(c) for i, c in enumerate(counts) if c > 0}
        raise ValueError(f"every class needs at least 2 examples for a stratified split, got "
                         f"{shown}")
    try:
        train, test = split(np.arange(y.size), test_size=test_size, train_size=train_size,
                            random_state=seed, stratify=y)
    except ValueError as err:
        raise ValueError(f"cannot split {what} (n={y.size}, test_size={test_size}, "
                         f"train_size={train_size}): {err}") from err
    if sort:
        train, test = np.sort(train), np.sort(test)
    return train.astype(np.int64), test.astype(np.int64)


@dataclass(frozen=True, eq=False)
class TextDataset:
    """Labelled texts.

    Attributes:
        texts: the texts, one per example.
        labels: ``int64`` class ids ``[n]``; ``labels[i]`` indexes ``label_names``.
        label_names: class names, index = class id.
        name: a short name used in reports.

    Raises:
        ValueError: empty dataset, texts/labels of different lengths, class ids outside
            ``0..len(label_names)-1``, duplicate label names.
        TypeError: a text that is not a string.
    """

    texts: tuple[str, ...]
    labels: Int[np.ndarray, " n"]
    label_names: tuple[str, ...]
    name: str = "dataset"

    def __post_init__(self) -> None:
        texts = tuple(check_texts(self.texts))
        labels = np.asarray(self.labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels; they must match")
        names = tuple(str(x) for x in self.label_names)
        if len(set(names)) != len(names):
            raise ValueError(f"label names must be unique, got {names}")
        if labels.min() < 0 or labels.max() >= len(names):
            raise ValueError(
                f"class ids must lie in 0..{len(names) - 1} (one per label name {names}), "
                f"got {labels.min()}..{labels.max()}"
            )
        labels = labels.astype(np.int64, copy=True)
        labels.flags.writeable = False
        object.__setattr__(self, "texts", texts)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "label_names", names)

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 (16 hex chars) of the texts, labels and label names (not the name)."""
        digest = hashlib.sha256()
        digest.update(json.dumps([list(self.texts), self.labels.tolist(),
                                  list(self.label_names)]).encode())
        return digest.hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    def subset(self, idx: Sequence[int] | np.ndarray) -> TextDataset:
        """The examples at positions ``idx`` (in that order), same label names.

        Raises:
            ValueError: empty or out-of-range ``idx``.
        """
        index = np.asarray(idx, dtype=np.int64).reshape(-1)
        if index.size and (index.min() < -len(self) or index.max() >= len(self)):
            raise ValueError(f"subset indices must lie in 0..{len(self) - 1}")
        return TextDataset(tuple(self.texts[i] for i in index), self.labels[index],
                           self.label_names, self.name)

    def __repr__(self) -> str:
        counts = np.bincount(self.labels, minlength=self.n_classes).tolist()
        return (f"TextDataset(name={self.name!r}, n={len(self)}, "
                f"classes={dict(zip(self.label_names, counts))})")


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in _MISSING


def _encode_labels(
    labels: Sequence[Any], label_names: Sequence[str] | None
) -> tuple[np.ndarray, tuple[str, ...]]:
    values = list(labels.tolist() if isinstance(labels, np.ndarray) else labels)
    for i, value in enumerate(values):
        if _is_missing(value):
            raise ValueError(f"label {i} is missing (empty or NaN: {value!r}); every text needs "
                             "a label")
        if isinstance(value, bool) or not isinstance(value, (str, int, np.integer)):
            raise TypeError(f"label {i} is {value!r} ({type(value).__name__}); labels must be "
                            "class names (str) or class ids (int)")
    kinds = {isinstance(v, str) for v in values}
    if len(kinds) > 1:
        raise TypeError("labels mix strings and ints; use one kind")
    if values and isinstance(values[0], str):
        names = tuple(label_names) if label_names is not None else tuple(sorted(set(values)))
        lookup = {n: i for i, n in enumerate(names)}
        unknown = sorted({v for v in values if v not in lookup})
        if unknown:
            raise ValueError(f"labels {unknown} are not among the label names {names}")
        ids = np.array([lookup[v] for v in values], dtype=np.int64)
    else:
        ids = np.array([int(v) for v in values], dtype=np.int64)
        if ids.size and ids.min() < 0:
            raise ValueError(f"integer labels must be >= 0, got {ids.min()}")
        top = int(ids.max()) + 1 if ids.size else 0
        names = tuple(label_names) if label_names is not None else tuple(
            str(i) for i in range(top))
        if top > len(names):
            raise ValueError(f"label id {top - 1} has no name: label_names has {len(names)} "
                             f"entries {names}")
    return ids, tuple(str(n) for n in names)


def _check_two_classes(ds: TextDataset) -> None:
    present = np.unique(ds.labels)
    if present.size < 2:
        raise ValueError(f"dataset {ds.name!r} has a single class "
                         f"({ds.label_names[present[0]]!r}); a probe needs at least two")


def from_lists(
    texts: Sequence[str],
    labels: Sequence[Any] | np.ndarray,
    label_names: Sequence[str] | None = None,
    name: str = "dataset",
) -> TextDataset:
    """A :class:`TextDataset` from Python lists.

    Args:
        texts: the texts.
        labels: class names (``str``; ids follow ``label_names`` or, without it, sorted names)
            or class ids (``int`` >= 0; names default to ``"0"``, ``"1"``...).
        label_names: class names in class-id order.
        name: dataset name.

    Returns:
        The dataset; ``labels`` ``int64 [n]``.

    Raises:
        ValueError: empty input, lengths differ, a missing (None / NaN / empty) label, a label
            not in ``label_names``, fewer than two classes present.
        TypeError: texts that are not strings, labels that are neither str nor int.

    Example:
        >>> from_lists(["a", "b"], [1, 0], label_names=["neg", "pos"]).label_names
        ('neg', 'pos')
    """
    texts = check_texts(texts)
    labels_list = list(labels.tolist() if isinstance(labels, np.ndarray) else labels)
    if len(texts) != len(labels_list):
        raise ValueError(f"{len(texts)} texts but {len(labels_list)} labels; they must match")
    ids, names = _encode_labels(labels_list, label_names)
    ds = TextDataset(tuple(texts), ids, names, name)
    _check_two_classes(ds)
    return ds


def _decode(path: Path, encoding: str) -> str:
    """The file's text; a ValueError naming the file and the encoding when it does not
    decode."""
    import codecs

    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}; use a Python codec name such as "
                         "utf-8, cp1252, latin-1 or utf-16") from None
    raw = path.read_bytes()
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise ValueError(f"{str(path)!r} is UTF-16 (it starts with a UTF-16 byte-order "
                             "mark), not UTF-8; pass --encoding utf-16 (encoding='utf-16')")
        encoding = "utf-8-sig"  # a UTF-8 byte-order mark is not part of the first column name
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{str(path)!r} is not valid {encoding.removesuffix('-sig')} (byte "
            f"0x{raw[err.start]:02x} at offset {err.start}); pass --encoding with the file's "
            "encoding (e.g. cp1252, latin-1, utf-16)") from None


def _read_rows(path: Path, encoding: str = "utf-8") -> list[dict[str, Any]]:
    """Rows of a JSONL / CSV / TSV file as dicts (CSV and TSV cells as strings).

    CSV follows RFC 4180 quoting. TSV is one record per line: a field wrapped in double quotes
    loses them (``""`` inside becomes ``"``), any other quote is text, so a field that merely
    starts with a quote cannot swallow the rows after it.
    """
    import io

    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv", ".tsv"):
        raise ValueError(f"unsupported file type {suffix!r} for {path}; use .csv, .tsv or .jsonl")
    text = _decode(path, encoding)
    if suffix == ".jsonl":
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{lineno}: invalid JSON ({err.msg})") from err
                if not isinstance(row, dict):
                    raise ValueError(f"{path}:{lineno}: expected a JSON object per line")
                rows.append(row)
        return rows
    import csv

    import pandas as pd

    tsv = suffix == ".tsv"
    try:
        frame = pd.read_csv(io.StringIO(text), sep="\t" if tsv else ",", dtype=str,
                            keep_default_na=False, na_filter=False,
                            quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
    except pd.errors.EmptyDataError:
        return []
    except pd.errors.ParserError as err:
        raise ValueError(f"{str(path)!r} is not a well-formed {suffix[1:].upper()} file: "
                         f"{str(err).strip()}") from None
    if tsv:
        frame = frame.map(_unquote_field)
        frame.columns = [_unquote_field(c) for c in frame.columns]
    return frame.to_dict("records")  # type: ignore[return-value]


def _unquote_field(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('""', '"')
    return value


def load_texts(
    path: str | os.PathLike[str],
    text_column: str,
    label_column: str,
    *,
    label_names: Sequence[str] | None = None,
    name: str | None = None,
    encoding: str = "utf-8",
) -> TextDataset:
    """Load labelled texts from a ``.csv``, ``.tsv`` or ``.jsonl`` file.

    CSV/TSV cells are read as strings; a label column whose every value is an integer becomes
    class ids, otherwise class names; surrounding whitespace of a string label is dropped.
    ``""``, ``NaN``, ``NA``, ``null``, ``None`` are missing. CSV uses RFC 4180 quotes; TSV has
    one record per line (a field wrapped in quotes is unquoted, any other ``"`` is text).

    Args:
        path: the file.
        text_column: column (JSON key) holding the text.
        label_column: column holding the label.
        label_names: class names in class-id order (default: sorted names / ``"0"``, ``"1"``…).
        name: dataset name (default: the file stem).
        encoding: the file's text encoding (a UTF-8 byte-order mark is skipped).

    Returns:
        The dataset.

    Raises:
        FileNotFoundError: no such file.
        PermissionError: the file cannot be read.
        ValueError: unsupported suffix, a file that does not decode with ``encoding`` (the
            message names the file and the encoding), malformed CSV, missing column, empty
            file, missing labels, fewer than two classes, unknown labels.

    Example:
        >>> ds = load_texts("sms-spam.csv", "text", "spam")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    rows = _read_rows(path, encoding)
    if not rows:
        raise ValueError(f"empty dataset: {str(path)!r} holds no rows")
    columns = list(rows[0])
    for column in (text_column, label_column):
        missing = [i for i, row in enumerate(rows) if column not in row]
        if missing:
            raise ValueError(f"column {column!r} is missing from {str(path)!r} (row {missing[0]}); "
                             f"columns are {columns}")
    texts, labels = [], []
    for i, row in enumerate(rows):
        text = row[text_column]
        if text is None or not isinstance(text, str):
            raise ValueError(f"row {i}: text {text!r} is not a string")
        texts.append(text)
        label = row[label_column]
        labels.append(label.strip() if isinstance(label, str) else label)
    if path.suffix.lower() in (".csv", ".tsv") and all(
        isinstance(v, str) and _INT_RE.fullmatch(v.strip()) for v in labels
    ):
        labels = [int(v) for v in labels]
    return from_lists(texts, labels, label_names, name or path.stem)


def align_labels(ds: TextDataset, id2label: Sequence[str] | Mapping[int, str]) -> TextDataset:
    """Re-number a dataset's classes to a model's ``id2label`` order, matching by name.

    Args:
        ds: the dataset.
        id2label: the model's class names (``classifier_info(model).id2label``) or a mapping.

    Returns:
        A dataset whose ``label_names`` equal ``id2label`` and whose labels follow it.

    Raises:
        ValueError: a dataset label name the model does not know.

    Example:
        >>> ds = from_lists(["a", "b"], ["spam", "ham"])
        >>> align_labels(ds, ["spam", "ham"]).labels.tolist()
        [0, 1]
    """
    names = (tuple(str(id2label[i]) for i in sorted(id2label)) if isinstance(id2label, Mapping)
             else tuple(str(x) for x in id2label))
    lookup = {n: i for i, n in enumerate(names)}
    unknown = [n for n in ds.label_names if n not in lookup]
    if unknown:
        raise ValueError(f"labels {unknown} of dataset {ds.name!r} are unknown to the model, "
                         f"whose classes are {names}; name them with model_labels(..., "
                         "label_names=) (CLI: --label-names)")
    remap = np.array([lookup[n] for n in ds.label_names], dtype=np.int64)
    return TextDataset(ds.texts, remap[ds.labels], names, ds.name)


def model_labels(ds: TextDataset, id2label: Sequence[str],
                 label_names: Sequence[str] | None = None) -> TextDataset:
    """A data file's labels named like a model's classes, then aligned to them.

    - ``label_names`` given: the file's labels, in the model's class order (the file says
      ``negative`` / ``positive`` where the model says ``LABEL_0`` / ``LABEL_1``);
      ``label_names[i]`` is the model's class ``i``.
    - otherwise integer labels (as :func:`load_texts` reads a column of integers) that are not
      themselves class names are class ids, named through ``id2label``.
    - otherwise the names must already be the model's.

    Raises:
        ValueError: ``label_names`` of another length than ``id2label`` or repeating a name, a
            file label missing from ``label_names``, a class id the model does not have, a name
            the model does not know.

    Example:
        >>> ds = from_lists(["a", "b"], [1, 0])
        >>> model_labels(ds, ["ham", "spam"]).label_names
        ('ham', 'spam')
    """
    classes = tuple(str(x) for x in id2label)
    if label_names is not None:
        names = tuple(str(x) for x in label_names)
        if len(names) != len(classes) or len(set(names)) != len(names):
            raise ValueError(f"label_names must name each of the model's {len(classes)} classes "
                             f"{list(classes)} once, in that order; got {list(names)}")
        unknown = [n for n in ds.label_names if n not in names]
        if unknown:
            raise ValueError(f"labels {unknown} of {ds.name!r} are not among label_names "
                             f"{list(names)}")
        rename = dict(zip(names, classes))
        ds = TextDataset(ds.texts, ds.labels, tuple(rename[n] for n in ds.label_names), ds.name)
    elif (ds.label_names == tuple(str(i) for i in range(len(ds.label_names)))
          and not set(ds.label_names) <= set(classes)):
        present = np.unique(ds.labels)
        if present.max() >= len(classes):
            raise ValueError(f"class id {int(present.max())} in {ds.name!r} does not exist: the "
                             f"model has {len(classes)} classes {list(classes)} (ids 0.."
                             f"{len(classes) - 1})")
        ds = TextDataset(ds.texts, ds.labels, classes[:len(ds.label_names)], ds.name)
    return align_labels(ds, classes)


def train_test_split(
    ds: TextDataset, test_size: float | int = 0.25, seed: int = 0
) -> tuple[TextDataset, TextDataset]:
    """Stratified, seeded train/test split (``sklearn.model_selection.train_test_split``).

    Args:
        ds: the dataset.
        test_size: fraction in (0, 1) or a number of test examples.
        seed: the split's seed.

    Returns:
        ``(train, test)`` datasets, named ``"<name>/train"`` and ``"<name>/test"``.

    Raises:
        ValueError: a single class, a class too small to stratify, a bad ``test_size``.

    Example:
        >>> train, test = train_test_split(ds, 0.25, seed=0)  # doctest: +SKIP
    """
    _check_two_classes(ds)
    train_idx, test_idx = stratified_split(ds.labels, test_size=test_size, seed=seed,
                                           label_names=ds.label_names, what=repr(ds.name))
    train, test = ds.subset(train_idx), ds.subset(test_idx)
    return (TextDataset(train.texts, train.labels, ds.label_names, f"{ds.name}/train"),
            TextDataset(test.texts, test.labels, ds.label_names, f"{ds.name}/test"))


def tokenize(model: Any, texts: Sequence[str], max_length: int = 128) -> dict[str, Tensor]:
    """Tokenise texts with the model's tokenizer: right padding, truncation, attention mask.

    Args:
        model: a model from :func:`synapse_lens.load_classifier`.
        texts: the texts.
        max_length: longest token sequence kept; capped at the model's position table
            (``classifier_info(model).max_length``).

    Returns:
        ``{"input_ids": Int[Tensor, "batch pos"], "attention_mask": Int[Tensor, "batch pos"]}``
        on the model's device.

    Raises:
        ValueError: no texts, ``max_length`` < 2.
        TypeError: texts that are not strings.

    Example:
        >>> tokenize(model, ["free cash", "hi"])["input_ids"].shape  # doctest: +SKIP
        torch.Size([2, 4])
    """
    from synapse_lens.models import classifier_info

    info = classifier_info(model)
    texts = check_texts(texts)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an int >= 2, got {max_length!r}")
    enc = model.tokenizer(texts, padding=True, truncation=True,
                          max_length=min(max_length, info.max_length), return_tensors="pt")
    device = next(model.parameters()).device
    return {"input_ids": enc["input_ids"].to(device),
            "attention_mask": enc["attention_mask"].to(device, dtype=torch.long)}


def truncation_stats(model: Any, texts: Sequence[str], max_length: int = 128) -> dict[str, Any]:
    """How many texts are longer than the analysed length, and by how much.

    Every forward pass keeps the first ``min(max_length, classifier_info(model).max_length)``
    tokens (special tokens included); this counts what is cut off.

    Args:
        model: a model from :func:`synapse_lens.load_classifier`.
        texts: the texts.
        max_length: as in :func:`tokenize`.

    Returns:
        ``{"max_length", "n_texts", "n_truncated", "share_truncated", "cut_tokens_median",
        "cut_tokens_max", "longest_tokens"}`` (the cut sizes are over the truncated texts; 0
        when none is).

    Example:
        >>> truncation_stats(model, ["a long review ..."], max_length=64)  # doctest: +SKIP
        {'max_length': 64, 'n_texts': 1, 'n_truncated': 1, ...}
    """
    from synapse_lens.models import classifier_info

    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an int >= 2, got {max_length!r}")
    limit = min(max_length, classifier_info(model).max_length)
    ids = model.tokenizer(list(texts), add_special_tokens=True, truncation=False,
                          verbose=False)["input_ids"]
    lengths = np.asarray([len(x) for x in ids], dtype=np.int64)
    cut = lengths[lengths > limit] - limit
    return {"max_length": int(limit), "n_texts": int(lengths.size),
            "n_truncated": int(cut.size),
            "share_truncated": float(cut.size / lengths.size) if lengths.size else 0.0,
            "cut_tokens_median": float(np.median(cut)) if cut.size else 0.0,
            "cut_tokens_max": int(cut.max()) if cut.size else 0,
            "longest_tokens": int(lengths.max()) if lengths.size else 0}
