"""The run directory's tables: names, CSV round trip, and the summaries the report shows.

A run directory holds ``summary.json`` and ``tables/<name>.csv`` for the names in
:data:`TABLE_NAMES` (every one optional): the tidy tables of the analysis modules, unchanged.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from synapse_lens.schema import SUMMARY_FILE, TABLES_DIR

logger = logging.getLogger(__name__)

#: table name -> what produces it (the CSV is ``tables/<name>.csv``). Summaries
#: (``ablation_summary``, ``class_asymmetry``, ``redundancy_minimal``) are recomputed by
#: :func:`prepare` when a run saved only the raw table; ``selectivity`` is derived from
#: ``probes`` by the figure.
TABLE_NAMES: dict[str, str] = {
    "probes": "probes.fit_probes(...).table",
    "selectivity": "probes.ProbeResults.selectivity()",
    "rankings": "rankings.rankings_frame(probe and probeless rankings)",
    "agreement": "rankings.ranking_agreement(probe, probeless, ks)",
    "stability": "stability.bootstrap_stability(...)",
    "redundancy": "redundancy.redundancy(...).table",
    "redundancy_minimal": "redundancy.redundancy(...).minimal",
    "ablation": "sweeps.ablation_curve(...) (per seed)",
    "ablation_summary": "experiments.summarize(ablation)",
    "faithfulness": "faithfulness.faithfulness(ablation, exact=...)",
    "outliers": "faithfulness.outlier_units(acts, hooks)",
    "outlier_ablation": "pipeline.outlier_ablation(...) (summarised over seeds)",
    "self_repair": "selfrepair.self_repair(...)[0]",
    "self_repair_trace": "selfrepair.self_repair(...)[1]",
    "class_matrix": "classwise.class_matrix(...)",
    "class_asymmetry": "classwise.class_asymmetry(class_matrix)",
    "overlap": "classwise.topk_overlap(per-class rankings, ks)",
    "noise": "sweeps.noise_curve(...) (per seed)",
    "redirection": "redirect.redirection(...).weights (per seed)",
    "redirection_logit": "redirect.redirection(...).logit_bias",
    "minimal_bias": "redirect.redirection(...).minimal_bias",
    "vulnerability": "vulnerability.targeted_redirection(...).profile",
    "vulnerability_curves": "vulnerability.targeted_redirection(...).curves",
    "head_diagnostics": "vulnerability.targeted_redirection(...).head",
}


#: Columns the report reads from each table (checked by :func:`prepare`).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "probes": ("hook_name", "layer", "task", "split", "metric", "value"),
    "selectivity": ("hook_name", "layer", "metric", "selectivity"),
    "rankings": ("hook_name", "layer", "neuron", "class", "method", "score", "rank"),
    "agreement": ("hook_name", "layer", "class", "k", "overlap", "chance"),
    "stability": ("hook_name", "layer", "class", "method", "k", "jaccard"),
    "redundancy": ("scope", "hook_name", "layer", "selection", "percent", "k", "width",
                   "accuracy", "full_accuracy", "kept"),
    "redundancy_minimal": ("scope", "hook_name", "layer", "percent", "k", "width", "accuracy",
                           "full_accuracy", "kept", "threshold"),
    "ablation": ("hook_name", "layer", "ranking", "method", "position", "order", "k", "metric",
                 "class"),
    "ablation_summary": ("hook_name", "layer", "ranking", "method", "position", "order", "k",
                         "metric", "class", "mean", "ci_low", "ci_high", "clean_value"),
    "faithfulness": ("hook_name", "layer", "method", "intervention", "position", "metric",
                     "gap_top", "gap_top_low", "gap_top_high", "gap_bottom", "verdict"),
    "outliers": ("hook_name", "layer", "neuron", "mean_abs", "median_abs", "ratio"),
    "outlier_ablation": ("hook_name", "layer", "neuron", "order", "k", "metric", "mean",
                         "ci_low", "ci_high", "clean_value"),
    "class_matrix": ("hook_name", "layer", "method", "ablated_class", "order", "k", "metric",
                     "class", "delta"),
    "class_asymmetry": ("hook_name", "layer", "k", "class", "own_drop", "random_low",
                        "random_high", "collateral", "verdict"),
    "self_repair": ("hook_name", "layer", "k", "kl_cls", "kl_all", "survival", "distance_edit",
                    "distance_last", "returned"),
    "self_repair_trace": ("hook_name", "layer", "k", "position", "downstream_layer",
                          "distance"),
    "overlap": ("hook_name_a", "layer_a", "class_a", "class_b", "scope", "k", "jaccard",
                "chance"),
    "noise": ("hook_name", "layer", "ranking", "units", "k", "sigma", "metric", "class"),
    "redirection": ("edit", "hook_name", "layer", "target", "k", "eps", "metric", "class"),
    "redirection_logit": ("target", "bias", "metric", "value"),
    "minimal_bias": ("target", "bias"),
    "vulnerability": ("space", "edit", "target", "source", "k", "size_unit", "n", "size_50",
                      "size_90", "random_size_50", "random_size_90", "random_rate_at_50",
                      "max_size"),
    "vulnerability_curves": ("space", "edit", "target", "source", "control", "k", "size",
                             "size_unit", "seed", "rate"),
    "head_diagnostics": ("class", "metric", "value"),
}

# Columns holding names (classes, hooks, choices): always read as text, so that a class called
# "NA", "None" or "1" stays that string.
_TEXT_COLUMNS = ("hook_name", "hook_name_a", "hook_name_b", "class", "class_a", "class_b", "task",
                 "split", "metric", "method", "method_a", "method_b", "ranking", "order", "units",
                 "edit", "target", "to_class", "label", "pred", "scope", "selection",
                 "ablated_class", "verdict", "intervention", "position", "ks", "space", "source",
                 "control", "size_unit")


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read one table CSV (name columns as text, empty cells as missing).

    Raises:
        ValueError: the file is not a readable CSV.
    """
    try:
        return pd.read_csv(path, dtype=dict.fromkeys(_TEXT_COLUMNS, str),
                           keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read table {str(path)!r}: {err}") from err


def read_run(run_dir: str | os.PathLike[str]) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Load a run directory: its ``summary.json`` and every ``tables/<name>.csv`` present.

    Args:
        run_dir: a directory written by ``synapse-lens demo`` / ``run``.

    Returns:
        ``(tables, summary)``: table name -> DataFrame (only the names in
        :data:`TABLE_NAMES` that exist), and the parsed summary.

    Raises:
        FileNotFoundError: no such directory, or no ``summary.json`` in it.
        ValueError: ``summary.json`` is not a JSON object, or a table is not a readable CSV.

    Example:
        >>> tables, summary = read_run("runs/sms-spam")  # doctest: +SKIP
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"run directory {str(root)!r} does not exist")
    summary_path = root / SUMMARY_FILE
    if not summary_path.is_file():
        raise FileNotFoundError(f"{str(root)!r} is not a run directory: no {SUMMARY_FILE}")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{str(summary_path)!r} is not valid JSON: {err}") from err
    if not isinstance(summary, dict):
        raise ValueError(f"{str(summary_path)!r} must hold a JSON object, got "
                         f"{type(summary).__name__}")
    tables = {}
    for name in TABLE_NAMES:
        path = root / TABLES_DIR / f"{name}.csv"
        if path.is_file():
            tables[name] = read_table(path)
    return tables, summary


def save_tables(tables: Mapping[str, pd.DataFrame], directory: str | os.PathLike[str]) -> list[
        Path]:
    """Write tables as ``<directory>/<name>.csv`` (the layout :func:`read_run` reads).

    Write into a directory that is itself made atomically (``atomic.atomic_directory``).

    Args:
        tables: name (one of :data:`TABLE_NAMES`) -> DataFrame.
        directory: the ``tables/`` directory (created if missing).

    Returns:
        The written paths, in ``tables`` order.

    Raises:
        ValueError: an unknown table name.
        TypeError: a value that is not a DataFrame.

    Example:
        >>> save_tables({"probes": results.table}, run / "tables")  # doctest: +SKIP
    """
    unknown = [n for n in tables if n not in TABLE_NAMES]
    if unknown:
        raise ValueError(f"unknown table names {unknown}; known: {list(TABLE_NAMES)}")
    for name, df in tables.items():
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"table {name!r} must be a DataFrame, got {type(df).__name__}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in tables.items():
        path = out / f"{name}.csv"
        df.to_csv(path, index=False)
        paths.append(path)
    return paths


def minimal_sets(redundancy: pd.DataFrame, threshold: float = 0.97) -> pd.DataFrame:
    """Per scope / hook, the smallest percent whose top-ranked probe keeps ``threshold`` of the
    full accuracy (as ``Redundancy.minimal``, for runs that saved only ``Redundancy.table``).

    Returns:
        Columns ``scope``, ``hook_name``, ``layer``, ``percent``, ``k``, ``width``,
        ``accuracy``, ``full_accuracy``, ``kept``, ``threshold``.
    """
    top = redundancy[redundancy["selection"] == "top"]
    rows = []
    for _, group in top.groupby(["scope", "hook_name"], sort=False, dropna=False):
        group = group.sort_values("percent", kind="stable")
        ok = group[group["accuracy"] >= threshold * group["full_accuracy"]]
        if not ok.empty:
            rows.append({**ok.iloc[0].to_dict(), "threshold": threshold})
    columns = ["scope", "hook_name", "layer", "percent", "k", "width", "accuracy",
               "full_accuracy", "kept", "threshold"]
    return pd.DataFrame(rows, columns=columns)


def prepare(tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The tables as the report shows them.

    ``ablation``, ``noise`` and ``redirection`` become summaries of their repetitions
    (:func:`synapse_lens.experiments.engine.summarize`: mean and 95 % t interval over seeds; a saved
    ``ablation_summary`` is used as it is, and a table that already has a ``mean`` column stays
    as it is); ``class_asymmetry`` and ``redundancy_minimal`` are computed from ``class_matrix``
    / ``redundancy`` when they were not saved.

    Args:
        tables: name -> DataFrame (names from :data:`TABLE_NAMES`).

    Returns:
        A new dict: the same names, summaries in place of per-seed tables.

    Raises:
        TypeError: a value that is not a DataFrame.
        ValueError: a table without the columns the report reads
            (:data:`REQUIRED_COLUMNS`), or a per-seed table without ``seed`` / ``value``.

    Example:
        >>> prepare(read_run("runs/sms-spam")[0])["ablation"].columns[-4:]  # doctest: +SKIP
    """
    from synapse_lens.experiments.classwise import class_asymmetry
    from synapse_lens.experiments.engine import summarize

    out: dict[str, pd.DataFrame] = {}
    for name, df in tables.items():
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"table {name!r} must be a DataFrame, got {type(df).__name__}")
        missing = [c for c in REQUIRED_COLUMNS.get(name, ()) if c not in df.columns]
        if missing:
            raise ValueError(f"the {name} table lacks columns {missing}; it has "
                             f"{list(df.columns)}")
        out[name] = df
    if "ablation_summary" in out:
        out["ablation"] = out.pop("ablation_summary")
    for name in ("ablation", "noise", "redirection"):
        df = out.get(name)
        if df is not None and "mean" not in df.columns:
            if "seed" not in df.columns or "value" not in df.columns:
                raise ValueError(f"the {name} table needs 'seed' and 'value' columns (or a "
                                 f"summary with 'mean'); it has {list(df.columns)}")
            out[name] = summarize(df, over="seed")
    matrix = out.get("class_matrix")
    if "class_asymmetry" not in out and matrix is not None and not matrix.empty:
        out["class_asymmetry"] = class_asymmetry(matrix)
    if "redundancy" in out and "redundancy_minimal" not in out:
        out["redundancy_minimal"] = minimal_sets(out["redundancy"])
    return out
