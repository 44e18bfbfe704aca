"""Redirection: how far must weights or logits move before predictions change?

* :func:`weight_redirection` — flip rate vs the relative size ``eps`` of seeded perturbations
  of the ranked units' output weights (top-k, with random-k as control) and of each class's
  classifier row (:func:`synapse_lens.interventions.edits.perturbed_weights`).
* :func:`logit_redirection` — flip rate and success rate of redirection to each target class vs
  the size of a bias added to its logit (:func:`synapse_lens.interventions.edits.logit_bias`;
  evaluated on the clean logits, which is exactly what the hook computes).
* :func:`minimal_biases` — per example, the closed-form smallest bias that changes the prediction
  and that redirects it to each class
  (:func:`synapse_lens.interventions.edits.minimal_redirect_bias`).

Example:
    >>> tables = redirection(model, ds, rankings, k=10)  # doctest: +SKIP
    >>> tables.minimal_bias.groupby("target")["bias"].describe()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from synapse_lens.analysis.rankings import Ranking
from synapse_lens.data import TextDataset
from synapse_lens.experiments.engine import CLEAN_KEY, Condition, clean_run, run_conditions
from synapse_lens.experiments.grids import DEFAULT_EPS, bias_grid
from synapse_lens.interventions.edits import (
    WeightSlice,
    class_id,
    class_row,
    minimal_flip_bias,
    minimal_redirect_bias,
    perturbed_weights,
    unit_output_weights,
)
from synapse_lens.interventions.selection import check_rankings, check_seeds, select_units
from synapse_lens.metrics import CleanRun, Metric, score
from synapse_lens.models import classifier_info
from synapse_lens.runtime.options import ExecOptions, resolve
from synapse_lens.schema import FLIP

REDIRECT_METRICS = ("flip_rate", "true_prob", "accuracy", "pred_share")


def _check_sizes(name: str, values: Sequence[float], signed: bool = False) -> list[float]:
    out = [float(v) for v in values]
    if not out or any(not np.isfinite(v) or (v < 0 and not signed) for v in out):
        allowed = "finite numbers" if signed else "finite numbers >= 0"
        raise ValueError(f"{name} must be a non-empty list of {allowed}, got {list(values)}")
    return out


def _perturb(model: Any, slices: Sequence[WeightSlice], eps: float, seed: int) -> Callable[
        [], AbstractContextManager[None]]:
    return lambda: perturbed_weights(model, slices, eps, seed=seed)


def _present(labels: np.ndarray) -> list[int]:
    """The class ids with at least one example, in id order."""
    return [int(c) for c in np.unique(labels)]


def _class_index(names: Sequence[str], target: str) -> int:
    if target not in names:
        raise ValueError(f"target class {target!r} not in the model; classes are {list(names)}")
    return list(names).index(target)


def _params(slices: Sequence[WeightSlice]) -> tuple[str, ...]:
    """The parameters an edit of ``slices`` changes (lets the engine re-run only the layers
    from the first one holding them)."""
    return tuple(dict.fromkeys(s.param for s in slices))


def weight_redirection(
    model: Any,
    data: TextDataset,
    rankings: Sequence[Ranking],
    k: int,
    eps_values: Sequence[float],
    *,
    classes: Sequence[str] | None = None,
    random_control: bool = True,
    n_seeds: int = 5,
    seed: int = 0,
    metrics: Sequence[str] | Mapping[str, Metric] = REDIRECT_METRICS,
    clean: CleanRun | None = None,
    options: ExecOptions | None = None,
) -> pd.DataFrame:
    """Metrics vs relative weight-perturbation size ``eps``.

    Args:
        model, data: a classifier and labelled texts with its classes.
        rankings: rankings whose top-k units' output weights are perturbed
            (:func:`~synapse_lens.interventions.edits.unit_output_weights`: embed / resid_post /
            mlp_post).
        k: units per ranking.
        eps_values: relative norms (finite, >= 0; ``0`` = clean).
        classes: classes whose classifier row is perturbed (default: every class with an
            example in ``data``; ``[]`` for none).
        random_control: also perturb random-k units of the same hooks.
        n_seeds: perturbation seeds ``seed .. seed + n_seeds - 1`` (random-k units use the same
            seed).
        metrics: default flip rate, true-class probability, accuracy and per-class share of
            predictions.
        clean: the shared clean run (computed when None).
        options: execution settings (:class:`~synapse_lens.ExecOptions`; default ``ExecOptions()``).

    Returns:
        Tidy table with columns ``edit`` (``"top_units"``, ``"random_units"``,
        ``"class_row"``), ``hook_name`` (the logits hook for class rows), ``layer``, ``target``
        (ranking target, or the class whose row is perturbed), ``k`` (Int64; NA for class
        rows), ``eps``, ``seed``, ``metric``, ``class``, ``value``, ``clean_value``. Rows follow
        rankings (top, then random), then classes; then eps, then seed.

    Raises:
        ValueError: negative eps, unknown class, k larger than a width.

    Example:
        >>> weight_redirection(model, ds, rankings, 10, [0.0, 0.1, 0.5])  # doctest: +SKIP
    """
    opts = resolve(options)
    items = check_rankings(model, rankings) if rankings else []
    eps_list = _check_sizes("eps_values", eps_values)
    check_seeds(n_seeds)
    info = classifier_info(model)
    class_ids = (_present(data.labels) if classes is None
                 else [class_id(model, c) for c in classes])
    conditions = []
    for r in items:
        for edit in ("top_units", "random_units") if random_control else ("top_units",):
            for eps in eps_list:
                for s in range(seed, seed + n_seeds):
                    units = select_units(r, k, "top" if edit == "top_units" else "random", s)
                    slices = unit_output_weights(model, r.hook_name, units)
                    conditions.append(Condition(
                        {"edit": edit, "hook_name": r.hook_name, "layer": r.layer,
                         "target": r.target, "k": k, "eps": eps, "seed": s},
                        edit=_perturb(model, slices, eps, s), touches=_params(slices),
                        key=CLEAN_KEY if eps == 0 or k == 0 else (slices, eps, s)))
    for c in class_ids:
        slices = class_row(model, c)
        for eps in eps_list:
            for s in range(seed, seed + n_seeds):
                conditions.append(Condition(
                    {"edit": "class_row", "hook_name": info.names.logits, "layer": info.n_layers,
                     "target": info.id2label[c], "k": None, "eps": eps, "seed": s},
                    edit=_perturb(model, slices, eps, s), touches=_params(slices),
                    key=CLEAN_KEY if eps == 0 else (slices, eps, s)))
    df = run_conditions(model, data, conditions, metrics=metrics, clean=clean,
                        options=opts,
                        desc="weight redirection")
    df["k"] = df["k"].astype("Int64")
    return df


def logit_redirection(
    clean: CleanRun, biases: Sequence[float], *, targets: Sequence[str] | None = None
) -> pd.DataFrame:
    """Metrics vs the size of a bias added to each target class's logit.

    Computed from the clean logits: ``logits + b * onehot(target)`` is exactly what the
    :func:`~synapse_lens.interventions.edits.logit_bias` hook produces on ``names.logits``.

    Args:
        clean: the clean run (:func:`~synapse_lens.experiments.engine.clean_run`).
        biases: bias sizes (finite; negative values push away from the target).
        targets: class names (default: every class with an example).

    Returns:
        Tidy table with columns ``target``, ``bias``, ``metric`` (``flip_rate``, ``accuracy``,
        ``success_rate`` — the fraction of examples *not* predicted as ``target`` on the clean
        run that are predicted as ``target`` now; NaN when there is none), ``value``,
        ``clean_value``. Rows follow targets, then biases (as given), then metrics.

    Raises:
        ValueError: unknown target, non-finite bias.

    Example:
        >>> logit_redirection(clean, [0.5, 1.0, 2.0, 4.0])  # doctest: +SKIP
    """
    sizes = _check_sizes("biases", biases, signed=True)
    names = list(clean.label_names)
    chosen = [names[c] for c in _present(clean.labels)] if targets is None else list(targets)
    rows = []
    for target in chosen:
        t = _class_index(names, target)
        others = clean.preds != t
        for b in sizes:
            logits = clean.logits.clone()
            logits[:, t] = logits[:, t] + torch.tensor(b, dtype=logits.dtype)
            preds = logits.argmax(dim=1).numpy()
            success = float(np.mean(preds[others] == t)) if others.any() else float("nan")
            for metric, _, value, base in score(logits, clean, ["flip_rate", "accuracy"]):
                rows.append({"target": target, "bias": b, "metric": metric, "value": value,
                             "clean_value": base})
            rows.append({"target": target, "bias": b, "metric": "success_rate",
                         "value": success, "clean_value": 0.0 if others.any() else float("nan")})
    return pd.DataFrame(rows, columns=["target", "bias", "metric", "value", "clean_value"])


def minimal_biases(clean: CleanRun, *, targets: Sequence[str] | None = None) -> pd.DataFrame:
    """Per example, the closed-form smallest logit biases (see
    :mod:`synapse_lens.interventions.edits` for the exact tie rule).

    Args:
        clean: the clean run (:func:`~synapse_lens.experiments.engine.clean_run`).
        targets: class names to redirect to (default: every class with an example); the
            ``"__flip__"`` row (to any class) is always there.

    Returns:
        Tidy table, one row per example × target, columns ``example`` (index in the dataset),
        ``label`` (true class), ``pred`` (clean prediction), ``target`` (a class other than
        ``pred`` with an example in the data — per-class work follows the classes present —
        or ``"__flip__"`` for the smallest change of prediction), ``to_class`` (the
        class the bias is added to: ``target``, or the runner-up for ``"__flip__"``), ``bias``
        (threshold ``b*``: the prediction becomes ``to_class`` for any larger bias). Rows
        follow examples, then ``"__flip__"``, then class ids.

    Example:
        >>> minimal_biases(clean).query("target == '__flip__'")["bias"].median()  # doctest: +SKIP
    """
    names = list(clean.label_names)
    flip, runner_up = minimal_flip_bias(clean.logits)
    present = (_present(clean.labels) if targets is None
               else [_class_index(names, t) for t in targets])
    per_target = {t: minimal_redirect_bias(clean.logits, t).numpy() for t in present}
    preds = clean.preds
    rows = []
    for i in range(len(preds)):
        base = {"example": i, "label": names[clean.labels[i]], "pred": names[preds[i]]}
        rows.append({**base, "target": FLIP, "to_class": names[int(runner_up[i])],
                     "bias": float(flip[i])})
        for t in present:
            if t != preds[i]:
                rows.append({**base, "target": names[t], "to_class": names[t],
                             "bias": float(per_target[t][i])})
    return pd.DataFrame(rows, columns=["example", "label", "pred", "target", "to_class", "bias"])


@dataclass(frozen=True, eq=False)
class RedirectionTables:
    """The three redirection tables (see the functions that make them)."""

    weights: pd.DataFrame
    logit_bias: pd.DataFrame
    minimal_bias: pd.DataFrame


def redirection(
    model: Any,
    data: TextDataset,
    rankings: Sequence[Ranking],
    k: int,
    *,
    eps_values: Sequence[float] = DEFAULT_EPS,
    biases: Sequence[float] | None = None,
    n_seeds: int = 5,
    seed: int = 0,
    clean: CleanRun | None = None,
    options: ExecOptions | None = None,
) -> RedirectionTables:
    """All redirection tables from one clean run.

    Args:
        model, data, rankings, k, eps_values, n_seeds, seed: see :func:`weight_redirection`.
        biases: see :func:`logit_redirection` (``None``: fitted to the measured minimal
            flipping biases, :func:`~synapse_lens.experiments.grids.bias_grid`, as the stress
            suite does).
        clean: the shared clean run (computed when None).
        options: execution settings (:class:`~synapse_lens.ExecOptions`; default ``ExecOptions()``).

    Returns:
        :class:`RedirectionTables` (``weights``, ``logit_bias``, ``minimal_bias``).

    Raises:
        ValueError: see the three functions.

    Example:
        >>> t = redirection(model, ds, rankings, k=10)  # doctest: +SKIP
    """
    opts = resolve(options)
    if clean is None:
        clean = clean_run(model, data, options=opts.quiet())
    weights = weight_redirection(model, data, rankings, k, eps_values, n_seeds=n_seeds,
                                 seed=seed, clean=clean, options=opts)
    minimal = minimal_biases(clean)
    if biases is None:
        biases = bias_grid(minimal[minimal["target"] == FLIP]["bias"].to_numpy())
    return RedirectionTables(weights, logit_redirection(clean, biases), minimal)
