"""Is a ranking faithful? Its top-k and bottom-k ablations scored against random-k units.

:func:`faithfulness` reads an ablation table (:func:`synapse_lens.ablation_curve` with top,
random and bottom orders) and gives, per (hook, ranking method, metric):

* ``gap_top`` — how much more the metric drops when the ranking's top-k units are ablated than
  when random-k units are, averaged over the k grid and divided by the clean metric:
  ``mean_k (random_k − top_k) / |clean|``; its 95 % interval comes from the random seeds
  (Student's t over the per-seed gaps).
* ``gap_bottom`` — how much *less* the bottom-k ablation hurts than random-k:
  ``mean_k (bottom_k − random_k) / |clean|``, with its interval.
* ``verdict`` — ``"causal"`` when ``gap_top``'s interval lies above 0; ``"anti-causal"`` when it
  lies below 0, or when it contains 0 and ``gap_bottom``'s lies below 0 (the units the ranking
  calls least important matter more than random ones); ``"indistinguishable"`` otherwise;
  ``"untested"`` with fewer than two random seeds or no k between 0 and the full width.

k = 0 (the clean run) and k = width (top = random = bottom by construction) are left out of
the averages. With exact single-unit rankings
(:func:`exact_ranking`) the table also gives each ranking's
Spearman correlation with the exact one and the overlap of their top-k sets.

:func:`outlier_units` finds units whose activation scale stands far above their layer's, and
:func:`outlier_ablation` ablates each one alone against random single units.

Example:
    >>> table = faithfulness(ablation_curve(model, ds, rankings, [4, 16]))  # doctest: +SKIP
    >>> table[["hook_name", "method", "metric", "gap_top", "verdict"]]  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from synapse_lens.activations import cache_cls
from synapse_lens.analysis.attribution import (
    ENGINE_METRIC,
    Baseline,
    Metric,
    check_options,
    token_mean,
)
from synapse_lens.analysis.rankings import Ranking
from synapse_lens.data import TextDataset
from synapse_lens.experiments.engine import Condition, run_conditions, summarize
from synapse_lens.experiments.sweeps import ablation_curve
from synapse_lens.interventions.hooks import mean_ablate, zero_ablate
from synapse_lens.metrics import HIGHER_IS_BETTER
from synapse_lens.models import classifier_info
from synapse_lens.names import Position
from synapse_lens.runtime.options import ExecOptions, resolve
from synapse_lens.schema import ALL, GLOBAL

FAITHFULNESS_COLUMNS = [
    "hook_name", "layer", "method", "intervention", "position", "metric", "ks", "n_seeds",
    "clean_value", "gap_top", "gap_top_low", "gap_top_high", "gap_bottom", "gap_bottom_low",
    "gap_bottom_high", "verdict", "spearman_exact", "overlap_exact", "overlap_k",
]
VERDICTS = ("causal", "anti-causal", "indistinguishable", "untested")
#: How many times a typical unit's scale an outlier dimension's is (see :func:`outlier_units`).
OUTLIER_RATIO = 20.0


def _interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    from scipy import stats

    values = values[np.isfinite(values)]
    if values.size < 2:
        mean = float(values.mean()) if values.size else math.nan
        return mean, math.nan, math.nan
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, values.size - 1)) * sd / math.sqrt(values.size)
    return mean, mean - half, mean + half


def verdict(top_low: float, top_high: float, bottom_high: float) -> str:
    """The verdict rule of the module docstring, from the two intervals."""
    if not (math.isfinite(top_low) and math.isfinite(top_high)):
        return "untested"
    if top_low > 0:
        return "causal"
    if top_high < 0 or (math.isfinite(bottom_high) and bottom_high < 0):
        return "anti-causal"
    return "indistinguishable"


def _gaps(group: pd.DataFrame, width: int, higher: bool) -> dict[str, Any]:
    curve = group[(group["k"] > 0) & (group["k"] < width)]
    sign = 1.0 if higher else -1.0
    clean = float(group["clean_value"].iloc[0])
    scale = abs(clean) if clean != 0 else math.nan
    top = curve[curve["order"] == "top"].groupby("k")["value"].mean()
    bottom = curve[curve["order"] == "bottom"].groupby("k")["value"].mean()
    random = curve[curve["order"] == "random"].pivot_table(index="k", columns="seed",
                                                           values="value", aggfunc="mean")
    ks = sorted(set(top.index) & set(bottom.index) & set(random.index))
    out = {"ks": ",".join(str(int(k)) for k in ks), "n_seeds": int(random.shape[1]),
           "clean_value": clean}
    if not ks:
        return {**out, **dict.fromkeys(FAITHFULNESS_COLUMNS[9:15], math.nan)}
    r = random.loc[ks].to_numpy(dtype=np.float64)
    per_seed_top = sign * (r - top.loc[ks].to_numpy()[:, None]).mean(0) / scale
    per_seed_bottom = sign * (bottom.loc[ks].to_numpy()[:, None] - r).mean(0) / scale
    gt, gt_lo, gt_hi = _interval(per_seed_top)
    gb, gb_lo, gb_hi = _interval(per_seed_bottom)
    return {**out, "gap_top": gt, "gap_top_low": gt_lo, "gap_top_high": gt_hi,
            "gap_bottom": gb, "gap_bottom_low": gb_lo, "gap_bottom_high": gb_hi}


def _agreement(ranking: Ranking | None, exact: Ranking | None, k: int) -> dict[str, Any]:
    from scipy.stats import spearmanr

    if ranking is None or exact is None or ranking.width != exact.width:
        return {"spearman_exact": math.nan, "overlap_exact": math.nan, "overlap_k": math.nan}
    rho = float(spearmanr(ranking.scores, exact.scores)[0]) if ranking.method != "exact" else 1.0
    shared = len(set(ranking.top(k).tolist()) & set(exact.top(k).tolist()))
    return {"spearman_exact": rho, "overlap_exact": shared / k, "overlap_k": k}


def faithfulness(
    ablation: pd.DataFrame,
    *,
    widths: dict[str, int],
    intervention: str = "zero",
    position: str = "cls",
    metrics: Sequence[str] = ("true_prob", "margin", "accuracy"),
    rankings: Sequence[Ranking] = (),
    exact: Sequence[Ranking] = (),
) -> pd.DataFrame:
    """The faithfulness table of an ablation table (see module docstring).

    Args:
        ablation: :func:`~synapse_lens.ablation_curve` output with ``top``, ``random`` (≥ 2
            seeds for an interval) and ``bottom`` orders; global rankings are scored.
        widths: hook name -> number of units (``classifier_info(model).width``).
        intervention, position: what the ablation did (recorded in the table); a
            ``position`` column, when present, wins (one block of rows per position; the exact
            rankings, computed at [CLS], are compared at ``cls`` only).
        metrics: metrics to score (those of :data:`~synapse_lens.metrics.HIGHER_IS_BETTER`
            present in the table).
        rankings: the global rankings that made ``ablation`` (for agreement with ``exact``).
        exact: exact single-unit rankings of some hooks (same intervention).

    Returns:
        Tidy table with :data:`FAITHFULNESS_COLUMNS`, one row per (hook, method, metric), in
        depth order, then method, then metric.

    Raises:
        ValueError: missing columns, a hook without a width.

    Example:
        >>> faithfulness(df, widths={h: 384 for h in df["hook_name"].unique()})  # doctest: +SKIP
    """
    if "position" in ablation.columns:  # one block of rows per edited position
        return pd.concat([faithfulness(
            part.drop(columns="position"), widths=widths, intervention=intervention,
            position=str(where), metrics=metrics, rankings=rankings,
            exact=exact if where == "cls" else ())
            for where, part in ablation.groupby("position", sort=False)], ignore_index=True)
    needed = {"hook_name", "layer", "ranking", "method", "order", "k", "seed", "metric", "class",
              "value", "clean_value"}
    missing = sorted(needed - set(ablation.columns))
    if missing:
        raise ValueError(f"the ablation table lacks columns {missing}")
    by_key = {(r.hook_name, r.method): r for r in rankings if r.target == GLOBAL}
    exact_by_hook = {r.hook_name: r for r in exact}
    rows = []
    table = ablation[(ablation["ranking"] == GLOBAL) & (ablation["class"] == ALL)
                     & ablation["metric"].isin([m for m in metrics if m in HIGHER_IS_BETTER])]
    for (hook, layer, method, metric), group in table.groupby(
            ["hook_name", "layer", "method", "metric"], sort=False):
        if hook not in widths:
            raise ValueError(f"no width given for hook {hook!r}")
        gaps = _gaps(group, widths[hook], HIGHER_IS_BETTER[metric])
        ks = [int(k) for k in gaps["ks"].split(",")] if gaps["ks"] else [1]
        row = {"hook_name": hook, "layer": int(layer), "method": method,
               "intervention": intervention, "position": position, "metric": metric, **gaps,
               **_agreement(by_key.get((hook, method)), exact_by_hook.get(hook), ks[0])}
        row["verdict"] = verdict(row["gap_top_low"], row["gap_top_high"], row["gap_bottom_high"])
        rows.append(row)
    out = pd.DataFrame(rows, columns=FAITHFULNESS_COLUMNS)
    order = {m: i for i, m in enumerate(metrics)}
    out["_m"] = out["metric"].map(order)
    out = out.sort_values(["layer", "method", "_m"], kind="stable").drop(columns="_m")
    return out.reset_index(drop=True)


def best_method(table: pd.DataFrame, hook_name: str, metric: str = "true_prob",
                default: str = "probe") -> str:
    """The ranking method with the largest ``gap_top`` among the ``causal`` ones at
    ``hook_name`` (``default`` when none is causal)."""
    rows = table[(table["hook_name"] == hook_name) & (table["metric"] == metric)
                 & (table["verdict"] == "causal")]
    if rows.empty:
        return default
    return str(rows.sort_values(["gap_top", "method"], ascending=[False, True],
                                kind="stable")["method"].iloc[0])


def outlier_units(acts: object, names: Sequence[str],
                  ratio: float = OUTLIER_RATIO) -> pd.DataFrame:
    """Outlier dimensions: units whose activation scale stands far above their layer's.

    Rule: a unit's mean absolute [CLS] activation is at least ``ratio`` (default 20) times the
    median of that quantity over the units of its hook (the "outlier dimensions" of BERT-family
    models, Kovaleva et al. 2021). A hook whose median is 0 has no scale to compare with.

    Args:
        acts: :class:`~synapse_lens.ClsActivations`.
        names: hooks to scan.
        ratio: the threshold.

    Returns:
        Columns ``hook_name``, ``layer``, ``neuron``, ``mean_abs``, ``median_abs`` (of the
        hook), ``ratio``; one row per outlier, by depth then descending ratio.

    Example:
        >>> outlier_units(acts, acts.names)  # doctest: +SKIP
    """
    rows = []
    for name in names:
        x = acts[name].abs().mean(0).double().numpy()  # type: ignore[index]
        median = float(np.median(x))
        if median <= 0:
            continue
        for unit in np.argsort(-x, kind="stable"):
            if x[unit] < ratio * median:
                break
            rows.append({"hook_name": name, "layer": acts.layer(name),  # type: ignore[attr-defined]
                         "neuron": int(unit), "mean_abs": float(x[unit]),
                         "median_abs": median, "ratio": float(x[unit] / median)})
    return pd.DataFrame(rows, columns=["hook_name", "layer", "neuron", "mean_abs", "median_abs",
                                       "ratio"])


def outlier_ablation(model: Any, data: Any, outliers: pd.DataFrame, *, n_seeds: int = 5,
                     seed: int = 0, max_per_hook: int = 3,
                     metrics: Sequence[str] = ("true_prob", "margin", "accuracy"),
                     options: ExecOptions | None = None) -> pd.DataFrame:
    """Each outlier unit zero-ablated alone at [CLS] against ``n_seeds`` random single units of
    its hook: the :func:`~synapse_lens.experiments.engine.summarize` table of the ``max_per_hook``
    strongest outliers of each hook (an :func:`outlier_units` table), with a ``neuron`` column
    (``method`` is ``"outlier"``).

    Example:
        >>> outlier_ablation(model, data, outlier_units(acts, acts.names))  # doctest: +SKIP
    """
    opts = resolve(options, progress=False)
    info = classifier_info(model)
    rankings = []
    for hook, group in outliers.groupby("hook_name", sort=False):
        for unit in group["neuron"].head(max_per_hook):
            scores = np.zeros(info.width(str(hook)))
            scores[int(unit)] = 1.0
            rankings.append(Ranking(str(hook), int(group["layer"].iloc[0]), scores,
                                    method=f"outlier:{int(unit)}"))
    if not rankings:
        return pd.DataFrame(columns=["hook_name", "layer", "neuron", "order", "k", "metric",
                                     "mean", "ci_low", "ci_high", "clean_value"])
    table = summarize(ablation_curve(
        model, data, rankings, [1], orders=("top", "random"), n_seeds=n_seeds, seed=seed,
        metrics=list(metrics), options=opts))
    table["neuron"] = table["method"].str.split(":").str[1].astype(int)
    table["method"] = "outlier"
    return table


def exact_ranking(
    model: Any,
    data: TextDataset,
    hook_name: str,
    *,
    metric: Metric = "margin",
    baseline: Baseline = "zero",
    position: Position = "cls",
    stats: Any = None,
    options: ExecOptions | None = None,
) -> Ranking:
    """The measured single-unit ablation ranking of one hook (``method="exact"``, global).

    Costs ``width`` conditions of the experiment engine: each unit of ``hook_name`` is ablated
    alone and the mean drop of ``metric`` over ``data`` is its score. At a layer output the
    engine resumes from the cached residual stream, so the cost falls with depth (the last
    layer's units cost a head evaluation each).

    Args:
        model, data, metric, baseline, position: as
            :func:`~synapse_lens.analysis.attribution.attribution_rankings`.
        hook_name: the hook to rank.
        stats: for ``baseline="mean"`` at [CLS]: :class:`~synapse_lens.ClsActivations` holding
            ``hook_name`` (default: the [CLS] mean of ``data``, cached here); at all positions
            the mean over every real token of ``data`` is used.
        options: execution settings (:class:`~synapse_lens.ExecOptions`; default
            ``ExecOptions(progress=False)``).

    Returns:
        A :class:`~synapse_lens.analysis.rankings.Ranking` whose scores are measured drops.

    Raises:
        ValueError: bad arguments, an unknown hook.

    Example:
        >>> exact_ranking(model, data, names.resid_post(5)).top(3)  # doctest: +SKIP
    """
    opts = resolve(options, progress=False)
    check_options(metric, baseline, position)
    info = classifier_info(model)
    width = info.width(hook_name)
    layer = info.names.layer_of(hook_name)
    mean: Any = None
    if baseline == "mean":
        if position == "all" and info.names.parse(hook_name).site in ("embed", "resid_post",
                                                                      "mlp_post"):
            mean = token_mean(model, data, hook_name, options=opts)
        else:
            mean = stats if stats is not None else cache_cls(
                model, data.texts, names=[hook_name], options=opts.quiet())

    def hooks(unit: int) -> list[tuple[str, Any]]:
        if baseline == "zero":
            return [(hook_name, zero_ablate(model, hook_name, [unit], position=position))]
        return [(hook_name, mean_ablate(model, hook_name, [unit], mean, position=position))]

    conditions = [Condition({"unit": u}, partial(hooks, u)) for u in range(width)]
    table = run_conditions(model, data, conditions, metrics=[ENGINE_METRIC[metric]],
                           options=opts, desc=f"exact ranking {hook_name}")
    table = table.sort_values("unit", kind="stable")
    drop = (table["clean_value"] - table["value"]).to_numpy(dtype=np.float64)
    return Ranking(hook_name, layer, drop, GLOBAL, "exact")
