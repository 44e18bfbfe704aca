"""One generic experiment engine: run a list of conditions, score each against the clean run.

Like ``transformer_lens.patching``: the engine knows nothing about *what* a condition does — a
:class:`Condition` carries its coordinates (the table's index columns), a function building its
TransformerLens hooks and, optionally, a weight-space context manager. The clean run is computed
once (or passed in as a :class:`CleanRun` and shared between experiments); each condition is one
batched forward pass over the dataset; metrics compare its logits with the labels and the clean
logits. The named sweeps (:mod:`synapse_lens.sweeps`, :mod:`synapse_lens.redirection`) are thin
wrappers that generate conditions.

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
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from synapse_lens.activations import predict_logits
from synapse_lens.data import TextDataset
from synapse_lens.interventions import HookFn
from synapse_lens.models import classifier_info

ALL = "__all__"
#: Condition key of conditions known to be identities (no units, sigma 0, eps 0...): they are
#: scored on the clean logits instead of being run again.
CLEAN_KEY = ("clean",)
VALUE_COLUMNS = ["metric", "class", "value", "clean_value"]


@dataclass(frozen=True, eq=False)
class CleanRun:
    """The clean (un-intervened) reference of one model on one dataset.

    Attributes:
        logits: ``float32 [n, n_classes]`` clean logits.
        labels: ``int64 [n]`` true class ids.
        label_names: class names (the model's ``id2label``).
        model_fingerprint: ``classifier_info(model).fingerprint``.
        dataset_fingerprint: ``TextDataset.fingerprint``.
    """

    logits: Float[Tensor, "n n_classes"]
    labels: Int[np.ndarray, " n"]
    label_names: tuple[str, ...]
    model_fingerprint: str
    dataset_fingerprint: str

    @property
    def preds(self) -> Int[np.ndarray, " n"]:
        """Clean predictions (argmax, first maximum on ties)."""
        return self.logits.argmax(dim=1).numpy().astype(np.int64)


def _check_data(model: Any, data: TextDataset) -> None:
    if not isinstance(data, TextDataset):
        raise TypeError(f"data must be a TextDataset, got {type(data).__name__}")
    labels = classifier_info(model).id2label
    if tuple(data.label_names) != tuple(labels):
        raise ValueError(f"dataset classes {list(data.label_names)} differ from the model's "
                         f"{list(labels)}; align them with synapse_lens.data.align_labels")


def clean_run(
    model: Any, data: TextDataset, *, batch_size: int = 32, max_length: int = 128,
    progress: bool = False,
) -> CleanRun:
    """Clean logits of ``data`` (one pass), to share between experiments.

    Raises:
        ValueError: dataset classes differ from the model's.

    Example:
        >>> clean = clean_run(model, ds)  # doctest: +SKIP
    """
    _check_data(model, data)
    logits = predict_logits(model, data.texts, batch_size=batch_size, max_length=max_length,
                            progress=progress)
    return CleanRun(logits, data.labels, tuple(data.label_names),
                    classifier_info(model).fingerprint, data.fingerprint)


# --------------------------------------------------------------------------------- metrics


@dataclass(frozen=True, eq=False)
class MetricInputs:
    """What a metric sees: intervened logits, the clean run, predictions of both."""

    logits: Float[Tensor, "n n_classes"]
    clean: CleanRun

    @property
    def preds(self) -> Int[np.ndarray, " n"]:
        return self.logits.argmax(dim=1).numpy().astype(np.int64)


Metric = Callable[[MetricInputs], "float | Mapping[str, float]"]


def accuracy(x: MetricInputs) -> float:
    """Fraction of examples predicted as their label."""
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(x.clean.labels, x.preds))


def macro_f1(x: MetricInputs) -> float:
    """Macro-averaged F1 over the classes present in labels or predictions (sklearn)."""
    from sklearn.metrics import f1_score

    return float(f1_score(x.clean.labels, x.preds, average="macro", zero_division=0))


def flip_rate(x: MetricInputs) -> float:
    """Fraction of examples whose prediction differs from the clean prediction."""
    return float(np.mean(x.preds != x.clean.preds))


def true_prob(x: MetricInputs) -> float:
    """Mean softmax probability of the true class."""
    probs = torch.softmax(x.logits.double(), dim=1).numpy()
    return float(probs[np.arange(len(probs)), x.clean.labels].mean())


def kl(x: MetricInputs) -> float:
    """Mean over examples of KL(clean ‖ intervened) between the softmax distributions (nats)."""
    log_p = torch.log_softmax(x.clean.logits.double(), dim=1)
    log_q = torch.log_softmax(x.logits.double(), dim=1)
    return float((log_p.exp() * (log_p - log_q)).sum(dim=1).mean())


def recall(x: MetricInputs) -> dict[str, float]:
    """Per-class recall (NaN for a class with no example)."""
    from sklearn.metrics import recall_score

    n = len(x.clean.label_names)
    values = recall_score(x.clean.labels, x.preds, labels=list(range(n)), average=None,
                          zero_division=np.nan)
    return {name: float(v) for name, v in zip(x.clean.label_names, values)}


def pred_share(x: MetricInputs) -> dict[str, float]:
    """Per class, the fraction of examples predicted as that class."""
    counts = np.bincount(x.preds, minlength=len(x.clean.label_names)) / len(x.preds)
    return {name: float(v) for name, v in zip(x.clean.label_names, counts)}


METRICS: dict[str, Metric] = {
    "accuracy": accuracy, "macro_f1": macro_f1, "flip_rate": flip_rate,
    "true_prob": true_prob, "kl": kl, "recall": recall, "pred_share": pred_share,
}
DEFAULT_METRICS = ("accuracy", "macro_f1", "flip_rate", "true_prob", "kl")


def _resolve_metrics(metrics: Sequence[str] | Mapping[str, Metric]) -> dict[str, Metric]:
    if isinstance(metrics, Mapping):
        out = dict(metrics)
    else:
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; available: {sorted(METRICS)} "
                             "(or pass a mapping name -> function)")
        out = {m: METRICS[m] for m in metrics}
    if not out:
        raise ValueError("no metrics: ask for at least one")
    return out


def score(
    logits: Float[Tensor, "n n_classes"], clean: CleanRun,
    metrics: Sequence[str] | Mapping[str, Metric] = DEFAULT_METRICS,
) -> list[tuple[str, str, float, float]]:
    """Evaluate metrics on ``logits`` against the clean run.

    Returns:
        ``(metric, class, value, clean_value)`` tuples; ``class`` is :data:`ALL` for
        whole-dataset metrics, the class name for per-class ones.

    Raises:
        ValueError: unknown metric, logits of the wrong shape.

    Example:
        >>> score(clean.logits, clean, ["accuracy"])  # doctest: +SKIP
        [('accuracy', '__all__', 0.9, 0.9)]
    """
    if tuple(logits.shape) != tuple(clean.logits.shape):
        raise ValueError(f"logits {tuple(logits.shape)} do not match the clean run "
                         f"{tuple(clean.logits.shape)}")
    rows = []
    for name, fn in _resolve_metrics(metrics).items():
        value, base = fn(MetricInputs(logits, clean)), fn(MetricInputs(clean.logits, clean))
        if isinstance(value, Mapping) and isinstance(base, Mapping):
            rows += [(name, str(c), float(value[c]), float(base[c])) for c in value]
        else:
            rows.append((name, ALL, float(value), float(base)))  # type: ignore[arg-type]
    return rows


# --------------------------------------------------------------------------------- engine


def _no_hooks() -> list[tuple[str, HookFn]]:
    return []


@dataclass(frozen=True)
class Condition:
    """One intervention to evaluate.

    Attributes:
        coords: the condition's index values (column -> value), e.g.
            ``{"hook_name": ..., "layer": 3, "order": "top", "k": 8, "seed": None}``.
        hooks: builds its ``[(hook_name, fn), ...]`` (called right before the run, so seeded
            hooks start fresh).
        edit: optional function returning a weight-space context manager active during the run
            (e.g. ``lambda: perturbed_weights(model, slices, 0.1, seed=0)``).
        key: conditions with equal (non-None) keys are known to give the same logits and are
            run once; :data:`CLEAN_KEY` marks identities, scored on the clean logits.
    """

    coords: Mapping[str, Any]
    hooks: Callable[[], Sequence[tuple[str, HookFn]]] = _no_hooks
    edit: Callable[[], AbstractContextManager[Any]] | None = None
    key: Hashable | None = field(default=None)


def run_conditions(
    model: Any,
    data: TextDataset,
    conditions: Iterable[Condition],
    *,
    metrics: Sequence[str] | Mapping[str, Metric] = DEFAULT_METRICS,
    clean: CleanRun | None = None,
    batch_size: int = 32,
    max_length: int = 128,
    progress: bool = True,
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
        batch_size, max_length: forward-pass batching.
        progress: tqdm bar over conditions.
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
    _check_data(model, data)
    metric_fns = _resolve_metrics(metrics)
    if clean is None:
        clean = clean_run(model, data, batch_size=batch_size, max_length=max_length)
    elif (clean.model_fingerprint != classifier_info(model).fingerprint
          or clean.dataset_fingerprint != data.fingerprint):
        raise ValueError("clean run comes from a different model or dataset")
    items = list(conditions)
    done: dict[Hashable, list[tuple[str, str, float, float]]] = {
        CLEAN_KEY: score(clean.logits, clean, metric_fns)}
    rows: list[dict[str, Any]] = []
    columns: dict[str, None] = {}
    for cond in tqdm(items, desc=desc, disable=not progress):
        bad = [c for c in cond.coords if c in VALUE_COLUMNS]
        if bad:
            raise ValueError(f"coordinate names {bad} clash with value columns {VALUE_COLUMNS}")
        columns.update(dict.fromkeys(cond.coords))
        if cond.key is not None and cond.key in done:
            scored = done[cond.key]
        else:
            with cond.edit() if cond.edit is not None else nullcontext():
                logits = predict_logits(model, data.texts, batch_size=batch_size,
                                        max_length=max_length, fwd_hooks=list(cond.hooks()))
            scored = score(logits, clean, metric_fns)
            if cond.key is not None:
                done[cond.key] = scored
        for metric, cls, value, base in scored:
            rows.append({**cond.coords, "metric": metric, "class": cls, "value": value,
                         "clean_value": base})
    df = pd.DataFrame(rows, columns=[*columns, *VALUE_COLUMNS])
    for col in ("value", "clean_value"):
        df[col] = df[col].astype(np.float64)
    return df


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
