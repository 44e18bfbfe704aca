"""Wording helpers shared by the findings and the headline numbers: percentages, points,
signed changes, hook points in words, and row selection."""

from __future__ import annotations

from typing import SupportsFloat

import pandas as pd


def round1(value: SupportsFloat) -> str:
    """One decimal, never "-0.0" (numpy and pandas scalars welcome)."""
    text = f"{float(value):.1f}"
    return "0.0" if text == "-0.0" else text


def pct(x: SupportsFloat) -> str:
    """A fraction as a percentage, ``0.971 -> '97.1 %'``."""
    return f"{round1(100 * float(x))} %"


def pts(x: SupportsFloat) -> str:
    """A difference of fractions in percentage points, ``0.42 -> '42.0 points'``."""
    return f"{round1(100 * float(x))} points"


def neurons(n: object) -> str:
    """``1 -> '1 neuron'``, ``4 -> '4 neurons'``."""
    count = int(n)  # type: ignore[call-overload]
    return f"{count} neuron" + ("" if count == 1 else "s")


def change(drop: SupportsFloat, what: str = "") -> str:
    """A signed drop in words: ``0.2 -> 'a drop of 20.0 points'``, ``-0.1 -> 'a rise of 10.0
    points'`` (``what`` is inserted after the noun, e.g. ``' in recall'``)."""
    value = float(drop)
    return (f"a drop{what} of {pts(value)}" if value >= 0 else f"a rise{what} of {pts(-value)}")


def where(hook: object, layer: object) -> str:
    """How a hook point is named in a sentence."""
    depth = pd.to_numeric(pd.Series([layer]), errors="coerce").iloc[0]
    if pd.isna(depth):
        return f"{hook}"
    if depth < 0:
        return f"the embeddings ({hook})"
    return f"layer {int(depth)} ({hook})"


def select(df: pd.DataFrame, **eq: object) -> pd.DataFrame:
    """Rows where every ``column == value`` (as text); absent columns are ignored."""
    mask = pd.Series(True, index=df.index)
    for column, value in eq.items():
        if column in df.columns:
            mask &= df[column].astype(str) == str(value)
    return df[mask]


def depth_sorted(df: pd.DataFrame) -> pd.DataFrame:
    """Rows by depth (``layer``), then hook name (stable)."""
    return df.assign(_d=pd.to_numeric(df["layer"], errors="coerce")).sort_values(
        ["_d", "hook_name"], kind="stable")


def below_width(abl: pd.DataFrame, rankings: pd.DataFrame | None) -> pd.DataFrame:
    """Rows of an ablation table whose k is smaller than its hook's width (read from the
    rankings table: one row per neuron). At k = the width top-k, random-k and bottom-k are the
    same set by construction, so no finding may rest on it. Without a rankings table the
    rows are returned as they are."""
    if rankings is None or rankings.empty or "neuron" not in rankings:
        return abl
    width = rankings.groupby(rankings["hook_name"].astype(str))["neuron"].max() + 1
    limit = abl["hook_name"].astype(str).map(width)
    return abl[limit.isna() | (abl["k"] < limit)]
