"""Every stress-test table in one call, from one clean run, with sizes in a small config.

The defaults are sized so that the full set runs in minutes on 2 CPU cores for the offline
MiniLM classifier on a few hundred short texts with global rankings of a few layers (see
the project's measurements); raise them for a final analysis.

Example:
    >>> tables = run_stress_tests(model, ds, rankings, StressConfig(ks=(0, 5, 20)))
    ...     # doctest: +SKIP
    >>> tables["ablation_summary"].query("metric == 'accuracy'")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from synapse_lens.activations import ClsActivations
from synapse_lens.analysis.rankings import Ranking
from synapse_lens.data import TextDataset
from synapse_lens.experiments.classwise import class_asymmetry, class_matrix, topk_overlap
from synapse_lens.experiments.engine import clean_run, summarize
from synapse_lens.experiments.grids import (
    DEFAULT_EPS,
    DEFAULT_SIGMAS,
    bias_grid,
    extend_until,
    geometric,
    outside_control,
)
from synapse_lens.experiments.redirect import (
    logit_redirection,
    minimal_biases,
    weight_redirection,
)
from synapse_lens.experiments.sweeps import ablation_curve, noise_curve
from synapse_lens.runtime.options import ExecOptions, resolve
from synapse_lens.schema import FLIP, GLOBAL, config_dict, config_from_dict


@dataclass(frozen=True)
class StressConfig:
    """Sizes of the stress tests.

    Attributes:
        ks: ablation set sizes (``0`` = clean reference).
        ablation: run the ablation curve (``False`` when the caller ran its own, e.g. over
            several ranking methods).
        n_seeds: random-k repetitions in the ablation curve (>= 5 for a 95 % interval).
        ablation_targets: ``"global"`` (global rankings only) or ``"all"`` (also per class).
        class_k: units ablated per class in the class matrix; also the top-k of the overlaps.
        class_ks: several class-matrix sizes (``None``: ``(class_k,)``); each is run against
            ``n_seeds`` random k-sets.
        noise_k: size of the top-k / random-k sets of the noise curve.
        sigmas: noise levels (relative to each unit's [CLS] std when ``noise_relative``).
        sigma_cap: when set, σ is doubled beyond ``max(sigmas)`` (one level at a time, the last
            level the cap) until top-k noise moves the true-class probability outside the
            random-k interval, or the cap is reached.
        noise_seeds: noise repetitions.
        noise_relative: sigma in units of each unit's std (True) or absolute (False).
        weight_k: units whose output weights are perturbed.
        scope: ``"last"`` runs the noise curve and the weight redirection on the deepest
            ranked hook only (the ablation curve always covers every hook); ``"all"`` on every
            hook (costs one sweep per hook).
        eps_values: relative weight-perturbation sizes.
        eps_cap: as ``sigma_cap``, for ε (top-k vs random-k units' output weights).
        weight_seeds: perturbation repetitions.
        biases: logit-bias sizes (``None``: fitted to the measured minimal flipping biases,
            :func:`~synapse_lens.experiments.grids.bias_grid`, up to their 95th percentile).
        seed: first seed everywhere.
    """

    ks: tuple[int, ...] = (0, 5, 20, 50, 100)
    ablation: bool = True
    n_seeds: int = 5
    ablation_targets: Literal["global", "all"] = "global"
    class_k: int = 10
    class_ks: tuple[int, ...] | None = None
    noise_k: int = 10
    sigmas: tuple[float, ...] = DEFAULT_SIGMAS
    sigma_cap: float | None = None
    noise_seeds: int = 2
    noise_relative: bool = True
    weight_k: int = 10
    scope: Literal["last", "all"] = "last"
    eps_values: tuple[float, ...] = DEFAULT_EPS
    eps_cap: float | None = None
    weight_seeds: int = 2
    biases: tuple[float, ...] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.ablation_targets not in ("global", "all"):
            raise ValueError(f"ablation_targets must be 'global' or 'all', got "
                             f"{self.ablation_targets!r}")
        if self.scope not in ("last", "all"):
            raise ValueError(f"scope must be 'last' or 'all', got {self.scope!r}")
        for name in ("ks", "sigmas", "eps_values", "biases", "class_ks"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("sigma_cap", "eps_cap"):
            cap = getattr(self, name)
            if cap is not None and not cap > 0:
                raise ValueError(f"{name} must be > 0 (or None), got {cap}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return config_dict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> StressConfig:
        """Build from :meth:`to_dict` output; unknown keys are ignored."""
        return config_from_dict(cls, values)


def _extended(values: Sequence[float], cap: float | None) -> list[float]:
    """The levels beyond ``max(values)`` tried when nothing has happened yet (doubling, the
    last one ``cap``)."""
    top = max(values)
    if cap is None or top >= cap:
        return []
    return [v for v in geometric(top if top > 0 else cap, cap) if v > top]


def _effect(summary: pd.DataFrame, by: str, treated: str, control: str, metric: str,
            keys: Sequence[str]) -> bool:
    hits = outside_control(summary, by=by, treated=treated, control=control, metric=metric,
                           keys=keys)
    return bool(hits["outside"].any())


def run_stress_tests(
    model: Any,
    data: TextDataset,
    rankings: Sequence[Ranking],
    config: StressConfig | None = None,
    *,
    stats: ClsActivations | None = None,
    classes: Sequence[str] | None = None,
    options: ExecOptions | None = None,
) -> dict[str, pd.DataFrame]:
    """Run every stress test and return its tables.

    Global rankings drive the ablation curve (per-class too with ``ablation_targets="all"``),
    the noise curve and the weight perturbations (deepest hook only with ``scope="last"``);
    per-class rankings drive the class matrix and the top-k overlaps (skipped when there are
    none). Table names are those of a run directory's ``tables/``.

    Args:
        model: a model from :func:`synapse_lens.load_classifier`.
        data: labelled texts with the model's classes.
        rankings: global and/or per-class rankings (e.g. of every layer output).
        config: sizes (default :class:`StressConfig`).
        stats: [CLS] activations of ``data`` from this model holding the global rankings'
            hooks (used for relative noise; computed when None).
        classes: the classes whose classifier rows are perturbed and that the logit biases
            target (default: every class with an example; a run caps them with
            ``RunConfig.max_classes``). Per-class rankings come as given.
        options: execution settings (:class:`~synapse_lens.ExecOptions`; default
            ``ExecOptions()``).

    Returns:
        ``{"ablation", "ablation_summary", "class_matrix", "class_asymmetry", "overlap",
        "noise", "noise_summary", "redirection", "redirection_logit", "minimal_bias"}`` → tidy
        tables (columns documented in :mod:`synapse_lens.experiments.sweeps` and
        :mod:`synapse_lens.experiments.classwise`, :mod:`synapse_lens.experiments.redirect` and
        :func:`synapse_lens.experiments.engine.summarize`).

    Raises:
        ValueError: no rankings, sizes larger than a layer's width; see the sweeps.

    Example:
        >>> tables = run_stress_tests(model, ds, rankings)  # doctest: +SKIP
    """
    cfg = StressConfig() if config is None else config
    items = list(rankings)
    if not items:
        raise ValueError("no rankings given")
    glob = [r for r in items if r.target == GLOBAL]
    per_class = [r for r in items if r.target != GLOBAL]
    main = glob or per_class
    deepest = max(r.layer for r in main)
    deep = main if cfg.scope == "all" else [r for r in main if r.layer == deepest]
    opts = resolve(options)
    clean = clean_run(model, data, options=opts.quiet())
    shared = dict(clean=clean, options=opts)
    tables: dict[str, pd.DataFrame] = {}
    if cfg.ablation:
        tables["ablation"] = ablation_curve(
            model, data, main if cfg.ablation_targets == "global" else items, cfg.ks,
            n_seeds=cfg.n_seeds, seed=cfg.seed, **shared)  # type: ignore[arg-type]
        tables["ablation_summary"] = summarize(tables["ablation"])
    if per_class:
        counts = {name: int((data.labels == i).sum()) for i, name in enumerate(data.label_names)}
        tables["class_matrix"] = class_matrix(
            model, data, [r for r in per_class if r.layer == deepest] if cfg.scope == "last"
            else per_class, cfg.class_ks or (cfg.class_k,), n_seeds=cfg.n_seeds, seed=cfg.seed,
            **shared)  # type: ignore[arg-type]
        tables["class_asymmetry"] = class_asymmetry(tables["class_matrix"], counts)
        tables["overlap"] = topk_overlap(per_class, [cfg.class_k])

    def noise(sigmas: Sequence[float]) -> pd.DataFrame:
        return noise_curve(model, data, deep, sigmas, k=cfg.noise_k, n_seeds=cfg.noise_seeds,
                           seed=cfg.seed, relative=cfg.noise_relative, stats=stats,
                           **shared)  # type: ignore[arg-type]

    tables["noise"], _ = extend_until(
        noise, cfg.sigmas, _extended(cfg.sigmas, cfg.sigma_cap),
        lambda t: _effect(summarize(t), "units", "top", "random", "true_prob",
                          ["hook_name", "method", "sigma"]))
    tables["noise_summary"] = summarize(tables["noise"])

    def weights(eps: Sequence[float]) -> pd.DataFrame:
        return weight_redirection(model, data, deep, cfg.weight_k, eps,
                                  classes=classes, n_seeds=cfg.weight_seeds, seed=cfg.seed,
                                  **shared)  # type: ignore[arg-type]

    tables["redirection"], _ = extend_until(
        weights, cfg.eps_values, _extended(cfg.eps_values, cfg.eps_cap),
        lambda t: _effect(summarize(t), "edit", "top_units", "random_units", "true_prob",
                          ["hook_name", "target", "eps"]))
    mb = tables["minimal_bias"] = minimal_biases(clean, targets=classes)
    flips = mb[mb["target"] == FLIP]["bias"].to_numpy()
    biases = cfg.biases if cfg.biases is not None else bias_grid(flips)
    tables["redirection_logit"] = logit_redirection(clean, biases, targets=classes)
    return tables
