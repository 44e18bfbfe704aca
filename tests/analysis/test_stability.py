"""Bootstrap stability of rankings and the redundancy (top-p % retraining) analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from synapse_lens.activations import ClsActivations
from synapse_lens.analysis.probes import ProbeConfig, fit_probes
from synapse_lens.analysis.rankings import GLOBAL
from synapse_lens.analysis.redundancy import redundancy
from synapse_lens.analysis.stability import bootstrap_stability, stability_summary
from synapse_lens.schema import ALL_HOOKS as ALL

H0, H1 = "blocks.0.hook_resid_post", "blocks.1.hook_resid_post"
UNITS = (2, 5, 11)


@pytest.fixture(scope="module")
def planted():  # type: ignore[no-untyped-def]
    """3 classes, 240 examples; on H1 units 2/5/11 fire for classes a/b/c; H0 is noise."""
    rng = np.random.default_rng(0)
    n, d = 240, 24
    y = np.arange(n) % 3
    x1 = rng.normal(size=(n, d))
    for cls, unit in enumerate(UNITS):
        x1[:, unit] += 4.0 * (y == cls)
    acts = ClsActivations({H0: torch.tensor(rng.normal(size=(n, d)), dtype=torch.float32),
                           H1: torch.tensor(x1, dtype=torch.float32)}, "synthetic", None,
                          {H0: 0, H1: 1})
    return acts, fit_probes(acts, y, label_names=["a", "b", "c"],
                            config=ProbeConfig(control=False))


def test_bootstrap_stability_planted(planted) -> None:  # type: ignore[no-untyped-def]
    acts, res = planted
    df = bootstrap_stability(res, acts, ks=[1, 3, 6], n_boot=4, seed=0,
                             targets=[GLOBAL, "b"])
    assert list(df.columns) == ["hook_name", "layer", "class", "method", "k", "resample",
                                "jaccard"]
    assert len(df) == 2 * 2 * 3 * 3 * 4  # hooks x targets x ks x methods(+random) x resamples
    summary = stability_summary(df).set_index(["hook_name", "class", "method", "k"])
    for method in ("probe", "probeless"):
        assert summary.loc[(H1, GLOBAL, method, 3), "mean_jaccard"] == 1.0  # planted: stable
        assert summary.loc[(H1, "b", method, 1), "mean_jaccard"] == 1.0  # unit 5 for 'b'
        assert summary.loc[(H0, GLOBAL, method, 3), "mean_jaccard"] < 0.8  # noise: unstable
    assert summary.loc[(H1, GLOBAL, "random", 3), "mean_jaccard"] < 0.5
    assert (summary["n_resamples"] == 4).all()


def test_bootstrap_determinism(planted) -> None:  # type: ignore[no-untyped-def]
    acts, res = planted
    a = bootstrap_stability(res, acts, ks=[3], n_boot=3, seed=5)
    b = bootstrap_stability(res, acts, ks=[3], n_boot=3, seed=5)
    c = bootstrap_stability(res, acts, ks=[3], n_boot=3, seed=6)
    assert a.to_csv() == b.to_csv()
    rand = "method == 'random'"
    assert a.query(rand)["jaccard"].tolist() != c.query(rand)["jaccard"].tolist()


def test_bootstrap_bad_input(planted) -> None:  # type: ignore[no-untyped-def]
    acts, res = planted
    with pytest.raises(ValueError, match="out of range"):
        bootstrap_stability(res, acts, ks=[25])
    with pytest.raises(ValueError, match="out of range"):
        bootstrap_stability(res, acts, ks=[0])
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_stability(res, acts, n_boot=0)
    with pytest.raises(ValueError, match="methods"):
        bootstrap_stability(res, acts, methods=["magic"])
    with pytest.raises(ValueError, match="unknown class"):
        bootstrap_stability(res, acts, targets=["zzz"])
    other = ClsActivations(dict(acts.acts), "another-model", None, dict(acts.layers))
    with pytest.raises(ValueError, match="another model"):
        bootstrap_stability(res, other)
    with pytest.raises(ValueError, match="not a bootstrap_stability table"):
        stability_summary(pd.DataFrame({"x": [1]}))


def test_redundancy_planted(planted) -> None:  # type: ignore[no-untyped-def]
    acts, res = planted
    red = redundancy(res, acts, percents=[5, 10, 20, 50], n_random=2, seed=0)
    assert list(red.table.columns) == ["scope", "hook_name", "layer", "selection", "draw",
                                       "percent", "k", "width", "accuracy", "full_accuracy",
                                       "kept"]
    t = red.table
    full_h1 = res.table.query("hook_name == @H1 and task == 'real' and split == 'test' "
                              "and metric == 'accuracy'")["value"].item()
    top = t.query("hook_name == @H1 and selection == 'top'").set_index("percent")
    assert top.loc[100.0, "accuracy"] == full_h1 == top.loc[100.0, "full_accuracy"]
    assert top.loc[100.0, "kept"] == 1.0 and top["k"].tolist() == [2, 3, 5, 12, 24]
    # the 3 planted units carry the task: 10 % (k=3) keeps >= 97 %, random 10 % does not
    assert top.loc[10.0, "kept"] >= 0.97
    rand10 = t.query("hook_name == @H1 and selection == 'random' and percent == 10.0")
    assert len(rand10) == 2 and rand10["kept"].max() < top.loc[10.0, "kept"]
    minimal = red.minimal.set_index("hook_name")
    # (two planted units + the intercept already separate three classes)
    assert minimal.loc[H1, "percent"] <= 10.0 and minimal.loc[H1, "k"] <= 3
    assert minimal.loc[H1, "kept"] >= 0.97 and minimal.loc[H1, "threshold"] == 0.97
    assert ALL in minimal.index and pd.isna(minimal.loc[ALL, "layer"])
    n1 = red.neurons.query("scope == 'layer' and hook_name == @H1")
    assert set(n1["neuron"]) <= set(UNITS) and n1["rank"].tolist() == list(range(len(n1)))
    # the all-hooks probe finds the planted units on H1, not on the noise hook
    n_all = red.neurons.query("scope == 'all'")
    assert len(n_all) == minimal.loc[ALL, "k"]
    assert set(UNITS) <= set(n_all.query("hook_name == @H1")["neuron"])
    assert set(n_all["layer"]) <= {0, 1}


def test_redundancy_determinism_and_seeds(planted) -> None:  # type: ignore[no-untyped-def]
    acts, res = planted
    kw = dict(percents=[10, 50], n_random=1, all_hooks=False)
    a = redundancy(res, acts, seed=1, **kw)  # type: ignore[arg-type]
    b = redundancy(res, acts, seed=1, **kw)  # type: ignore[arg-type]
    c = redundancy(res, acts, seed=2, **kw)  # type: ignore[arg-type]
    for attr in ("table", "minimal", "neurons"):
        assert getattr(a, attr).to_csv() == getattr(b, attr).to_csv()
    rand = "selection == 'random' and percent < 100"
    assert a.table.query(rand)["accuracy"].tolist() != c.table.query(rand)["accuracy"].tolist()
    top = "selection == 'top'"
    assert a.table.query(top).to_csv() == c.table.query(top).to_csv()  # top-k ignores the seed


def test_redundancy_bad_input(planted) -> None:  # type: ignore[no-untyped-def]
    acts, res = planted
    with pytest.raises(ValueError, match="percents"):
        redundancy(res, acts, percents=[0, 10])
    with pytest.raises(ValueError, match="percents"):
        redundancy(res, acts, percents=[150])
    with pytest.raises(ValueError, match="threshold"):
        redundancy(res, acts, threshold=1.5)
    with pytest.raises(ValueError, match="n_random"):
        redundancy(res, acts, n_random=-1)
    with pytest.raises(ValueError, match="cached examples"):
        redundancy(res, acts.subset(np.arange(10)))
