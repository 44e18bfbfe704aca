"""What :func:`synapse_lens.run_synapse` returns: a handle on the run directory it wrote, with
the summary and the tables read lazily (nothing is loaded until asked for).

It is path-like (``os.fspath(result)``, ``result / "report.html"``, ``result.name``), so code
that treated the returned directory as a :class:`~pathlib.Path` keeps working.

Example:
    >>> result = run_synapse(model, data, "runs/sms")  # doctest: +SKIP
    >>> result  # doctest: +SKIP
    RunResult('runs/sms', task='sms', model='BertForSequenceClassification', n_eval=150, ...)
    >>> result.tables["vulnerability"].head()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from synapse_lens.schema import REPORT_FILE, SUMMARY_FILE, TABLES_DIR


class LazyTables(Mapping[str, pd.DataFrame]):
    """``tables/<name>.csv`` of a run directory as a read-only mapping; each table is read
    (with :func:`synapse_lens.schema.read_table`) on first access and kept."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._loaded: dict[str, pd.DataFrame] = {}

    def _names(self) -> list[str]:
        return sorted(p.stem for p in self._dir.glob("*.csv")) if self._dir.is_dir() else []

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._loaded:
            path = self._dir / f"{name}.csv"
            if not path.is_file():
                raise KeyError(f"no table {name!r} in {self._dir}; tables: {self._names()}")
            from synapse_lens.schema import read_table

            self._loaded[name] = read_table(path)
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return f"LazyTables({self._names()})"


class RunResult(os.PathLike[str]):
    """A run directory written by :func:`~synapse_lens.run_synapse`.

    Attributes:
        path: the run directory.
        summary: ``summary.json`` as a dict (read on first access).
        tables: name -> DataFrame, each read on first access (:class:`LazyTables`).
        report: the path of ``report.html``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __truediv__(self, other: str | os.PathLike[str]) -> Path:
        return self.path / other

    @property
    def name(self) -> str:
        """The run directory's name."""
        return self.path.name

    @property
    def report(self) -> Path:
        """The offline HTML report."""
        return self.path / REPORT_FILE

    @cached_property
    def summary(self) -> dict[str, Any]:
        """``summary.json`` (config, model, data, grids, headline numbers, truncation...)."""
        data = json.loads((self.path / SUMMARY_FILE).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{self.path / SUMMARY_FILE} is not a JSON object")
        return data

    @cached_property
    def tables(self) -> LazyTables:
        """Every ``tables/*.csv``, read on first access."""
        return LazyTables(self.path / TABLES_DIR)

    def __repr__(self) -> str:
        s = self.summary
        model = s.get("model", {}) if isinstance(s.get("model"), Mapping) else {}
        data = s.get("data", {}) if isinstance(s.get("data"), Mapping) else {}
        task = s.get("task") or data.get("name")
        acc = s.get("clean_accuracy")
        parts = [repr(os.fspath(self.path)), f"task={task!r}",
                 f"model={model.get('architecture')!r}", f"n_eval={data.get('n_eval')}"]
        if isinstance(acc, (int, float)):
            parts.append(f"clean_accuracy={acc:.3f}")
        parts.append(f"tables={len(self.tables)}")
        return f"RunResult({', '.join(parts)})"
