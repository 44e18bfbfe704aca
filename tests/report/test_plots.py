"""Figures from synthetic tables with the analysis modules' columns: types, traces, values,
axis titles, escaping, purity, and clear errors on bad tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from report_tables import HOOKS, synthetic_tables

from synapse_lens import plots
from synapse_lens.experiments.classwise import class_asymmetry
from synapse_lens.experiments.engine import summarize

EVIL = "<b>bold</b>"


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return synthetic_tables(("ham", "spam"))


def _names(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data]


def _lines(fig: go.Figure) -> list[go.Scatter]:
    """Scatter traces that are lines (not interval bands)."""
    return [t for t in fig.data if isinstance(t, go.Scatter) and t.fill != "toself"]


def test_probe_figure_traces_values_and_axes(tables: dict[str, pd.DataFrame]) -> None:
    probes = tables["probes"]
    fig = plots.probe_figure(probes)
    assert isinstance(fig, go.Figure)
    assert _names(fig) == ["selectivity (real − control, test)", "probe, train", "probe, test",
                           "control task, test"]
    # one depth label per hook point, by depth; the hook name in the hover
    assert list(fig.data[0].x) == ["embeddings", "layer 0", "layer 1"]
    assert list(fig.data[1].customdata) == [h for h, _ in HOOKS]
    test = probes[(probes.task == "real") & (probes.split == "test")
                  & (probes.metric == "accuracy")]["value"].to_numpy()
    np.testing.assert_allclose(fig.data[2].y, test)
    np.testing.assert_allclose(fig.data[0].y, test - 0.5)  # control test accuracy is 0.5
    assert fig.layout.xaxis.title.text == "depth (hover: hook point)"
    assert fig.layout.yaxis.title.text == "accuracy"
    f1 = plots.probe_figure(probes, metric="macro_f1")
    np.testing.assert_allclose(f1.data[2].y, test - 0.02)


def test_probe_figure_without_control_task(tables: dict[str, pd.DataFrame]) -> None:
    real_only = tables["probes"][tables["probes"].task == "real"]
    assert _names(plots.probe_figure(real_only)) == ["probe, train", "probe, test"]


def test_figures_do_not_modify_their_tables(tables: dict[str, pd.DataFrame]) -> None:
    before = {name: df.copy() for name, df in tables.items()}
    plots.probe_figure(tables["probes"])
    plots.redundancy_figure(tables["redundancy"])
    plots.class_matrix_figure(tables["class_matrix"])
    plots.minimal_bias_figure(tables["minimal_bias"])
    for name, df in tables.items():
        pd.testing.assert_frame_equal(df, before[name])


def test_ranking_figure(tables: dict[str, pd.DataFrame]) -> None:
    fig = plots.ranking_figure(tables["rankings"], k=5)
    assert len(fig.data) == len(HOOKS) and all(isinstance(t, go.Bar) for t in fig.data)
    assert all(list(t.x) == [1, 2, 3, 4, 5] for t in fig.data)
    assert all(list(t.y) == sorted(t.y, reverse=True) for t in fig.data)  # ranked by score
    assert fig.layout.xaxis.title.text == "rank (1 = most important)"
    with pytest.raises(ValueError, match="k must be >= 1"):
        plots.ranking_figure(tables["rankings"], k=0)
    with pytest.raises(ValueError, match="no rows"):
        plots.ranking_figure(tables["rankings"], target="nonexistent")


def test_redundancy_figure(tables: dict[str, pd.DataFrame]) -> None:
    fig = plots.redundancy_figure(tables["redundancy"])
    assert _names(fig) == [*(f"{name} · {h}" for (h, _), name in zip(
        HOOKS, ("embeddings", "layer 0", "layer 1"))), "all hooks, top-ranked",
        "random interval", "all hooks, random neurons"]
    assert fig.layout.xaxis.type == "log"
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].y0 == 0.97
    assert fig.layout.yaxis.title.text == "accuracy kept (fraction of full probe)"


def test_stability_and_agreement_figures(tables: dict[str, pd.DataFrame]) -> None:
    fig = plots.stability_figure(tables["stability"])
    assert len(fig.data) == 2 * 3  # two k panels x (probe, probeless, random)
    assert [t.showlegend for t in fig.data] == [True] * 3 + [False] * 3
    assert [a.text for a in fig.layout.annotations] == ["top-2 sets", "top-4 sets"]
    assert list(fig.data[0].x) == [layer for _, layer in HOOKS]  # numeric depth axis
    assert list(fig.data[0].customdata) == [h for h, _ in HOOKS]
    fig = plots.agreement_figure(tables["agreement"])
    assert _names(fig) == ["top-2 overlap", "top-2 chance", "top-4 overlap", "top-4 chance"]


def test_ablation_figure_bands_and_values(tables: dict[str, pd.DataFrame]) -> None:
    summary = summarize(tables["ablation"])
    fig = plots.ablation_figure(summary)
    # two hook points; per panel: top line, random band + line, bottom line
    assert len(fig.data) == 2 * 4
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 2 and all(t.name == "random-k interval" for t in bands)
    assert [t.name for t in _lines(fig)][:3] == ["top-k", "random-k", "bottom-k"]
    sel = summary[(summary.hook_name == HOOKS[1][0]) & (summary.metric == "accuracy")
                  & (summary.order == "random") & (summary.position == "cls")
                  & (summary.k > 0)].sort_values("k")  # k = 0 is the dotted clean line
    np.testing.assert_allclose(_lines(fig)[1].y, sel["mean"])
    np.testing.assert_allclose(bands[0].y, [*sel["ci_high"], *sel["ci_low"][::-1]])
    assert [a.text for a in fig.layout.annotations] == [f"layer {d} · {h}" for h, d in HOOKS[1:]]
    # k on a log axis labelled with the k grid; lines told apart by dash and marker too
    assert fig.layout.xaxis.title.text == "k (neurons ablated, log scale)"
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.ticktext) == ["2", "4", "8"]
    assert [(t.line.dash, t.marker.symbol) for t in _lines(fig)][:3] == [
        ("solid", "circle"), ("dash", "square"), ("dot", "diamond")]
    assert len(fig.layout.shapes) == 2  # the clean accuracy per panel
    # the y range shows the data (clean value and intervals included), not all of [0, 1]
    part = summary[(summary.metric == "accuracy") & (summary.position == "cls")
                   & (summary.ranking == "__global__") & (summary.method == "probe")]
    low, high = fig.layout.yaxis.range
    assert low <= min(part["ci_low"].min(), part["mean"].min()) and high >= 0.9
    assert high - low < 1.0
    flips = plots.ablation_figure(summary, metric="flip_rate")
    assert flips.layout.yaxis.title.text == "flip rate"


def test_curves_need_summaries(tables: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(ValueError, match="summarize"):
        plots.ablation_figure(tables["ablation"])
    with pytest.raises(ValueError, match="summarize"):
        plots.noise_figure(tables["noise"])


def test_class_matrix_and_overlap_heatmaps(tables: dict[str, pd.DataFrame]) -> None:
    fig = plots.class_matrix_figure(tables["class_matrix"])
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Heatmap)
    z = np.asarray(fig.data[0].z)
    assert list(fig.data[0].y) == ["ham", "spam", "random k (mean)"]
    np.testing.assert_allclose(np.diag(z[:2]), [0.0, -0.6])  # own-class drops; spam is fragile
    np.testing.assert_allclose(z[:2][~np.eye(2, dtype=bool)], -0.05)
    np.testing.assert_allclose(z[2], -0.02)  # the control: mean over its 5 seeds
    assert fig.layout.coloraxis.cmid == 0
    assert fig.layout.xaxis.title.text == "true-class prob. of class"
    recall = plots.class_matrix_figure(tables["class_matrix"], metric="recall", k=2)
    assert recall.layout.xaxis.title.text == "recall of class"
    fig = plots.overlap_figure(tables["overlap"])
    assert len(fig.data) == len(HOOKS)
    for trace in fig.data:
        z = np.asarray(trace.z, dtype=float)
        np.testing.assert_allclose(z, z.T)
        assert np.isnan(np.diag(z)).all()  # no self-overlap drawn


def test_noise_and_redirection_figures(tables: dict[str, pd.DataFrame]) -> None:
    fig = plots.noise_figure(summarize(tables["noise"]))
    assert [t.name for t in _lines(fig)] == ["top (4 units)", "random (4 units)",
                                             "all (16 units)"]
    assert len(fig.data) == 6  # each set has seed-to-seed spread: a band each
    fig = plots.weight_redirection_figure(summarize(tables["redirection"]))
    assert _names(fig) == ["top-k, blocks.1.hook_resid_post", "random-k, blocks.1.hook_resid_post",
                           "row of ham", "row of spam"]
    assert [a.text for a in fig.layout.annotations] == ["ranked units' output weights",
                                                        "classifier row of class"]
    fig = plots.logit_redirection_figure(tables["redirection_logit"])
    assert len(fig.data) == 4 and [t.showlegend for t in fig.data] == [True, False] * 2
    fig = plots.minimal_bias_figure(tables["minimal_bias"])
    assert isinstance(fig.data[0], go.Histogram)
    flips = tables["minimal_bias"].query("target == '__flip__'")["bias"]
    np.testing.assert_allclose(fig.data[0].x, flips)
    assert [t.name for t in fig.data[1:]] == ["ham", "spam"]


def test_labels_from_data_are_escaped() -> None:
    t = synthetic_tables(("ham", EVIL))
    figs = [plots.class_matrix_figure(t["class_matrix"]),
            plots.logit_redirection_figure(t["redirection_logit"]),
            plots.minimal_bias_figure(t["minimal_bias"])]
    text = "".join(f.to_json() for f in figs)
    assert EVIL not in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in text.replace("\\u003c", "<").replace("\\u003e", ">") \
        .replace("\\u002f", "/")


def test_compare_figures(tables: dict[str, pd.DataFrame]) -> None:
    other = synthetic_tables(("a", "b", "c"), seed=1, probe_acc=(0.5, 0.7, 0.75))
    both = {name: pd.concat([tables[name].assign(run="spam run"),
                             other[name].assign(run="trec run")], ignore_index=True)
            for name in ("probes", "redundancy", "class_matrix")}
    fig = plots.compare_probe_figure(both["probes"])
    assert _names(fig) == ["spam run", "spam run (control task)", "trec run",
                           "trec run (control task)"]
    assert list(fig.data[0].x) == [-1, 0, 1]
    np.testing.assert_allclose(fig.data[2].y, [0.5, 0.7, 0.75])
    summaries = pd.concat([summarize(tables["ablation"]).assign(run="spam run"),
                           summarize(other["ablation"]).assign(run="trec run")])
    summaries["fraction"] = summaries["k"] / 16
    fig = plots.compare_ablation_figure(summaries, metric="accuracy")
    # one panel per shared fraction below the whole width, four traces each, one legend
    assert [a.text for a in fig.layout.annotations] == [
        "k = 12% of the width", "k = 25% of the width", "k = 50% of the width"]
    assert len(fig.data) == 12 and _names(fig)[:4] == [
        "spam run: top-k", "spam run: random-k", "trec run: top-k", "trec run: random-k"]
    assert [t.showlegend for t in fig.data[4:]] == [False] * 8
    top = summaries[(summaries.run == "spam run") & (summaries.order == "top")
                    & (summaries.k == 8) & (summaries.metric == "accuracy")
                    & (summaries.position == "cls")]
    np.testing.assert_allclose(fig.data[8].y, top["clean_value"] - top["mean"])
    assert list(fig.data[8].customdata) == [0, 1]  # the layers (x is dodged around them)
    fig = plots.compare_redundancy_figure(both["redundancy"])
    assert _names(fig) == ["spam run", "trec run"]
    asym = pd.concat([class_asymmetry(tables["class_matrix"]).assign(run="spam run"),
                      class_asymmetry(other["class_matrix"]).assign(run="trec run")])
    fig = plots.compare_asymmetry_figure(asym)
    assert len(fig.data) == 4 and list(fig.data[2].x) == ["c", "a", "b"]  # by own_drop


def test_compare_figures_match_fractions_and_break_at_unanalysed_layers(
        tables: dict[str, pd.DataFrame]) -> None:
    """Runs of different widths meet at the same fraction of the width (not the same k); no
    line is drawn across a layer a run did not analyse; nothing shared → a clear refusal."""
    probes = tables["probes"]
    skipped = probes[probes["layer"] != 0].assign(
        layer=lambda d: d["layer"].where(d["layer"] < 1, 2), run="skips layer 1")
    both = pd.concat([probes.assign(run="all layers"), skipped], ignore_index=True)
    fig = plots.compare_probe_figure(both)
    assert list(fig.data[0].x) == [-1, 0, 1]
    assert [None if x is None or x != x else x for x in fig.data[2].x] == [-1, None, 2]
    narrow = summarize(tables["ablation"]).assign(run="narrow", fraction=lambda d: d["k"] / 16)
    wide = summarize(tables["ablation"]).assign(run="wide", k=lambda d: d["k"] * 2,
                                                fraction=lambda d: d["k"] / 32)
    wide.loc[wide["k"] == 4, "fraction"] = 0.1  # only 0.25 and 0.5 are shared
    fig = plots.compare_ablation_figure(pd.concat([narrow, wide]))
    assert [a.text for a in fig.layout.annotations] == ["k = 25% of the width",
                                                        "k = 50% of the width"]
    # narrow's k=4 and wide's k=8 are the same 25 % panel
    assert "top-4" in fig.data[0].hovertemplate and "top-8" in fig.data[2].hovertemplate
    with pytest.raises(plots.NothingToPlot, match="no unit-set fraction"):
        plots.compare_ablation_figure(pd.concat([narrow, wide.assign(fraction=0.3)]))


@pytest.mark.parametrize("fn", [plots.probe_figure, plots.redundancy_figure,
                                plots.class_matrix_figure, plots.minimal_bias_figure,
                                plots.logit_redirection_figure])
def test_bad_tables_raise_clear_errors(fn) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="lacks columns"):
        fn(pd.DataFrame({"x": [1]}))
    with pytest.raises(TypeError, match="DataFrame"):
        fn([{"x": 1}])


def test_empty_selection_raises(tables: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(ValueError, match="no real-task rows"):
        plots.probe_figure(tables["probes"], metric="auc")
    with pytest.raises(ValueError, match="no rows"):
        plots.ablation_figure(summarize(tables["ablation"]), ranking="spam")
