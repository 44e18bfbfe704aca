"""Figures of the "understand" half: probes per layer, rankings, their stability, redundancy."""

from __future__ import annotations

import itertools

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from synapse_lens.plots._base import (
    NothingToPlot,
    band,
    cell,
    color,
    dash_of,
    finish,
    grid,
    hook_order,
    hook_titles,
    label,
    layer_name,
    nonempty,
    pick,
    require,
    symbol,
    target_name,
)
from synapse_lens.schema import GLOBAL

PROBE_COLUMNS = ["hook_name", "layer", "task", "split", "metric", "value"]


def _depths(df: pd.DataFrame, hooks: list[str]) -> tuple[list[float], list[str]]:
    """Depth (``layer``) and escaped name of each hook, for numeric layer axes."""
    depth = df.drop_duplicates("hook_name").set_index(df.drop_duplicates("hook_name")[
        "hook_name"].astype(str))["layer"]
    return [float(depth[h]) for h in hooks], [label(h) for h in hooks]


def probe_figure(probes: pd.DataFrame, metric: str = "accuracy") -> go.Figure:
    """Layer-wise probe quality: train and test score on the real task, test score on the
    control task (permuted labels), and selectivity (real − control, test) as bars.

    Args:
        probes: the probes table (``ProbeResults.table``: ``hook_name, layer, task, split,
            metric, value``; ``task`` ``real``/``control``, ``split`` ``train``/``test``).
        metric: which ``metric`` rows to plot (``accuracy`` or ``macro_f1``).

    Returns:
        A figure with one x category per hook point (by depth): a selectivity bar trace when
        control rows exist, then lines ``probe, train``, ``probe, test``, ``control task, test``
        (those present).

    Raises:
        TypeError / ValueError: not a DataFrame, missing columns, no real-task rows for
            ``metric``.

    Example:
        >>> fig = probe_figure(fit_probes(acts, ds).table)  # doctest: +SKIP
    """
    require(probes, PROBE_COLUMNS, "probes")
    df = probes[probes["metric"].astype(str) == metric]
    if df[df["task"] == "real"].empty:
        raise NothingToPlot(f"no real-task rows with metric {metric!r} in the probes table; "
                         f"metrics are {sorted(probes['metric'].astype(str).unique())}")
    hooks = hook_order(df)
    cells = df.groupby(["task", "split", "hook_name"])["value"].mean()
    titles = hook_titles(df, hooks)
    x = [titles[h].split(" · ")[0] for h in hooks]  # "embeddings", "layer 0", ...

    def series(task: str, split: str) -> list[float | None]:
        return [float(cells[(task, split, h)]) if (task, split, h) in cells.index else None
                for h in hooks]

    fig = go.Figure()
    real_test, control_test = series("real", "test"), series("control", "test")
    if any(v is not None for v in control_test):
        sel = [None if a is None or b is None else a - b for a, b in zip(real_test, control_test)]
        fig.add_trace(go.Bar(x=x, y=sel, name="selectivity (real − control, test)",
                             marker_color="rgba(44,160,44,0.45)"))
    for task, split, name, hue, dash in [("real", "train", "probe, train", "#1f77b4", "dot"),
                                         ("real", "test", "probe, test", "#1f77b4", "solid"),
                                         ("control", "test", "control task, test", "#7f7f7f",
                                          "dash")]:
        ys = series(task, split)
        if any(v is not None for v in ys):
            fig.add_trace(go.Scatter(x=x, y=ys, name=name, mode="lines+markers",
                                     line={"color": hue, "dash": dash},
                                     customdata=[label(h) for h in hooks],
                                     hovertemplate=f"%{{customdata}}: %{{y:.3f}}<extra>{name}"
                                                   "</extra>"))
    fig.update_xaxes(title_text="depth (hover: hook point)", type="category")
    fig.update_yaxes(title_text=metric.replace("_", " "))
    return finish(fig, f"Probe {metric.replace('_', ' ')} per layer")


def ranking_figure(rankings: pd.DataFrame, k: int = 10, method: str = "probe",
                   target: str = GLOBAL) -> go.Figure:
    """Scores of the ``k`` top-ranked neurons of every hook point.

    Args:
        rankings: the rankings table (``hook_name, layer, neuron, class, method, score, rank``;
            ``rank`` 0 = most important).
        k: neurons per hook point (``k >= 1``).
        method: ``"probe"`` or ``"probeless"``.
        target: a class name, or ``"__global__"``.

    Returns:
        One bar trace per hook point (by depth); x = rank (1 = top), hover shows the neuron.

    Raises:
        ValueError: missing columns, ``k < 1``, no rows for ``method`` / ``target``.

    Example:
        >>> ranking_figure(rankings_frame(results.rankings()), k=5)  # doctest: +SKIP
    """
    require(rankings, ["hook_name", "layer", "neuron", "class", "method", "score", "rank"],
            "rankings")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    df = pick(rankings, method=method, **{"class": target})
    df = nonempty(df[df["rank"] < k], f"method {method!r} and class {target!r}")
    fig = go.Figure()
    for i, hook in enumerate(hook_order(df)):
        part = df[df["hook_name"].astype(str) == hook].sort_values("rank", kind="stable")
        fig.add_trace(go.Bar(x=(part["rank"] + 1).tolist(), y=part["score"].tolist(),
                             name=label(hook), marker_color=color(i),
                             customdata=part["neuron"].tolist(),
                             hovertemplate="rank %{x}: neuron %{customdata}<br>score %{y:.3g}"))
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="rank (1 = most important)")
    fig.update_yaxes(title_text="importance score")
    return finish(fig, f"Top-{k} neuron scores ({label(method)}, {target_name(target)})")


def redundancy_figure(redundancy: pd.DataFrame, threshold: float = 0.97) -> go.Figure:
    """Accuracy kept (fraction of the full probe's) vs percent of neurons kept.

    Args:
        redundancy: ``Redundancy.table`` (``scope, hook_name, layer, selection, draw, percent,
            k, width, accuracy, full_accuracy, kept``; ``scope`` ``layer``/``all``).
        threshold: drawn as a horizontal reference line.

    Returns:
        One line per hook point (top-ranked neurons), a thick line for all hooks together
        (scope ``all``), and the random-neuron baseline of that scope (mean over draws, with
        its min–max band) when present. Log-scaled x axis.

    Raises:
        ValueError: missing columns, no ``top`` rows.

    Example:
        >>> redundancy_figure(redundancy(results, acts).table)  # doctest: +SKIP
    """
    require(redundancy, ["scope", "hook_name", "layer", "selection", "percent", "kept"],
            "redundancy")
    top = nonempty(pick(redundancy, selection="top"), "selection 'top' in the redundancy table")
    fig = go.Figure()
    per_layer = top[top["scope"] == "layer"]
    if not per_layer.empty:
        hooks = hook_order(per_layer)
        titles = hook_titles(per_layer, hooks)
        for i, hook in enumerate(hooks):
            part = per_layer[per_layer["hook_name"].astype(str) == hook].sort_values("percent")
            fig.add_trace(go.Scatter(x=part["percent"], y=part["kept"], mode="lines+markers",
                                     name=titles[hook], line={"color": color(i), "width": 1.5,
                                                              "dash": dash_of(i)},
                                     marker={"size": 6, "symbol": symbol(i)}))
    everything = top[top["scope"] == "all"].sort_values("percent")
    if not everything.empty:
        fig.add_trace(go.Scatter(x=everything["percent"], y=everything["kept"],
                                 mode="lines+markers", name="all hooks, top-ranked",
                                 line={"color": "black", "width": 3}))
    rand = redundancy[(redundancy["selection"] == "random") & (redundancy["scope"] == "all")]
    if not rand.empty:
        agg = rand.groupby("percent")["kept"].agg(["mean", "min", "max"]).reset_index()
        fig.add_trace(band(agg["percent"], agg["min"], agg["max"], "#7f7f7f", "random"))
        fig.add_trace(go.Scatter(x=agg["percent"], y=agg["mean"], mode="lines",
                                 name="all hooks, random neurons", legendgroup="random",
                                 line={"color": "#7f7f7f", "dash": "dash"}))
    fig.add_hline(y=threshold, line={"color": "#d62728", "dash": "dot", "width": 1},
                  annotation_text=f"{threshold:.0%} of full accuracy",
                  annotation_position="bottom right")
    fig.update_xaxes(title_text="neurons kept (% of the hook's width, log scale)", type="log",
                     tickvals=[1, 2, 5, 10, 20, 50, 100])
    fig.update_yaxes(title_text="accuracy kept (fraction of full probe)")
    return finish(fig, "Redundancy: probe accuracy kept vs neurons kept", height=460)


def stability_figure(stability: pd.DataFrame, target: str = GLOBAL) -> go.Figure:
    """Bootstrap stability of top-k sets: mean Jaccard (± std over resamples) per hook point,
    one panel per k, one line per method (``random`` = the chance baseline).

    Args:
        stability: ``bootstrap_stability`` table (``hook_name, layer, class, method, k,
            resample, jaccard``).
        target: which ranking (``"__global__"`` or a class name).

    Returns:
        A figure with ``len(ks)`` panels and one trace per (k, method).

    Raises:
        ValueError: missing columns, no rows for ``target``.

    Example:
        >>> stability_figure(bootstrap_stability(results, acts, ks=[10]))  # doctest: +SKIP
    """
    require(stability, ["hook_name", "layer", "class", "method", "k", "jaccard"], "stability")
    df = nonempty(pick(stability, **{"class": target}), f"class {target!r} in stability")
    hooks = hook_order(df)
    x, names = _depths(df, hooks)
    ks = sorted(df["k"].unique())
    rows, cols = grid(len(ks))
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True,
                        subplot_titles=[f"top-{int(k)} sets" for k in ks])
    methods = list(dict.fromkeys(df["method"].astype(str)))
    hues = {"probe": "#1f77b4", "probeless": "#ff7f0e", "random": "#7f7f7f"}
    for i, k in enumerate(ks):
        row, col = cell(i, cols)
        part = df[df["k"] == k]
        agg = part.groupby(["method", "hook_name"])["jaccard"].agg(["mean", "std"])
        for j, method in enumerate(methods):
            vals = [agg.loc[(method, h)] if (method, h) in agg.index else None for h in hooks]
            fig.add_trace(go.Scatter(
                x=x, customdata=names, hovertemplate="%{customdata}: %{y:.2f}",
                mode="lines+markers", name=label(method),
                y=[None if v is None else float(v["mean"]) for v in vals],
                error_y={"type": "data", "array": [0.0 if v is None or pd.isna(v["std"])
                                                   else float(v["std"]) for v in vals]},
                line={"color": hues.get(method, color(j)),
                      "dash": "dash" if method == "random" else "solid"},
                legendgroup=method, showlegend=i == 0), row=row, col=col)
    fig.update_xaxes(title_text="layer (−1 = embeddings)", dtick=1)
    fig.update_yaxes(title_text="Jaccard with full-data top-k", range=[0, 1.05], col=1)
    return finish(fig, f"Ranking stability under bootstrap ({target_name(target)})",
                  height=380 * rows)


def agreement_figure(agreement: pd.DataFrame, target: str = GLOBAL) -> go.Figure:
    """Probe vs probeless ranking agreement: top-k overlap per hook point, one line per k,
    with the overlap expected by chance (dashed).

    Args:
        agreement: ``ranking_agreement`` table (``hook_name, layer, class, k, overlap,
            chance``).
        target: which ranking (``"__global__"`` or a class name).

    Returns:
        Two traces per k (overlap, chance).

    Raises:
        ValueError: missing columns, no rows for ``target``.

    Example:
        >>> agreement_figure(ranking_agreement(probe_r, probeless_r, [10]))  # doctest: +SKIP
    """
    require(agreement, ["hook_name", "layer", "class", "k", "overlap", "chance"], "agreement")
    df = nonempty(pick(agreement, **{"class": target}), f"class {target!r} in agreement")
    hooks = hook_order(df)
    fig = go.Figure()
    for i, k in enumerate(sorted(df["k"].unique())):
        part = df[df["k"] == k].groupby("hook_name")[["overlap", "chance"]].mean()
        present = [h for h in hooks if h in part.index]
        x, names = _depths(df, present)
        fig.add_trace(go.Scatter(x=x, y=part.loc[present, "overlap"], mode="lines+markers",
                                 name=f"top-{int(k)} overlap", line={"color": color(i)},
                                 customdata=names, hovertemplate="%{customdata}: %{y:.2f}"))
        fig.add_trace(go.Scatter(x=x, y=part.loc[present, "chance"], mode="lines",
                                 name=f"top-{int(k)} chance",
                                 line={"color": color(i), "dash": "dash", "width": 1}))
    fig.update_xaxes(title_text="layer (−1 = embeddings)", dtick=1)
    fig.update_yaxes(title_text="shared fraction of top-k", range=[0, 1.05])
    return finish(fig, f"Probe vs probeless ranking agreement ({target_name(target)})")


FAITHFULNESS_PLOT_COLUMNS = ["hook_name", "layer", "method", "metric", "gap_top", "gap_top_low",
                             "gap_top_high", "verdict"]
_MARKERS = ("circle", "diamond", "square", "triangle-up", "x", "star")


def faithfulness_figure(faithfulness: pd.DataFrame, metric: str = "true_prob",
                        position: str = "cls") -> go.Figure:
    """Which ranking finds the neurons the model uses: per hook point and ranking method, how
    much more ablating its top-k units costs than ablating random-k units (``gap_top``, a
    fraction of the clean metric, with its 95 % interval over random seeds). Above 0: the
    ranking is causal; below 0: anti-causal.

    Args:
        faithfulness: ``faithfulness`` table
            (:func:`synapse_lens.experiments.faithfulness.faithfulness`).
        metric: which metric's gaps to show.
        position: which edits (``cls`` / ``all``; tables without the column are used whole).

    Returns:
        One trace per method (markers with error bars, dashed connecting lines) over depth.

    Raises:
        ValueError: missing columns. NothingToPlot: no rows for ``metric``.
    """
    require(faithfulness, FAITHFULNESS_PLOT_COLUMNS, "faithfulness")
    df = nonempty(pick(faithfulness, metric=metric, position=position),
                  f"metric {metric!r}, position {position!r}")
    df = df[pd.to_numeric(df["gap_top"], errors="coerce").notna()]
    df = nonempty(df, f"metric {metric!r} with a measured gap")
    hooks = hook_order(df)
    depth, _ = _depths(df, hooks)
    fig = go.Figure()
    fig.add_hline(y=0, line={"color": "#7f7f7f", "width": 1})
    methods = list(dict.fromkeys(df["method"].astype(str)))
    # lines only between adjacent layers: never across layers the run did not edit
    adjacent = all(b - a <= 1 for a, b in itertools.pairwise(depth))
    for i, method in enumerate(methods):
        offset = 0.06 * (i - (len(methods) - 1) / 2)  # methods side by side at each layer
        part = df[df["method"].astype(str) == method].set_index("hook_name")
        rows = [part.loc[h] if h in part.index else None for h in hooks]
        y = [None if r is None else 100 * float(r["gap_top"]) for r in rows]
        up = [0.0 if r is None else 100 * (float(r["gap_top_high"]) - float(r["gap_top"]))
              for r in rows]
        down = [0.0 if r is None else 100 * (float(r["gap_top"]) - float(r["gap_top_low"]))
                for r in rows]
        verdicts = ["" if r is None else label(r["verdict"]) for r in rows]
        fig.add_trace(go.Scatter(
            x=[d + offset for d in depth], y=y, mode="lines+markers" if adjacent else "markers",
            name=label(method),
            marker={"symbol": _MARKERS[i % len(_MARKERS)], "size": 10, "color": color(i)},
            line={"dash": "dot", "width": 1, "color": color(i)},
            error_y={"type": "data", "symmetric": False, "array": up, "arrayminus": down},
            customdata=verdicts, hovertemplate="%{y:.2f} %% (%{customdata})<extra></extra>"))
    fig.update_xaxes(tickvals=depth, ticktext=[layer_name(d) for d in depth],
                     title="depth (hover: hook point)")
    fig.update_yaxes(title=f"extra drop of {label(metric)}, % of clean")
    return finish(fig, "Which ranking finds the neurons the model uses (above 0: causal)")
