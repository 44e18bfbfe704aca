"""Stress tests that reach the regime where something happens: fitted grids, self-repair, and
findings that are never true by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from report_tables import HOOKS, WIDTH, synthetic_tables

from synapse_lens import from_lists
from synapse_lens.analysis.rankings import Ranking
from synapse_lens.experiments.grids import bias_grid, extend_until, fitted_ks, geometric
from synapse_lens.experiments.selfrepair import self_repair
from synapse_lens.models import classifier_info
from synapse_lens.pipeline.run import RunConfig, default_stress_layers
from synapse_lens.report import prepare
from synapse_lens.report.findings import ablation_finding, findings, redundancy_finding
from synapse_lens.testing import TINY_WORDS


def test_default_grid_scales_with_the_width() -> None:
    tiny, minilm = RunConfig().grid(32, full=True), RunConfig().grid(384, full=True)
    assert tiny == (1, 2, 8, 16, 32) and minilm == (4, 19, 96, 192, 384)
    assert RunConfig().grid(384) == (4, 19, 96, 192)  # the full width only as the extreme
    assert RunConfig(ks=(3, 1)).grid(384, full=True) == (1, 3)  # explicit values win
    assert RunConfig().set_size(384) == 19 and RunConfig().set_size(32) == 2
    assert fitted_ks(384, (0.5,), full=False) == (192,)
    with pytest.raises(ValueError, match="fractions"):
        RunConfig(k_fractions=(0.0,))
    with pytest.raises((ValueError, TypeError), match="positions"):  # TypeError: test checker
        RunConfig(positions=("middle",))  # type: ignore[arg-type]
    assert default_stress_layers(range(6)) == (2, 5) and default_stress_layers([0]) == (0,)


def test_bias_grid_covers_the_measured_minimal_biases() -> None:
    for seed in range(5):
        biases = np.random.default_rng(seed).gamma(2.0, 1.0 + seed, size=300)
        grid = bias_grid(biases)
        assert grid[0] == 0.0 and len(grid) == 7 and list(grid) == sorted(grid)
        assert max(grid) >= np.quantile(biases, 0.95)
        assert max(grid) <= 1.01 * np.quantile(biases, 0.95)
    assert bias_grid([]) == (0.0, 1.0)


def test_extend_until_stops_at_the_first_effect_or_the_cap() -> None:
    runs: list[list[float]] = []

    def run(values):  # type: ignore[no-untyped-def]
        runs.append(list(values))
        return pd.DataFrame({"sigma": values, "effect": [v >= 8 for v in values]})

    table, found = extend_until(run, [0.0, 1.0, 2.0], geometric(4.0, 64.0),
                                lambda t: bool(t["effect"].any()))
    assert found and runs == [[0.0, 1.0, 2.0], [4.0], [8.0]]
    assert list(table["sigma"]) == [0.0, 1.0, 2.0, 4.0, 8.0]
    runs.clear()
    table, found = extend_until(run, [0.0, 1.0], geometric(2.0, 4.0),
                                lambda t: bool((t["sigma"] > 100).any()))
    assert not found and list(table["sigma"]) == [0.0, 1.0, 2.0, 4.0]  # up to the cap


def _texts(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(TINY_WORDS, size=int(rng.integers(3, 12)))) for _ in range(n)]


def test_self_repair_compares_cls_only_with_every_position(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    info = classifier_info(tiny_bert)
    data = from_lists(_texts(40), [i % 3 for i in range(40)], label_names=info.id2label)
    rng = np.random.default_rng(1)
    ranks = [Ranking(info.names.resid_post(layer), layer, rng.normal(size=info.d_model))
             for layer in range(info.n_layers)]
    before = {n: p.detach().clone() for n, p in tiny_bert.named_parameters()}
    summary, trace = self_repair(tiny_bert, data, ranks, [info.d_model // 2, info.d_model])
    assert len(summary) == info.n_layers * 2
    first = summary[summary["layer"] == 0]
    assert (first["kl_all"] > first["kl_cls"]).all()  # the other positions carry information
    assert (first["survival"] < 1).all()
    last = summary[summary["layer"] == info.n_layers - 1]  # the head reads [CLS] only
    np.testing.assert_allclose(last["kl_cls"], last["kl_all"], rtol=1e-6)
    full = summary[summary["k"] == info.d_model]
    np.testing.assert_allclose(full["distance_edit"], 1.0)  # all of [CLS] zeroed
    rows = trace[(trace["layer"] == 0) & (trace["k"] == info.d_model)]
    assert sorted(set(rows["downstream_layer"])) == list(range(info.n_layers))
    assert set(rows["position"]) == {"cls", "all"}
    assert not any(tiny_bert.hook_dict[n]._forward_hooks for n in info.names.layer_outputs())
    assert all(torch.equal(p, before[n]) for n, p in tiny_bert.named_parameters())
    with pytest.raises(ValueError, match="layer outputs"):
        self_repair(tiny_bert, data, [Ranking(info.names.embed, -1,
                                              np.ones(info.d_model))], [1])


def _only_full_width_moves() -> dict[str, pd.DataFrame]:
    """Ablation tables where top-k equals random-k below the width and everything drops at
    k = the width (true by construction there)."""
    t = synthetic_tables()
    abl = t["ablation"]
    below = abl["k"] < WIDTH
    abl.loc[below, "value"] = abl.loc[below, "clean_value"]
    extra = abl[abl["k"] == abl["k"].max()].copy()
    extra["k"], extra["value"] = WIDTH, extra["clean_value"] - 0.5
    t["ablation"] = pd.concat([abl, extra], ignore_index=True)
    return t


def test_ablation_finding_never_rests_on_the_full_width() -> None:
    text = ablation_finding(prepare(_only_full_width_moves()))
    assert text is not None
    assert "no k up to 8 (50 % of the width) costs more" in text
    assert f"zeroing all {WIDTH} units" in text
    assert f"from k = {WIDTH}" not in text
    assert "majority class" in text


def test_a_constant_hook_never_reaches_the_findings() -> None:
    t = synthetic_tables()
    embed = HOOKS[0][0]
    t["probes"] = t["probes"].assign(constant=t["probes"]["hook_name"] == embed)
    mins = prepare(t)["redundancy_minimal"]
    assert (mins["hook_name"] == embed).any()  # the table keeps it, flagged via probes
    t["redundancy_minimal"] = mins.assign(
        percent=np.where(mins["hook_name"] == embed, 0.5, mins["percent"]))
    text = redundancy_finding(prepare(t))
    assert text is not None and "constant [CLS]" in text
    assert f"{embed}) needs the fewest" not in text
    t["probes"].loc[t["probes"]["hook_name"] == embed, "value"] = 0.99  # would be the best
    probe = next(s for s in findings(prepare(t)) if s.startswith("The most decodable"))
    assert f"the embeddings ({embed})" not in probe and "constant [CLS]" in probe
    for line in findings(prepare(t)):
        assert "-0.0" not in line and "−0.0" not in line
