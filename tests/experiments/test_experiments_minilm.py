"""End to end on the offline all-MiniLM-L6-v2 encoder: every experiment table from one small
SMS sample (64 texts), with progress bars, and the model untouched afterwards."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from synapse_lens import ExecOptions, classifier_info, load_classifier
from synapse_lens.activations import cache_cls
from synapse_lens.analysis.rankings import GLOBAL, probeless_ranking
from synapse_lens.data import TextDataset
from synapse_lens.experiments.suite import StressConfig, run_stress_tests
from synapse_lens.models import minilm_path

N_PER_CLASS = 32
MAX_LENGTH = 64


@pytest.fixture(scope="module")
def sms_model() -> tuple[object, TextDataset]:
    """MiniLM with a logistic-regression head fitted on the last layer's [CLS] of the sample
    (a quick stand-in for a fine-tuned classifier)."""
    from sklearn.linear_model import LogisticRegression

    from synapse_lens.demo.datasets import read_sms_spam

    sms = read_sms_spam()
    texts, labels, names = sms.texts, sms.labels, sms.label_names
    rng = np.random.default_rng(0)
    pick = np.concatenate([rng.choice(np.flatnonzero(labels == c), N_PER_CLASS, replace=False)
                           for c in (0, 1)])
    data = TextDataset(tuple(texts[i] for i in pick), labels[pick], names, "sms-sample")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        head = nn.Linear(384, 2)
    reader = load_classifier(minilm_path(), head=head, id2label=list(names))
    last = classifier_info(reader).names.resid_post(5)
    x = cache_cls(reader, data.texts, names=[last],
                  options=ExecOptions(max_length=MAX_LENGTH, progress=False))[last]
    fit = LogisticRegression(C=1.0, max_iter=2000).fit(x.numpy(), data.labels)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.weight[1] = torch.as_tensor(fit.coef_[0], dtype=torch.float32)
        head.bias[1] = float(fit.intercept_[0])
    return load_classifier(minilm_path(), head=head, id2label=list(names)), data


def _attached_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(getattr(m, "fwd_hooks", []) or [])
               for m in model.modules())


@pytest.mark.minilm
def test_all_tables_end_to_end(sms_model, capsys) -> None:  # type: ignore[no-untyped-def]
    model, data = sms_model
    info = classifier_info(model)
    snap = {n: p.detach().clone() for n, p in model.named_parameters()}
    hooks_before = _attached_hooks(model)
    start = time.perf_counter()
    acts = cache_cls(model, data.texts, options=ExecOptions(max_length=MAX_LENGTH, progress=False))
    hooks = [info.names.resid_post(3), info.names.resid_post(5)]
    rankings = [probeless_ranking(acts, data.labels, hooks[1], GLOBAL,
                                  label_names=data.label_names)]
    rankings += [probeless_ranking(acts, data.labels, h, t, label_names=data.label_names)
                 for h in hooks for t in data.label_names]
    config = StressConfig(ks=(0, 16), n_seeds=5, class_k=16, noise_k=16, sigmas=(0.0, 2.0),
                          noise_seeds=1, weight_k=16, eps_values=(0.0, 0.5), weight_seeds=1,
                          biases=(0.0, 1.0, 4.0))
    tables = run_stress_tests(model, data, rankings, config, stats=acts,
                              options=ExecOptions(batch_size=32, max_length=MAX_LENGTH))
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nMiniLM end-to-end ({len(data)} texts, all tables): {elapsed:.1f} s")

    assert set(tables) == {"ablation", "ablation_summary", "class_matrix", "class_asymmetry",
                           "overlap", "noise", "noise_summary", "redirection",
                           "redirection_logit", "minimal_bias"}
    for name, table in tables.items():
        assert len(table) > 0, name
        assert not table.columns.duplicated().any(), name
    abl = tables["ablation_summary"]
    clean_acc = abl[(abl.metric == "accuracy")].clean_value.iloc[0]
    assert clean_acc >= 0.9  # the fitted head classifies its own sample
    assert set(abl.order) == {"top", "random", "bottom"} and set(abl.k) == {0, 16}
    random_rows = abl[(abl.order == "random") & (abl.k == 16)]
    assert (random_rows.n == 5).all() and (random_rows.ci_low <= random_rows.ci_high).all()
    assert set(tables["class_matrix"].ablated_class) == {"ham", "spam", "__random__"}
    assert set(tables["overlap"].scope) == {"within_layer", "across_layers"}
    assert set(tables["noise"].units) == {"top", "random", "all"}
    assert set(tables["redirection"].edit) == {"top_units", "random_units", "class_row"}
    mb = tables["minimal_bias"]
    assert len(mb) == 2 * len(data) and (mb[mb.target == "__flip__"].bias >= 0).all()
    err = capsys.readouterr().err
    assert "ablation curve" in err and "noise curve" in err  # tqdm progress bars
    assert _attached_hooks(model) == hooks_before
    for n, p in model.named_parameters():
        assert torch.equal(p, snap[n]), n
