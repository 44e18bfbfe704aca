"""Class-wise figures: per-class ablation heatmap and overlap of per-class top-k sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from synapse_lens.plots._base import (
    cell,
    facets,
    finish,
    hook_order,
    hook_titles,
    label,
    nonempty,
    pick,
    require,
)
from synapse_lens.schema import GLOBAL


def class_matrix_figure(matrix: pd.DataFrame, method: str = "probe",
                        k: int | None = None, metric: str | None = None) -> go.Figure:
    """Per-class ablation heatmap: change of each class's true-class probability (columns)
    when a class's own top-k neurons (rows) are ablated, with the random-k control (mean over
    its seeds) as the last row; one panel per hook point, one shared diverging scale.

    Args:
        matrix: ``class_matrix`` table (``hook_name, layer, method, ablated_class, order, k,
            metric, class, delta``).
        method: ranking method.
        k: which k (default the largest in the table).
        metric: ``class_true_prob`` (default when present) or ``recall``.

    Returns:
        One heatmap trace per hook point (values printed in the cells).

    Raises:
        ValueError: missing columns, no rows for the selection.

    Example:
        >>> class_matrix_figure(class_matrix(model, ds, per_class, k=10))  # doctest: +SKIP
    """
    require(matrix, ["hook_name", "layer", "ablated_class", "k", "class", "delta"],
            "class_matrix")
    if metric is None:
        metric = ("class_true_prob" if "metric" in matrix
                  and (matrix["metric"] == "class_true_prob").any() else "recall")
    df = pick(matrix, method=method, metric=metric)
    df = nonempty(df[df["k"] == (df["k"].max() if k is None else k)],
                  f"method {method!r}, k={k}, metric {metric!r} in class_matrix")
    what = "true-class prob." if metric == "class_true_prob" else "recall"
    control = "random k (mean)"
    if "order" in df:
        df = df.assign(ablated_class=df["ablated_class"].where(df["order"] == "top", control))
    hooks = hook_order(df)
    # classes without examples (undefined everywhere) get no column
    measured = df.groupby(df["class"].astype(str), sort=False)["delta"].count()
    classes = [c for c in dict.fromkeys(df["class"].astype(str)) if measured[c] > 0]
    ablated = list(dict.fromkeys(df["ablated_class"].astype(str)))
    fig, cols = facets(hooks, panel_height=max(260, 50 * len(ablated) + 80),
                       titles=hook_titles(df, hooks))
    for i, hook in enumerate(hooks):
        part = df[df["hook_name"].astype(str) == hook]
        wide = part.assign(a=part["ablated_class"].astype(str), c=part["class"].astype(str)) \
            .pivot_table(index="a", columns="c", values="delta", aggfunc="mean", dropna=False)
        wide = wide.reindex(index=ablated, columns=classes)
        fig.add_trace(go.Heatmap(
            z=wide.to_numpy().tolist(), x=[label(c) for c in classes],
            y=[label(a) for a in ablated], coloraxis="coloraxis", texttemplate="%{z:+.3f}",
            hovertemplate=f"ablate %{{y}}<br>{what} of %{{x}}: %{{z:+.4f}}<extra></extra>"),
            row=cell(i, cols)[0], col=cell(i, cols)[1])
    kk = int(df["k"].iloc[0])
    fig.update_layout(coloraxis={"colorscale": "RdBu", "cmid": 0,
                                 "colorbar": {"title": {"text": f"Δ {what}"}}})
    fig.update_xaxes(title_text=f"{what} of class", type="category")
    fig.update_yaxes(title_text=f"ablated: top-{kk} of class", type="category",
                     autorange="reversed", col=1)
    return finish(fig, f"Class-wise ablation: change of {what} (top-{kk} per class vs random "
                  f"{kk})", height=None)


def overlap_figure(overlap: pd.DataFrame, k: int | None = None) -> go.Figure:
    """Overlap (Jaccard) of the per-class top-k neuron sets within each hook point.

    Args:
        overlap: ``topk_overlap`` table (``hook_name_a, layer_a, class_a, hook_name_b,
            class_b, scope, k, jaccard``); global rankings are left out.
        k: which k (default the largest).

    Returns:
        One heatmap trace per hook point (symmetric; the diagonal, a set's overlap with
        itself, is left blank).

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
    classes = list(dict.fromkeys([*df["class_a"].astype(str), *df["class_b"].astype(str)]))
    fig, cols = facets(hooks, panel_height=max(240, 45 * len(classes) + 80),
                       titles=hook_titles(df, hooks, "hook_name_a", "layer_a"))
    for i, hook in enumerate(hooks):
        part = df[df["hook_name_a"].astype(str) == hook]
        z = pd.DataFrame(np.nan, index=classes, columns=classes)  # no self-overlap
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
    return finish(fig, f"Overlap of per-class top-{kk} neuron sets", height=None)
