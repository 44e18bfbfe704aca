"""Named stress-test sweeps over ranked neurons: ablation curves and noise curves.

The class-wise sweeps (class matrix, asymmetry, top-k overlap) are in
:mod:`synapse_lens.experiments.classwise`; weight- and logit-space redirection in
:mod:`synapse_lens.experiments.redirect`.

Each sweep generates :class:`~synapse_lens.experiments.engine.Condition` objects and hands them to
:func:`~synapse_lens.experiments.engine.run_conditions`; conditions that select the same units of
the same hook with the same intervention are run once (e.g. random-k shared by per-class rankings).

Example:
    >>> table = ablation_curve(model, ds, rankings, ks=[5, 20, 80])  # doctest: +SKIP
    >>> summarize(table)  # mean and 95 % interval over random-k seeds  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from synapse_lens.activations import ClsActivations, cache_cls
from synapse_lens.analysis.rankings import Ranking
from synapse_lens.data import TextDataset
from synapse_lens.experiments.engine import CLEAN_KEY, Condition, run_conditions
from synapse_lens.interventions.hooks import HookFn, add_noise
from synapse_lens.interventions.selection import (
    Intervention,
    Order,
    check_rankings,
    check_seeds,
    make_hook,
    select_units,
)
from synapse_lens.metrics import DEFAULT_METRICS, CleanRun, Metric
from synapse_lens.runtime.options import ExecOptions, resolve

NoiseSet = Literal["top", "random", "all"]


def _unit_hooks(
    model: Any, hook_name: str, units: np.ndarray, spec: Intervention, extra: Any
) -> Callable[[], list[tuple[str, HookFn]]]:
    """Deferred hook construction (seeded noise starts fresh at each run). ``extra``: mean
    statistics, or per-unit sigmas for noise."""

    def build() -> list[tuple[str, HookFn]]:
        if spec.kind == "noise":
            return [(hook_name, add_noise(model, hook_name, units, extra, seed=spec.seed,
                                          position=spec.position))]
        return [(hook_name, make_hook(model, hook_name, units, spec, extra))]

    return build


def _check_ks(ks: Sequence[int], rankings: Sequence[Ranking]) -> list[int]:
    out = sorted({int(k) for k in ks})
    if not out:
        raise ValueError("ks is empty")
    for r in rankings:
        for k in out:
            select_units(r, k)  # raises for k < 0 or k > width
    return out


def _stats_for(model: Any, data: TextDataset, names: list[str], stats: ClsActivations | None,
               opts: ExecOptions) -> ClsActivations:
    if stats is None:
        return cache_cls(model, data.texts, names=sorted(set(names)), options=opts.quiet())
    missing = [n for n in names if n not in stats]
    if missing:
        raise ValueError(f"stats do not hold {missing}")
    return stats


def ablation_conditions(
    model: Any, data: TextDataset, rankings: Sequence[Ranking], ks: Sequence[int], *,
    orders: Sequence[Order] = ("top", "random", "bottom"), n_seeds: int = 5, seed: int = 0,
    spec: Intervention | None = None, stats: ClsActivations | None = None,
    options: ExecOptions | None = None,
) -> list[Condition]:
    """The conditions :func:`ablation_curve` runs (same arguments, see there): hand them to
    :func:`~synapse_lens.experiments.engine.run_conditions` to run them with other metrics or
    options, or alongside conditions of your own (``options`` only matter for the [CLS] means
    of a mean ablation without ``stats``)."""
    opts = resolve(options)
    items = check_rankings(model, rankings)
    k_values = _check_ks(ks, items)
    check_seeds(n_seeds)
    spec = Intervention() if spec is None else spec
    if spec.kind == "mean":
        stats = _stats_for(model, data, [r.hook_name for r in items], stats, opts)
    conditions = []
    for r in items:
        for order in orders:
            seeds = [seed + i for i in range(n_seeds)] if order == "random" else [None]
            for k in k_values:
                for s in seeds:
                    units = select_units(r, k, order, 0 if s is None else s)
                    conditions.append(Condition(
                        {"hook_name": r.hook_name, "layer": r.layer, "ranking": r.target,
                         "method": r.method, "position": spec.position, "order": order, "k": k,
                         "seed": s},
                        hooks=_unit_hooks(model, r.hook_name, units, spec, stats),
                        # a set edit: the same units in any order (e.g. k = width) run once
                        key=(CLEAN_KEY if k == 0 else
                             (r.hook_name, tuple(sorted(units.tolist())), spec)),
                    ))
    return conditions


def ablation_curve(
    model: Any,
    data: TextDataset,
    rankings: Sequence[Ranking],
    ks: Sequence[int],
    *,
    orders: Sequence[Order] = ("top", "random", "bottom"),
    n_seeds: int = 5,
    seed: int = 0,
    spec: Intervention | None = None,
    stats: ClsActivations | None = None,
    metrics: Sequence[str] | Mapping[str, Metric] = DEFAULT_METRICS,
    clean: CleanRun | None = None,
    options: ExecOptions | None = None,
) -> pd.DataFrame:
    """Ablate the top-k / random-k / bottom-k units of each ranking, for each k.

    Args:
        model: a model from :func:`synapse_lens.load_classifier`.
        data: labelled texts (classes = the model's).
        rankings: global and/or per-class rankings, e.g. one per layer.
        ks: set sizes (each ``0 <= k <= width``; sorted, duplicates dropped; ``0`` = clean).
        orders: which selections to run.
        n_seeds: random-k repetitions (seeds ``seed .. seed + n_seeds - 1``; >= 5 recommended).
        seed: first random seed.
        spec: what to do to the units (default zero-ablation at [CLS];
            ``Intervention("mean")`` uses ``stats``).
        stats: [CLS] statistics for mean-ablation (computed on ``data`` when None).
        metrics: see :func:`~synapse_lens.experiments.engine.run_conditions`.
        clean: shared clean run (computed once when None).
        options: execution settings (:class:`~synapse_lens.ExecOptions`; default ``ExecOptions()``).

    Returns:
        Tidy table with columns ``hook_name``, ``layer`` (int), ``ranking`` (class name or
        ``"__global__"``), ``method`` (ranking method), ``position`` (``cls``/``all``: where
        the units were edited), ``order`` (``top``/``random``/
        ``bottom``), ``k`` (int), ``seed`` (Int64; NA for top and bottom), ``metric``,
        ``class`` (``"__all__"`` or a class for per-class metrics), ``value``, ``clean_value``.
        Rows follow rankings, then orders, then ascending k, then seed.
        :func:`~synapse_lens.experiments.engine.summarize` adds mean and 95 % interval over seeds.

    Raises:
        ValueError: k larger than a layer's width, no rankings, bad ``n_seeds``, a ranking of
            another model.

    Example:
        >>> df = ablation_curve(model, ds, rankings, [1, 10, 50], n_seeds=5)  # doctest: +SKIP
    """
    opts = resolve(options)
    conditions = ablation_conditions(model, data, rankings, ks, orders=orders, n_seeds=n_seeds,
                                      seed=seed, spec=spec, stats=stats, options=opts)
    df = run_conditions(model, data, conditions, metrics=metrics, clean=clean,
                        options=opts,
                        desc="ablation curve")
    df["seed"] = df["seed"].astype("Int64")
    return df


def noise_curve(
    model: Any,
    data: TextDataset,
    rankings: Sequence[Ranking],
    sigmas: Sequence[float],
    *,
    k: int,
    sets: Sequence[NoiseSet] = ("top", "random", "all"),
    n_seeds: int = 5,
    seed: int = 0,
    relative: bool = True,
    stats: ClsActivations | None = None,
    metrics: Sequence[str] | Mapping[str, Metric] = DEFAULT_METRICS,
    clean: CleanRun | None = None,
    options: ExecOptions | None = None,
) -> pd.DataFrame:
    """Add Gaussian noise to the top-k, random-k or all units at [CLS], for each sigma.

    Args:
        model, data, rankings: as :func:`ablation_curve`.
        sigmas: noise levels (finite, >= 0; ``0`` = clean).
        k: size of the top-k and random-k sets.
        sets: which unit sets to perturb.
        n_seeds: repetitions (noise seed; for ``random`` also the unit draw).
        seed: first seed.
        relative: sigma in units of each unit's standard deviation over ``data`` ([CLS];
            from ``stats``, computed when None); absolute activation units when False.
        stats, metrics, clean, options: as :func:`ablation_curve`.

    Returns:
        Tidy table with columns ``hook_name``, ``layer``, ``ranking``, ``method``, ``units``
        (``top``/``random``/``all``), ``k`` (int; the width for ``all``), ``sigma`` (float),
        ``seed`` (int), ``metric``, ``class``, ``value``, ``clean_value``. Rows follow
        rankings, then sets, then sigmas (as given), then seeds.

    Raises:
        ValueError: negative or non-finite sigma, k larger than a width, bad ``n_seeds``.

    Example:
        >>> noise_curve(model, ds, rankings, [0.0, 0.5, 1.0, 2.0], k=20)  # doctest: +SKIP
    """
    opts = resolve(options)
    items = check_rankings(model, rankings)
    _check_ks([k], items)
    check_seeds(n_seeds)
    sig = [float(s) for s in sigmas]
    if not sig or any(not np.isfinite(s) or s < 0 for s in sig):
        raise ValueError(f"sigmas must be a non-empty list of finite numbers >= 0, got {sigmas}")
    if relative:
        stats = _stats_for(model, data, [r.hook_name for r in items], stats, opts)
    conditions = []
    for r in items:
        std = (stats[r.hook_name].double().std(dim=0).numpy() if relative and stats is not None
               else np.ones(r.width))
        for unit_set in sets:
            for sigma in sig:
                for s in range(seed, seed + n_seeds):
                    units = (np.arange(r.width) if unit_set == "all" else
                             select_units(r, k, "random" if unit_set == "random" else "top", s))
                    scale = (sigma * std[units]).astype(np.float32)
                    conditions.append(Condition(
                        {"hook_name": r.hook_name, "layer": r.layer, "ranking": r.target,
                         "method": r.method, "units": unit_set, "k": len(units),
                         "sigma": sigma, "seed": s},
                        hooks=_unit_hooks(model, r.hook_name, units,
                                          Intervention("noise", seed=s), scale.tolist()),
                        key=(CLEAN_KEY if sigma == 0 or len(units) == 0 else
                             (r.hook_name, tuple(units.tolist()), tuple(scale.tolist()), s)),
                    ))
    return run_conditions(model, data, conditions, metrics=metrics, clean=clean,
                          options=opts,
                          desc="noise curve")
