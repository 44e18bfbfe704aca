"""Figures comparing several runs (tasks / architectures): each table carries a ``run`` column
(a label per run, e.g. ``"sms-spam · MiniLM"``)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from synapse_lens.plots._base import (
    ALL,
    GLOBAL,
    color,
    finish,
    grid,
    label,
    nonempty,
    pick,
    require,
)


def _runs(df: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(df["run"].astype(str)))


def _by_depth(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(_d=pd.to_numeric(df["layer"], errors="coerce"),
                     _h=df["hook_name"].astype(str)).sort_values(["_d", "_h"], kind="stable")


def compare_probe_figure(probes: pd.DataFrame, metric: str = "accuracy") -> go.Figure:
    """Layer-wise probe test score of several runs: one solid line per run (real task) and a
    dotted one for its control task.

    Args:
        probes: probes tables with a ``run`` column (``run, hook_name, layer, task, split,
            metric, value``).
        metric: ``accuracy`` or ``macro_f1``.

    Returns:
        One or two traces per run; x = layer (−1 = embeddings).

    Raises:
        ValueError: missing columns, no real-task test rows for ``metric``.

    Example:
        >>> compare_probe_figure(pd.concat([a.assign(run="spam"), b.assign(run="trec")]))
        ... # doctest: +SKIP
    """
    require(probes, ["run", "hook_name", "layer", "task", "split", "metric", "value"], "probes")
    df = nonempty(pick(probes, metric=metric, split="test"), f"test rows of {metric!r}")
    fig = go.Figure()
    for i, run in enumerate(_runs(df)):
        for task, dash in (("real", "solid"), ("control", "dot")):
            cur = _by_depth(df[(df["run"].astype(str) == run) & (df["task"] == task)])
            if cur.empty:
                continue
            fig.add_trace(go.Scatter(
                x=cur["_d"], y=cur["value"], mode="lines+markers",
                name=label(run) + ("" if task == "real" else " (control task)"),
                legendgroup=label(run), line={"color": color(i), "dash": dash},
                customdata=cur["_h"].map(label), hovertemplate="%{customdata}: %{y:.3f}"))
    fig.update_xaxes(title_text="layer (−1 = embeddings)", dtick=1)
    fig.update_yaxes(title_text=f"probe test {metric.replace('_', ' ')}")
    return finish(fig, f"Probe {metric.replace('_', ' ')} per layer, across runs")


def compare_ablation_figure(summary: pd.DataFrame, metric: str = "accuracy") -> go.Figure:
    """Ablation sensitivity across runs: per layer, the drop of ``metric`` (clean − ablated)
    when the top-k (solid) or random-k (dashed, 95 % interval as error bars) neurons of the
    global probe ranking are ablated, at each run's largest k.

    Args:
        summary: ``summarize(ablation_curve(...))`` tables with a ``run`` column.
        metric: which metric (``accuracy`` by default).

    Returns:
        Up to two traces per run.

    Raises:
        ValueError: missing columns, no global-ranking rows for ``metric``.

    Example:
        >>> compare_ablation_figure(pd.concat(summaries))  # doctest: +SKIP
    """
    require(summary, ["run", "hook_name", "layer", "order", "k", "metric", "mean", "ci_low",
                      "ci_high", "clean_value"], "ablation")
    df = nonempty(pick(summary, metric=metric, ranking=GLOBAL, method="probe", position="cls",
                       **{"class": ALL}), f"global-ranking rows of {metric!r} in ablation")
    fig = go.Figure()
    for i, run in enumerate(_runs(df)):
        cur = df[df["run"].astype(str) == run]
        cur = _by_depth(cur[cur["k"] == cur["k"].max()])
        k = int(cur["k"].max())
        for order, dash in (("top", "solid"), ("random", "dash")):
            c = cur[cur["order"] == order]
            if c.empty:
                continue
            drop = c["clean_value"] - c["mean"]
            err = ({"type": "data", "symmetric": False,
                    "array": (c["mean"] - c["ci_low"]).tolist(),
                    "arrayminus": (c["ci_high"] - c["mean"]).tolist()}
                   if order == "random" else None)
            fig.add_trace(go.Scatter(x=c["_d"], y=drop, mode="lines+markers", error_y=err,
                                     name=f"{label(run)}: {order}-{k}",
                                     legendgroup=label(run),
                                     line={"color": color(i), "dash": dash}))
    fig.update_xaxes(title_text="layer (−1 = embeddings)", dtick=1)
    fig.update_yaxes(title_text=f"{metric.replace('_', ' ')} drop (clean − ablated)")
    return finish(fig, "Ablation sensitivity across runs: top-k vs random-k")


def compare_redundancy_figure(redundancy: pd.DataFrame, threshold: float = 0.97) -> go.Figure:
    """Redundancy across runs: accuracy kept vs percent of neurons kept, all hooks together
    (scope ``all``, top-ranked neurons), one line per run.

    Args:
        redundancy: ``Redundancy.table`` tables with a ``run`` column.
        threshold: drawn as a reference line.

    Returns:
        One trace per run that has an all-hooks scope.

    Raises:
        ValueError: missing columns, no all-hooks top rows.

    Example:
        >>> compare_redundancy_figure(pd.concat(tables))  # doctest: +SKIP
    """
    require(redundancy, ["run", "scope", "selection", "percent", "kept"], "redundancy")
    df = nonempty(pick(redundancy, scope="all", selection="top"),
                  "all-hooks top-ranked rows in redundancy")
    fig = go.Figure()
    for i, run in enumerate(_runs(df)):
        cur = df[df["run"].astype(str) == run].sort_values("percent", kind="stable")
        fig.add_trace(go.Scatter(x=cur["percent"], y=cur["kept"], mode="lines+markers",
                                 name=label(run), line={"color": color(i)}))
    fig.add_hline(y=threshold, line={"color": "#d62728", "dash": "dot", "width": 1})
    fig.update_xaxes(title_text="neurons kept (% of all probed neurons, log scale)", type="log",
                     tickvals=[1, 2, 5, 10, 20, 50, 100])
    fig.update_yaxes(title_text="accuracy kept (fraction of full probe)")
    return finish(fig, "Redundancy across runs (all layers together)")


def compare_asymmetry_figure(asymmetry: pd.DataFrame) -> go.Figure:
    """Class asymmetry across runs: per class, the recall drop from ablating its own top-k
    (``own_drop``) and the mean drop it causes in other classes (``collateral``); one panel per
    run, at the hook point where own-class ablation hurts most on average.

    Args:
        asymmetry: ``class_asymmetry`` tables with a ``run`` column (``run, hook_name, class,
            own_drop, collateral``).

    Returns:
        Two bar traces per run panel.

    Raises:
        ValueError: missing columns.

    Example:
        >>> compare_asymmetry_figure(pd.concat(asyms))  # doctest: +SKIP
    """
    require(asymmetry, ["run", "hook_name", "class", "own_drop", "collateral"], "asymmetry")
    runs = _runs(asymmetry)
    chosen = []
    for run in runs:
        cur = asymmetry[asymmetry["run"].astype(str) == run]
        if "k" in cur.columns:  # a k grid: its largest size
            cur = cur[cur["k"] == cur["k"].max()]
        hook = cur.groupby("hook_name", sort=False)["own_drop"].mean().idxmax()
        cur = cur[cur["hook_name"] == hook]
        chosen.append((run, hook, cur.sort_values("own_drop", ascending=False, kind="stable")))
    rows, cols = grid(len(runs), max_cols=2)
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True,
                        subplot_titles=[f"{label(r)} — {label(h)}" for r, h, _ in chosen])
    for i, (_, _, cur) in enumerate(chosen):
        row, col = i // cols + 1, i % cols + 1
        x = [label(c) for c in cur["class"]]
        fig.add_trace(go.Bar(x=x, y=cur["own_drop"], name="own drop",
                             marker_color="#d62728", legendgroup="own", showlegend=i == 0),
                      row=row, col=col)
        fig.add_trace(go.Bar(x=x, y=cur["collateral"], name="collateral drop (other classes)",
                             marker_color="#7f7f7f", legendgroup="coll", showlegend=i == 0),
                      row=row, col=col)
    fig.update_xaxes(type="category", title_text="class")
    what = ("true-class probability drop" if "metric" in asymmetry.columns and (
        asymmetry["metric"] == "class_true_prob").any() else "recall drop")
    fig.update_yaxes(title_text=what, col=1)
    return finish(fig, "Class asymmetry across runs", height=380 * rows + 80)
