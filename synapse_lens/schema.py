"""What synapse_lens writes and reads, in one place: the sentinels of its tidy tables, the run
directory's file names, table names and columns, the CSV round trip (the pipeline writes with
:func:`save_tables`, the report and :class:`~synapse_lens.RunResult` read with
:func:`read_table` / :func:`read_run`), and the schema markers that let a later run recognise its
own output (and refuse to touch anything else)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # pandas is imported where used: the CLI's --help reads names from here
    import pandas as pd

#: ``class`` / ``target`` of a ranking over all classes together (per-class rankings carry the
#: class name).
GLOBAL = "__global__"
#: ``class`` of a metric row over the whole dataset (per-class rows carry the class name).
ALL = "__all__"
#: ``hook_name`` of the redundancy scope that pools every analysed hook.
ALL_HOOKS = "__all__"
#: ``target`` of a minimal-bias row for the smallest change of prediction (to any class).
FLIP = "__flip__"

#: ``summary.json`` of a run directory holds ``{"schema": RUN_SCHEMA, ...}``.
RUN_SCHEMA = "synapse_lens.run/1"
#: ``comparison.json`` of a comparison directory holds ``{"schema": COMPARISON_SCHEMA, ...}``.
COMPARISON_SCHEMA = "synapse_lens.comparison/1"
#: ``probes.json`` of saved probes (``ProbeResults.save``) holds ``{"schema": PROBES_SCHEMA}``.
PROBES_SCHEMA = "synapse_lens.probes/1"

REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.json"
COMPARISON_FILE = "comparison.json"
PROBES_FILE = "probes.json"
TABLES_DIR = "tables"
#: Floats in the run directory's CSVs: six significant digits (byte-identical across reruns).
FLOAT_FORMAT = "%.6g"

#: table name -> what produces it (the CSV is ``tables/<name>.csv``; functions of
#: ``synapse_lens``). Summaries (``ablation_summary``, ``class_asymmetry``,
#: ``redundancy_minimal``) are recomputed by :func:`synapse_lens.report.tables.prepare` when a run
#: saved only the raw table; ``selectivity`` is derived from ``probes`` by the figure.
TABLE_NAMES: dict[str, str] = {
    "probes": "fit_probes(...).table",
    "selectivity": "ProbeResults.selectivity()",
    "rankings": "rankings_frame(probe, probeless, attribution and exact rankings)",
    "agreement": "analysis.rankings.ranking_agreement(probe, probeless, ks)",
    "stability": "bootstrap_stability(...)",
    "redundancy": "redundancy(...).table",
    "redundancy_minimal": "redundancy(...).minimal",
    "ablation": "ablation_curve(...) (per seed)",
    "ablation_summary": "summarize(ablation)",
    "faithfulness": "faithfulness(ablation, exact=...)",
    "outliers": "experiments.faithfulness.outlier_units(acts, hooks)",
    "outlier_ablation": "experiments.faithfulness.outlier_ablation(...)",
    "self_repair": "self_repair(...)[0]",
    "self_repair_trace": "self_repair(...)[1]",
    "class_matrix": "class_matrix(...)",
    "class_asymmetry": "experiments.classwise.class_asymmetry(class_matrix)",
    "overlap": "experiments.classwise.topk_overlap(per-class rankings, ks)",
    "noise": "noise_curve(...) (per seed)",
    "noise_summary": "summarize(noise)",
    "redirection": "run_stress_tests(...)['redirection'] (per seed)",
    "redirection_logit": "run_stress_tests(...)['redirection_logit']",
    "minimal_bias": "run_stress_tests(...)['minimal_bias']",
    "vulnerability": "targeted_redirection(...).profile",
    "vulnerability_curves": "targeted_redirection(...).curves",
    "head_diagnostics": "targeted_redirection(...).head",
}


#: Columns the report reads from each table (checked by
#: :func:`synapse_lens.report.tables.prepare`).
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

#: Columns holding names (classes, hooks, choices): always read as text, so that a class called
#: "NA", "None" or "1" stays that string.
TEXT_COLUMNS = ("hook_name", "hook_name_a", "hook_name_b", "class", "class_a", "class_b", "task",
                "split", "metric", "method", "method_a", "method_b", "ranking", "order", "units",
                "edit", "target", "to_class", "label", "pred", "scope", "selection",
                "ablated_class", "verdict", "intervention", "position", "ks", "space", "source",
                "control", "size_unit")


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read one table CSV (name columns as text, empty cells as missing).

    Raises:
        ValueError: the file is not a readable CSV.
    """
    import pandas as pd

    try:
        return pd.read_csv(path, dtype=dict.fromkeys(TEXT_COLUMNS, str),
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
    import pandas as pd

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
        df.to_csv(path, index=False, float_format=FLOAT_FORMAT)
        paths.append(path)
    return paths


Config = TypeVar("Config")


def config_dict(config: Any) -> dict[str, Any]:
    """A frozen config dataclass as a JSON-ready dict: its fields in order, tuples as lists.

    Example:
        >>> from synapse_lens import RunConfig
        >>> config_dict(RunConfig(ks=(1, 4)))["ks"]
        [1, 4]
    """
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(config).items()}


def config_from_dict(cls: type[Config], data: Mapping[str, Any]) -> Config:
    """The config ``cls`` from :func:`config_dict` output (or a JSON file's): lists become
    tuples, keys that are not fields of ``cls`` (written by another version) are ignored, and the
    class checks the values as on construction.

    Example:
        >>> from synapse_lens import RunConfig
        >>> config_from_dict(RunConfig, {"ks": [1, 4], "removed_option": 1}).ks
        (1, 4)
    """
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: tuple(v) if isinstance(v, list) else v
                  for k, v in data.items() if k in known})

