"""Findings of the targeted-redirection experiment (``vulnerability.csv``) and of the head
diagnostics (``head_diagnostics.csv``): every sentence compares a targeted edit with random
edits of the same kind and size, or states how far the grid went.

Example:
    >>> targeted_weight_finding(prepare(tables))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from synapse_lens.report.wording import pct, where
from synapse_lens.schema import ALL

Tables = Mapping[str, pd.DataFrame]
#: Class pairs (and predicted classes) with fewer source examples are left out of the
#: sentences when others have enough: a 50 % of one or two examples is not a finding.
MIN_EXAMPLES = 10
#: Margins are called flat when at least this share lies within 5 % of its class's median.
FLAT = 0.75


def _rows(t: Tables, space: str, edit: str) -> pd.DataFrame:
    """The profile rows of one edit, restricted to pairs with at least :data:`MIN_EXAMPLES`
    source examples when there are such pairs."""
    prof = t.get("vulnerability")
    if prof is None or prof.empty:
        return pd.DataFrame()
    rows = prof[(prof["space"] == space) & (prof["edit"] == edit)]
    enough = rows[rows["n"] >= MIN_EXAMPLES]
    return enough if not enough.empty else rows


def _scope(df: pd.DataFrame) -> str:
    """How many class pairs a sentence covers, and the example floor when it applied."""
    floor = f" with at least {MIN_EXAMPLES} source examples" if (
        df["n"] >= MIN_EXAMPLES).all() else ""
    return f"{len(df)} class pair{'s' if len(df) != 1 else ''}{floor}"


def _pair(row: pd.Series) -> str:
    return f"'{row['source']}' → '{row['target']}' (n = {int(row['n'])})"


def _finite(x: object) -> bool:
    return x is not None and not pd.isna(x) and math.isfinite(float(x))  # type: ignore[arg-type]


def _beats_random(df: pd.DataFrame) -> int:
    """Class pairs where the targeted edit reaches 50 % at a smaller size than the random one
    (a random control that never reaches it counts as larger)."""
    own = df["size_50"].astype(float)
    rand = df["random_size_50"].astype(float).fillna(float("inf"))
    return int((own.notna() & (own < rand)).sum())


def _easiest(df: pd.DataFrame) -> pd.Series | None:
    reached = df[df["size_50"].notna()]
    if reached.empty:
        return None
    return reached.sort_values(["size_50", "source", "target"], kind="stable").iloc[0]


def _random_part(row: pd.Series, unit: str, what: str = "random edits") -> str:
    rate = row["random_rate_at_50"]
    text = (f"{what} of at least that size redirect {pct(rate)}" if _finite(rate)
            else "no random control")
    if _finite(row["random_size_50"]):
        text += f" and need {row['random_size_50']:.3g}{unit} to reach 50 %"
    elif _finite(rate):
        text += f" and never reach 50 % up to {row['max_size']:.3g}{unit}"
    return text


def targeted_weight_finding(t: Tables) -> str | None:
    """The smallest classifier edit that redirects 50 % of a class pair, against random edits
    of the same norm; the per-example bound; the unit-bias edit."""
    cs = _rows(t, "weight", "classifier_set")
    if cs.empty:
        return None
    best = _easiest(cs)
    n_pairs = len(cs)
    if best is None:
        text = (f"No least-squares edit of the classifier weight up to "
                f"{cs['max_size'].max():.3g} of its norm redirects 50 % of any of the "
                f"{n_pairs} class pairs.")
    else:
        reached = cs["size_50"].dropna()
        text = (f"Targeted weight edits, over {_scope(cs)}: the least-squares edit of the "
                f"classifier weight redirects 50 % of a pair's predictions at a median "
                f"{reached.median():.3g} of the weight's norm (‖ΔW‖/‖W‖; {len(reached)} of "
                f"{n_pairs} pairs get there), from {best['size_50']:.3g} for "
                f"{_pair(best)}, where {_random_part(best, '')}. In {_beats_random(cs)} of "
                f"{n_pairs} pairs the targeted edit needs less than random edits.")
    ex = _rows(t, "weight", "classifier_example")
    if not ex.empty and ex["size_50"].notna().any():
        text += (" Per pair, no single edit of the classifier weight can redirect 50 % with "
                 "less than the median of "
                 "its examples' own minimal edits, a lower bound; over the pairs these bounds "
                 f"have a median of {ex['size_50'].median():.3g} of the norm.")
    ub = _rows(t, "weight", "unit_bias")
    row = _easiest(ub) if not ub.empty else None
    if row is not None:
        text += (f" Moving only the output bias of the top-{int(row['k'])} units of "
                 f"{where(row['hook_name'], row['layer'])} along the margin gradient redirects "
                 f"50 % of {_pair(row)} at {row['size_50']:.3g} × the norm of the whole bias "
                 f"vector; {_random_part(row, ' ×', 'random directions')}.")
    elif not ub.empty:
        text += (f" Moving only the output bias of the top-{int(ub['k'].iloc[0])} units never "
                 f"redirects 50 % up to {ub['max_size'].max():.3g} × the bias vector's norm.")
    return text


def targeted_activation_finding(t: Tables) -> str | None:
    """Steering and amplifying class t's top units against random unit sets, at the middle k."""
    steer = _rows(t, "activation", "steer")
    if steer.empty:
        return None
    ks = sorted(int(k) for k in steer["k"].dropna().unique())
    k = ks[len(ks) // 2]
    part = steer[steer["k"] == k]
    row = part.iloc[0]
    where_ = where(row["hook_name"], row["layer"])
    pos = "[CLS]" if str(row["position"]) == "cls" else "every position"
    best = _easiest(part)
    if best is None:
        text = (f"Steering the top-{k} units of the target class at {pos} of {where_} by "
                f"α·(μ_t − μ_rest) never redirects 50 % of a class pair up to α = "
                f"{part['max_size'].max():g}.")
    else:
        text = (f"Steering the top-{k} units of the target class at {pos} of {where_} by "
                f"α·(μ_t − μ_rest), over {_scope(part)}: 50 % are redirected at a median α = "
                f"{part['size_50'].median():g}, from α = {best['size_50']:g} for "
                f"{_pair(best)}, where {_random_part(best, '', f'random {k}-unit sets')}. In "
                f"{_beats_random(part)} of {len(part)} pairs the top units need a smaller α "
                f"than random {k}-unit sets.")
    scale = _rows(t, "activation", "scale")
    if not scale.empty:
        sc = scale[scale["k"] == k]
        hits = int(sc["size_50"].notna().sum())
        rand_hits = int(sc["random_size_50"].notna().sum())
        text += (f" Amplifying the same units (×α up to {sc['max_size'].max():g}) redirects "
                 f"50 % in {hits} of {len(sc)} pairs (random sets: {rand_hits}).")
    return text


def targeted_logit_finding(t: Tables) -> str | None:
    """A bias on the target logit against a random logit change of the same norm."""
    lb = _rows(t, "logit", "bias")
    best = _easiest(lb) if not lb.empty else None
    if best is None:
        return None
    return (f"In logit space, over {_scope(lb)}: a bias on the target logit redirects 50 % "
            f"at a median {lb['size_50'].median():.3g}, from {best['size_50']:.3g} for "
            f"{_pair(best)}, where {_random_part(best, '', 'random logit changes')}. In "
            f"{_beats_random(lb)} of {len(lb)} pairs the targeted bias needs less.")


def head_finding(t: Tables) -> str | None:
    """Whether margins are flat, and whether a saturated pooler or nearly identical pooled
    vectors explain it."""
    hd = t.get("head_diagnostics")
    if hd is None or hd.empty:
        return None
    wide = hd.pivot_table(index="class", columns="metric", values="value", aggfunc="first")
    if ALL not in wide.index:
        return None
    overall = wide.loc[ALL]
    classes = wide.drop(index=ALL)
    small = [str(c) for c in classes.index if classes.loc[c, "n"] < MIN_EXAMPLES]
    if len(small) < len(classes):
        classes = classes.drop(index=small)
    else:
        small = []
    near = float((classes["margin_near_median"] * classes["n"]).sum() / classes["n"].sum())
    medians = ", ".join(f"'{c}' {v:.2f}" for c, v in classes["margin_median"].items())
    if near >= FLAT:
        text = (f"Margins are flat: {pct(near)} of predictions lie within 5 % of their "
                f"predicted class's median margin (logit of the prediction minus the "
                f"runner-up; medians {medians}).")
    else:
        text = (f"Margins vary: 10–90 % range {overall['margin_q10']:.2f}–"
                f"{overall['margin_q90']:.2f} (median {overall['margin_median']:.2f}); "
                f"{pct(near)} lie within 5 % of their class's median.")
    sat = float(overall["saturated_share"])
    if sat >= 0.5:
        text += (f" The pooled vector is saturated: {pct(sat)} of its units have |value| > "
                 "0.99 (a tanh pooler at its limits), which caps the logits.")
    else:
        text += (f" The pooled vector is not saturated (largest |value| "
                 f"{overall['pooled_abs_max']:.2f}; {pct(sat)} of units above 0.99)")
        cos = classes["pooled_cosine"]
        if near >= FLAT and (cos >= 0.95).all():
            text += (", so saturation does not explain them: the pooled vectors of each "
                     "predicted class are nearly identical (mean cosine to the class mean "
                     + ", ".join(f"'{c}' {v:.3f}" for c, v in cos.items())
                     + ") — the head sees about one vector per class.")
        else:
            text += "."
    if small:
        text += (f" (Predicted classes with fewer than {MIN_EXAMPLES} examples left out: "
                 + ", ".join(f"'{c}'" for c in small) + ".)")
    return text


FINDINGS = (targeted_weight_finding, targeted_activation_finding, targeted_logit_finding,
            head_finding)


#: The edits a comparison lines up (space, edit, unit), in row order.
_COMPARED = (("weight", "classifier_set", "‖ΔW‖/‖W‖"), ("activation", "steer", "α"),
             ("logit", "bias", "logit norm"))


def vulnerability_overview(prepared: Sequence[Mapping[str, pd.DataFrame]],
                           labels: Sequence[str]) -> pd.DataFrame:
    """One row per run and kind of edit: over the class pairs with at least
    :data:`MIN_EXAMPLES` source examples (all pairs when none has), how many reach 50 %, the
    median size that does, in how many the targeted edit needs less than random edits, and the
    median random rate at the targeted size. Steering rows use each run's middle k.

    Returns:
        Columns ``run``, ``edit``, ``unit``, ``pairs``, ``reached``, ``median size_50``,
        ``targeted < random``, ``random rate at size_50`` (empty when no run has the table).
    """
    rows = []
    for t, label in zip(prepared, labels):
        for space, edit, unit in _COMPARED:
            part = _rows(t, space, edit)
            if part.empty:
                continue
            if part["k"].notna().any():
                ks = sorted(int(k) for k in part["k"].dropna().unique())
                part = part[part["k"] == ks[len(ks) // 2]]
                unit = f"{unit} (k = {ks[len(ks) // 2]})"
            reached = part["size_50"].dropna()
            rows.append({"run": label, "edit": f"{space} / {edit}", "unit": unit,
                         "pairs": len(part), "reached": len(reached),
                         "median size_50": float(reached.median()) if len(reached) else None,
                         "targeted < random": _beats_random(part),
                         "random rate at size_50": float(
                             part["random_rate_at_50"].median())})
    return pd.DataFrame(rows)
