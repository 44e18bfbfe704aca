"""Redirection figures: weight perturbations, logit biases, minimal flipping biases.

Weight-perturbation curves take :func:`synapse_lens.experiments.engine.summarize` of the per-seed
table.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from synapse_lens.plots._base import (
    check_summary,
    clipped,
    color,
    finish,
    hook_order,
    label,
    nonempty,
    pick,
    require,
    y_axis,
)
from synapse_lens.schema import ALL, FLIP, GLOBAL


def weight_redirection_figure(summary: pd.DataFrame, metric: str = "flip_rate") -> go.Figure:
    """Weight-space redirection: ``metric`` vs relative perturbation size ε of the ranked
    units' output weights (top-k solid, random-k dashed, per hook) and of each class's
    classifier row (one line per class).

    Args:
        summary: ``summarize(weight_redirection(...))`` (``edit, hook_name, layer, target, eps,
            metric, class, mean, ci_low, ci_high``).
        metric: ``flip_rate``, ``true_prob`` or ``accuracy``.

    Returns:
        One or two panels ("ranked units' output weights", "classifier row of class").

    Raises:
        ValueError: raw per-seed rows, missing columns, no rows for ``metric``.

    Example:
        >>> weight_redirection_figure(summarize(tables.weights))  # doctest: +SKIP
    """
    check_summary(summary, ["edit", "hook_name", "layer", "target", "eps"], "redirection")
    df = clipped(nonempty(pick(summary, metric=metric, **{"class": ALL}),
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
    y_axis(fig, metric, df)
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
    flips = minimal[minimal["target"] == FLIP]
    fig.add_trace(go.Histogram(x=flips["bias"], name="flip", marker_color="#1f77b4",
                               showlegend=False), row=1, col=1)
    others = minimal[minimal["target"] != FLIP]
    for j, target in enumerate(dict.fromkeys(others["target"].astype(str))):
        fig.add_trace(go.Box(y=others.loc[others["target"].astype(str) == target, "bias"],
                             name=label(target), marker_color=color(j), showlegend=False,
                             boxpoints=False), row=1, col=2)
    fig.update_xaxes(title_text="minimal logit bias", row=1, col=1)
    fig.update_yaxes(title_text="examples", row=1, col=1)
    fig.update_xaxes(title_text="target class", type="category", row=1, col=2)
    fig.update_yaxes(title_text="minimal logit bias", row=1, col=2)
    return finish(fig, "How far are predictions from changing? Minimal logit biases")
