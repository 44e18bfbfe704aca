"""Ablation and noise curves: a metric vs k or σ, one line per unit set, with interval bands.

Curves with repetitions (random-k seeds, noise seeds) take the output of
:func:`synapse_lens.experiments.engine.summarize` (``mean``, ``ci_low``, ``ci_high`` per condition).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from synapse_lens.plots._base import (
    ORDER_COLORS,
    ORDER_STYLES,
    band,
    cell,
    check_summary,
    clipped,
    color,
    facets,
    finish,
    hook_order,
    hook_titles,
    label,
    log_ticks,
    nonempty,
    pick,
    y_axis,
)
from synapse_lens.schema import ALL, GLOBAL


def _curves(fig: go.Figure, part: pd.DataFrame, x: str, by: str, row: int, col: int,
            first: bool, names: dict[str, str] | None = None) -> None:
    """One line (+ its interval band when it has width) per value of ``by``."""
    for j, key in enumerate(dict.fromkeys(part[by].astype(str))):
        cur = part[part[by].astype(str) == key].sort_values(x, kind="stable")
        hue = ORDER_COLORS.get(key, color(j))
        dash, marker = ORDER_STYLES.get(key, ("solid", "circle"))
        name = (names or {}).get(key, key)
        if ((cur["ci_high"] - cur["ci_low"]).abs() > 0).any():
            fig.add_trace(band(cur[x], cur["ci_low"], cur["ci_high"], hue, label(name)),
                          row=row, col=col)
        fig.add_trace(go.Scatter(x=cur[x], y=cur["mean"], mode="lines+markers",
                                 name=label(name), legendgroup=label(name), showlegend=first,
                                 line={"color": hue, "dash": dash},
                                 marker={"symbol": marker, "size": 7}), row=row, col=col)

def ablation_figure(summary: pd.DataFrame, metric: str = "accuracy", ranking: str = GLOBAL,
                    method: str = "probe", position: str = "cls") -> go.Figure:
    """Ablation curves: ``metric`` vs k for top-k, random-k (mean and 95 % interval band over
    seeds) and bottom-k, one panel per hook point, the clean value as a dotted line.

    Args:
        summary: ``summarize(ablation_curve(...))`` (``hook_name, layer, ranking, method,
            order, k, metric, class, mean, ci_low, ci_high, clean_value``).
        metric: which metric (``accuracy``, ``macro_f1``, ``flip_rate``, ``true_prob``, ``kl``).
        ranking: the ranking whose units were ablated (``"__global__"`` or a class name).
        method: ranking method (``probe`` / ``probeless`` / ``attribution`` / ``exact``).
        position: where the units were edited (``cls`` / ``all``; ignored for tables
            without a ``position`` column).

    Returns:
        A grid of panels; per panel one line per order plus a band for orders whose interval
        has width (random-k).

    Raises:
        ValueError: raw per-seed rows, missing columns, no rows for the selection.

    Example:
        >>> ablation_figure(summarize(ablation_curve(model, ds, rankings, [0, 5, 10])))
        ... # doctest: +SKIP
    """
    check_summary(summary, ["hook_name", "layer", "order", "k"], "ablation")
    df = pick(summary, metric=metric, ranking=ranking, method=method, position=position,
              **{"class": ALL})
    df = clipped(nonempty(df, f"metric {metric!r}, ranking {ranking!r}, method {method!r}, "
                              f"position {position!r} in ablation"), metric)
    hooks = hook_order(df)
    fig, cols = facets(hooks, titles=hook_titles(df, hooks))
    log = bool((df["k"] > 0).any())  # k = 0 is the clean model: the dotted line on a log axis
    if log:
        df = df[df["k"] > 0]
    for i, hook in enumerate(hooks):
        row, col = cell(i, cols)
        part = df[df["hook_name"].astype(str) == hook]
        _curves(fig, part, "k", "order", row, col, i == 0,
                {"top": "top-k", "random": "random-k", "bottom": "bottom-k"})
        if "clean_value" in part.columns and part["clean_value"].notna().any():
            fig.add_hline(y=float(part["clean_value"].dropna().iloc[0]), row=row, col=col,
                          line={"color": "black", "dash": "dot", "width": 1})
    fig.update_xaxes(title_text="k (neurons ablated, log scale)" if log else
                     "k (neurons ablated)", **(log_ticks(df["k"]) if log else {}))
    y_axis(fig, metric, df)
    where = {"cls": "[CLS] only", "all": "every position"}.get(position, position)
    return finish(fig, f"Ablation of {method}-ranked neurons at {where}: "
                  f"{metric.replace('_', ' ')} vs k", height=None)

def noise_figure(summary: pd.DataFrame, metric: str = "accuracy",
                 ranking: str = GLOBAL) -> go.Figure:
    """Noise curves: ``metric`` vs noise size σ on the top-k, random-k and all units (mean and
    95 % interval band over seeds), one panel per hook point.

    Args:
        summary: ``summarize(noise_curve(...))`` (``hook_name, layer, ranking, units, sigma,
            metric, class, mean, ci_low, ci_high``).
        metric: which metric.
        ranking: which ranking chose the top-k units.

    Returns:
        Per panel one line (+ band) per unit set.

    Raises:
        ValueError: raw per-seed rows, missing columns, no rows for the selection.

    Example:
        >>> noise_figure(summarize(noise_curve(model, ds, rankings, [0, 1, 2], k=10)))
        ... # doctest: +SKIP
    """
    check_summary(summary, ["hook_name", "layer", "units", "sigma"], "noise")
    df = clipped(nonempty(pick(summary, metric=metric, ranking=ranking, **{"class": ALL}),
                           f"metric {metric!r}, ranking {ranking!r} in noise"), metric)
    hooks = hook_order(df)
    fig, cols = facets(hooks, titles=hook_titles(df, hooks))
    for i, hook in enumerate(hooks):
        part = df[df["hook_name"].astype(str) == hook]
        ks = {u: int(g["k"].iloc[0]) for u, g in part.groupby("units")} if "k" in part else {}
        names = {u: f"{u} ({ks[u]} units)" if u in ks else u for u in ("top", "random", "all")}
        _curves(fig, part, "sigma", "units", *cell(i, cols), first=i == 0, names=names)
    fig.update_xaxes(title_text="noise σ (× each neuron's std)")
    y_axis(fig, metric, df)
    return finish(fig, f"Gaussian noise on [CLS] neurons: {metric.replace('_', ' ')} vs σ",
                  height=None)
