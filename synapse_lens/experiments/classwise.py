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
from synapse_lens.analysis.rankings import Ranking
from synapse_lens.data import TextDataset
from synapse_lens.experiments.sweeps import ablation_curve
from synapse_lens.interventions.selection import Intervention, check_rankings
from synapse_lens.metrics import CleanRun
from synapse_lens.runtime.options import ExecOptions, resolve
from synapse_lens.schema import GLOBAL

#: ``ablated_class`` of the random-k control rows of :func:`class_matrix`.
RANDOM = "__random__"
#: Classes with fewer evaluation examples than this are flagged, not judged.
MIN_CLASS_EXAMPLES = 10
CLASS_METRICS = ("class_true_prob", "recall")


def class_matrix(
    model: Any,
    data: TextDataset,
    rankings: Sequence[Ranking],
    k: int | Sequence[int],
    *,
    n_seeds: int = 5,
    seed: int = 0,
    metrics: Sequence[str] = CLASS_METRICS,
    spec: Intervention | None = None,
    stats: ClsActivations | None = None,
    clean: CleanRun | None = None,
    options: ExecOptions | None = None,
) -> pd.DataFrame:
    """Ablate each class's top-k units, and random k-sets as the control, and measure every
    class's true-class probability and recall.

    Args:
        model, data: as :func:`~synapse_lens.experiments.sweeps.ablation_curve`.
        rankings: per-class rankings (``target`` a class name), any number of hooks.
        k: units ablated per class; several sizes for a grid.
        n_seeds: random k-sets per size (seeds ``seed ..``; the same sets for every class;
            0 for no control, >= 5 for a 95 % interval).
        metrics: per-class metrics (:data:`CLASS_METRICS`).
        spec, stats, clean, options: as
            :func:`~synapse_lens.experiments.sweeps.ablation_curve`.

    Returns:
        Tidy table with columns ``hook_name``, ``layer``, ``method``, ``ablated_class`` (whose
        top-k units were ablated; :data:`RANDOM` for the control), ``order`` (``top`` /
        ``random``), ``k``, ``seed`` (Int64; NA for top), ``metric``, ``class`` (whose value is
        measured), ``value``, ``clean_value``, ``delta`` (``value - clean_value``; negative =
        hurt; NaN for a class without examples).

    Raises:
        ValueError: a global ranking, k larger than a width.

    Example:
        >>> m = class_matrix(model, ds, per_class_rankings, k=[8, 32])  # doctest: +SKIP
        >>> m.query("order == 'top' and metric == 'class_true_prob'")  # doctest: +SKIP
    """
    opts = resolve(options)
    items = check_rankings(model, rankings)
    if any(r.target == GLOBAL for r in items):
        raise ValueError("class_matrix needs per-class rankings (target = a class name)")
    ks = [int(k)] if isinstance(k, (int, np.integer)) else [int(v) for v in k]
    common = dict(spec=spec, stats=stats, metrics=list(metrics), clean=clean,
                  options=opts)
    parts = [ablation_curve(model, data, items, ks, orders=("top",), n_seeds=1,
                            **common)]  # type: ignore[arg-type]
    if n_seeds:
        # one control per (hook, method): random sets do not depend on the class
        first: dict[tuple[str, str], Ranking] = {}
        for r in items:
            first.setdefault((r.hook_name, r.method), r)
        control = ablation_curve(model, data, list(first.values()), ks, orders=("random",),
                                 n_seeds=n_seeds, seed=seed, **common)  # type: ignore[arg-type]
        parts.append(control.assign(ranking=RANDOM))
    df = pd.concat(parts, ignore_index=True).rename(columns={"ranking": "ablated_class"})
    df = df[df["k"] > 0]
    df["delta"] = df["value"] - df["clean_value"]
    return df[["hook_name", "layer", "method", "ablated_class", "order", "k", "seed", "metric",
               "class", "value", "clean_value", "delta"]].reset_index(drop=True)


def class_asymmetry(matrix: pd.DataFrame, counts: dict[str, int] | None = None, *,
                    metric: str | None = None,
                    min_examples: int = MIN_CLASS_EXAMPLES) -> pd.DataFrame:
    """Which classes are fragile, which redundant, which suffer collateral damage: a summary of
    :func:`class_matrix`, judged against its random-k control.

    With ``drop(a -> b) = clean(b) - value(b)`` when class ``a``'s top-k are ablated, and the
    95 % interval (Student t over the random seeds) of ``drop(random -> b)``:

    * ``own_drop``: ``drop(c -> c)``; ``random_drop`` / ``random_low`` / ``random_high``: the
      control's mean drop of class ``c`` and its interval;
    * ``collateral``: mean over ``b != c`` of ``drop(c -> b)``; ``collateral_classes``: how many
      of them lose more than under the control (above its interval);
    * ``exposed``: mean over ``a != c`` of ``drop(a -> c)``; ``selectivity``: ``own_drop -
      collateral``; ``asymmetry``: ``collateral - exposed``;
    * ``verdict``: ``"fragile"`` (its own top-k cost it more than random k-sets: above the
      interval), ``"redundant"`` (not more than random: inside or below), ``+collateral`` when
      other classes are hurt beyond their control; ``"too few examples"`` below
      ``min_examples`` (``counts``), ``"undefined"`` without examples or without a control.

    Args:
        matrix: a :func:`class_matrix` table.
        counts: evaluation examples per class (for the ``too few examples`` flag).
        metric: which metric to judge (default ``class_true_prob`` when present).
        min_examples: the flag's threshold.

    Returns:
        One row per (hook_name, layer, method, k, class) with the columns above plus
        ``metric`` and ``n_examples``; sorted by hook order, then k, then ``own_drop``
        descending (stable).

    Raises:
        ValueError: not a class_matrix table.

    Example:
        >>> class_asymmetry(class_matrix(model, ds, rankings, k=10))  # doctest: +SKIP
    """
    from scipy import stats

    needed = {"hook_name", "layer", "method", "ablated_class", "order", "k", "metric", "class",
              "delta"}
    if not needed <= set(matrix.columns):
        missing = sorted(needed - set(matrix.columns))
        raise ValueError(f"not a class_matrix table: missing columns {missing}")
    if metric is None:
        metric = "class_true_prob" if (matrix["metric"] == "class_true_prob").any() else str(
            matrix["metric"].iloc[0]) if len(matrix) else "class_true_prob"
    m = matrix[matrix["metric"] == metric]
    keys = ["hook_name", "layer", "method", "k"]
    rows = []
    for key, g in m.groupby(keys, sort=False):
        top = g[g["order"] == "top"]
        drop = {(a, b): -d for a, b, d in zip(top["ablated_class"], top["class"], top["delta"])}
        ctrl: dict[str, tuple[float, float, float]] = {}
        for b, r in g[g["order"] == "random"].groupby("class", sort=False):
            d = -r["delta"].dropna().to_numpy(np.float64)
            if len(d) >= 2:
                half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
                ctrl[str(b)] = (float(d.mean()), float(d.mean()) - half, float(d.mean()) + half)
            elif len(d) == 1:
                ctrl[str(b)] = (float(d[0]), float(d[0]), float(d[0]))
        ablated = list(dict.fromkeys(top["ablated_class"]))
        measured = list(dict.fromkeys(top["class"]))
        for c in ablated:
            others = [b for b in measured if b != c]
            own = drop.get((c, c), np.nan)
            coll = [drop[(c, b)] for b in others if (c, b) in drop]
            hurt = sum(1 for b in others if b in ctrl and drop.get((c, b), np.nan) > ctrl[b][2])
            exposed = [drop[(a, c)] for a in ablated if a != c and (a, c) in drop]
            mean, low, high = ctrl.get(c, (np.nan, np.nan, np.nan))
            n = None if counts is None else int(counts.get(c, 0))
            if n is not None and 0 < n < min_examples:
                verdict = "too few examples"
            elif np.isnan(own) or np.isnan(high) or n == 0:
                verdict = "undefined"
            else:
                verdict = "fragile" if own > high else "redundant"
                verdict += "+collateral" if hurt else ""
            coll_mean = float(np.nanmean(coll)) if coll and not np.isnan(coll).all() else np.nan
            exp_mean = (float(np.nanmean(exposed)) if exposed and not np.isnan(exposed).all()
                        else np.nan)
            rows.append({**dict(zip(keys, key)), "class": c, "metric": metric,
                         "n_examples": n, "own_drop": own, "random_drop": mean,
                         "random_low": low, "random_high": high, "collateral": coll_mean,
                         "collateral_classes": hurt, "exposed": exp_mean,
                         "selectivity": own - coll_mean, "asymmetry": coll_mean - exp_mean,
                         "verdict": verdict})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["n_examples"] = out["n_examples"].astype("Int64")
    out["_hook"] = out.groupby(["hook_name", "layer", "method"], sort=False).ngroup()
    out = out.sort_values(["_hook", "k", "own_drop", "class"],
                          ascending=[True, True, False, True], kind="stable")
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
