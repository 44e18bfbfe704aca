"""One generic experiment engine: run a list of conditions, score each against the clean run.

Like ``transformer_lens.patching``: the engine knows nothing about *what* a condition does — a
:class:`Condition` carries its coordinates (the table's index columns), a function building its
TransformerLens hooks and, optionally, a weight-space context manager. The clean run is computed
once (or passed in as a :class:`CleanRun` and shared between experiments); each condition is one
batched pass over the dataset; metrics compare its logits with the labels and the clean logits.
The named sweeps (:mod:`synapse_lens.experiments.sweeps`, :mod:`synapse_lens.experiments.redirect`)
are thin wrappers that generate conditions.

Speed (``ExecOptions(engine="fast")``, the default): a condition whose hooks sit at SYNAPSE sites
(layer inputs and outputs, MLP units, pooled vector, logits) — and whose weight edit, if any,
declares the parameters it changes (``touches``) — is resumed from the clean residual stream cached
at the first layer it can change, so only the layers after the intervention and the head re-run
(:mod:`synapse_lens.runtime.scheduler`); every other condition runs a full forward on the plain HF
copy of the model (:mod:`synapse_lens.runtime.plain`) or, when its hooks need it, through the
bridge. All paths give the same logits as a full ``run_with_hooks`` (tested to 1e-5: the plain copy
uses SDPA attention, the bridge eager attention). ``ExecOptions(engine="full")`` runs every
condition in full through the TransformerLens model, the reference.

Hooks live only inside :func:`~synapse_lens.activations.predict_logits` (``model.hooks``) and
weight edits only inside their context managers, so after any experiment — also one that raises
midway — the model has no hooks attached and bit-identical weights.

Example:
    >>> conds = [Condition({"k": k}, lambda k=k: ranking_hooks(model, r, k)) for k in (0, 8)]
    >>> table = run_conditions(model, ds, conds)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from synapse_lens.activations import predict_logits
from synapse_lens.data import TextDataset
from synapse_lens.interventions.hooks import HookFn
from synapse_lens.metrics import (
    ALL,
    DEFAULT_METRICS,
    METRICS,
    CleanRun,
    Metric,
    MetricInputs,
    resolve_metrics,
    score,
)
from synapse_lens.models import classifier_info
from synapse_lens.runtime.forward import forward
from synapse_lens.runtime.options import ExecOptions, resolve
from synapse_lens.runtime.plain import plain_model
from synapse_lens.runtime.resume import depths, edit_point, resume_point
from synapse_lens.runtime.scheduler import Job, run_resumed

#: Condition key of conditions known to be identities (no units, sigma 0, eps 0...): they are
#: scored on the clean logits instead of being run again.
CLEAN_KEY = ("clean",)
VALUE_COLUMNS = ["metric", "class", "value", "clean_value"]

__all__ = [  # the metric names are re-exported: the engine and its metrics are one API
    "ALL", "CLEAN_KEY", "DEFAULT_METRICS", "METRICS", "VALUE_COLUMNS", "CleanRun", "Condition",
    "Metric", "MetricInputs", "clean_run", "run_conditions", "score", "summarize",
]


def _check_data(model: Any, data: TextDataset) -> None:
    if not isinstance(data, TextDataset):
        raise TypeError(f"data must be a TextDataset, got {type(data).__name__}")
    labels = classifier_info(model).id2label
    if tuple(data.label_names) != tuple(labels):
        raise ValueError(f"dataset classes {list(data.label_names)} differ from the model's "
                         f"{list(labels)}; align them with synapse_lens.data.align_labels")


def clean_run(
    model: Any, data: TextDataset, *, options: ExecOptions | None = None,
) -> CleanRun:
    """Clean logits of ``data`` (one pass), to share between experiments.

    Raises:
        ValueError: dataset classes differ from the model's.

    Example:
        >>> clean = clean_run(model, ds)  # doctest: +SKIP
    """
    opts = resolve(options)
    _check_data(model, data)
    logits = predict_logits(model, data.texts, options=opts)
    return CleanRun(logits, data.labels, tuple(data.label_names),
                    classifier_info(model).fingerprint, data.fingerprint)


# --------------------------------------------------------------------------------- engine


def _no_hooks() -> list[tuple[str, HookFn]]:
    return []


@dataclass(frozen=True)
class Condition:
    """One intervention to evaluate.

    Attributes:
        coords: the condition's index values (column -> value), e.g.
            ``{"hook_name": ..., "layer": 3, "order": "top", "k": 8, "seed": None}``.
        hooks: builds its ``[(hook_name, fn), ...]`` (called once per run, before the runs
            start, so seeded hooks start fresh).
        edit: optional function returning a weight-space context manager active during the run
            (e.g. ``lambda: perturbed_weights(model, slices, 0.1, seed=0)``).
        key: conditions with equal (non-None) keys are known to give the same logits and are
            run once; :data:`CLEAN_KEY` marks identities, scored on the clean logits.
        touches: Hugging Face names of the parameters ``edit`` changes (e.g.
            ``tuple(s.param for s in slices)``); with them the engine re-runs only the layers
            from the first one holding such a parameter. An edit without them runs in full.
            Checked at run time: an edit changing anything else is run in full.
    """

    coords: Mapping[str, Any]
    hooks: Callable[[], Sequence[tuple[str, HookFn]]] = _no_hooks
    edit: Callable[[], AbstractContextManager[Any]] | None = None
    key: Hashable | None = field(default=None)
    touches: tuple[str, ...] | None = None


def run_conditions(
    model: Any,
    data: TextDataset,
    conditions: Iterable[Condition],
    *,
    metrics: Sequence[str] | Mapping[str, Metric] = DEFAULT_METRICS,
    clean: CleanRun | None = None,
    options: ExecOptions | None = None,
    desc: str = "conditions",
) -> pd.DataFrame:
    """Run every condition over ``data`` and score it.

    Args:
        model: a model from :func:`synapse_lens.load_classifier`.
        data: labelled texts whose classes are the model's (``align_labels``).
        conditions: the conditions, in output order.
        metrics: metric names from :data:`METRICS` or a mapping name -> ``fn(MetricInputs)``
            returning a float or a per-class mapping.
        clean: a :class:`CleanRun` of this model and dataset (computed when None).
        options: execution settings (:class:`~synapse_lens.ExecOptions`; default ``ExecOptions()``).
        desc: the bar's label.

    Returns:
        Tidy table, one row per condition × metric (× class for per-class metrics), in
        condition order. Columns: the conditions' coordinate keys (in order of first
        appearance; missing ones are NA), then ``metric`` (str), ``class`` (class name for
        per-class metrics, ``"__all__"`` otherwise), ``value`` (float, intervened),
        ``clean_value`` (float, same metric on the clean run).

    Raises:
        ValueError: dataset/model class mismatch, a clean run of another model or dataset,
            unknown metrics, a coordinate named like a value column.

    Example:
        >>> run_conditions(model, ds, conds, metrics=["accuracy", "flip_rate"])  # doctest: +SKIP
    """
    opts = resolve(options)
    _check_data(model, data)
    metric_fns = resolve_metrics(metrics)
    if clean is not None and (clean.model_fingerprint != classifier_info(model).fingerprint
                              or clean.dataset_fingerprint != data.fingerprint):
        raise ValueError("clean run comes from a different model or dataset")
    items = list(conditions)
    columns: dict[str, None] = {}
    for cond in items:
        bad = [c for c in cond.coords if c in VALUE_COLUMNS]
        if bad:
            raise ValueError(f"coordinate names {bad} clash with value columns {VALUE_COLUMNS}")
        columns.update(dict.fromkeys(cond.coords))
    # one run per distinct key; CLEAN_KEY (and repeated keys) reuse a result
    runs: list[tuple[Condition, list[tuple[Any, HookFn]]]] = []
    run_of: dict[Hashable, int] = {}
    which: list[int | None] = []
    for cond in items:
        if cond.key is not None and cond.key == CLEAN_KEY:
            which.append(None)
        elif cond.key is not None and cond.key in run_of:
            which.append(run_of[cond.key])
        else:
            if cond.key is not None:
                run_of[cond.key] = len(runs)
            which.append(len(runs))
            runs.append((cond, list(cond.hooks())))
    # the fast engine's clean forward (it captures the states to resume from) gives the clean
    # logits too: one clean forward per sweep
    captured = (torch.empty(len(data), classifier_info(model).n_classes)
                if clean is None and opts.fast else None)
    logits, resumed = _run_all(model, data, runs, opts, desc=desc, clean_out=captured)
    if clean is None and captured is not None and resumed:
        clean = CleanRun(captured, data.labels, tuple(data.label_names),
                         classifier_info(model).fingerprint, data.fingerprint)
    elif clean is None:
        clean = clean_run(model, data, options=opts.quiet())
    clean_scores = score(clean.logits, clean, metric_fns)
    scored = [score(x, clean, metric_fns) for x in logits]
    rows: list[dict[str, Any]] = []
    for cond, w in zip(items, which):
        for metric, cls, value, base in clean_scores if w is None else scored[w]:
            rows.append({**cond.coords, "metric": metric, "class": cls, "value": value,
                         "clean_value": base})
    df = pd.DataFrame(rows, columns=[*columns, *VALUE_COLUMNS])
    for col in ("value", "clean_value"):
        df[col] = df[col].astype(np.float64)
    return df


def _run_all(model: Any, data: TextDataset,
             runs: Sequence[tuple[Condition, list[tuple[Any, HookFn]]]], opts: ExecOptions, *,
             desc: str, clean_out: Tensor | None = None) -> tuple[list[Tensor], bool]:
    """Logits of every run: resumed where possible (the fast engine), the rest in full; and
    whether any run was resumed (then ``clean_out`` holds the clean logits of the captured
    forward)."""
    out: list[Tensor | None] = [None] * len(runs)
    resumed = False
    pm = plain_model(model) if opts.fast and runs else None
    if pm is not None:
        depth = depths(pm)
        jobs, where = [], []
        for i, (cond, hooks) in enumerate(runs):
            point = resume_point(pm, hooks, depth)
            if point is not None and cond.edit is not None:
                at = None if cond.touches is None else edit_point(pm, cond.touches)
                point = None if at is None else min(point, at)
            if point is not None:
                jobs.append(Job(hooks, point, cond.edit, cond.touches or ()))
                where.append(i)
        done = run_resumed(pm, data.texts, jobs, batch_size=opts.batch_size,
                           max_length=opts.max_length, progress=opts.progress, desc=desc,
                           clean_out=clean_out)
        for i, logits in zip(where, done):
            out[i] = logits
        resumed = any(logits is not None for logits in done)
    rest = [i for i, x in enumerate(out) if x is None]
    for i in tqdm(rest, desc=desc, disable=not opts.progress or not rest):
        cond, hooks = runs[i]
        with cond.edit() if cond.edit is not None else nullcontext():
            _, out[i] = forward(model, data.texts, [], batch_size=opts.batch_size,
                                max_length=opts.max_length, fwd_hooks=hooks, progress=False,
                                desc=desc, engine="auto" if opts.fast else "bridge")
    return [x for x in out if x is not None], resumed


def summarize(df: pd.DataFrame, over: str = "seed", level: float = 0.95) -> pd.DataFrame:
    """Mean and confidence interval of ``value`` over repetitions (e.g. random-k seeds).

    The interval is Student's t interval of the mean,
    ``mean ± t_{(1+level)/2, n-1} · s / sqrt(n)``; with a single repetition (top-k, bottom-k) it
    collapses to the value itself.

    Args:
        df: a table from :func:`run_conditions` or a sweep.
        over: the column to aggregate over (dropped from the result).
        level: interval coverage, in (0, 1).

    Returns:
        One row per group (all other coordinate columns, in first-appearance order), columns:
        the group columns, ``n`` (repetitions), ``mean``, ``std`` (sample std, NaN for n=1),
        ``ci_low``, ``ci_high``, ``clean_value``.

    Raises:
        ValueError: ``over`` not a column, ``level`` outside (0, 1).

    Example:
        >>> summarize(ablation_curve(model, ds, rankings, [5, 10]))  # doctest: +SKIP
    """
    from scipy import stats

    if over not in df.columns:
        raise ValueError(f"column {over!r} not in the table; columns are {list(df.columns)}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    keys = [c for c in df.columns if c not in (over, "value", "clean_value")]
    grouped = df.groupby(keys, sort=False, dropna=False)
    out = grouped.agg(n=("value", "size"), mean=("value", "mean"), std=("value", "std"),
                      clean_value=("clean_value", "first")).reset_index()
    half = [
        stats.t.ppf((1 + level) / 2, n - 1) * s / math.sqrt(n) if n > 1 else 0.0
        for n, s in zip(out["n"], out["std"])
    ]
    out["ci_low"] = out["mean"] - np.asarray(half, dtype=np.float64)
    out["ci_high"] = out["mean"] + np.asarray(half, dtype=np.float64)
    return out[[*keys, "n", "mean", "std", "ci_low", "ci_high", "clean_value"]]
