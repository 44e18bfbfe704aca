"""The experiment engine and the named sweeps on tiny models: planted units, identities,
determinism, model hygiene after (failing) experiments, closed-form redirection."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from synapse_lens import ExecOptions, classifier_info, load_classifier
from synapse_lens.activations import cache_cls, predict_logits
from synapse_lens.analysis.rankings import GLOBAL, Ranking
from synapse_lens.data import TextDataset
from synapse_lens.experiments.classwise import RANDOM, class_asymmetry, class_matrix, topk_overlap
from synapse_lens.experiments.engine import (
    CLEAN_KEY,
    Condition,
    clean_run,
    run_conditions,
    summarize,
)
from synapse_lens.experiments.redirect import (
    logit_redirection,
    minimal_biases,
    redirection,
    weight_redirection,
)
from synapse_lens.experiments.sweeps import ablation_curve, noise_curve
from synapse_lens.interventions.edits import logit_bias, minimal_redirect_bias
from synapse_lens.interventions.selection import Intervention, ranking_hooks
from synapse_lens.testing import TINY_WORDS, tiny_hf_classifier, tiny_tokenizer

D = 128  # wide last layer: a random 2-set rarely hits the 2 planted units
ML = 64  # the tiny models' position table


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(TINY_WORDS, size=int(rng.integers(3, 12)))) for _ in range(n)]


@pytest.fixture(scope="module")
def planted() -> dict[str, Any]:
    """A tiny BERT whose linear [CLS] head reads only 2 planted units of the last layer
    (the two with the largest [CLS] variance), thresholded at the median so that the
    classes are balanced; labels are the model's own clean predictions."""
    texts = _texts(40, seed=0)
    encoder = tiny_hf_classifier("bert", with_head=False, d_model=D, n_heads=4, d_mlp=64, seed=5)
    tokenizer = tiny_tokenizer("bert")
    reader = load_classifier(encoder, tokenizer, head=nn.Linear(D, 2), pooling="cls")
    last = classifier_info(reader).names.resid_post(1)
    acts = cache_cls(reader, texts, names=[last],
                     options=ExecOptions(max_length=ML, progress=False))[last]
    std = acts.std(dim=0)
    units = torch.argsort(std, descending=True)[:2]
    weights = 1.0 / std[units]
    head = nn.Linear(D, 2)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.weight[1, units] = weights
        head.bias[1] = -(acts[:, units] @ weights).median()
    model = load_classifier(encoder, tokenizer, head=head, pooling="cls", id2label=["neg", "pos"])
    labels = predict_logits(model, texts, options=ExecOptions(max_length=ML)).argmax(1).numpy()
    scores = np.random.default_rng(1).uniform(0.0, 1.0, D)
    scores[units.numpy()] = [3.0, 2.0]
    ranking = Ranking(last, 1, scores)
    return {"model": model, "data": TextDataset(tuple(texts), labels, ("neg", "pos")),
            "ranking": ranking, "units": sorted(units.tolist())}


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _attached_hooks(model: nn.Module) -> int:
    count = 0
    for module in model.modules():
        count += len(module._forward_hooks) + len(module._backward_hooks)
        count += len(getattr(module, "fwd_hooks", []) or [])
        count += len(getattr(module, "bwd_hooks", []) or [])
    return count


def _assert_pristine(model: nn.Module, snap: dict[str, torch.Tensor], n_hooks: int) -> None:
    assert _attached_hooks(model) == n_hooks
    params = dict(model.named_parameters())
    assert params.keys() == snap.keys()
    for name, p in params.items():
        assert torch.equal(p, snap[name]), name


def _value(df: pd.DataFrame, **where: Any) -> np.ndarray:
    mask = np.ones(len(df), dtype=bool)
    for col, val in where.items():
        mask &= (df[col] == val).to_numpy()
    return df.loc[mask, "value"].to_numpy()


def test_planted_units_top_k_destroys_random_k_barely_moves(planted: dict) -> None:
    model, data, ranking = planted["model"], planted["data"], planted["ranking"]
    assert sorted(ranking.top(2).tolist()) == planted["units"]
    assert 0.4 <= data.labels.mean() <= 0.6  # balanced classes
    df = ablation_curve(model, data, [ranking], [0, 2], n_seeds=5,
                        options=ExecOptions(progress=False, max_length=ML))
    acc = {order: _value(df, metric="accuracy", order=order, k=2)
           for order in ("top", "random", "bottom")}
    assert (_value(df, metric="accuracy", k=0) == 1.0).all()
    assert acc["top"].item() <= 0.6  # the head reads nothing left: constant prediction
    assert len(acc["random"]) == 5 and acc["random"].min() >= 0.95  # every seed
    assert acc["random"].min() - acc["top"].item() >= 0.35  # clear margin
    assert acc["bottom"].item() == 1.0
    flips = _value(df, metric="flip_rate", order="top", k=2).item()
    assert flips == pytest.approx(1.0 - acc["top"].item())  # labels = clean predictions
    assert _value(df, metric="kl", order="top", k=2).item() > 0.01
    summary = summarize(df)
    row = summary[(summary.order == "random") & (summary.k == 2) & (summary.metric == "accuracy")]
    assert row["n"].item() == 5 and row["ci_low"].item() <= row["mean"].item() <= row[
        "ci_high"].item()


def test_table_columns_determinism_and_identity(planted: dict) -> None:
    model, data, ranking = planted["model"], planted["data"], planted["ranking"]
    kwargs = dict(n_seeds=2, orders=("top", "random"),
                  options=ExecOptions(progress=False, max_length=ML))
    a = ablation_curve(model, data, [ranking], [0, 3], **kwargs)  # type: ignore[arg-type]
    b = ablation_curve(model, data, [ranking], [0, 3], **kwargs)  # type: ignore[arg-type]
    assert list(a.columns) == ["hook_name", "layer", "ranking", "method", "position", "order", "k",
                               "seed", "metric", "class", "value", "clean_value"]
    assert a.to_csv(index=False) == b.to_csv(index=False)
    assert set(a.metric) == {"accuracy", "macro_f1", "flip_rate", "true_prob", "kl"}
    assert (a.ranking == GLOBAL).all() and a.seed[a.order == "top"].isna().all()
    identity = a[a.k == 0]
    assert (identity.value == identity.clean_value).all()
    assert (a.clean_value[a.metric == "accuracy"] == 1.0).all()
    # an identity condition really run (no CLEAN_KEY shortcut) equals the clean run
    really = run_conditions(model, data, [Condition({"k": 0}, lambda: ranking_hooks(
        model, ranking, 0))], options=ExecOptions(progress=False, max_length=ML))
    assert (really.value == really.clean_value).all()


def test_summary_interval_is_a_t_interval() -> None:
    df = pd.DataFrame({"k": [1] * 5 + [2], "seed": [0, 1, 2, 3, 4, None], "metric": "m",
                       "value": [0.1, 0.3, 0.2, 0.4, 0.5, 0.7], "clean_value": 1.0})
    s = summarize(df)
    row = s[s.k == 1].iloc[0]
    values = np.array([0.1, 0.3, 0.2, 0.4, 0.5])
    half = 2.7764451051977987 * values.std(ddof=1) / math.sqrt(5)  # t_{0.975, 4}
    assert row["n"] == 5 and row["mean"] == pytest.approx(0.3)
    assert row["ci_low"] == pytest.approx(0.3 - half) and row["ci_high"] == pytest.approx(
        0.3 + half)
    single = s[s.k == 2].iloc[0]
    assert single["ci_low"] == single["ci_high"] == single["mean"] == 0.7


def test_model_pristine_after_experiments_even_when_they_raise(planted: dict) -> None:
    model, data, ranking = planted["model"], planted["data"], planted["ranking"]
    snap, n_hooks = _snapshot(model), _attached_hooks(model)
    clean = clean_run(model, data, options=ExecOptions(max_length=ML))
    weight_redirection(model, data, [ranking], 4, [0.0, 0.5], n_seeds=1, clean=clean,
                       options=ExecOptions(progress=False, max_length=ML))
    _assert_pristine(model, snap, n_hooks)

    def boom(act, hook):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom in hook")

    name = ranking.hook_name
    good = Condition({"i": 0}, lambda: ranking_hooks(model, ranking, 2))
    from synapse_lens.interventions.edits import class_row, perturbed_weights

    edit = Condition({"i": 1}, lambda: ranking_hooks(model, ranking, 2),
                     edit=lambda: perturbed_weights(model, class_row(model, 1), 0.5, seed=0))
    for bad in (Condition({"i": 2}, lambda: [(name, boom)]),
                Condition({"i": 2}, lambda: [(name, boom)],
                          edit=lambda: perturbed_weights(model, class_row(model, 1), 0.5))):
        with pytest.raises(RuntimeError, match="boom in hook"):
            run_conditions(model, data, [good, edit, bad, good], clean=clean,
                           options=ExecOptions(progress=False, max_length=ML))
        _assert_pristine(model, snap, n_hooks)

    def bad_metric(x):  # type: ignore[no-untyped-def]
        raise ValueError("metric failed")

    with pytest.raises(ValueError, match="metric failed"):
        run_conditions(model, data, [edit], metrics={"bad": bad_metric}, clean=clean,
                       options=ExecOptions(progress=False, max_length=ML))
    _assert_pristine(model, snap, n_hooks)
    assert torch.equal(predict_logits(model, data.texts,
                                      options=ExecOptions(max_length=ML)), clean.logits)


def test_noise_curve(planted: dict) -> None:
    model, data, ranking = planted["model"], planted["data"], planted["ranking"]
    kwargs = dict(k=2, n_seeds=2, options=ExecOptions(progress=False, max_length=ML))
    df = noise_curve(model, data, [ranking], [0.0, 3.0], **kwargs)  # type: ignore[arg-type]
    assert list(df.columns) == ["hook_name", "layer", "ranking", "method", "units", "k",
                                "sigma", "seed", "metric", "class", "value", "clean_value"]
    assert set(df.units) == {"top", "random", "all"}
    assert set(df.k[df.units == "all"]) == {D}
    zero = df[df.sigma == 0.0]
    assert (zero.value == zero.clean_value).all()
    flips = {u: _value(df, units=u, sigma=3.0, metric="flip_rate") for u in ("top", "all")}
    assert flips["top"].min() > 0.1 and flips["all"].min() > 0.1
    rand = df[(df.units == "random") & (df.sigma == 3.0) & (df.metric == "flip_rate")]
    assert (rand.value < flips["top"].min()).all()  # random units miss the planted ones
    again = noise_curve(model, data, [ranking], [0.0, 3.0], **kwargs)  # type: ignore[arg-type]
    assert df.to_csv(index=False) == again.to_csv(index=False)


@pytest.fixture(scope="module")
def three_class(tiny_dirs) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    model = load_classifier(tiny_dirs["bert"])
    texts = _texts(30, seed=2)
    labels = predict_logits(model, texts, options=ExecOptions(max_length=ML)).argmax(1).numpy()
    data = TextDataset(tuple(texts), labels, classifier_info(model).id2label)
    acts = cache_cls(model, texts, options=ExecOptions(max_length=ML, progress=False))
    from synapse_lens.analysis.rankings import probeless_ranking

    names = classifier_info(model).names
    rankings = [probeless_ranking(acts, labels, names.resid_post(layer), c,
                                  label_names=data.label_names)
                for layer in (0, 1) for c in data.label_names if (labels == data.label_names.index(
                    c)).any()]
    return {"model": model, "data": data, "rankings": rankings}


def test_class_matrix_and_asymmetry(three_class: dict) -> None:
    model, data, rankings = three_class["model"], three_class["data"], three_class["rankings"]
    last = [r for r in rankings if r.layer == 1]
    m = class_matrix(model, data, last, [3, 6], n_seeds=4,
                     options=ExecOptions(progress=False, max_length=ML))
    assert list(m.columns) == ["hook_name", "layer", "method", "ablated_class", "order", "k",
                               "seed", "metric", "class", "value", "clean_value", "delta"]
    top, rand = m[m.order == "top"], m[m.order == "random"]
    measured = len(np.unique(data.labels))  # per-class metrics: the classes with an example
    assert measured == 2 and set(top["class"]) == {data.label_names[c] for c in set(data.labels)}
    assert len(top) == len(last) * 2 * 2 * measured  # classes x ks x metrics x measured classes
    assert set(rand.ablated_class) == {RANDOM} and len(rand) == 2 * 4 * 2 * measured
    # one entry recomputed by hand
    r = last[0]
    logits = predict_logits(model, data.texts, fwd_hooks=ranking_hooks(model, r, 6),
                            options=ExecOptions(max_length=ML))
    preds = logits.argmax(1).numpy()
    c = data.label_names.index(r.target)
    mask = data.labels == c
    expected = float((preds[mask] == c).mean())
    got = top[(top.ablated_class == r.target) & (top["class"] == r.target) & (top.k == 6)
              & (top.metric == "recall")]
    assert got.value.item() == pytest.approx(expected)
    assert got.delta.item() == pytest.approx(expected - 1.0)  # labels = clean predictions
    probs = torch.softmax(logits.double(), 1).numpy()[mask, c].mean()
    got = top[(top.ablated_class == r.target) & (top["class"] == r.target) & (top.k == 6)
              & (top.metric == "class_true_prob")]
    assert got.value.item() == pytest.approx(probs)
    counts = {name: int((data.labels == i).sum()) for i, name in enumerate(data.label_names)}
    summary = class_asymmetry(m, counts, min_examples=1)
    assert set(summary.columns) >= {"class", "own_drop", "random_low", "random_high",
                                    "collateral", "collateral_classes", "exposed",
                                    "selectivity", "asymmetry", "verdict"}
    assert (summary.metric == "class_true_prob").all()
    for _, row in summary.iterrows():
        diag = top[(top.ablated_class == row["class"]) & (top["class"] == row["class"])
                   & (top.k == row.k) & (top.metric == "class_true_prob")].delta.item()
        assert row.own_drop == pytest.approx(-diag)
        ctrl = -rand[(rand["class"] == row["class"]) & (rand.k == row.k)
                     & (rand.metric == "class_true_prob")].delta
        assert row.random_low <= ctrl.mean() <= row.random_high
        assert row.verdict.startswith("fragile" if row.own_drop > row.random_high
                                      else "redundant")
    assert set(summary.verdict) <= {"fragile", "redundant", "fragile+collateral",
                                    "redundant+collateral"}
    few = class_asymmetry(m, {name: 3 for name in counts})
    assert set(few.verdict) == {"too few examples"}
    with pytest.raises(ValueError, match="per-class rankings"):
        class_matrix(model, data, [Ranking(last[0].hook_name, 1, np.ones(32))], 3)


def test_topk_overlap_exact_values() -> None:
    a = Ranking("h0", 0, np.array([5.0, 4, 3, 2, 1, 0]), "x")
    b = Ranking("h0", 0, np.array([5.0, 0, 4, 3, 2, 1]), "y")
    c = Ranking("h1", 1, np.array([0.0, 1, 2, 3, 4, 5]), "x")
    df = topk_overlap([a, b, c], [1, 2, 6])
    get = df.set_index(["class_a", "layer_b", "class_b", "k"])
    assert get.loc[("x", 0, "y", 2), "jaccard"] == pytest.approx(1 / 3)  # {0,1} vs {0,2}
    assert get.loc[("x", 0, "y", 2), "scope"] == "within_layer"
    assert get.loc[("x", 1, "x", 2), "jaccard"] == 0.0  # {0,1} vs {5,4}
    assert get.loc[("x", 1, "x", 2), "scope"] == "across_layers"
    assert (df[df.k == 6].jaccard == 1.0).all() and (df[df.k == 6].chance == 1.0).all()
    assert df[df.k == 1].chance.to_numpy() == pytest.approx(1 / 6)
    # expected Jaccard of random 2-sets of 6 by enumeration
    import itertools

    sets = list(itertools.combinations(range(6), 2))
    mean_j = np.mean([len(set(s) & set(t)) / len(set(s) | set(t)) for s in sets for t in sets])
    assert df[df.k == 2].chance.to_numpy() == pytest.approx(mean_j)


def test_redirection_tables(planted: dict) -> None:
    model, data, ranking = planted["model"], planted["data"], planted["ranking"]
    names = classifier_info(model).names
    clean = clean_run(model, data, options=ExecOptions(max_length=ML))
    tables = redirection(model, data, [ranking], 2, eps_values=[0.0, 2.0], biases=[0.0, 1.0],
                         n_seeds=2, clean=clean, options=ExecOptions(progress=False, max_length=ML))
    w = tables.weights
    assert list(w.columns) == ["edit", "hook_name", "layer", "target", "k", "eps", "seed",
                               "metric", "class", "value", "clean_value"]
    assert set(w.edit) == {"top_units", "random_units", "class_row"}
    zero = w[w.eps == 0.0]
    assert (zero.value == zero.clean_value).all()
    top = _value(w, edit="top_units", eps=2.0, metric="flip_rate")
    rand = _value(w, edit="random_units", eps=2.0, metric="flip_rate")
    assert top.min() > 0 and rand.max() == 0.0  # planted units' LN entries vs others
    # logit table equals running the bias hook through the engine
    lb = tables.logit_bias
    for target in ("neg", "pos"):
        hooked = run_conditions(model, data, [Condition({"b": 1.0}, lambda t=target: [
            (names.logits, logit_bias(model, t, 1.0))])], metrics=["flip_rate", "accuracy"],
            clean=clean, options=ExecOptions(progress=False, max_length=ML))
        for metric in ("flip_rate", "accuracy"):
            assert _value(lb, target=target, bias=1.0, metric=metric).item() == _value(
                hooked, metric=metric).item()
    # success rate from the closed form: redirected exactly when bias > b*
    for target, t in (("neg", 0), ("pos", 1)):
        thresholds = minimal_redirect_bias(clean.logits, t).numpy()
        others = clean.preds != t
        expected = float(np.mean(thresholds[others] < 1.0))
        assert _value(lb, target=target, bias=1.0, metric="success_rate").item() == expected
    mb = tables.minimal_bias
    assert list(mb.columns) == ["example", "label", "pred", "target", "to_class", "bias"]
    assert len(mb) == len(data) * 2  # the flip row + one other class each (2 classes)
    flip = mb[mb.target == "__flip__"].bias.to_numpy()
    assert (flip >= 0).all()
    assert minimal_biases(clean).equals(mb)


def test_bad_inputs(planted: dict) -> None:
    model, data, ranking = planted["model"], planted["data"], planted["ranking"]
    with pytest.raises(ValueError, match="larger than the layer width"):
        ablation_curve(model, data, [ranking], [D + 1], options=ExecOptions(progress=False))
    with pytest.raises(ValueError, match="n_seeds"):
        ablation_curve(model, data, [ranking], [1], n_seeds=0, options=ExecOptions(progress=False))
    with pytest.raises(ValueError, match="sigmas"):
        noise_curve(model, data, [ranking], [-1.0], k=2, options=ExecOptions(progress=False))
    with pytest.raises(ValueError, match="eps_values"):
        weight_redirection(model, data, [ranking], 2, [-0.1], options=ExecOptions(progress=False))
    with pytest.raises(ValueError, match="not in the model"):
        weight_redirection(model, data, [], 2, [0.1], classes=["spam"],
                           options=ExecOptions(progress=False))
    with pytest.raises(ValueError, match="not in the model"):
        logit_redirection(clean_run(model, data,
                                    options=ExecOptions(max_length=ML)), [1.0], targets=["spam"])
    with pytest.raises(ValueError, match="not a class of the model"):
        ablation_curve(model, data, [Ranking(ranking.hook_name, 1, ranking.scores, "spam")],
                       [1], options=ExecOptions(progress=False))
    with pytest.raises(ValueError, match="unknown metrics"):
        ablation_curve(model, data, [ranking], [1], metrics=["precision"],
                       options=ExecOptions(progress=False, max_length=ML))
    other = TextDataset(data.texts, data.labels, ("a", "b"))
    with pytest.raises(ValueError, match="align_labels"):
        ablation_curve(model, other, [ranking], [1], options=ExecOptions(progress=False))
    with pytest.raises(ValueError, match="has 16 scores"):
        ablation_curve(model, data, [Ranking(ranking.hook_name, 1, np.ones(16))], [1])
    with pytest.raises(ValueError, match="mean-ablation stats from a different model"):
        from synapse_lens.activations import ClsActivations

        acts = cache_cls(model, data.texts[:4], names=[ranking.hook_name],
                         options=ExecOptions(max_length=ML, progress=False))
        foreign = ClsActivations(dict(acts.acts), "feedfacefeedface", None, dict(acts.layers))
        ablation_curve(model, data, [ranking], [1], spec=Intervention("mean"), stats=foreign,
                       options=ExecOptions(progress=False, max_length=ML))
    assert CLEAN_KEY == ("clean",)


def test_stress_config_round_trip_and_tiny_run(planted: dict) -> None:
    import json

    from synapse_lens.experiments.suite import StressConfig, run_stress_tests

    config = StressConfig(ks=(0, 2), n_seeds=2, noise_k=2, sigmas=(0.0, 1.0), noise_seeds=1,
                          weight_k=2, eps_values=(0.0, 1.0), weight_seeds=1)
    again = StressConfig.from_dict({**json.loads(json.dumps(config.to_dict())), "unknown": 1})
    assert again == config
    tables = run_stress_tests(planted["model"], planted["data"], [planted["ranking"]], config,
                              options=ExecOptions(progress=False, max_length=ML))
    # a global ranking only: no class matrix / overlap tables
    assert set(tables) == {"ablation", "ablation_summary", "noise", "noise_summary",
                           "redirection", "redirection_logit", "minimal_bias"}
    with pytest.raises(ValueError, match="no rankings"):
        run_stress_tests(planted["model"], planted["data"], [], config)


def test_per_class_work_follows_the_classes_present() -> None:
    """A 12-class model on data with examples of 2 classes: class rows, per-class metrics,
    logit targets and minimal biases cover those classes (and, for prediction shares, the
    classes the clean model predicts), not the 10 without an example — so tables grow with the
    classes present, not with the model's."""
    from synapse_lens.metrics import score

    names = [f"c{i}" for i in range(12)]
    model = load_classifier(tiny_hf_classifier("bert", n_classes=12, seed=4),
                            tiny_tokenizer("bert"), id2label=names)
    texts = _texts(16, seed=3)
    labels = np.array([0, 5] * 8)
    data = TextDataset(tuple(texts), labels, tuple(names))
    opts = ExecOptions(progress=False, max_length=ML)
    clean = clean_run(model, data, options=opts)
    present = {"c0", "c5"}
    shown = present | {names[p] for p in clean.preds}
    assert len(shown) < len(names)  # the test means something: some classes are left out
    per_class = score(clean.logits, clean, ["recall", "class_true_prob", "pred_share"])
    classes = {m: {c for name, c, _, _ in per_class if name == m} for m in
               ("recall", "class_true_prob", "pred_share")}
    assert classes == {"recall": present, "class_true_prob": present, "pred_share": shown}
    w = weight_redirection(model, data, [], 2, [0.0, 0.5], n_seeds=1, clean=clean,
                           options=opts)
    assert set(w.target) == present
    assert set(w[w.metric == "pred_share"]["class"]) == shown
    assert set(weight_redirection(model, data, [], 2, [0.5], n_seeds=1, clean=clean,
                                  classes=["c3"], options=opts).target) == {"c3"}
    assert set(logit_redirection(clean, [1.0]).target) == present
    mb = minimal_biases(clean)
    assert set(mb.target) <= present | {"__flip__"}
    capped = minimal_biases(clean, targets=["c5"])  # c5: a target where it is not predicted
    assert set(capped.target) <= {"c5", "__flip__"}
    assert len(capped) == len(data) + int((clean.preds != 5).sum())
    assert len(mb) == len(data) + sum(len(present - {names[p]}) for p in clean.preds)
