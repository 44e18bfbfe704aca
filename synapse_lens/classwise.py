"""Class-wise sweeps: what ablating one class's top-k units does to every class.

:func:`class_matrix` ablates each class's own top-k units and measures every class's recall;
:func:`class_asymmetry` summarises that matrix per class (fragile or redundant, collateral
damage); :func:`topk_overlap` compares the top-k sets of rankings within and across layers.

Example:
    >>> m = class_matrix(model, ds, per_class_rankings, k=10)  # doctest: +SKIP
    >>> class_asymmetry(m)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from synapse_lens.activations import ClsActivations
from synapse_lens.data import TextDataset
from synapse_lens.metrics import CleanRun
from synapse_lens.rankings import GLOBAL, Ranking
from synapse_lens.selection import Intervention, check_rankings
from synapse_lens.sweeps import ablation_curve


def class_matrix(
    model: Any,
    data: TextDataset,
    rankings: Sequence[Ranking],
    k: int,
    *,
    spec: Intervention | None = None,
    stats: ClsActivations | None = None,
    clean: CleanRun | None = None,
    batch_size: int = 32,
    max_length: int = 128,
    progress: bool = True,
) -> pd.DataFrame:
    """Ablate each class's top-k units and measure every class's recall.

    Args:
        model, data: as :func:`~synapse_lens.sweeps.ablation_curve`.
        rankings: per-class rankings (``target`` a class name), any number of hooks.
        k: units ablated per class.
        spec, stats, clean, batch_size, max_length, progress: as
            :func:`~synapse_lens.sweeps.ablation_curve`.

    Returns:
        Tidy table with columns ``hook_name``, ``layer``, ``method``, ``ablated_class`` (whose
        top-k units were ablated), ``k``, ``class`` (whose recall is measured),
        ``recall_clean``, ``recall``, ``delta`` (``recall - recall_clean``; negative = hurt;
        NaN for a class without examples). Rows follow rankings then class ids.

    Raises:
        ValueError: a global ranking, k larger than a width.

    Example:
        >>> m = class_matrix(model, ds, per_class_rankings, k=10)  # doctest: +SKIP
        >>> m.pivot(index="ablated_class", columns="class", values="delta")  # doctest: +SKIP
    """
    items = check_rankings(model, rankings)
    if any(r.target == GLOBAL for r in items):
        raise ValueError("class_matrix needs per-class rankings (target = a class name)")
    df = ablation_curve(model, data, items, [k], orders=("top",), n_seeds=1, spec=spec,
                        stats=stats, metrics=["recall"], clean=clean, batch_size=batch_size,
                        max_length=max_length, progress=progress)
    df = df.rename(columns={"ranking": "ablated_class", "value": "recall",
                            "clean_value": "recall_clean"})
    df["delta"] = df["recall"] - df["recall_clean"]
    return df[["hook_name", "layer", "method", "ablated_class", "k", "class", "recall_clean",
               "recall", "delta"]].reset_index(drop=True)


def class_asymmetry(matrix: pd.DataFrame, fragile_threshold: float = 0.1) -> pd.DataFrame:
    """Which classes are fragile, which redundant: a summary of :func:`class_matrix`.

    With ``drop(a -> b) = recall_clean(b) - recall(b)`` when class ``a``'s top-k are ablated:

    * ``own_drop``: ``drop(c -> c)`` — how much class ``c`` depends on its own top-k units;
    * ``collateral``: mean over ``b != c`` of ``drop(c -> b)`` — damage to other classes;
    * ``exposed``: mean over ``a != c`` of ``drop(a -> c)`` — damage from other classes' units;
    * ``selectivity``: ``own_drop - collateral``; ``asymmetry``: ``collateral - exposed``;
    * ``verdict``: ``"fragile"`` if ``own_drop >= fragile_threshold``, ``"redundant"`` if below
      (its own top-k units are not needed: the information is spread out), ``"undefined"``
      when the class has no example (NaN recall).

    Returns:
        One row per (hook_name, layer, method, k, class), columns those keys then
        ``own_drop``, ``collateral``, ``exposed``, ``selectivity``, ``asymmetry``,
        ``verdict``; sorted by hook order, then ``own_drop`` descending, class name (stable).

    Raises:
        ValueError: not a class_matrix table.

    Example:
        >>> class_asymmetry(class_matrix(model, ds, rankings, k=10))  # doctest: +SKIP
    """
    needed = {"hook_name", "layer", "method", "ablated_class", "k", "class", "delta"}
    if not needed <= set(matrix.columns):
        missing = sorted(needed - set(matrix.columns))
        raise ValueError(f"not a class_matrix table: missing columns {missing}")
    rows = []
    keys = ["hook_name", "layer", "method", "k"]
    for key, g in matrix.groupby(keys, sort=False):
        drop = {(a, b): -d for a, b, d in zip(g["ablated_class"], g["class"], g["delta"])}
        for c in dict.fromkeys(g["ablated_class"]):
            others = [b for b in dict.fromkeys(g["class"]) if b != c]
            own = drop.get((c, c), np.nan)
            coll = float(np.nanmean([drop[(c, b)] for b in others])) if others else np.nan
            exposed_vals = [drop[(a, c)] for a in dict.fromkeys(g["ablated_class"])
                            if a != c and (a, c) in drop]
            exp = float(np.nanmean(exposed_vals)) if exposed_vals else np.nan
            rows.append({**dict(zip(keys, key)), "class": c, "own_drop": own,
                         "collateral": coll, "exposed": exp, "selectivity": own - coll,
                         "asymmetry": coll - exp,
                         "verdict": ("undefined" if np.isnan(own) else
                                     "fragile" if own >= fragile_threshold else "redundant")})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["_hook"] = out.groupby(keys, sort=False).ngroup()
    out = out.sort_values(["_hook", "own_drop", "class"], ascending=[True, False, True],
                          kind="stable")
    return out.drop(columns="_hook").reset_index(drop=True)


def topk_overlap(rankings: Sequence[Ranking], ks: Sequence[int]) -> pd.DataFrame:
    """Jaccard overlap of top-k sets between every pair of rankings (e.g. per-class rankings
    of every layer), within and across layers.

    Unit ids are compared as they are: across layers of the residual stream the same id is the
    same residual dimension. Pairs of hooks with different widths are skipped.

    Args:
        rankings: the rankings (pairs ``i < j`` in the given order).
        ks: set sizes (``0 < k <= width``; sizes beyond a pair's width are skipped).

    Returns:
        Columns ``hook_name_a``, ``layer_a``, ``class_a``, ``hook_name_b``, ``layer_b``,
        ``class_b``, ``scope`` (``"within_layer"`` for the same hook, else
        ``"across_layers"``), ``k``, ``jaccard``, ``chance`` (expected Jaccard of two uniformly
        random k-sets of that width, exact hypergeometric).

    Raises:
        ValueError: ``k <= 0``.

    Example:
        >>> topk_overlap(per_class_rankings, [10])  # doctest: +SKIP
    """
    from scipy.stats import hypergeom

    for k in ks:
        if int(k) <= 0:
            raise ValueError(f"k must be positive, got {k}")
    items = list(rankings)
    rows = []
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            if a.width != b.width:
                continue
            for k in sorted({int(k) for k in ks}):
                if k > a.width:
                    continue
                sa, sb = set(a.top(k).tolist()), set(b.top(k).tolist())
                inter = np.arange(k + 1)
                pmf = hypergeom(a.width, k, k).pmf(inter)
                rows.append({"hook_name_a": a.hook_name, "layer_a": a.layer, "class_a": a.target,
                             "hook_name_b": b.hook_name, "layer_b": b.layer, "class_b": b.target,
                             "scope": "within_layer" if a.hook_name == b.hook_name
                             else "across_layers",
                             "k": k, "jaccard": len(sa & sb) / len(sa | sb),
                             "chance": float((pmf * inter / (2 * k - inter)).sum())})
    columns = ["hook_name_a", "layer_a", "class_a", "hook_name_b", "layer_b", "class_b", "scope",
               "k", "jaccard", "chance"]
    return pd.DataFrame(rows, columns=columns)
