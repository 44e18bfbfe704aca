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

from synapse_lens.report.wording import (
    ALL,
    FLIP,
    GLOBAL,
    below_width,
    change,
    depth_sorted,
    neurons,
    pct,
    pts,
    round1,
    select,
    where,
)

#: Effects below this (a fraction: 0.005 = 0.5 points) are reported as negligible.
NEGLIGIBLE = 0.005


def faithfulness_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """Which ranking is causal where (deepest hook first): each method's top-k vs random-k gap
    with its interval, and the agreement with the exact single-unit ranking."""
    faith = t.get("faithfulness")
    if faith is None or faith.empty:
        return None
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
    if real.empty:
        return None
    best = real.loc[real["value"].idxmax()]  # first maximum = shallowest on ties
    text = (f"The most decodable hook point is {where(best['hook_name'], best['layer'])}: a "
            f"linear probe on its [CLS] vector reaches {pct(best['value'])} test accuracy")
    control = select(probes, task="control", split="test", metric="accuracy", hook_name=best[
        "hook_name"])
    if not control.empty:
        c = float(control["value"].iloc[0])
        text += (f", against {pct(c)} on the control task with permuted labels (selectivity "
                 f"{pts(best['value'] - c)})")
    text += "."
    if len(real) > 1:
        first, last = real.iloc[0], real.iloc[-1]
        text += (f" Probe accuracy goes from {pct(first['value'])} at "
                 f"{where(first['hook_name'], first['layer'])} to {pct(last['value'])} at "
                 f"{where(last['hook_name'], last['layer'])}.")
    return text


def ablation_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """How much ablating the top-k drops accuracy, compared with random-k and bottom-k, at the
    hook point where top-k ablation hurts most (largest k)."""
    abl = t.get("ablation")
    if abl is None or abl.empty:
        return None
    df = select(abl, metric="accuracy", ranking=GLOBAL, method="probe", **{"class": ALL})
    df = below_width(df[df["k"] > 0], t.get("rankings"))
    if df.empty or not (df["order"] == "top").any():
        return None
    k = df["k"].max()
    at_k = df[df["k"] == k]
    top = at_k[at_k["order"] == "top"]
    largest = float((at_k["clean_value"] - at_k["mean"]).abs().max())
    if largest < NEGLIGIBLE:
        orders = ", ".join(o for o in ("top", "random", "bottom") if (at_k["order"] == o).any())
        return (f"Ablating {neurons(k)} at any of {at_k['hook_name'].nunique()} probed hook "
                f"points ({orders} sets) moves accuracy by at most {pts(largest)} from the clean "
                f"{pct(float(top['clean_value'].iloc[0]))}: at this size the classifier does not "
                "depend on any small set of [CLS] neurons of one layer.")
    hit = top.loc[(top["clean_value"] - top["mean"]).idxmax()]
    hook = hit["hook_name"]
    here = at_k[at_k["hook_name"] == hook]
    clean, top_acc = float(hit["clean_value"]), float(hit["mean"])
    text = (f"Ablating the top-{neurons(k)} of {where(hook, hit['layer'])} changes accuracy "
            f"from {pct(clean)} to {pct(top_acc)} ({change(clean - top_acc)})")
    rand = here[here["order"] == "random"]
    if not rand.empty:
        r = rand.iloc[0]
        r_drop = clean - float(r["mean"])
        low, high = (round1(100 * (clean - float(r[c]))) for c in ("ci_high", "ci_low"))
        text += (f"; with {neurons(k)} chosen at random the change is {change(r_drop)} (95 % "
                 f"interval of the drop: {low} to {high} points)")
        if clean - top_acc > clean - float(r["ci_low"]):
            ratio = (clean - top_acc) / r_drop if r_drop > 1e-9 else math.inf
            text += (", so the ranked neurons matter more than random ones" + (
                f" ({ratio:.1f}× the mean random drop)" if math.isfinite(ratio) else ""))
        else:
            text += (", so at this size the ranked neurons are no more important than random "
                     "ones")
    bottom = here[here["order"] == "bottom"]
    if not bottom.empty:
        text += (f"; with the bottom-{neurons(k)} it is "
                 f"{change(clean - float(bottom['mean'].iloc[0]))}")
    text += "."
    if not rand.empty:
        merged = top.merge(at_k[at_k["order"] == "random"], on="hook_name", suffixes=("", "_r"))
        beats = int((merged["mean"] < merged["ci_low_r"]).sum())
        text += (f" Top-{int(k)} ablation beats the random interval at {beats} of "
                 f"{len(merged)} hook points.")
    return text


def class_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """Which class is most fragile when its own top-k neurons are ablated, and which least."""
    asym = t.get("class_asymmetry")
    if asym is None or asym.empty or asym["own_drop"].isna().all():
        return None
    worst = asym.loc[asym["own_drop"].idxmax()]
    here = asym[asym["hook_name"] == worst["hook_name"]]
    sizes = here[["own_drop", "collateral", "exposed"]].abs().max().max()
    if sizes < NEGLIGIBLE:
        return (f"No class depends on its own top-{neurons(worst['k'])} at "
                f"{where(worst['hook_name'], worst['layer'])}: ablating them changes the recall "
                f"of every class by less than {pts(NEGLIGIBLE)} on average.")
    text = (f"Class '{worst['class']}' is the most fragile: ablating its own top-"
            f"{neurons(worst['k'])} at {where(worst['hook_name'], worst['layer'])} gives "
            f"{change(float(worst['own_drop']), ' in its recall')}")
    if not pd.isna(worst["collateral"]):
        text += (f", the other classes see {change(float(worst['collateral']))} on average")
    text += "."
    if len(here) > 1:
        least = here.loc[here["own_drop"].idxmin()]
        text += (f" Class '{least['class']}' is the least fragile there "
                 f"({change(float(least['own_drop']), ' in its recall')}).")
    return text


def overlap_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """How much the per-class top-k sets overlap within a layer, against chance."""
    ov = t.get("overlap")
    if ov is None or ov.empty:
        return None
    df = ov[(ov["scope"] == "within_layer") & (ov["class_a"] != GLOBAL)
            & (ov["class_b"] != GLOBAL)]
    if df.empty:
        return None
    df = df[df["k"] == df["k"].max()]
    top = df.loc[df["jaccard"].idxmax()]
    return (f"Different classes' top-{int(top['k'])} neuron sets overlap with a mean Jaccard of "
            f"{df['jaccard'].mean():.2f} within a layer (chance {df['chance'].mean():.2f}); the "
            f"most shared pair is '{top['class_a']}' / '{top['class_b']}' at "
            f"{top['hook_name_a']} ({top['jaccard']:.2f}).")


def redundancy_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """The smallest neuron set that keeps the threshold share of the full probe accuracy."""
    mins = t.get("redundancy_minimal")
    if mins is None or mins.empty:
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
                f"({pct(best['accuracy'])} vs {pct(best['full_accuracy'])}), the smallest "
                f"tested set reaching {pct(thr)}")
    layers = mins[mins["scope"] == "layer"]
    if not layers.empty:
        small = layers.loc[layers["percent"].idxmin()]
        text += (f"; per layer, {where(small['hook_name'], small['layer'])} needs the fewest "
                 f"({neurons(small['k'])}, {small['percent']:g} %)")
    return text + "."


def noise_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """Accuracy under the largest noise on top-k vs random-k vs all units."""
    noise = t.get("noise")
    if noise is None or noise.empty:
        return None
    df = select(noise, metric="accuracy", ranking=GLOBAL, **{"class": ALL})
    if df.empty:
        return None
    sigma = df["sigma"].max()
    at = df[df["sigma"] == sigma]
    top = at[at["units"] == "top"]
    if top.empty:
        return None
    hit = top.loc[top["mean"].idxmin()]
    here = at[at["hook_name"] == hit["hook_name"]]
    parts = []
    for units, name in (("random", "random"), ("all", "all")):
        cur = here[here["units"] == units]
        if not cur.empty:
            parts.append(f"{name} {neurons(cur['k'].iloc[0])}: {pct(cur['mean'].iloc[0])}")
    extra = f" ({'; '.join(parts)}; clean {pct(hit['clean_value'])})" if parts else ""
    return (f"Gaussian noise of σ = {sigma:g} (in units of each neuron's standard deviation) on "
            f"the top-{neurons(hit['k'])} of {where(hit['hook_name'], hit['layer'])} "
            f"leaves {pct(hit['mean'])} accuracy{extra}.")


def weight_finding(t: Mapping[str, pd.DataFrame]) -> str | None:
    """Flip rate at the largest weight perturbation: ranked units vs random vs class rows."""
    red = t.get("redirection")
    if red is None or red.empty:
        return None
    df = select(red, metric="flip_rate", **{"class": ALL})
    if df.empty:
        return None
    eps = df["eps"].max()
    at = df[df["eps"] == eps]
    if (at["mean"] == 0).all():
        kinds = {"top_units": "ranked neurons' output weights",
                 "random_units": "random neurons' output weights",
                 "class_row": "classifier rows"}
        edits = ", ".join(dict.fromkeys(kinds.get(e, e) for e in at["edit"].astype(str)))
        return (f"No weight perturbation up to a relative norm ε = {eps:g} ({edits}; every "
                f"seed) changed a single prediction.")
    out = []
    top = at[at["edit"] == "top_units"]
    if not top.empty:
        hit = top.loc[top["mean"].idxmax()]
        text = (f"Perturbing the output weights of the top-{neurons(hit['k'])} of "
                f"{where(hit['hook_name'], hit['layer'])} by a relative norm ε = {eps:g} flips "
                f"{pct(hit['mean'])} of the predictions")
        rand = at[(at["edit"] == "random_units") & (at["hook_name"] == hit["hook_name"])
                  & (at["target"] == hit["target"])]
        if not rand.empty:
            text += f" (random neurons: {pct(rand['mean'].iloc[0])})"
        out.append(text)
    rows = at[at["edit"] == "class_row"]
    if not rows.empty:
        hit = rows.loc[rows["mean"].idxmax()]
        out.append(f"perturbing the classifier row of class '{hit['target']}' by ε = {eps:g} "
                   f"flips {pct(hit['mean'])}, the most of any class")
    if not out:
        return None
    sentence = "; ".join(out)
    return sentence[0].upper() + sentence[1:] + "."


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
    faithfulness_finding, probe_finding, outlier_finding, redundancy_finding, ablation_finding,
    class_finding, overlap_finding, noise_finding, weight_finding, logit_finding,
    stability_finding)


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
