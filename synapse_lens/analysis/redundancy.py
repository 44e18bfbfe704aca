"""Redundancy (Dalvi et al. 2020): how much of a probe's accuracy survives when it is retrained
on only the top-p % of neurons, per hook point and across all probed hooks together, and the
smallest neuron set keeping >= 97 % of the full probe's accuracy.

Example:
    >>> red = redundancy(fit_probes(acts, ds), acts, seed=0)  # doctest: +SKIP
    >>> red.minimal  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from synapse_lens.activations import ClsActivations
from synapse_lens.analysis.probes import ProbeResults, check_activations, coef_scores, fit_probe
from synapse_lens.schema import ALL_HOOKS

DEFAULT_PERCENTS: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 75.0,
                                       100.0)
REDUNDANCY_COLUMNS = ["scope", "hook_name", "layer", "selection", "draw", "percent", "k",
                      "width", "accuracy", "full_accuracy", "kept"]
MINIMAL_COLUMNS = ["scope", "hook_name", "layer", "percent", "k", "width", "accuracy",
                   "full_accuracy", "kept", "threshold", "random_kept", "constant"]
NEURON_COLUMNS = ["scope", "hook_name", "layer", "neuron", "rank"]


@dataclass(frozen=True, eq=False)
class Redundancy:
    """Result of :func:`redundancy`.

    Attributes:
        table: accuracy vs percent of neurons kept. Columns ``scope`` (``"layer"`` / ``"all"``),
            ``hook_name`` (``"__all__"`` for the all-hooks scope), ``layer`` (nullable int; NA for
            ``"all"``), ``selection`` (``"top"`` by the probe's global ranking, ``"random"``),
            ``draw`` (random draw index, 0 for ``"top"``), ``percent``, ``k`` (neurons kept),
            ``width`` (neurons available), ``accuracy`` (test), ``full_accuracy`` (all neurons),
            ``kept`` (= accuracy / full_accuracy).
        minimal: per scope/hook the smallest percent of the grid whose top-k probe keeps
            ``>= threshold`` of the full accuracy; columns ``scope``, ``hook_name``, ``layer``,
            ``percent``, ``k``, ``width``, ``accuracy``, ``full_accuracy``, ``kept``,
            ``threshold``, ``random_kept`` (the mean ``kept`` of the random draws of the same
            size: the baseline the minimal set must beat), ``constant`` (the hook's [CLS] does
            not vary over the examples: nothing there can carry the label).
        neurons: the neurons of each minimal set as coordinates; columns ``scope``,
            ``hook_name``, ``layer``, ``neuron``, ``rank`` (0 = most important in its scope).
    """

    table: pd.DataFrame
    minimal: pd.DataFrame
    neurons: pd.DataFrame


def _k_of(percent: float, width: int) -> int:
    return max(1, min(width, math.ceil(percent / 100.0 * width - 1e-9)))


def _accuracy(x: np.ndarray, results: ProbeResults, cols: np.ndarray) -> float:
    y, train, test = results.labels, results.train_idx, results.test_idx
    probe = fit_probe(x[train][:, cols], y[train], results.config)
    return float((probe.predict(x[test][:, cols]) == y[test]).mean())


def _scope_rows(
    scope: str, hook: str, layer: int | None, x: np.ndarray, order: np.ndarray,
    results: ProbeResults, percents: list[float], n_random: int, seed: int,
) -> tuple[list[tuple], float]:
    width = x.shape[1]
    full = _accuracy(x, results, np.arange(width))
    cache: dict[tuple[str, int, int], float] = {}
    perms = [np.random.default_rng([seed, r, width]).permutation(width) for r in range(n_random)]
    rows = []
    for p in percents:
        k = _k_of(p, width)
        picks = [("top", 0, order[:k])] + [("random", r, perm[:k]) for r, perm in
                                           enumerate(perms)]
        for selection, draw, chosen in picks:
            key = (selection, draw, k)
            if key not in cache:  # columns in ascending order: 100 % == the full probe exactly
                cache[key] = _accuracy(x, results, np.sort(chosen))
            acc = cache[key]
            rows.append((scope, hook, layer, selection, draw, float(p), k, width, acc, full,
                         acc / full if full > 0 else float("nan")))
    return rows, full


def redundancy(
    results: ProbeResults,
    acts: ClsActivations,
    *,
    percents: Sequence[float | int] = DEFAULT_PERCENTS,
    threshold: float = 0.97,
    all_hooks: bool = True,
    n_random: int = 3,
    seed: int = 0,
    progress: bool = False,
) -> Redundancy:
    """Retrain probes on the top-p % neurons (and random p % baselines) and find the smallest
    set keeping ``threshold`` of the full accuracy (Dalvi et al. 2020).

    Per hook the neurons are ordered by the fitted probe's global ranking; for the all-hooks
    scope one probe is fitted on the concatenated (standardised) features of every probed hook
    and ranked the same way. Every retrained probe uses ``results.config`` and split; the
    selected columns keep their original order, so 100 % reproduces the full probe exactly.
    The minimal set is searched on the ``percents`` grid (100 % is always included).

    Args:
        results: fitted probes (:func:`~synapse_lens.analysis.probes.fit_probes`).
        acts: the activations they were fitted on.
        percents: percentages of neurons to keep, each in (0, 100].
        threshold: fraction of the full accuracy to keep, in (0, 1].
        all_hooks: also run the all-hooks scope.
        n_random: random draws per percent (0 disables the baseline).
        seed: seeds the random baseline (``np.random.default_rng([seed, draw, width])``).
        progress: tqdm progress bar.

    Returns:
        :class:`Redundancy` with ``table``, ``minimal`` and ``neurons`` DataFrames.

    Raises:
        ValueError: activations that do not match ``results``, bad percents / threshold.

    Example:
        >>> red = redundancy(results, acts, percents=[5, 10, 100], n_random=1)  # doctest: +SKIP
    """
    check_activations(results, acts)
    grid = sorted({float(p) for p in percents} | {100.0})
    if any(not 0 < p <= 100 for p in grid):
        raise ValueError(f"percents must lie in (0, 100], got {list(percents)}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 0:
        raise ValueError(f"n_random must be an int >= 0, got {n_random!r}")
    scopes: list[tuple[str, str, int | None, np.ndarray, np.ndarray, list[tuple[str, int]]]] = []
    for name in results.names:
        x = acts.numpy(name)
        coords = [(name, i) for i in range(x.shape[1])]
        scopes.append(("layer", name, results.layers[name], x, results.ranking(name).order(),
                       coords))
    if all_hooks and len(results.names) > 1:
        x = np.concatenate([acts.numpy(n) for n in results.names], axis=1)
        probe = fit_probe(x[results.train_idx], results.labels[results.train_idx],
                          results.config)
        scores = coef_scores(np.asarray(probe[-1].coef_, np.float64), probe[-1].classes_, None)
        coords = [(n, i) for n in results.names for i in range(acts[n].shape[1])]
        scopes.append(("all", ALL_HOOKS, None, x, np.argsort(-scores, kind="stable"), coords))
    rows, minimal, neurons = [], [], []
    for scope, hook, layer, x, order, coords in tqdm(scopes, desc="redundancy",
                                                     disable=not progress):
        scope_rows, full = _scope_rows(scope, hook, layer, x, order, results, grid, n_random,
                                       seed)
        rows.extend(scope_rows)
        best = next(r for r in scope_rows if r[3] == "top" and r[8] >= threshold * full)
        rand = [r[10] for r in scope_rows if r[3] == "random" and r[6] == best[6]]
        minimal.append((scope, hook, layer, best[5], best[6], best[7], best[8], full, best[10],
                        threshold, float(np.mean(rand)) if rand else np.nan,
                        bool(np.all(x.std(axis=0) == 0))))
        for rank, flat in enumerate(order[: best[6]]):
            coord_hook, neuron = coords[flat]
            neurons.append((scope, coord_hook, results.layers[coord_hook], neuron, rank))
    table = pd.DataFrame(rows, columns=REDUNDANCY_COLUMNS).astype({"layer": "Int64"})
    return Redundancy(
        table,
        pd.DataFrame(minimal, columns=MINIMAL_COLUMNS).astype({"layer": "Int64"}),
        pd.DataFrame(neurons, columns=NEURON_COLUMNS),
    )
