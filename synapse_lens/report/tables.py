"""The summaries the report shows, derived from a run directory's tables (whose names, columns
and CSV round trip are :mod:`synapse_lens.schema`'s)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pandas as pd

from synapse_lens.schema import REQUIRED_COLUMNS

logger = logging.getLogger(__name__)

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
        tables: name -> DataFrame (names from :data:`~synapse_lens.schema.TABLE_NAMES`).

    Returns:
        A new dict: the same names, summaries in place of per-seed tables.

    Raises:
        TypeError: a value that is not a DataFrame.
        ValueError: a table without the columns the report reads
            (:data:`~synapse_lens.schema.REQUIRED_COLUMNS`), or a per-seed table without
            ``seed`` / ``value``.

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
