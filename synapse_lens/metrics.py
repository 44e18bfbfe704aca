"""Metrics comparing intervened logits with the labels and the clean run.

A metric is ``fn(MetricInputs) -> float`` (whole dataset) or ``-> {class name: float}`` (per
class); :data:`METRICS` holds the built-in ones by name, :func:`score` evaluates a list of them.
scikit-learn computes the classification scores.

Example:
    >>> score(intervened_logits, clean, ["accuracy", "kl"])  # doctest: +SKIP
    [('accuracy', '__all__', 0.81, 0.97), ('kl', '__all__', 0.12, 0.0)]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from synapse_lens.schema import ALL


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


def logit_margin(logits: Float[Tensor, "n n_classes"],
                 classes: Int[Tensor, " n"]) -> Float[Tensor, " n"]:
    """Per example, the logit of ``classes[i]`` minus the largest other logit (differentiable;
    positive while ``classes[i]`` is predicted)."""
    chosen = logits.gather(1, classes[:, None])[:, 0]
    others = logits.scatter(1, classes[:, None], float("-inf"))
    return chosen - others.max(dim=1).values


def margin(x: MetricInputs) -> float:
    """Mean logit margin of the *clean* prediction (its logit minus the largest other): how far
    each example is from changing its clean prediction; ``< 0`` once it has."""
    classes = torch.as_tensor(x.clean.preds)
    return float(logit_margin(x.logits.double(), classes).mean())


def true_logprob(x: MetricInputs) -> float:
    """Mean log-probability of the true class (nats)."""
    log_p = torch.log_softmax(x.logits.double(), dim=1).numpy()
    return float(log_p[np.arange(len(log_p)), x.clean.labels].mean())


def kl(x: MetricInputs) -> float:
    """Mean over examples of KL(clean ‖ intervened) between the softmax distributions (nats)."""
    log_p = torch.log_softmax(x.clean.logits.double(), dim=1)
    log_q = torch.log_softmax(x.logits.double(), dim=1)
    return float((log_p.exp() * (log_p - log_q)).sum(dim=1).mean())


def recall(x: MetricInputs) -> dict[str, float]:
    """Per-class recall, for the classes with at least one example (per-class work follows
    the classes present: a 157-class model on data with 30 of them gives 30 values)."""
    from sklearn.metrics import recall_score

    present = np.unique(x.clean.labels)
    values = recall_score(x.clean.labels, x.preds, labels=present, average=None,
                          zero_division=np.nan)
    return {x.clean.label_names[c]: float(v) for c, v in zip(present, values)}


def class_true_prob(x: MetricInputs) -> dict[str, float]:
    """Per class with at least one example, the mean softmax probability of the true class over
    that class's examples: the continuous counterpart of :func:`recall`."""
    probs = torch.softmax(x.logits.double(), dim=1).numpy()
    own = probs[np.arange(len(probs)), x.clean.labels]
    return {x.clean.label_names[c]: float(own[x.clean.labels == c].mean())
            for c in np.unique(x.clean.labels)}


def pred_share(x: MetricInputs) -> dict[str, float]:
    """Per class, the fraction of examples predicted as that class, for the classes that have an
    example or are predicted on the clean run (the share that went to any other class is one
    minus their sum)."""
    counts = np.bincount(x.preds, minlength=len(x.clean.label_names)) / len(x.preds)
    shown = np.union1d(x.clean.labels, x.clean.preds)
    return {x.clean.label_names[c]: float(counts[c]) for c in shown}


METRICS: dict[str, Metric] = {
    "accuracy": accuracy, "macro_f1": macro_f1, "flip_rate": flip_rate,
    "true_prob": true_prob, "kl": kl, "recall": recall, "pred_share": pred_share,
    "class_true_prob": class_true_prob,
    "margin": margin, "true_logprob": true_logprob,
}
#: Whether a larger value of a metric means the classifier does better (for gaps and verdicts).
HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True, "macro_f1": True, "true_prob": True, "margin": True, "true_logprob": True,
    "flip_rate": False, "kl": False,
}
DEFAULT_METRICS = ("accuracy", "macro_f1", "flip_rate", "true_prob", "kl")


def resolve_metrics(metrics: Sequence[str] | Mapping[str, Metric]) -> dict[str, Metric]:
    """Metric names (keys of :data:`METRICS`) or a mapping name -> function, as a mapping.

    Raises:
        ValueError: unknown names, or no metric at all.

    Example:
        >>> list(resolve_metrics(["accuracy", "kl"]))
        ['accuracy', 'kl']
    """
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
    for name, fn in resolve_metrics(metrics).items():
        value, base = fn(MetricInputs(logits, clean)), fn(MetricInputs(clean.logits, clean))
        if isinstance(value, Mapping) and isinstance(base, Mapping):
            rows += [(name, str(c), float(value[c]), float(base[c])) for c in value]
        else:
            rows.append((name, ALL, float(value), float(base)))  # type: ignore[arg-type]
    return rows
