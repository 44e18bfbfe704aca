"""Shared helpers of the figure functions: column checks, safe labels, layout, interval bands."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from synapse_lens.schema import GLOBAL

TEMPLATE = "plotly_white"
#: Line dash and marker of each unit set, so that overlapping lines stay distinguishable.
ORDER_STYLES = {"top": ("solid", "circle"), "random": ("dash", "square"),
                "bottom": ("dot", "diamond"), "all": ("dashdot", "triangle-up"),
                "top_units": ("solid", "circle"), "random_units": ("dash", "square")}
ORDER_COLORS = {"top": "#d62728", "random": "#7f7f7f", "bottom": "#1f77b4", "all": "#2ca02c",
                "top_units": "#d62728", "random_units": "#7f7f7f"}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")

SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross", "pentagon")
DASHES = ("solid", "dash", "dot", "dashdot", "longdash")


class NothingToPlot(ValueError):
    """A well-formed table with no rows for the requested selection (metric, class...)."""


def require(df: pd.DataFrame, columns: Sequence[str], table: str) -> None:
    """Check that ``df`` is a non-empty DataFrame with ``columns``.

    Raises:
        TypeError: ``df`` is not a DataFrame.
        ValueError: a column is missing (the message names the missing and present columns).
        NothingToPlot: the table has no rows (a ``ValueError`` too).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"the {table} table must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"the {table} table lacks columns {missing}; it has {list(df.columns)}")
    if df.empty:
        raise NothingToPlot(f"the {table} table is empty")


def nonempty(df: pd.DataFrame, what: str) -> pd.DataFrame:
    """``df`` itself, or :class:`NothingToPlot` naming what was selected when it has no rows."""
    if df.empty:
        raise NothingToPlot(f"no rows for {what}")
    return df


def label(value: object) -> str:
    """A data value as safe plotly text: HTML-escaped (plotly renders a subset of HTML and
    turns entities back into the literal characters on screen)."""
    return html.escape(str(value), quote=True)


def target_name(target: object) -> str:
    """How a ranking target is shown: ``"all classes"`` for the global ranking, else the
    (escaped) class name."""
    return "all classes" if str(target) == GLOBAL else label(target)


def color(i: int) -> str:
    """The ``i``-th colour of the palette (cycling)."""
    return PALETTE[i % len(PALETTE)]


def symbol(i: int) -> str:
    """The ``i``-th marker symbol (cycling): overlapping lines stay distinguishable."""
    return SYMBOLS[i % len(SYMBOLS)]


def dash_of(i: int) -> str:
    """The ``i``-th line dash (cycling), for lines that differ only by colour otherwise."""
    return DASHES[i % len(DASHES)]


def hook_order(df: pd.DataFrame, hook: str = "hook_name", layer: str = "layer") -> list[str]:
    """Hook names of ``df`` by depth (``layer``; missing depths last), ties by name."""
    first = df[[hook, layer]].drop_duplicates(hook).copy()
    first["_depth"] = pd.to_numeric(first[layer], errors="coerce")
    first["_name"] = first[hook].astype(str)
    return first.sort_values(["_depth", "_name"], kind="stable", na_position="last")[
        "_name"].tolist()


def rgba(hex_color: str, alpha: float) -> str:
    """``#rrggbb`` -> ``rgba(r,g,b,alpha)``."""
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def band(x: Iterable[Any], low: Iterable[Any], high: Iterable[Any], hex_color: str,
         group: str) -> go.Scatter:
    """A shaded interval between ``low`` and ``high`` along ``x`` (one closed polygon)."""
    xs, lo, hi = list(x), [float(v) for v in low], [float(v) for v in high]
    return go.Scatter(x=xs + xs[::-1], y=hi + lo[::-1], fill="toself", mode="lines",
                      line={"width": 0}, fillcolor=rgba(hex_color, 0.18), hoverinfo="skip",
                      legendgroup=group, showlegend=False, name=f"{group} interval")


def finish(fig: go.Figure, title: str, height: int | None = 420) -> go.Figure:
    """Common layout: template, title, margins, legend below the plot (``height=None`` keeps
    the height set by :func:`facets`)."""
    fig.update_layout(template=TEMPLATE, title={"text": title, "x": 0.01},
                      margin={"l": 60, "r": 20, "t": 80, "b": 60},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.2 * 420 / (
                          height or fig.layout.height or 420), "x": 0})
    if height is not None:
        fig.update_layout(height=height)
    return fig


def grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    """Rows and columns of a small-multiples grid of ``n`` panels."""
    cols = max(1, min(n, max_cols))
    return math.ceil(n / cols), cols


def cell(i: int, cols: int) -> tuple[int, int]:
    """1-based (row, col) of panel ``i`` in a grid with ``cols`` columns."""
    return i // cols + 1, i % cols + 1


def pick(df: pd.DataFrame, **where: object) -> pd.DataFrame:
    """Rows of ``df`` where every ``column == value`` (columns absent from ``df`` are ignored)."""
    mask = pd.Series(True, index=df.index)
    for column, value in where.items():
        if column in df.columns and value is not None:
            mask &= df[column].astype(str) == str(value)
    return df[mask]


SUMMARY = ["metric", "mean", "ci_low", "ci_high"]


def check_summary(df: pd.DataFrame, columns: list[str], table: str) -> None:
    if isinstance(df, pd.DataFrame) and "value" in df.columns and "mean" not in df.columns:
        raise ValueError(f"the {table} table has raw per-seed rows; pass "
                         "synapse_lens.experiments.engine.summarize(table) instead")
    require(df, columns + SUMMARY, table)


#: Metrics that are fractions: their axes span [0, 1] and intervals are clipped to it.
FRACTIONS = frozenset({"accuracy", "macro_f1", "flip_rate", "true_prob", "success_rate",
                       "recall", "pred_share"})


def clipped(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Interval ends clipped to [0, 1] for fraction metrics (a mean cannot leave that range,
    but a t interval from few seeds can)."""
    if metric not in FRACTIONS:
        return df
    return df.assign(ci_low=df["ci_low"].clip(0.0, 1.0), ci_high=df["ci_high"].clip(0.0, 1.0))


def y_axis(fig: go.Figure, metric: str, data: pd.DataFrame | None = None) -> None:
    """Title the y axes by ``metric`` and fit their range to what ``data`` holds (``mean``,
    ``ci_low``, ``ci_high`` and ``clean_value`` where present) with a 6 % margin, so that a
    curve moving between 0.95 and 0.97 is not drawn flat on a 0-1 axis; fraction metrics stay
    within [0, 1]. Without ``data`` a fraction metric spans [0, 1]."""
    fig.update_yaxes(title_text=metric.replace("_", " "), col=1)
    columns = [c for c in ("mean", "ci_low", "ci_high", "clean_value")
               if data is not None and c in data.columns]
    values = (pd.concat([pd.to_numeric(data[c], errors="coerce") for c in columns]).dropna()
              if data is not None and columns else pd.Series(dtype=float))
    if values.empty:
        if metric in FRACTIONS:
            fig.update_yaxes(range=[-0.02, 1.02])
        return
    low, high = float(values.min()), float(values.max())
    pad = max(0.06 * (high - low), 0.005 if metric in FRACTIONS else 1e-6)
    low, high = low - pad, high + pad
    if metric in FRACTIONS:
        low, high = max(low, -0.02), min(high, 1.02)
    fig.update_yaxes(range=[low, high])


def log_ticks(values: Iterable[Any]) -> dict[str, Any]:
    """Tick settings for a log axis that label exactly ``values`` (e.g. the k grid), printed
    plainly (plotly's own log ticks print 0.5 as "5" between decades)."""
    ticks = sorted({float(v) for v in values if v > 0})
    return {"type": "log", "tickvals": ticks, "ticktext": [f"{v:g}" for v in ticks]}


def layer_name(layer: object) -> str:
    """How every figure names a depth: ``"embeddings"`` for −1, ``"layer 3"``; ``"?"``."""
    depth = pd.to_numeric(pd.Series([layer]), errors="coerce").iloc[0]
    if pd.isna(depth):
        return "?"
    return "embeddings" if int(depth) < 0 else f"layer {int(depth)}"


def hook_titles(df: pd.DataFrame, hooks: Sequence[str], hook: str = "hook_name",
                layer: str = "layer") -> dict[str, str]:
    """``{hook name: "layer 5 · blocks.5.hook_resid_post"}`` (escaped) for panel titles and
    legends: the depth first, then the TransformerLens hook name it is read at."""
    depths = df.drop_duplicates(hook).set_index(df.drop_duplicates(hook)[hook].astype(str))
    return {h: f"{layer_name(depths[layer].get(h)) if layer in depths else '?'} · {label(h)}"
            for h in hooks}


def facets(hooks: list[str], panel_height: int = 300,
           titles: dict[str, str] | None = None) -> tuple[go.Figure, int]:
    """A grid of one panel per hook point (titled by ``titles``, e.g. :func:`hook_titles`,
    else the escaped hook name), with its total height set so that rows keep ~120 px apart
    whatever their number."""
    rows, cols = grid(len(hooks))
    height = panel_height * rows + 160 + 120 * (rows - 1)
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True,
                        subplot_titles=[(titles or {}).get(h, label(h)) for h in hooks],
                        vertical_spacing=120 / height if rows > 1 else 0.1)
    fig.update_layout(height=height)
    return fig, cols
