"""The sections of a single-run report, each built from the prepared tables (a section whose
table is missing says so instead of failing)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import PurePath
from typing import Any

import pandas as pd

from synapse_lens import plots
from synapse_lens.report.findings import findings
from synapse_lens.report.page import Section, esc, figure_html, missing, table_html

Tables = Mapping[str, pd.DataFrame]
GLOBAL = "__global__"
TOP_K_SHOWN = 10
MAX_EXAMPLES = 25


def _name(value: Any, keys: tuple[str, ...]) -> str | None:
    if isinstance(value, Mapping):
        found = next((value[k] for k in keys if value.get(k) not in (None, "")), None)
        if found is not None and keys[0] != "name":
            found = PurePath(str(found)).name or found
        value = found if found is not None else None
    return None if value is None or value == "" else str(value)


def run_label(summary: Mapping[str, Any]) -> str:
    """A short label of a run from its summary: ``"<task> · <model>"``.

    The task is ``summary["task"]`` (a string or an object with a ``name``), else
    ``summary["data"]["name"]``. The model is ``summary["model"]`` when a string, else the
    first of: its ``name``; the base model of a demo classifier
    (``summary["zoo_manifest"]["base_model"]``); the last part of its ``source``; its
    ``architecture``; a model part equal to the task is left out. ``"run"`` when neither is
    known.
    """
    task = _name(summary.get("task"), ("name", "task")) or _name(summary.get("data"), ("name",))
    model = summary.get("model")
    candidates = [_name(model, ("name",)), _name(summary.get("zoo_manifest"), ("base_model",)),
                  _name(model, ("source", "path")), _name(model, ("architecture",))]
    model_name = next((c for c in candidates if c and c != task), None)
    return " · ".join(p for p in (task, model_name) if p) or "run"


def _absent(*names: str) -> str:
    files = ", ".join(f"tables/{n}.csv" for n in names)
    return missing(f"This run has no {files}, so there is nothing to show here.")


def _figs(anchor: str, builders: list[Callable[[], Any]]) -> str:
    """Each figure as HTML; a well-formed table with nothing to plot gets a notice instead."""
    out = []
    for i, build in enumerate(builders):
        try:
            out.append(figure_html(build(), f"fig-{anchor}-{i}"))
        except plots.NothingToPlot as err:
            out.append(missing(f"Nothing to plot here: {err}."))
    return "".join(out)


def _prefer(df: pd.DataFrame, column: str, preferred: str) -> str:
    """``preferred`` when the column holds it, else the column's first value."""
    values = df[column].astype(str) if column in df.columns else pd.Series([], dtype=str)
    return preferred if (values == preferred).any() or values.empty else str(values.iloc[0])


def _findings_section(t: Tables, summary: Mapping[str, Any]) -> Section:
    lines = findings(t)
    body = ("<ul class=\"findings\">" + "".join(f"<li>{esc(s)}</li>" for s in lines) + "</ul>"
            if lines else missing("No table of this run supports a finding."))
    return Section("findings", "Summary of findings",
                   "Computed from the tables below; every number is a measurement of this run.",
                   body)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 300 else text[:297] + "..."


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        out: list[tuple[str, str]] = []
        for key, item in value.items():
            out += _flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    return [(prefix, _text(value))]


def _fields(summary: Mapping[str, Any]) -> str:
    """Top-level fields in a table; each nested group (config, model, data...) collapsible."""
    scalars = [(str(k), _text(v)) for k, v in summary.items()
               if k != "examples" and not isinstance(v, Mapping)]
    out = (table_html(pd.DataFrame(scalars, columns=["field", "value"])) if scalars else "")
    for key, value in summary.items():
        if isinstance(value, Mapping) and value:
            rows = pd.DataFrame(_flatten(value), columns=["field", "value"])
            out += (f"<details><summary>{esc(key)} ({len(rows)} fields)</summary>"
                    f"{table_html(rows)}</details>")
    return out


def _examples(summary: Mapping[str, Any]) -> str:
    examples = summary.get("examples")
    if examples is None:
        return ""
    if not isinstance(examples, list) or not all(
            isinstance(e, Mapping) and "text" in e for e in examples):
        raise ValueError("summary['examples'] must be a list of objects with 'text', 'label' "
                         "and 'prediction'")
    rows = pd.DataFrame([{"text": str(e["text"]), "label": str(e.get("label", "")),
                          "prediction": str(e.get("prediction", ""))}
                         for e in examples[:MAX_EXAMPLES]])
    if rows.empty:
        return ""
    rows["correct"] = ["yes" if a == b else "no" for a, b in zip(rows["label"],
                                                                 rows["prediction"])]
    return ("<h3>Held-out examples</h3>" + table_html(
        rows, ["text", "label", "prediction", "correct"],
        css=lambda col, v: ("ok" if v == "yes" else "bad") if col == "correct" else ""))


def _truncation_note(summary: Mapping[str, Any]) -> str:
    cut = summary.get("truncation")
    if not isinstance(cut, Mapping) or not cut.get("n_truncated"):
        return ""
    return missing(
        f"{cut['n_truncated']} of {cut['n_texts']} texts ({100 * cut['share_truncated']:.1f} %) "
        f"are longer than {cut['max_length']} tokens and were cut there (by a median of "
        f"{cut['cut_tokens_median']:g} tokens, at most {cut['cut_tokens_max']}): every "
        "number in this report describes their beginning only.")


def _run_section(t: Tables, summary: Mapping[str, Any]) -> Section:
    body = _truncation_note(summary) + (
        _fields(summary) or missing("summary.json has no fields to show."))
    return Section("run", "Run details",
                   "Configuration, model and data fingerprints as recorded in summary.json "
                   "(click a group to open it), and held-out texts with the model's predictions.",
                   body + _examples(summary))


def _probes_section(t: Tables, summary: Mapping[str, Any]) -> Section:
    explain = ("A logistic-regression probe is trained on the [CLS] vector of each hook point. "
               "High test accuracy means the label is linearly decodable there; the control task "
               "(same probe, permuted labels) shows how much a probe can memorise, and "
               "selectivity is the gap between the two.")
    probes = t.get("probes")
    body = (_absent("probes") if probes is None else
            _figs("probes", [lambda: plots.probe_figure(probes)]))
    return Section("probes", "Layer-wise probes", explain, body)


def _best_hook(t: Tables) -> str | None:
    probes = t.get("probes")
    if probes is None or probes.empty:
        return None
    real = probes[(probes["task"] == "real") & (probes["split"] == "test")
                  & (probes["metric"] == "accuracy")]
    return None if real.empty else str(real.loc[real["value"].idxmax(), "hook_name"])


def _neuron_table(part: pd.DataFrame) -> str:
    columns: dict[str, list[str]] = {}
    keys = [("probe", GLOBAL)] + [("probe", c) for c in dict.fromkeys(part["class"].astype(str))
                                  if c != GLOBAL] + [("probeless", GLOBAL)]
    for method, cls in keys:
        cur = part[(part["method"] == method) & (part["class"].astype(str) == cls)]
        cur = cur.sort_values("rank", kind="stable").head(TOP_K_SHOWN)
        if cur.empty:
            continue
        head = ("all classes" if cls == GLOBAL else f"class {cls}") + f" ({method})"
        columns[head] = [f"{int(n)} ({s:+.2f})" for n, s in zip(cur["neuron"], cur["score"])]
    width = max(len(v) for v in columns.values())
    wide = pd.DataFrame({"rank": list(range(1, width + 1)),
                         **{h: v + [""] * (width - len(v)) for h, v in columns.items()}})
    return table_html(wide)


def _neurons_section(t: Tables, summary: Mapping[str, Any]) -> Section:
    explain = (f"The {TOP_K_SHOWN} highest-ranked neurons of each hook point as 'neuron id "
               "(score)': for all classes together (norm of the standardised probe "
               "coefficients), for each class (its own coefficient row; sign = evidence for or "
               "against the class), and the probeless ranking (class-mean differences).")
    rankings = t.get("rankings")
    if rankings is None or rankings.empty:
        return Section("neurons", "Top neurons per layer and class", explain,
                       _absent("rankings"))
    best = _best_hook(t)
    hooks = plots.hook_order(rankings)
    body = []
    for hook in hooks:
        part = rankings[rankings["hook_name"].astype(str) == hook]
        layer = part["layer"].iloc[0]
        opened = " open" if hook == (best or hooks[-1]) else ""
        body.append(f"<details{opened}><summary>{esc(hook)} (layer {esc(layer)})</summary>"
                    f"{_neuron_table(part)}</details>")
    return Section("neurons", "Top neurons per layer and class", explain, "".join(body))


def _stability_section(t: Tables, summary: Mapping[str, Any]) -> Section:
    explain = ("Bootstrap resamples of the training split are re-ranked; the Jaccard similarity "
               "of their top-k sets with the full-data top-k says how reproducible a ranking is "
               "(random sets give the chance level). The agreement plot compares the probe "
               "ranking with the probeless one.")
    figs: list[Callable[[], Any]] = []
    if t.get("stability") is not None:
        st = t["stability"]
        figs.append(lambda: plots.stability_figure(st, _prefer(st, "class", GLOBAL)))
    if t.get("agreement") is not None:
        ag = t["agreement"]
        figs.append(lambda: plots.agreement_figure(ag, _prefer(ag, "class", GLOBAL)))
    body = _figs("stability", figs) if figs else _absent("stability", "agreement")
    return Section("stability", "Ranking stability and agreement", explain, body)


def _redundancy_section(t: Tables, summary: Mapping[str, Any]) -> Section:
    explain = ("Probes retrained on only the top-p % neurons (by the full probe's ranking) show "
               "how much of the accuracy a small set carries (Dalvi et al. 2020): the curve "
               "crossing the dotted line marks the smallest set keeping 97 % of the full "
               "probe's accuracy.")
    red = t.get("redundancy")
    if red is None:
        return Section("redundancy", "Redundancy", explain, _absent("redundancy"))
    body = _figs("redundancy", [lambda: plots.redundancy_figure(red)])
    mins = t.get("redundancy_minimal")
    if mins is not None and not mins.empty:
        shown = mins.assign(
            percent=[f"{p:g} %" for p in mins["percent"]],
            k=[str(int(k)) for k in mins["k"]], width=[str(int(w)) for w in mins["width"]],
            scope=["all layers" if s == "all" else "one layer" for s in mins["scope"]],
            hook_name=["(all probed hooks)" if s == "all" else h
                       for s, h in zip(mins["scope"], mins["hook_name"])])
        extra = [c for c in ("random_kept", "constant") if c in shown.columns]
        labels = {"random_kept": "random sets of that size keep", "constant": "constant [CLS]"}
        body += "<h3>Smallest sets keeping the threshold</h3>" + table_html(
            shown, ["scope", "hook_name", "k", "width", "percent", "accuracy", "full_accuracy",
                    "kept", *extra], ["scope", "hook point", "neurons", "of", "share",
                                      "accuracy", "full accuracy", "kept",
                                      *(labels[c] for c in extra)])
    return Section("redundancy", "Redundancy", explain, body)


def _faithfulness_section(t: Tables, summary: Mapping[str, Any]) -> Section:
    explain = ("A ranking is only as good as its causal test. For each ranking method and hook "
               "point: how much more zero-ablating its top-k [CLS] units lowers the true-class "
               "probability than ablating random-k units, averaged over the k grid (k = the "
               "full width left out: there top = random by construction) and divided by the "
               "clean value; bars are 95 % intervals over the random draws. Probe: "
               "standardised probe coefficients; probeless: class-mean differences; "
               "attribution: gradient × activation (first-order ablation effect); exact: each "
               "unit ablated alone (last layer).")
    faith = t.get("faithfulness")
    if faith is None:
        return Section("faithfulness", "Which ranking finds the neurons the model uses",
                       explain, _absent("faithfulness"))
    metric = _prefer(faith, "metric", "true_prob")
    body = _figs("faithfulness", [lambda: plots.faithfulness_figure(faith, metric)])
    shown = faith[faith["metric"] == metric].copy()
    if not shown.empty:
        gaps = ["gap_top", "gap_top_low", "gap_top_high", "gap_bottom"]
        shown[gaps] = shown[gaps].astype(float) * 100
        body += f"<h3>Verdicts ({esc(metric)}; gaps in % of the clean value)</h3>" + table_html(
            shown, ["hook_name", "method", "position", *gaps, "verdict", "spearman_exact",
                    "overlap_exact"],
            ["hook point", "ranking", "edited at", "top vs random", "low", "high",
             "bottom vs random",
             "verdict", "Spearman vs exact", "top-k overlap vs exact"])
    outliers = t.get("outliers")
    if outliers is not None and not outliers.empty:
        body += "<h3>Outlier dimensions (mean |activation| ≥ 20× the median unit)</h3>" + (
            table_html(outliers, ["hook_name", "neuron", "mean_abs", "median_abs", "ratio"],
                       ["hook point", "neuron", "mean |activation|", "median unit", "ratio"]))
    return Section("faithfulness", "Which ranking finds the neurons the model uses", explain,
                   body)


def _ablation_section(t: Tables, summary: Mapping[str, Any]) -> Section:
    method = summary.get("class_experiments_ranking") or "probe"
    explain = (f"The k top-ranked neurons of a hook point ({method} ranking: the one the "
               "faithfulness table finds most causal) are zero-ablated during inference, at "
               "[CLS] only and at every position, and the true-class probability is measured on "
               "held-out texts. Random-k (mean and 95 % interval over seeds) and bottom-k are "
               "the controls; the dotted line is the clean value. k runs over fractions of the "
               "width; at k = the width top, random and bottom are the same set by "
               "construction. A [CLS]-only edit of a middle layer that does little while the "
               "all-position edit does much is repaired by the layers above (see self-repair).")
    abl = t.get("ablation")
    if abl is None:
        return Section("ablation", "Ablation curves", explain, _absent("ablation"))
    metric = "true_prob" if (abl["metric"] == "true_prob").any() else "accuracy"
    method = method if (abl["method"] == method).any() else _prefer(abl, "method", "probe")
    positions = (list(dict.fromkeys(abl["position"].astype(str)))
                 if "position" in abl else ["cls"])
    ranking = _prefer(abl, "ranking", GLOBAL)
    figs: list[Callable[[], Any]] = [partial(plots.ablation_figure, abl, metric=metric,
                                             ranking=ranking, method=method, position=p)
                                     for p in positions]
    body = _figs("ablation", figs)
    repair = t.get("self_repair")
    if repair is not None and not repair.empty:
        body += "<h3>Self-repair: the same edit at [CLS] only vs every position</h3>" + (
            table_html(repair, ["hook_name", "k", "kl_cls", "kl_all", "survival",
                                "flip_cls", "flip_all", "distance_edit", "distance_last",
                                "returned"],
                       ["hook point", "k", "KL [CLS] only", "KL all positions",
                        "survival (KL ratio)", "flips [CLS] only", "flips all positions",
                        "[CLS] distance at the edit", "at the last layer", "returned"]))
    return Section("ablation", "Ablation curves and self-repair", explain, body)


def _classes_section(t: Tables, summary: Mapping[str, Any]) -> Section:
    explain = ("First heatmap: ablating one class's own top-k neurons (rows) and measuring "
               "the change of every class's true-class probability (columns); the last row is "
               "the random-k control. A diagonal cell far below the control means the class "
               "relies on its own neurons, off-diagonal cells are collateral damage; verdicts "
               "come from the control's 95 % interval. Second: how much the per-class top-k "
               "sets overlap (Jaccard).")
    figs, extra = [], ""
    if t.get("class_matrix") is not None:
        cm = t["class_matrix"]
        figs.append(lambda: plots.class_matrix_figure(cm, _prefer(cm, "method", "probe")))
    if t.get("overlap") is not None:
        ov = t["overlap"]
        figs.append(lambda: plots.overlap_figure(ov))
    asym = t.get("class_asymmetry")
    if asym is not None and not asym.empty:
        labels = {"own_drop": "own loss", "random_low": "random low",
                  "random_high": "random high", "collateral": "caused in others",
                  "exposed": "suffered from others"}
        cols = [c for c in labels if c in asym.columns]
        shown = asym.astype(dict.fromkeys(cols, float))
        shown[cols] = shown[cols] * 100
        extra = ("<h3>Fragile and redundant classes (loss of the class's true-class "
                 "probability, points; random: the 95 % interval of random k-sets)</h3>"
                 + table_html(shown, ["hook_name", "k", "class", "n_examples", *cols, "verdict"],
                              ["hook point", "k", "class", "examples",
                               *(labels[c] for c in cols), "verdict"]))
    body = (_figs("classes", figs) + extra) if figs else _absent("class_matrix", "overlap")
    return Section("classes", "Class-wise effects", explain, body)


def _noise_section(t: Tables, summary: Mapping[str, Any]) -> Section:
    explain = ("Gaussian noise (σ in units of each neuron's standard deviation) is added to the "
               "top-k, random-k or all neurons at [CLS] of the last analysed layer; σ is doubled "
               "until the top-k curve leaves the random-k band (or σ = 64). A top-k curve far "
               "below "
               "the random band means the ranked neurons are a weak spot.")
    noise = t.get("noise")
    metric = ("true_prob" if noise is not None and (noise["metric"] == "true_prob").any()
              else "accuracy")
    body = _absent("noise") if noise is None else _figs("noise", [
        lambda: plots.noise_figure(noise, metric=metric,
                                   ranking=_prefer(noise, "ranking", GLOBAL))])
    return Section("noise", "Noise", explain, body)


def _redirection_section(t: Tables, summary: Mapping[str, Any]) -> Section:
    explain = ("How far must weights or logits move before predictions change? Top: relative "
               "perturbations of the ranked neurons' output weights (random neurons as control) "
               "and of each class's classifier row. Middle: a bias added to one class's logit — "
               "share of examples redirected to it. Bottom: per example, the closed-form "
               "smallest bias that changes the prediction.")
    figs: list[Callable[[], Any]] = []
    if t.get("redirection") is not None:
        wr = t["redirection"]
        wm = "true_prob" if (wr["metric"] == "true_prob").any() else "flip_rate"
        figs.append(lambda: plots.weight_redirection_figure(wr, metric=wm))
    if t.get("redirection_logit") is not None:
        lb = t["redirection_logit"]
        figs.append(lambda: plots.logit_redirection_figure(lb))
    if t.get("minimal_bias") is not None:
        mb = t["minimal_bias"]
        figs.append(lambda: plots.minimal_bias_figure(mb))
    body = (_figs("redirection", figs) if figs else
            _absent("redirection", "redirection_logit", "minimal_bias"))
    return Section("redirection", "Weight and logit redirection", explain, body)


def _head_table(hd: pd.DataFrame) -> str:
    wide = hd.pivot_table(index="class", columns="metric", values="value", aggfunc="first")
    cols = [c for c in ("n", "margin_q10", "margin_median", "margin_q90", "margin_near_median",
                        "pooled_abs_max", "saturated_share", "pooled_cosine") if c in wide]
    shown = wide[cols].reset_index().rename(columns={"class": "predicted class"})
    shown["predicted class"] = shown["predicted class"].replace({"__all__": "all"})
    if "n" in shown:
        shown["n"] = shown["n"].astype(int)
    return table_html(shown.round(3))


def _vulnerability_section(t: Tables, summary: Mapping[str, Any]) -> Section:
    explain = ("How small a targeted change redirects predictions from one class (the source: "
               "examples the clean model predicts as it) to another (the target), against "
               "random changes of the same kind and size. Weight: the least-squares edit of the "
               "classifier weight for a class pair (size ‖ΔW‖/‖W‖), each example's own "
               "minimal edit, and the output bias of the target class's top units moved along "
               "the margin gradient; random: Gaussian directions of the same norm. Activation: "
               "the target class's top-k units at the last analysed layer scaled by α or "
               "shifted by α(μ_t − μ_rest); random: random k-unit sets given the same edit. "
               "Logit: a bias on the target logit; random: a random logit change of the same "
               "norm. Every random control is the mean of seeded draws. Below: the margins and "
               "the vector the classifier reads, per predicted class.")
    prof, hd = t.get("vulnerability"), t.get("head_diagnostics")
    if prof is None:
        return Section("vulnerability", "Targeted redirection", explain,
                       _absent("vulnerability", "head_diagnostics"))
    body = _figs("vulnerability", [lambda: plots.vulnerability_figure(prof)])
    grids = summary.get("grids")
    ran = grids.get("vulnerability", {}) if isinstance(grids, Mapping) else {}
    if isinstance(ran, Mapping) and ran.get("run_edits") is False:
        body += missing("This run computed the classifier-weight edits from the pooled vectors "
                        "and skipped the activation and output-bias edits (on TL 3.x every such "
                        "condition is a full forward pass).")
    if hd is not None and not hd.empty:
        body += _head_table(hd)
    return Section("vulnerability", "Targeted redirection", explain, body)


#: The report's sections in page order; each builds a Section from (prepared tables, summary).
SECTIONS = (_findings_section, _run_section, _probes_section, _neurons_section, _redundancy_section,
            _faithfulness_section, _ablation_section, _classes_section, _noise_section,
            _redirection_section, _vulnerability_section, _stability_section)
