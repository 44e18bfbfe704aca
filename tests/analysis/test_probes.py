"""Per-hook probes: planted signals, control task, determinism, probe vs probeless rankings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from synapse_lens import ExecOptions, classifier_info
from synapse_lens.activations import ClsActivations, cache_cls
from synapse_lens.analysis.probes import ProbeConfig, fit_probes, make_probe
from synapse_lens.analysis.rankings import GLOBAL, ranking_agreement, rankings_frame
from synapse_lens.data import from_lists

H0, H1 = "blocks.0.hook_resid_post", "blocks.1.hook_resid_post"


def planted(n: int = 300, d: int = 24, seed: int = 0) -> tuple[ClsActivations, np.ndarray]:
    """3 classes; unit 2 fires for class 0, unit 5 for class 1, unit 11 for class 2 (hook H1);
    H0 is pure noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x1 = rng.normal(size=(n, d))
    for cls, unit in enumerate((2, 5, 11)):
        x1[:, unit] += 2.5 * (y == cls)
    x0 = rng.normal(size=(n, d))
    acts = ClsActivations({H0: torch.tensor(x0, dtype=torch.float32),
                           H1: torch.tensor(x1, dtype=torch.float32)}, "synthetic", None,
                          {H0: 0, H1: 1})
    return acts, y


def test_planted_multiclass_rankings() -> None:
    acts, y = planted()
    res = fit_probes(acts, y, label_names=["a", "b", "c"])
    assert set(res.ranking(H1).top(3).tolist()) == {2, 5, 11}
    for cls, unit in zip("abc", (2, 5, 11)):
        assert res.ranking(H1, cls).top(1).tolist() == [unit]
    acc = res.table.query("task == 'real' and split == 'test' and metric == 'accuracy'")
    acc = dict(zip(acc["hook_name"], acc["value"]))
    assert acc[H1] > 0.8 and acc[H0] < 0.6  # chance is 1/3
    sel = res.selectivity().query("metric == 'accuracy'").set_index("hook_name")
    assert sel.loc[H1, "selectivity"] > 0.4 and abs(sel.loc[H0, "selectivity"]) < 0.25
    assert list(sel.reset_index().columns) == ["hook_name", "layer", "metric", "real",
                                               "control", "selectivity"]
    # the probeless ranking finds the same units; the two rankings agree on them
    probeless = res.probeless_rankings(acts)
    assert {r.target for r in probeless} == {GLOBAL, "a", "b", "c"}
    pl = {(r.hook_name, r.target): r for r in probeless}
    assert set(pl[(H1, GLOBAL)].top(3).tolist()) == {2, 5, 11}
    agree = ranking_agreement(res.rankings([GLOBAL]), [pl[(h, GLOBAL)] for h in (H0, H1)],
                              [3])
    assert agree.set_index("hook_name").loc[H1, "overlap"] == 1.0
    assert list(agree.columns) == ["hook_name", "layer", "class", "method_a", "method_b", "k",
                                   "overlap", "jaccard", "chance"]


def test_planted_binary_sign() -> None:
    """Unit 4 is positive evidence for 'spam' (class 1), unit 9 for 'ham' (class 0)."""
    rng = np.random.default_rng(1)
    n, d = 200, 16
    y = np.arange(n) % 2
    x = rng.normal(size=(n, d))
    x[:, 4] += 2.0 * (y == 1)
    x[:, 9] += 2.0 * (y == 0)
    acts = ClsActivations({H0: torch.tensor(x, dtype=torch.float32)}, "synthetic", None, {H0: 0})
    res = fit_probes(acts, y, label_names=["ham", "spam"])
    assert res.coef(H0).shape == (1, d)
    assert res.ranking(H0, "spam").top(1).tolist() == [4]
    assert res.ranking(H0, "ham").top(1).tolist() == [9]
    assert res.ranking(H0, "spam").bottom(1).tolist() == [9]
    assert set(res.ranking(H0).top(2).tolist()) == {4, 9}
    np.testing.assert_array_equal(res.ranking(H0, "spam").scores, -res.ranking(H0, "ham").scores)
    pl = {r.target: r for r in res.probeless_rankings(acts)}
    assert pl["spam"].top(1).tolist() == [4] and pl["ham"].top(1).tolist() == [9]


def test_same_seed_same_bytes_different_seed_differs() -> None:
    acts, y = planted()
    a = fit_probes(acts, y, config=ProbeConfig(seed=3))
    b = fit_probes(acts, y, config=ProbeConfig(seed=3))
    c = fit_probes(acts, y, config=ProbeConfig(seed=4))
    assert a.table.to_csv() == b.table.to_csv()
    assert rankings_frame(a.rankings()).to_csv() == rankings_frame(b.rankings()).to_csv()
    assert a.table.to_csv() != c.table.to_csv()  # another split and control permutation
    assert not np.array_equal(a.test_idx, c.test_idx)


def test_table_layout() -> None:
    acts, y = planted(n=90)
    res = fit_probes(acts, y, config=ProbeConfig(control=False))
    assert list(res.table.columns) == ["hook_name", "layer", "task", "split", "metric", "value",
                                       "constant"]
    assert len(res.table) == 2 * 2 * 2  # hooks x splits x metrics
    assert res.table["hook_name"].tolist()[:4] == [H0] * 4
    with pytest.raises(ValueError, match="no control task"):
        res.selectivity()
    frame = rankings_frame(res.rankings())
    assert len(frame) == 2 * 4 * 24 and set(frame["method"]) == {"probe"}


@pytest.mark.parametrize("penalty", ["l2", "l1", "elasticnet"])
def test_make_probe_penalties_without_deprecation(penalty: str) -> None:
    acts, y = planted(n=120)
    x = acts.numpy(H1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        probe = make_probe(penalty, C=0.05, seed=0).fit(x, y)  # type: ignore[arg-type]
    coef = probe[-1].coef_
    assert coef.shape == (3, 24)
    if penalty == "l1":
        assert (coef == 0).mean() > 0.5  # L1 is sparse ...
        assert np.all(np.abs(coef[:, [2, 5, 11]]).max(axis=0) > 0)  # ... but keeps the signal
    elif penalty == "l2":
        assert np.count_nonzero(coef == 0) == 0  # L2 is dense
    # ValueError from the check; TypeError from the Literal annotation under pytest's beartype
    with pytest.raises((ValueError, TypeError), match="penalty"):
        make_probe("l3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="C must be"):
        make_probe("l2", C=0.0)


def test_bad_input() -> None:
    acts, y = planted(n=60)
    with pytest.raises(ValueError, match="59 labels for 60"):
        fit_probes(acts, y[:59])
    with pytest.raises(ValueError, match="single class"):
        fit_probes(acts, np.zeros(60, dtype=int))
    with pytest.raises(ValueError, match="was not cached"):
        fit_probes(acts, y, names=["blocks.7.hook_resid_post"])
    with pytest.raises(ValueError, match="overlap"):
        fit_probes(acts, y, split=([0, 1, 2, 3], [3, 4, 5]))
    with pytest.raises(ValueError, match="has no name"):
        fit_probes(acts, y, label_names=["a", "b"])
    res = fit_probes(acts, y, label_names=["a", "b", "c"], config=ProbeConfig(control=False))
    with pytest.raises(ValueError, match="unknown class 'z'"):
        res.ranking(H1, "z")
    with pytest.raises(ValueError, match="no probe for hook"):
        res.ranking("blocks.3.hook_resid_post")
    with pytest.raises(ValueError, match="0 <= k <= width"):
        res.ranking(H1).top(25)
    with pytest.raises(ValueError, match="test_size"):
        ProbeConfig(test_size=0.0)


def test_tiny_model_end_to_end(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    texts = [f"{w} {f}" for w in ("free cash prize", "the film was good") for f in
             ("now", "call", "really", "so", "too", "very", "then", "again", "once", "here")]
    labels = ["spam"] * 10 + ["ham"] * 10
    ds = from_lists(texts, labels)
    info = classifier_info(tiny_bert)
    acts = cache_cls(tiny_bert, ds.texts, names=[*info.names.layer_outputs(),
                                                 info.names.mlp_post(1)],
                     dataset_fingerprint=ds.fingerprint, options=ExecOptions(progress=False))
    res = fit_probes(acts, ds)
    assert res.names == acts.names and res.label_names == ("ham", "spam")
    assert res.ranking(info.names.mlp_post(1), "spam").width == info.d_mlp
    test_acc = res.table.query("task == 'real' and split == 'test' and metric == 'accuracy'")
    assert test_acc["value"].max() == 1.0  # the words separate the classes trivially
    other = from_lists(texts[::-1], labels[::-1])
    with pytest.raises(ValueError, match="another dataset"):
        fit_probes(acts, other)


def test_constant_hook_is_logged_as_expected_only_at_the_embeddings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The [CLS] embedding is one vector for every text (INFO); a constant layer output is
    suspicious (WARNING). Both probes fall back to the majority class."""
    emb, out = "blocks.0.hook_resid_pre", "blocks.1.hook_resid_post"
    n = 60
    y = np.arange(n) % 2
    constant = torch.ones(n, 8)
    acts = ClsActivations({emb: constant, H0: torch.randn(n, 8, generator=torch.Generator()
                                                          .manual_seed(0)), out: constant},
                          "synthetic", None, {emb: -1, H0: 0, out: 1})
    with caplog.at_level("INFO", logger="synapse_lens.analysis.probes"):
        res = fit_probes(acts, y, label_names=["a", "b"], progress=False)
    levels = {r.getMessage().split()[0]: r.levelname for r in caplog.records
              if "constant" in r.getMessage()}
    assert levels == {emb: "INFO", out: "WARNING"}
    acc = res.table.query("task == 'real' and split == 'test' and metric == 'accuracy'")
    majority = np.bincount(y[res.train_idx]).argmax()
    expected = float(np.mean(y[res.test_idx] == majority))
    assert acc.set_index("hook_name").loc[[emb, out], "value"].tolist() == [expected] * 2


@pytest.mark.parametrize(("n_classes", "penalty"), [(3, "l2"), (2, "l1")])
def test_save_and_load_round_trip_without_pickle(tmp_path, n_classes: int,  # type: ignore[no-untyped-def]
                                                 penalty: str) -> None:
    import json

    from synapse_lens.analysis.probes import load_probes

    acts, y = planted()
    y = y % n_classes
    res = fit_probes(acts, y, label_names=["a", "b", "c"][:n_classes],
                     config=ProbeConfig(penalty=penalty, max_iter=300))  # type: ignore[arg-type]
    path = res.save(tmp_path / "probes")
    assert sorted(p.name for p in path.iterdir()) == ["probes.json", "probes.safetensors",
                                                      "table.csv"]
    assert json.loads((path / "probes.json").read_text())["schema"] == "synapse_lens.probes/1"
    back = load_probes(path)
    assert repr(back) == repr(res) and back.names == res.names and back.config == res.config
    for name in res.names:
        x = acts.numpy(name)
        np.testing.assert_array_equal(back.probes[name].predict_proba(x),
                                      res.probes[name].predict_proba(x))
        for target in res.targets():
            np.testing.assert_array_equal(back.ranking(name, target).scores,
                                          res.ranking(name, target).scores)
    np.testing.assert_array_equal(back.test_idx, res.test_idx)
    assert back.table.equals(res.table)
    np.testing.assert_array_equal(back.selectivity()["selectivity"],
                                  res.selectivity()["selectivity"])
    # a second save refuses to replace them unless asked; other directories are never touched
    with pytest.raises(FileExistsError, match="overwrite"):
        res.save(path)
    res.save(path, overwrite=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError):
        res.save(tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    with pytest.raises(FileNotFoundError, match="no saved probes"):
        load_probes(tmp_path / "mine")
