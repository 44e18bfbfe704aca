"""The SYNAPSE report: one self-contained, offline HTML file per run (plotly.js inlined once, no
CDN), and a comparison report across runs.

A run directory holds ``summary.json`` (config, fingerprints, headline numbers, optional
``examples``: a list of ``{text, label, prediction}``) and ``tables/<name>.csv`` for the names
in :data:`~synapse_lens.schema.TABLE_NAMES`. :func:`write_report` turns it into ``report.html``;
:func:`render_report` does the same from in-memory tables. Every data string (texts, class and
hook names, summary fields) is HTML-escaped; a missing table leaves its section with a notice.

Example:
    >>> write_report("runs/sms-spam")  # doctest: +SKIP
    PosixPath('runs/sms-spam/report.html')
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from synapse_lens.atomic import atomic_directory, atomic_write_text, check_output_dir
from synapse_lens.report.compare import render_comparison
from synapse_lens.report.findings import findings
from synapse_lens.report.headline import headline
from synapse_lens.report.page import Section, page
from synapse_lens.report.sections import SECTIONS, describe_model, generated_note, run_label
from synapse_lens.report.tables import prepare
from synapse_lens.schema import (
    COMPARISON_FILE,
    COMPARISON_SCHEMA,
    REPORT_FILE,
    SUMMARY_FILE,
    TABLE_NAMES,
    TABLES_DIR,
    read_run,
    save_tables,
)

__all__ = [
    "REPORT_FILE",
    "SUMMARY_FILE",
    "TABLES_DIR",
    "TABLE_NAMES",
    "findings",
    "headline",
    "prepare",
    "read_run",
    "render_comparison",
    "render_report",
    "run_label",
    "save_tables",
    "write_comparison_report",
    "write_report",
]


def _check(tables: Mapping[str, pd.DataFrame], summary: Mapping[str, Any]) -> None:
    if not isinstance(summary, Mapping):
        raise TypeError(f"summary must be a mapping (parsed summary.json), got "
                        f"{type(summary).__name__}")
    if not isinstance(tables, Mapping):
        raise TypeError(f"tables must be a mapping name -> DataFrame, got "
                        f"{type(tables).__name__}")
    unknown = [n for n in tables if n not in TABLE_NAMES]
    if unknown:
        raise ValueError(f"unknown table names {unknown}; known: {list(TABLE_NAMES)}")


def render_report(tables: Mapping[str, pd.DataFrame], summary: Mapping[str, Any]) -> str:
    """The report of one run as an HTML string.

    Args:
        tables: name (see :data:`TABLE_NAMES`; all optional) -> tidy table as produced by the
            analysis modules (per-seed tables are summarised here).
        summary: the run's summary (``task``, ``model``, config, fingerprints, ``examples``...).

    Returns:
        A complete, self-contained HTML document (plotly.js inlined once, no external URL
        loaded).

    Raises:
        TypeError: tables / summary of the wrong type.
        ValueError: an unknown table name, a table lacking the columns its figure needs,
            malformed ``examples``.

    Example:
        >>> html = render_report({"probes": results.table}, {"task": "sms-spam"})  # doctest: +SKIP
    """
    _check(tables, summary)
    prepared = prepare(tables)
    sections: list[Section] = [build(prepared, summary) for build in SECTIONS]
    label = run_label(summary)
    intro = ("Neuron-level robustness analysis of an encoder classifier: probes, rankings, "
             "ablations, noise and redirection. " + describe_model(summary)).strip()
    return page(f"SYNAPSE report — {label}", intro, sections, generated_note(summary))


def _write_atomic(path: Path, text: str) -> Path:
    """Atomic write (readable like any other file)."""
    return atomic_write_text(path, text)


def write_report(run_dir: str | os.PathLike[str]) -> Path:
    """Render ``<run_dir>/report.html`` from ``summary.json`` and ``tables/*.csv``, atomically
    (a failure leaves no partial file and keeps an existing report as it was).

    Args:
        run_dir: a run directory (see :func:`read_run`).

    Returns:
        The path of the written report.

    Raises:
        FileNotFoundError: no run directory / ``summary.json``.
        ValueError: unreadable JSON or CSV, tables lacking needed columns.

    Example:
        >>> write_report("runs/sms-spam")  # doctest: +SKIP
    """
    tables, summary = read_run(run_dir)
    html = render_report(tables, summary)
    return _write_atomic(Path(run_dir) / REPORT_FILE, html)


def write_comparison_report(run_dirs: Sequence[str | os.PathLike[str]],
                            out_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Compare several runs side by side (probe accuracy per layer, ablation sensitivity,
    redundancy, class asymmetry) in ``<out_dir>/report.html``.

    ``out_dir`` is a comparison directory (``report.html`` + ``comparison.json``, which names
    the compared runs), written atomically under the same output policy as a run directory
    (:func:`synapse_lens.atomic.check_output_dir`): absent, empty, or an earlier comparison
    replaced only with ``overwrite``.

    Args:
        run_dirs: two or more run directories; each is labelled by its summary's task/model.
        out_dir: the comparison directory to create.
        overwrite: replace an earlier comparison directory at ``out_dir``.

    Returns:
        The path of the written report.

    Raises:
        ValueError: fewer than two runs, unreadable runs, an ``out_dir`` the output policy
            refuses (the current directory, a compared run or a parent of one).
        FileNotFoundError: a run directory or its ``summary.json`` is missing.
        FileExistsError: ``out_dir`` holds other files, or an earlier comparison without
            ``overwrite``.

    Example:
        >>> write_comparison_report(["runs/sms-spam", "runs/trec-6"], "runs/compare")
        ... # doctest: +SKIP
    """
    if isinstance(run_dirs, (str, os.PathLike)) or len(run_dirs) < 2:
        raise ValueError("compare needs at least two run directories")
    check_output_dir(out_dir, marker=COMPARISON_FILE, schema=COMPARISON_SCHEMA,
                     overwrite=overwrite, inputs=run_dirs)
    runs = [read_run(d) for d in run_dirs]
    html = render_comparison(runs)
    manifest = {"schema": COMPARISON_SCHEMA, "runs": [str(d) for d in run_dirs]}
    with atomic_directory(out_dir) as tmp:
        (tmp / REPORT_FILE).write_text(html, encoding="utf-8")
        (tmp / COMPARISON_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return Path(out_dir) / REPORT_FILE
