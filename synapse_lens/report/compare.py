"""The comparison report: several runs (tasks / architectures) side by side."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from synapse_lens import __version__, plots
from synapse_lens.experiments.grids import DEFAULT_K_FRACTIONS, fitted_ks
from synapse_lens.report.findings import findings
from synapse_lens.report.headline import headline
from synapse_lens.report.page import Section, esc, figure_html, missing, page, table_html
from synapse_lens.report.sections import generated_note, run_label
from synapse_lens.report.tables import prepare
from synapse_lens.report.targeted import vulnerability_overview
from synapse_lens.report.wording import pct

Run = tuple[Mapping[str, pd.DataFrame], Mapping[str, Any]]


def unique_labels(summaries: Sequence[Mapping[str, Any]]) -> list[str]:
    """:func:`run_label` of each summary, made unique with ``" (2)"``, ``" (3)"``... suffixes."""
    out: list[str] = []
    for summary in summaries:
        base, n = run_label(summary), 1
        name = base
        while name in out:
            n += 1
            name = f"{base} ({n})"
        out.append(name)
    return out


def k_fractions(summary: Mapping[str, Any]) -> dict[int, float]:
    """``{k: fraction of the width}`` of a run's fitted unit-set sizes (from its config and
    d_model; empty when the run gave its own ``ks``): runs of different widths are compared at
    the same fraction, not the same k."""
    config = summary.get("config") or {}
    width = (summary.get("model") or {}).get("d_model")
    if not width or config.get("ks"):
        return {}
    fractions = config.get("k_fractions") or DEFAULT_K_FRACTIONS
    fitted = {f: fitted_ks(int(width), (f,), full=False)[0] for f in fractions}
    return {k: f for f, k in reversed(fitted.items())} | {int(width): 1.0}


def _stack(prepared: Sequence[Mapping[str, pd.DataFrame]], labels: Sequence[str],
           summaries: Sequence[Mapping[str, Any]], name: str) -> pd.DataFrame | None:
    frames = []
    for t, label, summary in zip(prepared, labels, summaries):
        frame = t.get(name)
        if frame is None or frame.empty:
            continue
        frame = frame.assign(run=label)
        if "k" in frame.columns:
            width = (summary.get("model") or {}).get("d_model") or float("nan")
            frame["fraction"] = frame["k"].map(k_fractions(summary)).fillna(
                (frame["k"] / width).round(4))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else None


def _architecture(summary: Mapping[str, Any]) -> str:
    """``"BertForSequenceClassification, 6 × 384"`` from a run summary (``"–"`` if unknown)."""
    model = summary.get("model")
    if not isinstance(model, Mapping) or not model.get("architecture"):
        return "–"
    shape = (f", {model['n_layers']} × {model['d_model']}"
             if model.get("n_layers") is not None and model.get("d_model") is not None else "")
    return f"{model['architecture']}{shape}"


def _overview(prepared: Sequence[Mapping[str, pd.DataFrame]], labels: Sequence[str],
              summaries: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for t, label, summary in zip(prepared, labels, summaries):
        h = headline(t)

        def get(key: str, h: dict[str, object] = h) -> Any:
            return h.get(key)

        rows.append({
            "run": label,
            "model (layers × width)": _architecture(summary),
            "most decodable": get("best_probe_hook") or "–",
            "probe acc.": pct(float(get("best_probe_accuracy"))) if get(
                "best_probe_accuracy") is not None else "–",
            "top-k / random-k acc.": (
                f"{pct(float(get('top_k_accuracy')))} / "
                f"{pct(float(get('random_k_accuracy')))} (k={get('ablation_k')})"
                if get("top_k_accuracy") is not None and get("random_k_accuracy") is not None
                else "–"),
            "97 % set": (f"{get('minimal_set_k')} of {get('minimal_set_width')} neurons"
                         if get("minimal_set_k") is not None else "–"),
            "most fragile class": get("most_fragile_class") or "–",
        })
    return table_html(pd.DataFrame(rows))


def render_comparison(runs: Sequence[Run]) -> str:
    """The comparison report of several runs as an HTML string.

    Args:
        runs: ``(tables, summary)`` per run (as :func:`~synapse_lens.report.tables.read_run`
            returns), in display order.

    Returns:
        A self-contained HTML document.

    Raises:
        ValueError: fewer than two runs, tables lacking needed columns.

    Example:
        >>> render_comparison([read_run(a), read_run(b)])  # doctest: +SKIP
    """
    if len(runs) < 2:
        raise ValueError(f"a comparison needs at least two runs, got {len(runs)}")
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    prepared = [prepare(tables) for tables, _ in runs]
    summaries = [summary for _, summary in runs]
    labels = unique_labels(summaries)
    sections = [Section("overview", "Runs at a glance",
                        "The model of each run and its headline numbers, computed from its tables.",
                        _overview(prepared, labels, [summary for _, summary in runs]))]
    specs: list[tuple[str, str, str, Callable[[pd.DataFrame], Any], str]] = [
        ("probes", "Probe accuracy per layer", "probes", plots.compare_probe_figure,
         "Test accuracy of the per-layer [CLS] probes (dotted: control task)."),
        ("ablation", "Ablation sensitivity", "ablation", plots.compare_ablation_figure,
         "Drop of the true-class probability when the top-k (solid) or random-k (dashed, 95 % "
         "interval) neurons of each edited layer are zeroed at [CLS], one panel per fraction "
         "of the width every run used (the same fraction, not the same k, across widths); "
         "layers a run did not edit are left out."),
        ("redundancy", "Redundancy", "redundancy", plots.compare_redundancy_figure,
         "Share of the full probe accuracy kept by probes on the top-p % neurons of all layers."),
        ("asymmetry", "Class asymmetry", "class_asymmetry", plots.compare_asymmetry_figure,
         "Per class: recall lost when its own top-k neurons are ablated, and the damage this "
         "does to the other classes."),
    ]
    for anchor, title, name, build, explain in specs:
        stacked = _stack(prepared, labels, summaries, name)
        if stacked is None:
            body = missing(f"None of the runs has a {name} table.")
        else:
            try:
                body = figure_html(build(stacked), f"fig-compare-{anchor}")
            except plots.NothingToPlot as err:  # e.g. no unit-set fraction shared by all runs
                body = missing(f"Not drawn: {err}.")
        sections.append(Section(anchor, title, explain, body))
    vuln = vulnerability_overview(prepared, labels)
    sections.append(Section(
        "vulnerability", "Targeted redirection",
        "Per run and kind of edit, over its class pairs with at least 10 source examples: how "
        "many pairs a targeted edit redirects 50 % of, the median size that does, in how many "
        "pairs it needs less than random edits of the same kind, and the median rate of those "
        "random edits at the targeted size (docs/redirection.md).",
        missing("None of the runs has a vulnerability table.") if vuln.empty else
        table_html(vuln)))
    per_run = "".join(
        f"<details><summary>{esc(label)}</summary><ul class=\"findings\">"
        + "".join(f"<li>{esc(s)}</li>" for s in findings(t)) + "</ul></details>"
        for t, label in zip(prepared, labels))
    sections.append(Section("findings", "Findings per run",
                            "Each run's own summary (click a run to open it).", per_run))
    return page(f"SYNAPSE comparison — {len(runs)} runs", " | ".join(labels), sections,
                generated_note({"generated": {"synapse_lens": __version__, "date": today}}))
