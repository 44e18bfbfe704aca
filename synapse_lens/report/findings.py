"""Plain-language findings computed from a run's tables (no canned text: every sentence is
built from the numbers, and says nothing when its table is missing).

Each ``*_finding`` function reads the prepared tables (:func:`~synapse_lens.report.tables.
prepare`) and returns a sentence or ``None``. Sentences are plain text; the report escapes
them.

Example:
    >>> for line in findings(prepare(tables)):  # doctest: +SKIP
    ...     print(line)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import pandas as pd

from synapse_lens.report.targeted import FINDINGS as TARGETED_FINDINGS
from synapse_lens.report.wording import (
    depth_sorted,
    neurons,
    pct,
    pts,
    select,
    where,
)
from synapse_lens.schema import ALL, FLIP, GLOBAL

#: Effects below this (a fraction: 0.005 = 0.5 points) are reported as negligible.
NEGLIGIBLE = 0.005


def faithfulness_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """Which ranking is causal where (deepest hook first): each method's top-k vs random-k gap
    with its interval, and the agreement with the exact single-unit ranking."""
    faith = t.get("faithfulness")
    if faith is None or faith.empty:
        return None
    if "position" in faith.columns and (faith["position"] == "cls").any():
        faith = faith[faith["position"] == "cls"]
    metric = "true_prob" if (faith["metric"] == "true_prob").any() else str(faith["metric"].iloc[0])
    rows = depth_sorted(faith[(faith["metric"] == metric) & (faith["method"] != "exact")])
    rows = rows[pd.to_numeric(rows["gap_top"], errors="coerce").notna()]
    if rows.empty:
        return None
    first = rows.iloc[0]
    parts = []
    for (hook, layer), group in list(rows.groupby(["hook_name", "layer"], sort=False))[::-1]:
        group = group.sort_values("gap_top", ascending=False, kind="stable")
        calls = [f"{r['method']} {r['verdict']} {_signed_pct(r['gap_top'])} "
                 f"[{_signed_pct(r['gap_top_low'])}, {_signed_pct(r['gap_top_high'])}]"
                 + (" (its bottom-k costs more than random)"
                    if r["verdict"] == "anti-causal" and float(r["gap_top_high"]) >= 0 else "")
                 for _, r in group.iterrows()]
        parts.append(f"{where(hook, layer)}: " + ", ".join(calls))
    what = "the true-class probability" if metric == "true_prob" else metric
    text = (f"Which ranking finds the neurons the model uses — zero-ablating its top-k [CLS] "
            f"units (k = {str(first['ks']).replace(',', ' and ')}) costs this much more of "
            f"{what} than {int(first['n_seeds'])} random draws of k units (% of the clean "
            "value, 95 % interval): " + "; ".join(parts) + ".")
    exact = faith[(faith["metric"] == metric) & (faith["method"] != "exact")
                  & pd.to_numeric(faith["spearman_exact"], errors="coerce").notna()]
    if not exact.empty:
        hook, layer = exact["hook_name"].iloc[0], exact["layer"].iloc[0]
        agree = ", ".join(f"{r['method']} {float(r['spearman_exact']):.2f}"
                          for _, r in exact.sort_values("spearman_exact", ascending=False,
                                                        kind="stable").iterrows())
        text += (f" Spearman correlation with the exact single-unit ablation ranking of "
                 f"{where(hook, layer)}: {agree}.")
    return text


def _signed_pct(x: object) -> str:
    value = 100 * float(x)  # type: ignore[arg-type]
    text = f"{value:+.2f}"
    return "0.00" if text in ("+0.00", "-0.00") else text


def outlier_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """Outlier dimensions and what ablating the strongest one alone does, against random units."""
    out = t.get("outliers")
    abl = t.get("outlier_ablation")
    if out is None or out.empty:
        return None
    units = sorted({int(u) for u in out["neuron"]})
    strongest = out.sort_values("ratio", ascending=False, kind="stable").iloc[0]
    text = (f"{len(out)} outlier dimensions (mean |activation| at least 20× the median unit of "
            f"their hook point) in {out['hook_name'].nunique()} hook points, units "
            f"{', '.join(map(str, units[:8]))}{' …' if len(units) > 8 else ''}; the strongest, "
            f"unit {int(strongest['neuron'])} at "
            f"{where(strongest['hook_name'], strongest['layer'])}, is "
            f"{float(strongest['ratio']):.0f}× the median unit.")
    if abl is None or abl.empty:
        return text
    rows = abl[(abl["metric"] == "true_prob") & (abl["neuron"] == strongest["neuron"])
               & (abl["hook_name"] == strongest["hook_name"])]
    top, rand = rows[rows["order"] == "top"], rows[rows["order"] == "random"]
    if top.empty or rand.empty:
        return text
    value, clean = float(top["mean"].iloc[0]), float(top["clean_value"].iloc[0])
    low, high = float(rand["ci_low"].iloc[0]), float(rand["ci_high"].iloc[0])
    outside = value < low or value > high
    text += (f" Zero-ablating it alone at [CLS] moves the true-class probability from "
             f"{pct(clean)} to {pct(value)}; a random single unit gives {pct(low)}–{pct(high)} "
             f"(95 % interval): {'outside' if outside else 'inside'} the random control's "
             "interval.")
    return text


def probe_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """Which layer is most decodable, with its control-task selectivity and the trend."""
    probes = t.get("probes")
    if probes is None or probes.empty:
        return None
    real = depth_sorted(select(probes, task="real", split="test", metric="accuracy"))
    constant = _constant_hooks(t)  # a constant [CLS] decodes nothing: its probe is the majority
    real = real[~real["hook_name"].astype(str).isin(constant)]
    if real.empty:
        return None
    best = real.loc[real["value"].idxmax()]  # first maximum = shallowest on ties
    text = (f"The most decodable hook point is {where(best['hook_name'], best['layer'])}: a "
            f"linear probe on its [CLS] vector reaches {pct(best['value'])} test accuracy")
    majority = _majority(t)
    if majority is not None:
        text += f" (majority class {pct(majority)}: {pts(best['value'] - majority)} above it)"
    control = select(probes, task="control", split="test", metric="accuracy", hook_name=best[
        "hook_name"])
    if not control.empty:
        c = float(control["value"].iloc[0])
        text += (f", against {pct(c)} on the control task with permuted labels (selectivity "
                 f"{pts(best['value'] - c)})")
        if majority is not None and c < majority:
            text += (f"; the control probe scores below the majority rate, so the selectivity "
                     f"against the majority baseline ({pts(best['value'] - majority)}) is the "
                     "fairer one")
    text += "."
    if len(real) > 1:
        first, last = real.iloc[0], real.iloc[-1]
        text += (f" Probe accuracy goes from {pct(first['value'])} at "
                 f"{where(first['hook_name'], first['layer'])} to {pct(last['value'])} at "
                 f"{where(last['hook_name'], last['layer'])}.")
    if constant:
        text += f" ({', '.join(sorted(constant))}: constant [CLS] over the examples, left out.)"
    return text


def _p2(x: object) -> str:
    """A probability as a percentage with two decimals (small effects stay visible)."""
    text = f"{100 * float(x):.2f}"  # type: ignore[arg-type]
    return ("0.00" if text == "-0.00" else text) + " %"


def _majority(t: Mapping[str, pd.DataFrame]) -> float | None:
    """The majority-class rate of the evaluation texts (from the per-example bias table)."""
    mb = t.get("minimal_bias")
    if mb is None or mb.empty or "label" not in mb.columns:
        return None
    labels = mb.drop_duplicates("example")["label"]
    return float(labels.value_counts(normalize=True).max())


def _ablation_method(abl: pd.DataFrame) -> str:
    """The ranking the stress tests used: the one run at every position, else probe."""
    if "position" in abl.columns and (abl["position"] == "all").any():
        return str(abl.loc[abl["position"] == "all", "method"].iloc[0])
    return "probe" if (abl["method"] == "probe").any() else str(abl["method"].iloc[0])


def _width_of(g: pd.DataFrame, widths: Mapping[str, int], hook: str) -> int | float:
    """The hook's width (from the rankings table); without it, the largest k when top, random
    and bottom are the same set there (the signature of k = the width), else no limit."""
    if hook in widths:
        return widths[hook]
    at = g[g["k"] == g["k"].max()]
    same = at["mean"].nunique() == 1 and len(at) > 1 and (at["ci_low"] == at["ci_high"]).all()
    return int(g["k"].max()) if same else math.inf


def _first_effect(abl: pd.DataFrame, widths: Mapping[str, int]) -> pd.DataFrame:
    """Per (position, hook): the smallest k below the width where top-k costs more than the
    random-k interval (``found``); else the largest k tried, with ``less`` when top-k costs
    *less* than random k-sets somewhere (anti-causal)."""
    rows = []
    for (position, hook, layer), g in abl.groupby(["position", "hook_name", "layer"],
                                                  sort=False):
        width = _width_of(g, widths, str(hook))
        inside = g[(g["k"] > 0) & (g["k"] < width)]
        top = inside[inside["order"] == "top"].set_index("k")
        rand = inside[inside["order"] == "random"].set_index("k")
        ks = sorted(set(top.index) & set(rand.index))
        if not ks:
            continue
        hit = next((k for k in ks if top.loc[k, "mean"] < rand.loc[k, "ci_low"]), None)
        less = next((k for k in ks if top.loc[k, "mean"] > rand.loc[k, "ci_high"]), None)
        k = hit if hit is not None else ks[-1]
        full = g[(g["k"] == width) & (g["order"] == "top")]
        rows.append({"position": position, "hook_name": hook, "layer": layer,
                     "found": hit is not None, "less": less, "k": int(k),
                     "width": width if math.isfinite(width) else None,
                     "top": float(top.loc[k, "mean"]), "low": float(rand.loc[k, "ci_low"]),
                     "high": float(rand.loc[k, "ci_high"]),
                     "clean": float(top.loc[k, "clean_value"]),
                     "full": float(full["mean"].iloc[0]) if not full.empty else None})
    return pd.DataFrame(rows)


def ablation_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """Per edited position and stress hook, the smallest k at which zero-ablating the ranked
    units moves the true-class probability outside the random-k interval — or how far the grid
    went without it. Never at k = the width (top = random = bottom there by construction)."""
    abl = t.get("ablation")
    if abl is None or abl.empty:
        return None
    metric = "true_prob" if (abl["metric"] == "true_prob").any() else "accuracy"
    method = _ablation_method(abl)
    if "position" not in abl.columns:
        abl = abl.assign(position="cls")
    df = select(abl, metric=metric, ranking=GLOBAL, method=method, **{"class": ALL})
    widths = _widths(t.get("rankings"))
    first = _first_effect(depth_sorted(df), widths)
    if first.empty:
        return None
    what = "the true-class probability" if metric == "true_prob" else metric
    parts = []
    for position in dict.fromkeys(first["position"]):
        here = first[first["position"] == position].iloc[::-1]
        edits = []
        for _, r in here.iterrows():
            at = where(r["hook_name"], r["layer"])
            share = (f" ({100 * r['k'] / r['width']:.0f} % of the width)"
                     if r["width"] is not None else "")
            if r["found"]:
                edits.append(f"{at} from k = {r['k']}{share}: {_p2(r['clean'])} → "
                             f"{_p2(r['top'])}, random {_p2(r['low'])}–{_p2(r['high'])}")
                continue
            text = (f"{at}: no k up to {r['k']}{share} costs more than random k-sets "
                    f"({_p2(r['top'])} vs {_p2(r['low'])}–{_p2(r['high'])})")
            if not pd.isna(r["less"]):
                text += f"; from k = {int(r['less'])} top-k costs less than random (anti-causal)"
            if r["full"] is not None and r["width"] is not None:
                text += f"; zeroing all {r['width']} units gives {_p2(r['full'])}"
            edits.append(text)
        name = "at [CLS] only" if position == "cls" else "at every position"
        parts.append(f"{name}, " + "; ".join(edits))
    text = (f"Zero-ablating the top-k units of the {method} ranking costs more of {what} than "
            f"the 95 % interval of random k-sets (clean → top-k, random interval) " + " — ".join(
                parts) + ".")
    acc = select(abl, metric="accuracy", ranking=GLOBAL, method=method, **{"class": ALL})
    majority = _majority(t)
    if not acc.empty:
        text += (f" Clean accuracy {pct(acc['clean_value'].iloc[0])}"
                 + (f" (majority class {pct(majority)})" if majority is not None else "") + ".")
    return text


def _widths(rankings: pd.DataFrame | None) -> dict[str, int]:
    if rankings is None or rankings.empty:
        return {}
    return {str(h): int(g["neuron"].nunique()) for h, g in rankings.groupby("hook_name")}


def self_repair_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """How much of a [CLS]-only edit survives compared with the same edit at every position."""
    rep = t.get("self_repair")
    if rep is None or rep.empty:
        return None
    parts, same = [], []
    for (hook, layer), g in depth_sorted(rep).groupby(["hook_name", "layer"], sort=False):
        if (g["kl_cls"] == g["kl_all"]).all():  # e.g. the layer a [CLS] head reads: identical
            same.append(where(hook, layer))
            continue
        edits = []
        for _, r in g.sort_values("k").iterrows():
            survival = pd.to_numeric(pd.Series([r["survival"]]), errors="coerce").iloc[0]
            share = "—" if pd.isna(survival) else f"{100 * survival:.1f} %"
            edits.append(f"k = {int(r['k'])}: KL {r['kl_cls']:.3g} at [CLS] only vs "
                         f"{r['kl_all']:.3g} at every position, {share} survives, [CLS] "
                         f"{100 * r['distance_edit']:.0f} % of its norm from the clean vector "
                         f"at the edit, {100 * r['distance_last']:.0f} % at the last layer")
        parts.append(f"{where(hook, layer)} — " + "; ".join(edits))
    if not parts:
        return None
    text = ("Self-repair — the same zero-ablation at [CLS] only and at every position: "
            + "; ".join(parts[::-1]) + ". A small surviving share means the layers above "
            "rebuild [CLS] from the other positions: a [CLS]-only edit there says little about "
            "what the layer's units carry.")
    if same:
        text += (f" At {', '.join(same)} both edits give the same output (nothing above "
                 "reads the other positions).")
    return text


def class_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """Each class's verdict (fragile / redundant / collateral, against its random-k interval)
    at the smallest k where some class is fragile, or at the largest k tried."""
    asym = t.get("class_asymmetry")
    if asym is None or asym.empty or "random_high" not in asym.columns:
        return None
    judged = asym[~asym["verdict"].isin(["undefined", "too few examples"])]
    if judged.empty:
        few = asym[asym["verdict"] == "too few examples"]
        return (f"No class was judged: {', '.join(map(str, few['class']))} have too few "
                "evaluation examples." if not few.empty else None)
    fragile = judged[judged["verdict"].str.startswith("fragile")]
    k = int(fragile["k"].min()) if not fragile.empty else int(judged["k"].max())
    here = asym[asym["k"] == k]
    hook, layer, method = here["hook_name"].iloc[0], here["layer"].iloc[0], here["method"].iloc[0]
    calls = []
    for _, r in here.iterrows():
        if r["verdict"] in ("undefined", "too few examples"):
            calls.append(f"'{r['class']}' {r['verdict']}")
            continue
        calls.append(f"'{r['class']}' {r['verdict']} (own loss {_pp(r['own_drop'])}, random "
                     f"{_pp(r['random_low'])}–{_pp(r['random_high'])})")
    lead = ("the smallest k at which a class loses more than under random k-sets"
            if not fragile.empty else "the largest k tried: no class loses more than under "
            "random k-sets")
    return (f"Class-wise, ablating each class's own top-{k} units ({method} ranking, "
            f"{where(hook, layer)}; {lead}), the loss of true-class probability of that "
            f"class's examples: " + "; ".join(calls) + ". '+collateral': other classes lose "
            "more than under random k-sets too.")


def _pp(x: object) -> str:
    text = f"{100 * float(x):.2f}"  # type: ignore[arg-type]
    return ("0.00" if text == "-0.00" else text) + " points"


def overlap_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """How much the per-class top-k sets overlap within a layer, against chance."""
    ov = t.get("overlap")
    if ov is None or ov.empty:
        return None
    df = ov[(ov["scope"] == "within_layer") & (ov["class_a"] != GLOBAL)
            & (ov["class_b"] != GLOBAL) & (ov["class_a"] != ov["class_b"])]
    if df.empty:
        return None
    df = df[df["k"] == df["k"].max()]
    k = int(df["k"].iloc[0])
    if df[["class_a", "class_b"]].drop_duplicates().shape[0] == 1:  # two classes: one pair
        a, b = df["class_a"].iloc[0], df["class_b"].iloc[0]
        hooks = df.drop_duplicates("hook_name_a")
        at = (where(hooks["hook_name_a"].iloc[0], hooks["layer_a"].iloc[0]) if len(hooks) == 1
              else f"{len(hooks)} layers (mean)")
        return (f"The top-{k} neuron sets of '{a}' and '{b}' overlap with a Jaccard of "
                f"{df['jaccard'].mean():.2f} at {at}; two random {k}-sets: "
                f"{df['chance'].mean():.2f}.")
    top = df.loc[df["jaccard"].idxmax()]
    return (f"Different classes' top-{k} neuron sets overlap with a mean Jaccard of "
            f"{df['jaccard'].mean():.2f} within a layer (two random {k}-sets: "
            f"{df['chance'].mean():.2f}); the most shared pair is '{top['class_a']}' / "
            f"'{top['class_b']}' at {top['hook_name_a']} ({top['jaccard']:.2f}).")


def redundancy_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """The smallest neuron set that keeps the threshold share of the full probe accuracy,
    against random sets of the same size; constant hooks are left out."""
    mins = t.get("redundancy_minimal")
    if mins is None or mins.empty:
        return None
    red = t.get("redundancy")
    constant = _constant_hooks(t)
    mins = mins[~mins["hook_name"].astype(str).isin(constant)]
    if mins.empty:
        return None
    row = mins[mins["scope"] == "all"]
    best = row.iloc[0] if not row.empty else mins.loc[mins["percent"].idxmin()]
    scope = ("across all probed layers together" if best["scope"] == "all" else
             f"at {where(best['hook_name'], best['layer'])}")
    thr = float(best["threshold"])
    if float(best["percent"]) >= 100:
        text = (f"No tested subset smaller than all {int(best['width'])} neurons keeps "
                f"{pct(thr)} of the probe accuracy {scope}")
    else:
        text = (f"{int(best['k'])} of {neurons(best['width'])} ({best['percent']:g} %) keep "
                f"{pct(best['kept'])} of the full probe accuracy {scope} "
                f"({pct(best['accuracy'])} vs {pct(best['full_accuracy'])})")
        rand = _random_kept(red, best)
        if rand is not None:
            verdict = ("so the ranking beats chance there" if float(best["kept"]) > rand[2]
                       else "so random sets do as well: the information is spread out")
            text += (f"; {rand[3]} random sets of that size keep {pct(rand[0])} "
                     f"({pct(rand[1])}–{pct(rand[2])}), {verdict}")
    layers = mins[mins["scope"] == "layer"]
    if not layers.empty:
        small = layers.loc[layers["percent"].idxmin()]
        text += (f"; per layer, {where(small['hook_name'], small['layer'])} needs the fewest "
                 f"({neurons(small['k'])}, {small['percent']:g} %")
        rand = _random_kept(red, small)
        text += (f"; random sets of that size keep {pct(rand[0])}" if rand is not None
                 else "") + ")"
    if constant:
        text += (f" ({', '.join(sorted(constant))}: constant [CLS] over the examples, left "
                 "out)")
    return text + "."


def _constant_hooks(t: Mapping[str, pd.DataFrame]) -> set[str]:
    """Hooks whose [CLS] vector does not vary over the examples (the ``constant`` column of
    the probes and redundancy tables)."""
    out: set[str] = set()
    for name in ("probes", "redundancy_minimal"):
        df = t.get(name)
        if df is not None and not df.empty and "constant" in df.columns:
            flag = df["constant"].astype(str).str.lower().isin(["true", "1"])
            out |= set(df.loc[flag, "hook_name"].astype(str))
    return out


def _random_kept(red: pd.DataFrame | None, best: pd.Series) -> tuple[float, float, float,
                                                                       int] | None:
    if red is None or red.empty:
        return None
    rows = red[(red["selection"] == "random") & (red["scope"] == best["scope"])
               & (red["hook_name"].astype(str) == str(best["hook_name"]))
               & (red["k"] == best["k"])]["kept"].astype(float)
    if rows.empty:
        return None
    return float(rows.mean()), float(rows.min()), float(rows.max()), len(rows)


def noise_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """The smallest σ at which noise on the top-k units moves the true-class probability
    outside the random-k interval, or the largest σ tried without it."""
    noise = t.get("noise")
    if noise is None or noise.empty:
        return None
    metric = "true_prob" if (noise["metric"] == "true_prob").any() else "accuracy"
    df = select(noise, metric=metric, ranking=GLOBAL, **{"class": ALL})
    if df.empty:
        return None
    hook = df["hook_name"].iloc[0]
    df = df[df["hook_name"] == hook]
    top = df[(df["units"] == "top") & (df["sigma"] > 0)].set_index("sigma")
    rand = df[(df["units"] == "random") & (df["sigma"] > 0)].set_index("sigma")
    sigmas = sorted(set(top.index) & set(rand.index))
    if not sigmas:
        return None
    hit = next((s for s in sigmas if not rand.loc[s, "ci_low"] <= top.loc[s, "mean"]
                <= rand.loc[s, "ci_high"]), None)
    s = hit if hit is not None else sigmas[-1]
    k = int(top.loc[s, "k"])
    every = df[(df["units"] == "all") & (df["sigma"] == s)]
    tail = (f"; the same noise on every unit gives {_p2(every['mean'].iloc[0])}"
            if not every.empty else "")
    what = "true-class probability" if metric == "true_prob" else metric
    if hit is None:
        return (f"Gaussian noise on the top-{k} units of {where(hook, df['layer'].iloc[0])} "
                f"never leaves the random-k interval up to σ = {s:g} (the largest tried, in "
                f"units of each neuron's std): {what} {_p2(top.loc[s, 'mean'])}, random "
                f"{_p2(rand.loc[s, 'ci_low'])}–{_p2(rand.loc[s, 'ci_high'])}{tail}.")
    return (f"Gaussian noise on the top-{k} units of {where(hook, df['layer'].iloc[0])} first "
            f"leaves the random-k interval at σ = {s:g} (in units of each neuron's std; "
            f"largest tried {sigmas[-1]:g}): {what} {_p2(top.loc[s, 'clean_value'])} → "
            f"{_p2(top.loc[s, 'mean'])}, random {k} units {_p2(rand.loc[s, 'ci_low'])}–"
            f"{_p2(rand.loc[s, 'ci_high'])}{tail}.")


def weight_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """Weight perturbations of the top-k units' output weights vs random units', at the
    smallest ε where they differ, or the largest ε tried."""
    red = t.get("redirection")
    if red is None or red.empty:
        return None
    metric = "true_prob" if (red["metric"] == "true_prob").any() else "flip_rate"
    df = select(red, metric=metric, **{"class": ALL})
    top = df[(df["edit"] == "top_units") & (df["eps"] > 0)].set_index("eps")
    rand = df[(df["edit"] == "random_units") & (df["eps"] > 0)].set_index("eps")
    eps = sorted(set(top.index) & set(rand.index))
    if not eps:
        return None
    hit = next((e for e in eps if not rand.loc[e, "ci_low"] <= top.loc[e, "mean"]
                <= rand.loc[e, "ci_high"]), None)
    e = hit if hit is not None else eps[-1]
    r = top.loc[e]
    flips = select(red, metric="flip_rate", edit="top_units", **{"class": ALL})
    flips = flips[flips["eps"] == e]
    flip = f", {pct(flips['mean'].iloc[0])} of predictions flip" if not flips.empty else ""
    what = "true-class probability" if metric == "true_prob" else metric
    lead = (f"first differs from perturbing random units' at ε = {e:g}" if hit is not None
            else f"never differs from perturbing random units' up to ε = {e:g} (the largest "
            "tried)")
    return (f"Perturbing the output weights of the top-{int(r['k'])} units of "
            f"{where(r['hook_name'], r['layer'])} by a relative norm ε {lead}: {what} "
            f"{_p2(r['clean_value'])} → {_p2(r['mean'])}, random units "
            f"{_p2(rand.loc[e, 'ci_low'])}–{_p2(rand.loc[e, 'ci_high'])}{flip}.")


def logit_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """Typical minimal flipping bias and the easiest / hardest class to redirect to."""
    mb = t.get("minimal_bias")
    if mb is None or mb.empty:
        return None
    flips = mb[mb["target"] == FLIP]["bias"]
    text = ""
    if not flips.empty:
        text = (f"Half of the predictions change with a logit bias of {flips.median():.2f} or "
                f"less, 90 % with {flips.quantile(0.9):.2f} or less.")
    per = mb[mb["target"] != FLIP].groupby("target")["bias"].median()
    if len(per) > 1:
        text += (f" Redirecting to class '{per.idxmin()}' is easiest (median minimal bias "
                 f"{per.min():.2f}), to '{per.idxmax()}' hardest ({per.max():.2f}).")
    return text.strip() or None


def stability_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """How stable the global rankings are under bootstrap resampling, against chance."""
    st = t.get("stability")
    if st is None or st.empty:
        return None
    df = select(st, **{"class": GLOBAL})
    df = df[~df["hook_name"].astype(str).isin(_constant_hooks(t))]  # ties: Jaccard 1 trivially
    if df.empty:
        return None
    k = sorted(df["k"].unique())[len(df["k"].unique()) // 2]
    means = df[df["k"] == k].groupby("method")["jaccard"].mean()
    if "probe" not in means.index:
        return None
    j = float(means["probe"])
    verdict = "stable" if j >= 0.7 else "moderately stable" if j >= 0.4 else "unstable"
    text = (f"Probe rankings are {verdict} under bootstrap resampling: their top-{int(k)} sets "
            f"keep a mean Jaccard of {j:.2f} with the full-data set")
    extra = [f"{m} {means[m]:.2f}" for m in ("probeless", "random") if m in means.index]
    return text + (f" ({'; '.join(extra)})" if extra else "") + "."


FINDINGS: tuple[Callable[[Mapping[str, pd.DataFrame]], str | None], ...] = (
    faithfulness_finding, ablation_finding, self_repair_finding, probe_finding, outlier_finding,
    redundancy_finding, class_finding, overlap_finding, noise_finding, weight_finding,
    logit_finding, *TARGETED_FINDINGS, stability_finding)


def findings(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Every finding the prepared tables support, in reading order.

    Args:
        tables: tables after :func:`~synapse_lens.report.tables.prepare`.

    Returns:
        Plain-text sentences (empty when no table supports any).

    Example:
        >>> findings(prepare({"probes": results.table}))  # doctest: +SKIP
        ['The most decodable hook point is layer 3 (blocks.3.hook_resid_post): ...']
    """
    return [s for fn in FINDINGS if (s := fn(tables))]
