"""Headline numbers of a run: the few values a summary.json or a comparison table shows."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from synapse_lens.report.wording import below_width, depth_sorted, select
from synapse_lens.schema import ALL, GLOBAL


def _py(value: object) -> object:
    """numpy / pandas scalars -> plain JSON-friendly Python values (NaN -> None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):
        return _py(value.item())  # type: ignore[union-attr]
    return value


def headline(tables: Mapping[str, pd.DataFrame]) -> dict[str, object]:
    """The headline numbers of a run (those its prepared tables support), JSON-friendly.

    Keys (each present only when computable): ``best_probe_hook``, ``best_probe_layer``,
    ``best_probe_accuracy``, ``best_probe_selectivity``; ``ablation_hook``, ``ablation_k``,
    ``clean_accuracy``, ``top_k_accuracy``, ``random_k_accuracy``, ``bottom_k_accuracy`` (probe
    ranking, [CLS] edits, at the hook where top-k ablation hurts most, the largest k below the
    width); ``minimal_set_k``,
    ``minimal_set_width``, ``minimal_set_percent`` (all-layers scope when present);
    ``most_fragile_class``, ``most_fragile_own_drop``.

    Example:
        >>> headline(prepare(tables))["best_probe_accuracy"]  # doctest: +SKIP
        0.975
    """
    out: dict[str, object] = {}
    probes = tables.get("probes")
    if probes is not None and not probes.empty:
        real = depth_sorted(select(probes, task="real", split="test", metric="accuracy"))
        if not real.empty:
            best = real.loc[real["value"].idxmax()]
            out.update(best_probe_hook=best["hook_name"], best_probe_layer=best["layer"],
                       best_probe_accuracy=best["value"])
            ctrl = select(probes, task="control", split="test", metric="accuracy",
                        hook_name=best["hook_name"])
            if not ctrl.empty:
                out["best_probe_selectivity"] = best["value"] - ctrl["value"].iloc[0]
    abl = tables.get("ablation")
    if abl is not None and not abl.empty:
        if "position" in abl.columns:  # the [CLS] edits: every ranking method has them
            abl = abl[abl["position"] == "cls"]
        df = select(abl, metric="accuracy", ranking=GLOBAL, method="probe", **{"class": ALL})
        df = below_width(df[df["k"] > 0], tables.get("rankings"))
        df = df[df["k"] == df["k"].max()] if not df.empty else df
        top = df[df["order"] == "top"]
        if not top.empty:
            hit = top.loc[(top["clean_value"] - top["mean"]).idxmax()]
            out.update(ablation_hook=hit["hook_name"], ablation_k=hit["k"],
                       clean_accuracy=hit["clean_value"], top_k_accuracy=hit["mean"])
            here = df[df["hook_name"] == hit["hook_name"]]
            for order in ("random", "bottom"):
                cur = here[here["order"] == order]
                if not cur.empty:
                    out[f"{order}_k_accuracy"] = cur["mean"].iloc[0]
    mins = tables.get("redundancy_minimal")
    if mins is not None and not mins.empty:
        row = mins[mins["scope"] == "all"]
        best = row.iloc[0] if not row.empty else mins.loc[mins["percent"].idxmin()]
        out.update(minimal_set_k=best["k"], minimal_set_width=best["width"],
                   minimal_set_percent=best["percent"])
    asym = tables.get("class_asymmetry")
    if asym is not None and not asym.empty and asym["own_drop"].notna().any():
        worst = asym.loc[asym["own_drop"].idxmax()]
        out.update(most_fragile_class=worst["class"], most_fragile_own_drop=worst["own_drop"])
    return {k: _py(v) for k, v in out.items()}
