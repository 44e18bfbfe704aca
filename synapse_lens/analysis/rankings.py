"""Neuron rankings tied to hook points: global or per class, from a probe or probeless.

A :class:`Ranking` holds one score per unit of one hook point (higher = more important) and
turns it into top / bottom / random neuron sets with deterministic tie-breaks (equal scores:
lower neuron id first). :func:`probeless_ranking` scores units by class-mean differences
(Antverg & Belinkov 2022); :func:`ranking_agreement` compares two rankings by top-k overlap.

Example:
    >>> r = Ranking("blocks.0.hook_resid_post", 0, np.array([0.1, 3.0, 0.5]))
    >>> r.top(2).tolist()
    [1, 2]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from jaxtyping import Float, Int

from synapse_lens.schema import GLOBAL

Method = Literal["probe", "probe_contribution", "probeless", "attribution", "exact"]
RANKING_COLUMNS = ["hook_name", "layer", "neuron", "class", "method", "score", "rank"]


@dataclass(frozen=True, eq=False)
class Ranking:
    """Importance scores of the units of one hook point.

    Attributes:
        hook_name: the hook point (``info.names`` spelling).
        layer: its depth (``info.names.layer_of(hook_name)``).
        scores: ``float64 [d]``, higher = more important.
        target: a class name for per-class rankings, :data:`GLOBAL` for all classes together.
        method: ``"probe"`` (probe coefficients) or ``"probeless"`` (class-mean differences).

    Raises:
        ValueError: scores not 1-D, empty, or not finite.
    """

    hook_name: str
    layer: int
    scores: Float[np.ndarray, " d"]
    target: str = GLOBAL
    method: str = "probe"

    def __post_init__(self) -> None:
        scores = np.asarray(self.scores, dtype=np.float64).copy()
        if scores.ndim != 1 or scores.size == 0:
            raise ValueError(f"scores must be a non-empty 1-D array, got shape {scores.shape}")
        if not np.all(np.isfinite(scores)):
            raise ValueError(f"scores of {self.hook_name!r} contain NaN or inf")
        scores.flags.writeable = False
        object.__setattr__(self, "scores", scores)

    def __repr__(self) -> str:
        top = ", ".join(str(int(u)) for u in self.top(min(5, self.width)))
        return (f"Ranking(hook_name={self.hook_name!r}, layer={self.layer}, "
                f"target={self.target!r}, method={self.method!r}, width={self.width}, "
                f"top=[{top}{', ...' if self.width > 5 else ''}])")

    @property
    def width(self) -> int:
        """Number of units."""
        return int(self.scores.size)

    def order(self) -> Int[np.ndarray, " d"]:
        """Neuron ids by descending score; ties -> lower neuron id first."""
        return np.argsort(-self.scores, kind="stable").astype(np.int64)

    def _check_k(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"k must be an int, got {type(k).__name__}")
        if not 0 <= k <= self.width:
            raise ValueError(f"k={k} is out of range for {self.hook_name!r}: "
                             f"0 <= k <= width ({self.width})")
        return int(k)

    def top(self, k: int) -> Int[np.ndarray, " k"]:
        """The ``k`` most important neuron ids (most important first).

        Raises:
            ValueError: ``k < 0`` or ``k > width``.
        """
        return self.order()[: self._check_k(k)]

    def bottom(self, k: int) -> Int[np.ndarray, " k"]:
        """The ``k`` least important neuron ids (least important first; ties -> higher id
        first, the exact reverse of :meth:`order`)."""
        k = self._check_k(k)
        return self.order()[::-1][:k].copy()

    def random(self, k: int, seed: int) -> Int[np.ndarray, " k"]:
        """``k`` distinct neuron ids drawn uniformly with ``np.random.default_rng(seed)``."""
        k = self._check_k(k)
        return np.random.default_rng(seed).permutation(self.width)[:k].astype(np.int64)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per neuron, sorted by rank.

        Columns: ``hook_name`` (str), ``layer`` (int), ``neuron`` (int), ``class`` (class name
        or ``"__global__"``), ``method`` (``"probe"``/``"probeless"``), ``score`` (float),
        ``rank`` (int, 0 = most important).
        """
        order = self.order()
        return pd.DataFrame({
            "hook_name": self.hook_name,
            "layer": np.full(self.width, self.layer, dtype=np.int64),
            "neuron": order,
            "class": self.target,
            "method": self.method,
            "score": self.scores[order],
            "rank": np.arange(self.width, dtype=np.int64),
        })[RANKING_COLUMNS]


def rankings_frame(rankings: Iterable[Ranking]) -> pd.DataFrame:
    """Concatenate :meth:`Ranking.to_frame` tables, sorted by layer, hook_name, method, class,
    rank (stable). Columns as :meth:`Ranking.to_frame`.

    Example:
        >>> rankings_frame(results.rankings()).head()  # doctest: +SKIP
    """
    frames = [r.to_frame() for r in rankings]
    if not frames:
        return pd.DataFrame({c: [] for c in RANKING_COLUMNS})
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values(["layer", "hook_name", "method", "class", "rank"],
                          kind="stable").reset_index(drop=True)


def _class_means(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    present = np.unique(labels)
    if present.size < 2:
        raise ValueError("a probeless ranking needs at least two classes present in labels")
    return np.stack([x[labels == c].mean(axis=0) for c in present]), present


def probeless_scores(
    x: Float[np.ndarray, "n d"],
    labels: Int[np.ndarray, " n"],
    target: int | None = None,
    standardize: bool = False,
) -> Float[np.ndarray, " d"]:
    """Probeless scores (Antverg & Belinkov 2022) from activations and class ids.

    Global (``target=None``): the sum over class pairs of ``|mean_c - mean_c'|`` per unit.
    Per class: ``mean_target - mean_rest`` (signed: positive = evidence for the class).

    Args:
        x: activations ``[n, d]``.
        labels: class ids ``[n]``.
        target: class id for a per-class score, or None.
        standardize: divide each unit by its standard deviation first (comparable with
            standardised probe coefficients); the paper uses raw activations (False).

    Returns:
        ``float64 [d]`` scores.

    Raises:
        ValueError: fewer than two classes, length mismatch, a target class with no example.
    """
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels)
    if x.ndim != 2 or x.shape[0] != labels.shape[0]:
        raise ValueError(f"x [n, d] and labels [n] must match, got {x.shape} and {labels.shape}")
    if standardize:
        std = x.std(axis=0)
        x = x / np.where(std > 0, std, 1.0)
    means, present = _class_means(x, labels)
    if target is None:
        total = np.zeros(x.shape[1])
        for i in range(len(present)):
            for j in range(i + 1, len(present)):
                total += np.abs(means[i] - means[j])
        return total
    if target not in present:
        raise ValueError(f"class id {target} has no example in labels")
    return x[labels == target].mean(axis=0) - x[labels != target].mean(axis=0)


def probeless_ranking(
    acts: Any,
    labels: Sequence[int] | np.ndarray,
    hook_name: str,
    target: str = GLOBAL,
    *,
    label_names: Sequence[str],
    standardize: bool = False,
) -> Ranking:
    """A probeless :class:`Ranking` of one cached hook (class-mean differences).

    Args:
        acts: :class:`~synapse_lens.activations.ClsActivations`.
        labels: class ids ``[n]`` (``TextDataset.labels``).
        hook_name: a cached hook.
        target: a class name, or :data:`GLOBAL`.
        label_names: class names, index = class id.
        standardize: see :func:`probeless_scores`.

    Returns:
        A ranking with ``method="probeless"``.

    Raises:
        ValueError: unknown hook or class, label count mismatch, fewer than two classes.

    Example:
        >>> probeless_ranking(acts, ds.labels, name, "spam",
        ...                   label_names=ds.label_names)  # doctest: +SKIP
    """
    names = [str(n) for n in label_names]
    if target != GLOBAL and target not in names:
        raise ValueError(f"unknown class {target!r}; classes are {names} or {GLOBAL!r}")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (acts.n,):
        raise ValueError(f"{labels.shape[0]} labels for {acts.n} cached examples")
    scores = probeless_scores(acts.numpy(hook_name), labels,
                              None if target == GLOBAL else names.index(target), standardize)
    return Ranking(hook_name, acts.layer(hook_name), scores, target, "probeless")


def ranking_agreement(
    a: Sequence[Ranking], b: Sequence[Ranking], ks: Sequence[int]
) -> pd.DataFrame:
    """Top-k overlap between paired rankings (e.g. probe vs probeless, same hook and class).

    Args:
        a, b: rankings paired by ``(hook_name, target)``; every pair must share a width.
        ks: set sizes (each ``0 < k <= width``; sizes beyond a hook's width are skipped).

    Returns:
        Tidy table with columns ``hook_name``, ``layer``, ``class``, ``method_a``, ``method_b``,
        ``k``, ``overlap`` (``|top_k(a) ∩ top_k(b)| / k``), ``jaccard``, ``chance`` (expected
        overlap of two random k-sets, ``k / width``); sorted by layer, hook_name, class, k.

    Raises:
        ValueError: unpaired rankings, width mismatch, ``k <= 0``.

    Example:
        >>> ranking_agreement(probe_rankings, probeless_rankings, [5, 10])  # doctest: +SKIP
    """
    index_b = {(r.hook_name, r.target): r for r in b}
    rows = []
    for ra in a:
        rb = index_b.get((ra.hook_name, ra.target))
        if rb is None:
            raise ValueError(f"no ranking for {(ra.hook_name, ra.target)} in b to compare")
        if rb.width != ra.width:
            raise ValueError(f"width mismatch at {ra.hook_name}: {ra.width} vs {rb.width}")
        for k in ks:
            if k <= 0:
                raise ValueError(f"k must be positive, got {k}")
            if k > ra.width:
                continue
            sa, sb = set(ra.top(k).tolist()), set(rb.top(k).tolist())
            inter = len(sa & sb)
            rows.append({"hook_name": ra.hook_name, "layer": ra.layer, "class": ra.target,
                         "method_a": ra.method, "method_b": rb.method, "k": int(k),
                         "overlap": inter / k, "jaccard": inter / len(sa | sb),
                         "chance": k / ra.width})
    df = pd.DataFrame(rows, columns=["hook_name", "layer", "class", "method_a", "method_b", "k",
                                     "overlap", "jaccard", "chance"])
    return df.sort_values(["layer", "hook_name", "class", "k"], kind="stable").reset_index(
        drop=True)
