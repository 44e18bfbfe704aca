"""Figures comparing several runs (tasks / architectures): each table carries a ``run`` column
(a label per run, e.g. ``"sms-spam · MiniLM"``)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from synapse_lens.plots._base import (
    NothingToPlot,
    cell,
    color,
    dash_of,
    finish,
    grid,
    label,
    layer_name,
    nonempty,
    pick,
    require,
    symbol,
)
from synapse_lens.schema import ALL, GLOBAL


def _runs(df: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(df["run"].astype(str)))


def _by_depth(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(_d=pd.to_numeric(df["layer"], errors="coerce"),
                     _h=df["hook_name"].astype(str)).sort_values(["_d", "_h"], kind="stable")


def _gapped(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (sorted by depth ``_d``) with an empty row between two plotted layers that are
    not adjacent: plotly breaks the line there instead of drawing it across layers the run did
    not analyse (or, in the ablation panels, did not edit)."""
    rows: list[pd.Series] = []
    depths = df["_d"].tolist()
    for i, (_, row) in enumerate(df.iterrows()):
        if i and depths[i] - depths[i - 1] > 1:
            rows.append(pd.Series(dict.fromkeys(df.columns)))
        rows.append(row)
    return pd.DataFrame(rows, columns=df.columns).reset_index(drop=True)


def _shared_fractions(df: pd.DataFrame) -> list[float]:
    """The k fractions below the whole width that every run of ``df`` has, ascending."""
    per_run = [set(g["fraction"]) for _, g in df[df["k"] > 0].groupby("run", sort=False)]
    shared = set.intersection(*per_run) if per_run else set()
    return sorted(f for f in shared if 0 < f < 1)


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
            cur = _gapped(cur)
            fig.add_trace(go.Scatter(
                x=cur["_d"], y=cur["value"], mode="lines+markers",
                name=label(run) + ("" if task == "real" else " (control task)"),
                legendgroup=label(run), line={"color": color(i), "dash": dash},
                marker={"symbol": symbol(i)},
                customdata=cur["_h"].map(label, na_action="ignore"),
                hovertemplate="%{customdata}: %{y:.3f}"))
    depths = sorted({float(d) for d in df["layer"].map(lambda v: pd.to_numeric(v, errors="coerce"))
                     if d == d})
    fig.update_xaxes(title_text="depth", tickvals=depths,
                     ticktext=[layer_name(d).replace("layer ", "") for d in depths])
    fig.update_yaxes(title_text=f"probe test {metric.replace('_', ' ')}")
    return finish(fig, f"Probe {metric.replace('_', ' ')} per layer, across runs")


def compare_ablation_figure(summary: pd.DataFrame, metric: str = "true_prob",
                            method: str = "probe") -> go.Figure:
    """Ablation sensitivity across runs, like with like: one panel per fraction of the width
    that every run ablated (below the whole width, which removes everything by construction);
    per edited layer, the drop of ``metric`` (clean − ablated) when the top-k (solid) or
    random-k (dashed, 95 % interval as error bars) units of ``method``'s global ranking are
    ablated at [CLS]. Layers a run did not edit are gaps, not lines.

    Args:
        summary: ``summarize(ablation_curve(...))`` tables with ``run`` and ``fraction`` (the
            fraction of the width each k was fitted to) columns.
        metric: which metric (``true_prob`` by default: the true-class probability moves
            where accuracy, a step function of it, often does not).
        method: which ranking method (the first one every run has when it is missing).

    Returns:
        Up to two traces per run and panel.

    Raises:
        ValueError: missing columns, no global-ranking rows for ``metric``, no fraction below
            the whole width shared by every run.

    Example:
        >>> compare_ablation_figure(pd.concat(summaries))  # doctest: +SKIP
    """
    require(summary, ["run", "hook_name", "layer", "order", "k", "fraction", "metric", "mean",
                      "ci_low", "ci_high", "clean_value"], "ablation")
    df = nonempty(pick(summary, metric=metric, ranking=GLOBAL, position="cls",
                       **{"class": ALL}), f"global-ranking rows of {metric!r} in ablation")
    if "method" in df.columns:
        shared = [m for m in dict.fromkeys(df["method"].astype(str))
                  if df[df["method"] == m]["run"].nunique() == df["run"].nunique()]
        if not shared:
            raise NothingToPlot("no ranking method is shared by every run")
        method = method if method in shared else shared[0]
        df = df[df["method"] == method]
    fractions = _shared_fractions(df)
    if not fractions:
        raise NothingToPlot("the runs share no unit-set fraction below the whole width: "
                            "compare runs made with the same --k-fractions")
    rows, cols = grid(len(fractions), max_cols=2)
    n_runs = len(_runs(df))
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True,
                        subplot_titles=[f"k = {f:.0%} of the width" for f in fractions])
    for p, fraction in enumerate(fractions):
        row, col = cell(p, cols)
        for i, run in enumerate(_runs(df)):
            cur = _by_depth(df[(df["run"].astype(str) == run) & (df["fraction"] == fraction)])
            k = int(cur["k"].iloc[0])
            for order, dash in (("top", "solid"), ("random", "dash")):
                c = _gapped(cur[cur["order"] == order])
                if c["k"].notna().sum() == 0:
                    continue
                err = ({"type": "data", "symmetric": False,
                        "array": (c["mean"] - c["ci_low"]).tolist(),
                        "arrayminus": (c["ci_high"] - c["mean"]).tolist()}
                       if order == "random" else None)
                # runs and orders side by side around their layer, not on top of each other
                offset = 0.1 * (2 * i + (order == "random") - n_runs + 0.5)
                fig.add_trace(go.Scatter(
                    x=c["_d"] + offset, y=c["clean_value"] - c["mean"], mode="lines+markers",
                    error_y=err, name=f"{label(run)}: {order}-k", legendgroup=f"{run} | {order}",
                    showlegend=p == 0, line={"color": color(i), "dash": dash},
                    marker={"symbol": symbol(i), "size": 9 if order == "top" else 7},
                    customdata=c["_d"],
                    hovertemplate=f"{label(run)}: {order}-{k}, layer %{{customdata}}: "
                                  "%{y:.3f}<extra></extra>"), row=row, col=col)
    fig.update_xaxes(title_text="layer", dtick=1)
    what = {"true_prob": "true-class prob."}.get(metric, metric.replace("_", " "))
    fig.update_yaxes(title_text=f"{what} drop", col=1)
    return finish(fig, f"Ablation sensitivity across runs: top-k vs random-k ({method} "
                       "ranking, [CLS] edits)", height=340 * rows + 120)


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
                                 name=label(run), line={"color": color(i), "dash": dash_of(i)},
                                 marker={"symbol": symbol(i)}))
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
    df = asymmetry
    size = ""
    fractions = _shared_fractions(df) if {"k", "fraction"} <= set(df.columns) else []
    if fractions:  # a k grid: its largest fraction shared by every run
        df = df[df["fraction"] == fractions[-1]]
        size = f", k = {fractions[-1]:.0%} of the width"
    runs = _runs(df)
    chosen = []
    for run in runs:
        cur = df[df["run"].astype(str) == run]
        if "k" in cur.columns:  # several sizes left: the largest
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
    return finish(fig, f"Class asymmetry across runs{size}", height=380 * rows + 80)
