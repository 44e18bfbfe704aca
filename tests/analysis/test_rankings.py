"""Ranking objects, probeless rankings and agreement tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synapse_lens.analysis.rankings import (
    GLOBAL,
    Ranking,
    probeless_scores,
    ranking_agreement,
    rankings_frame,
)


def test_order_top_bottom_with_ties() -> None:
    r = Ranking("blocks.0.hook_resid_post", 0, np.array([1.0, 3.0, 1.0, 3.0, 0.0]))
    assert r.width == 5
    assert r.order().tolist() == [1, 3, 0, 2, 4]  # ties -> lower neuron id first
    assert r.top(3).tolist() == [1, 3, 0]
    assert r.bottom(2).tolist() == [4, 2]
    assert r.top(0).tolist() == [] and r.top(5).dtype == np.int64
    assert sorted(r.top(5).tolist()) == list(range(5))


def test_random_is_seeded() -> None:
    r = Ranking("h", 0, np.arange(50, dtype=float))
    a, b, c = r.random(10, seed=0), r.random(10, seed=0), r.random(10, seed=1)
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    assert len(set(a.tolist())) == 10 and a.min() >= 0 and a.max() < 50


@pytest.mark.parametrize("k", [-1, 6])
def test_k_out_of_range(k: int) -> None:
    r = Ranking("h", 0, np.zeros(5))
    for fn in (r.top, r.bottom, lambda k: r.random(k, 0)):
        with pytest.raises(ValueError, match=r"0 <= k <= width \(5\)"):
            fn(k)


def test_bad_scores() -> None:
    with pytest.raises(ValueError, match="NaN"):
        Ranking("h", 0, np.array([0.0, np.nan]))
    # ValueError from the check; TypeError from the shape annotation under pytest's jaxtyping
    with pytest.raises((ValueError, TypeError)):
        Ranking("h", 0, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="non-empty"):
        Ranking("h", 0, np.zeros(0))


def test_to_frame_columns_and_ranks() -> None:
    r = Ranking("blocks.1.hook_resid_post", 1, np.array([0.2, 0.9, 0.5]), target="spam")
    df = r.to_frame()
    assert list(df.columns) == ["hook_name", "layer", "neuron", "class", "method", "score",
                                "rank"]
    assert df["neuron"].tolist() == [1, 2, 0] and df["rank"].tolist() == [0, 1, 2]
    assert set(df["class"]) == {"spam"} and set(df["layer"]) == {1}
    both = rankings_frame([r, Ranking("blocks.0.hook_resid_post", 0, np.ones(3))])
    assert both["layer"].tolist() == [0, 0, 0, 1, 1, 1]
    assert both["class"].iloc[0] == GLOBAL


def test_probeless_scores_planted() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 50)
    x = rng.normal(size=(150, 10))
    x[:, 3] += 4.0 * (labels == 1)  # unit 3 fires for class 1
    x[:, 7] -= 4.0 * (labels == 2)  # unit 7 is silenced by class 2
    glob = probeless_scores(x, labels)
    assert set(np.argsort(-glob)[:2].tolist()) == {3, 7}
    per1 = probeless_scores(x, labels, target=1)
    assert int(np.argmax(per1)) == 3
    per2 = probeless_scores(x, labels, target=2)
    assert int(np.argmin(per2)) == 7 and per2[7] < -3
    with pytest.raises(ValueError, match="two classes"):
        probeless_scores(x[:50], labels[:50])


def test_agreement() -> None:
    a = Ranking("h", 0, np.array([5.0, 4, 3, 2, 1, 0]))
    b = Ranking("h", 0, np.array([5.0, 0, 4, 3, 2, 1]), method="probeless")
    df = ranking_agreement([a], [b], [1, 2, 3, 10])
    assert isinstance(df, pd.DataFrame)
    assert df["k"].tolist() == [1, 2, 3]  # k beyond the width is skipped
    assert df["overlap"].tolist() == [1.0, 0.5, 2 / 3]
    assert df["chance"].tolist() == [1 / 6, 2 / 6, 3 / 6]
    with pytest.raises(ValueError, match="no ranking"):
        ranking_agreement([a], [Ranking("other", 0, np.zeros(6))], [1])
