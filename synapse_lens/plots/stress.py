"""Figures of the "stress-test" half: ablation curves, class-wise effects, noise, redirection.

Curves with repetitions (random-k seeds, noise seeds, perturbation seeds) take the output of
:func:`synapse_lens.experiments.summarize` (``mean``, ``ci_low``, ``ci_high`` per condition).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from synapse_lens.plots._base import (
    ALL,
    GLOBAL,
    ORDER_COLORS,
    band,
    cell,
    color,
    finish,
    grid,
    hook_order,
    label,
    nonempty,
    pick,
    require,
)

SUMMARY = ["metric", "mean", "ci_low", "ci_high"]


def _summary(df: pd.DataFrame, columns: list[str], table: str) -> None:
    if isinstance(df, pd.DataFrame) and "value" in df.columns and "mean" not in df.columns:
        raise ValueError(f"the {table} table has raw per-seed rows; pass "
                         "synapse_lens.experiments.summarize(table) instead")
    require(df, columns + SUMMARY, table)


#: Metrics that are fractions: their axes span [0, 1] and intervals are clipped to it.
FRACTIONS = frozenset({"accuracy", "macro_f1", "flip_rate", "true_prob", "success_rate",
                       "recall", "pred_share"})


def _clipped(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Interval ends clipped to [0, 1] for fraction metrics (a mean cannot leave that range,
    but a t interval from few seeds can)."""
    if metric not in FRACTIONS:
        return df
    return df.assign(ci_low=df["ci_low"].clip(0.0, 1.0), ci_high=df["ci_high"].clip(0.0, 1.0))


def _y_axis(fig: go.Figure, metric: str) -> None:
    fig.update_yaxes(title_text=metric.replace("_", " "), col=1)
    if metric in FRACTIONS:
        fig.update_yaxes(range=[-0.02, 1.02])


def _curves(fig: go.Figure, part: pd.DataFrame, x: str, by: str, row: int, col: int,
            first: bool, names: dict[str, str] | None = None) -> None:
    """One line (+ its interval band when it has width) per value of ``by``."""
    for j, key in enumerate(dict.fromkeys(part[by].astype(str))):
        cur = part[part[by].astype(str) == key].sort_values(x, kind="stable")
        hue = ORDER_COLORS.get(key, color(j))
        name = (names or {}).get(key, key)
        if ((cur["ci_high"] - cur["ci_low"]).abs() > 0).any():
            fig.add_trace(band(cur[x], cur["ci_low"], cur["ci_high"], hue, label(name)),
                          row=row, col=col)
        fig.add_trace(go.Scatter(x=cur[x], y=cur["mean"], mode="lines+markers",
                                 name=label(name), legendgroup=label(name), showlegend=first,
                                 line={"color": hue}), row=row, col=col)


def _facets(hooks: list[str]) -> tuple[go.Figure, int, int]:
    rows, cols = grid(len(hooks))
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True,
                        subplot_titles=[label(h) for h in hooks], vertical_spacing=0.12)
    return fig, rows, cols


def ablation_figure(summary: pd.DataFrame, metric: str = "accuracy", ranking: str = GLOBAL,
                    method: str = "probe") -> go.Figure:
    """Ablation curves: ``metric`` vs k for top-k, random-k (mean and 95 % interval band over
    seeds) and bottom-k, one panel per hook point, the clean value as a dotted line.

    Args:
        summary: ``summarize(ablation_curve(...))`` (``hook_name, layer, ranking, method,
            order, k, metric, class, mean, ci_low, ci_high, clean_value``).
        metric: which metric (``accuracy``, ``macro_f1``, ``flip_rate``, ``true_prob``, ``kl``).
        ranking: the ranking whose units were ablated (``"__global__"`` or a class name).
        method: ranking method (``probe`` / ``probeless``).

    Returns:
        A grid of panels; per panel one line per order plus a band for orders whose interval
        has width (random-k).

    Raises:
        ValueError: raw per-seed rows, missing columns, no rows for the selection.

    Example:
        >>> ablation_figure(summarize(ablation_curve(model, ds, rankings, [0, 5, 10])))
        ... # doctest: +SKIP
    """
    _summary(summary, ["hook_name", "layer", "order", "k"], "ablation")
    df = pick(summary, metric=metric, ranking=ranking, method=method, **{"class": ALL})
    df = _clipped(nonempty(df, f"metric {metric!r}, ranking {ranking!r}, method {method!r} in "
                                "ablation"), metric)
    hooks = hook_order(df)
    fig, rows, cols = _facets(hooks)
    for i, hook in enumerate(hooks):
        row, col = cell(i, cols)
        part = df[df["hook_name"].astype(str) == hook]
        _curves(fig, part, "k", "order", row, col, i == 0,
                {"top": "top-k", "random": "random-k", "bottom": "bottom-k"})
        if "clean_value" in part.columns and part["clean_value"].notna().any():
            fig.add_hline(y=float(part["clean_value"].dropna().iloc[0]), row=row, col=col,
                          line={"color": "black", "dash": "dot", "width": 1})
    fig.update_xaxes(title_text="k (neurons ablated)")
    _y_axis(fig, metric)
    return finish(fig, f"Ablation of ranked neurons: {metric.replace('_', ' ')} vs k",
                  height=340 * rows + 80)


def class_matrix_figure(matrix: pd.DataFrame, method: str = "probe",
                        k: int | None = None) -> go.Figure:
    """Per-class ablation heatmap: change of each class's recall (columns) when a class's own
    top-k neurons (rows) are ablated; one panel per hook point, one shared diverging scale.

    Args:
        matrix: ``class_matrix`` table (``hook_name, layer, method, ablated_class, k, class,
            delta``).
        method: ranking method.
        k: which k (default the largest in the table).

    Returns:
        One heatmap trace per hook point (values printed in the cells).

    Raises:
        ValueError: missing columns, no rows for the selection.

    Example:
        >>> class_matrix_figure(class_matrix(model, ds, per_class, k=10))  # doctest: +SKIP
    """
    require(matrix, ["hook_name", "layer", "ablated_class", "k", "class", "delta"],
            "class_matrix")
    df = pick(matrix, method=method)
    df = nonempty(df[df["k"] == (df["k"].max() if k is None else k)],
                  f"method {method!r}, k={k} in class_matrix")
    hooks = hook_order(df)
    fig, rows, cols = _facets(hooks)
    # classes without examples (recall undefined everywhere) get no column
    measured = df.groupby(df["class"].astype(str), sort=False)["delta"].count()
    classes = [c for c in dict.fromkeys(df["class"].astype(str)) if measured[c] > 0]
    ablated = list(dict.fromkeys(df["ablated_class"].astype(str)))
    for i, hook in enumerate(hooks):
        part = df[df["hook_name"].astype(str) == hook]
        wide = part.assign(a=part["ablated_class"].astype(str), c=part["class"].astype(str)) \
            .pivot_table(index="a", columns="c", values="delta", aggfunc="mean", dropna=False)
        wide = wide.reindex(index=ablated, columns=classes)
        fig.add_trace(go.Heatmap(
            z=wide.to_numpy().tolist(), x=[label(c) for c in classes],
            y=[label(a) for a in ablated], coloraxis="coloraxis", texttemplate="%{z:+.2f}",
            hovertemplate="ablate %{y}'s top-k<br>recall of %{x}: %{z:+.3f}<extra></extra>"),
            row=cell(i, cols)[0], col=cell(i, cols)[1])
    kk = int(df["k"].iloc[0])
    fig.update_layout(coloraxis={"colorscale": "RdBu", "cmid": 0,
                                 "colorbar": {"title": {"text": "Δ recall"}}})
    fig.update_xaxes(title_text="recall of class", type="category")
    fig.update_yaxes(title_text=f"ablated: top-{kk} of class", type="category",
                     autorange="reversed", col=1)
    return finish(fig, f"Class-wise ablation: change of recall (top-{kk} per class)",
                  height=max(360, 60 * len(ablated) + 160) * rows)


def overlap_figure(overlap: pd.DataFrame, k: int | None = None) -> go.Figure:
    """Overlap (Jaccard) of the per-class top-k neuron sets within each hook point.

    Args:
        overlap: ``topk_overlap`` table (``hook_name_a, layer_a, class_a, hook_name_b,
            class_b, scope, k, jaccard``); global rankings are left out.
        k: which k (default the largest).

    Returns:
        One heatmap trace per hook point (symmetric, diagonal 1).

    Raises:
        ValueError: missing columns, no within-layer class pairs.

    Example:
        >>> overlap_figure(topk_overlap(per_class, [10]))  # doctest: +SKIP
    """
    require(overlap, ["hook_name_a", "layer_a", "class_a", "class_b", "scope", "k", "jaccard"],
            "overlap")
    df = overlap[(overlap["scope"] == "within_layer") & (overlap["class_a"] != GLOBAL)
                 & (overlap["class_b"] != GLOBAL)]
    df = nonempty(df[df["k"] == (df["k"].max() if k is None else k)],
                  f"within-layer class pairs (k={k}) in overlap")
    hooks = hook_order(df, "hook_name_a", "layer_a")
    fig, rows, cols = _facets(hooks)
    classes = list(dict.fromkeys([*df["class_a"].astype(str), *df["class_b"].astype(str)]))
    for i, hook in enumerate(hooks):
        part = df[df["hook_name_a"].astype(str) == hook]
        z = pd.DataFrame(1.0, index=classes, columns=classes)
        for a, b, j in zip(part["class_a"].astype(str), part["class_b"].astype(str),
                           part["jaccard"]):
            z.loc[a, b] = z.loc[b, a] = float(j)
        fig.add_trace(go.Heatmap(
            z=z.to_numpy().tolist(), x=[label(c) for c in classes],
            y=[label(c) for c in classes], coloraxis="coloraxis", texttemplate="%{z:.2f}",
            hovertemplate="%{y} vs %{x}: Jaccard %{z:.3f}<extra></extra>"),
            row=cell(i, cols)[0], col=cell(i, cols)[1])
    kk = int(df["k"].iloc[0])
    fig.update_layout(coloraxis={"colorscale": "Blues", "cmin": 0, "cmax": 1,
                                 "colorbar": {"title": {"text": "Jaccard"}}})
    fig.update_xaxes(type="category", title_text="class")
    fig.update_yaxes(type="category", autorange="reversed", title_text="class", col=1)
    return finish(fig, f"Overlap of per-class top-{kk} neuron sets",
                  height=max(340, 50 * len(classes) + 160) * rows)


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
    _summary(summary, ["hook_name", "layer", "units", "sigma"], "noise")
    df = _clipped(nonempty(pick(summary, metric=metric, ranking=ranking, **{"class": ALL}),
                           f"metric {metric!r}, ranking {ranking!r} in noise"), metric)
    hooks = hook_order(df)
    fig, rows, cols = _facets(hooks)
    for i, hook in enumerate(hooks):
        part = df[df["hook_name"].astype(str) == hook]
        ks = {u: int(g["k"].iloc[0]) for u, g in part.groupby("units")} if "k" in part else {}
        names = {u: f"{u} ({ks[u]} units)" if u in ks else u for u in ("top", "random", "all")}
        _curves(fig, part, "sigma", "units", *cell(i, cols), first=i == 0, names=names)
    fig.update_xaxes(title_text="noise σ (× each neuron's std)")
    _y_axis(fig, metric)
    return finish(fig, f"Gaussian noise on [CLS] neurons: {metric.replace('_', ' ')} vs σ",
                  height=340 * rows + 80)


def weight_redirection_figure(summary: pd.DataFrame, metric: str = "flip_rate") -> go.Figure:
    """Weight-space redirection: ``metric`` vs relative perturbation size ε of the ranked
    units' output weights (top-k solid, random-k dashed, per hook) and of each class's
    classifier row (one line per class).

    Args:
        summary: ``summarize(weight_redirection(...))`` (``edit, hook_name, layer, target, eps,
            metric, class, mean, ci_low, ci_high``).
        metric: ``flip_rate`` or ``accuracy``.

    Returns:
        One or two panels ("ranked units' output weights", "classifier row of class").

    Raises:
        ValueError: raw per-seed rows, missing columns, no rows for ``metric``.

    Example:
        >>> weight_redirection_figure(summarize(tables.weights))  # doctest: +SKIP
    """
    _summary(summary, ["edit", "hook_name", "layer", "target", "eps"], "redirection")
    df = _clipped(nonempty(pick(summary, metric=metric, **{"class": ALL}),
                           f"metric {metric!r} in redirection"), metric)
    units = df[df["edit"].isin(["top_units", "random_units"])]
    rows_ = df[df["edit"] == "class_row"]
    panels = [p for p, d in (("ranked units' output weights", units),
                             ("classifier row of class", rows_)) if not d.empty]
    fig = make_subplots(rows=1, cols=len(panels), shared_yaxes=True, subplot_titles=panels)
    col = 1
    if not units.empty:
        for j, hook in enumerate(hook_order(units)):
            for edit, dash in (("top_units", "solid"), ("random_units", "dash")):
                cur = units[(units["hook_name"].astype(str) == hook) & (units["edit"] == edit)]
                for target in dict.fromkeys(cur["target"].astype(str)):
                    c = cur[cur["target"].astype(str) == target].sort_values("eps")
                    name = f"{edit.split('_')[0]}-k, {hook}" + (
                        "" if target == GLOBAL else f" ({target})")
                    fig.add_trace(go.Scatter(
                        x=c["eps"], y=c["mean"], mode="lines+markers", name=label(name),
                        line={"color": color(j), "dash": dash},
                        error_y={"type": "data", "symmetric": False,
                                 "array": (c["ci_high"] - c["mean"]).tolist(),
                                 "arrayminus": (c["mean"] - c["ci_low"]).tolist()}),
                        row=1, col=col)
        col += 1
    for j, target in enumerate(dict.fromkeys(rows_["target"].astype(str))):
        c = rows_[rows_["target"].astype(str) == target].sort_values("eps")
        fig.add_trace(go.Scatter(x=c["eps"], y=c["mean"], mode="lines+markers",
                                 name=f"row of {label(target)}",
                                 line={"color": color(j + 5), "dash": "dot"}), row=1, col=col)
    fig.update_xaxes(title_text="relative perturbation size ε")
    _y_axis(fig, metric)
    return finish(fig, f"Weight-space perturbation: {metric.replace('_', ' ')} vs ε",
                  height=460)


def logit_redirection_figure(logit_bias: pd.DataFrame) -> go.Figure:
    """Logit-space redirection: success rate of redirecting predictions to each target class
    and the overall flip rate, vs the bias added to the target's logit.

    Args:
        logit_bias: ``logit_redirection`` table (``target, bias, metric, value``; metrics
            ``success_rate``, ``flip_rate``).

    Returns:
        Two panels, one line per target class in each.

    Raises:
        ValueError: missing columns.

    Example:
        >>> logit_redirection_figure(logit_redirection(clean, [0, 1, 2, 4]))  # doctest: +SKIP
    """
    require(logit_bias, ["target", "bias", "metric", "value"], "logit_bias")
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True,
                        subplot_titles=["redirected to the target", "prediction changed"])
    for j, target in enumerate(dict.fromkeys(logit_bias["target"].astype(str))):
        cur = logit_bias[logit_bias["target"].astype(str) == target]
        for col, metric in ((1, "success_rate"), (2, "flip_rate")):
            c = cur[cur["metric"] == metric].sort_values("bias", kind="stable")
            fig.add_trace(go.Scatter(x=c["bias"], y=c["value"], mode="lines+markers",
                                     name=f"target {label(target)}", legendgroup=label(target),
                                     showlegend=col == 1, line={"color": color(j)}),
                          row=1, col=col)
    fig.update_xaxes(title_text="bias added to the target class's logit")
    fig.update_yaxes(title_text="fraction of examples", range=[-0.02, 1.02], col=1)
    return finish(fig, "Logit-space redirection vs bias size")


def minimal_bias_figure(minimal: pd.DataFrame) -> go.Figure:
    """Distribution of the closed-form minimal logit biases: the smallest bias that changes
    each example's prediction (histogram), and the smallest that redirects it to each class
    (box per target class).

    Args:
        minimal: ``minimal_biases`` table (``example, target, bias``; ``target`` ``"__flip__"``
            for the prediction-changing bias).

    Returns:
        Two panels: a histogram trace and one box trace per target class.

    Raises:
        ValueError: missing columns.

    Example:
        >>> minimal_bias_figure(minimal_biases(clean))  # doctest: +SKIP
    """
    require(minimal, ["target", "bias"], "minimal_bias")
    fig = make_subplots(rows=1, cols=2, subplot_titles=[
        "smallest bias that changes the prediction", "smallest bias that redirects to class"])
    flips = minimal[minimal["target"] == "__flip__"]
    fig.add_trace(go.Histogram(x=flips["bias"], name="flip", marker_color="#1f77b4",
                               showlegend=False), row=1, col=1)
    others = minimal[minimal["target"] != "__flip__"]
    for j, target in enumerate(dict.fromkeys(others["target"].astype(str))):
        fig.add_trace(go.Box(y=others.loc[others["target"].astype(str) == target, "bias"],
                             name=label(target), marker_color=color(j), showlegend=False,
                             boxpoints=False), row=1, col=2)
    fig.update_xaxes(title_text="minimal logit bias", row=1, col=1)
    fig.update_yaxes(title_text="examples", row=1, col=1)
    fig.update_xaxes(title_text="target class", type="category", row=1, col=2)
    fig.update_yaxes(title_text="minimal logit bias", row=1, col=2)
    return finish(fig, "How far are predictions from changing? Minimal logit biases")
