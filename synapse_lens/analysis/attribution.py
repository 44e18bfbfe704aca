"""Causal rankings: which units the model *uses*, measured on the model rather than decoded
from its activations.

* :func:`attribution_rankings` (``method="attribution"``) — attribution patching: a first-order
  estimate of the drop of a metric when one unit is ablated, ``grad · (activation − baseline)``,
  for every unit of every requested hook at once. One forward and one backward pass per batch
  through the model's own TransformerLens hook points.
* :func:`exact_ranking` (``method="exact"``) — the measured drop of the metric when each unit
  alone is ablated: ``width`` conditions run by the experiment engine (resumed from the cached
  residual stream, so a unit of the last layer costs a head evaluation). The reference the
  other rankings are scored against.

Both score a unit by the **mean drop over examples** of the metric (higher = the model loses
more without it; negative = ablating it helps):

* ``metric="margin"`` — the logit of the clean prediction minus the largest other logit;
* ``metric="logprob"`` — the log-probability of the true class.

``baseline="zero"`` ablates to 0, ``"mean"`` to the unit's mean over ``data`` (at [CLS]:
the [CLS] mean; at all positions: the mean over every real token). ``position="cls"`` edits
[CLS] only; ``"all"`` every real token (the drop is then the sum of the per-position terms).

Example:
    >>> ranks = attribution_rankings(model, data, [names.resid_post(5)])  # doctest: +SKIP
    >>> ranks[0].method, ranks[0].target
    ('attribution', '__global__')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from synapse_lens.analysis.rankings import Ranking
from synapse_lens.data import TextDataset
from synapse_lens.metrics import logit_margin
from synapse_lens.models import classifier_info
from synapse_lens.models.params import frozen_weights
from synapse_lens.names import Position, check_position
from synapse_lens.runtime.batching import length_sorted_batches
from synapse_lens.runtime.options import ExecOptions, resolve
from synapse_lens.runtime.plain import PlainModel, plain_model
from synapse_lens.runtime.pruned import reads_cls_only
from synapse_lens.schema import GLOBAL

Metric = Literal["margin", "logprob"]
Baseline = Literal["zero", "mean"]
#: The engine's metric name for each ranking metric.
ENGINE_METRIC: dict[str, str] = {"margin": "margin", "logprob": "true_logprob"}


def check_options(metric: str, baseline: str, position: str) -> None:
    """Raise a one-line ValueError unless metric, baseline and position are supported."""
    if metric not in ENGINE_METRIC:
        raise ValueError(f"metric must be one of {sorted(ENGINE_METRIC)}, got {metric!r}")
    if baseline not in ("zero", "mean"):
        raise ValueError(f"baseline must be 'zero' or 'mean', got {baseline!r}")
    check_position(position)


def _metric_sum(logits: Tensor, metric: str, classes: Tensor) -> Tensor:
    if metric == "margin":
        return logit_margin(logits, classes).sum()
    return torch.log_softmax(logits, dim=1).gather(1, classes[:, None]).sum()


def _capture(store: dict[str, Tensor], name: str, position: str) -> Any:
    """Keep the activation at ``name`` (keyed by the requested name: TL 4 resolves aliases)."""

    def hook(activation: Tensor, hook: Any) -> Tensor:
        if not activation.requires_grad:  # frozen weights: make this the graph's leaf
            activation = activation.detach().requires_grad_(True)
        store[name] = activation
        return activation

    # attribution of [CLS] edits reads position 0 only: the [CLS]-only last layer may run
    return reads_cls_only(hook) if position == "cls" else hook


def _accumulate(model: Any, plain: PlainModel | None, enc: dict[str, Tensor], names: list[str],
                position: str, metric: str, labels: Tensor, start: int,
                ga: dict[str, list[Tensor]], g: dict[str, list[Tensor]],
                act_sum: dict[str, Tensor], act_count: dict[str, int]) -> int:
    """One batch's forward and backward pass: append each example's ``sum g*a`` and ``sum g``
    over the edited positions and add the activation sums; the next example's index."""
    n = enc["input_ids"].shape[0]
    store: dict[str, Tensor] = {}
    capture = [(h, _capture(store, h, position)) for h in names]
    with torch.enable_grad(), model.hooks(fwd_hooks=capture):
        # the plain HF copy (no bridge overhead; the last layer for [CLS] only where the head
        # and the hooks read [CLS] only) when the hooks allow
        logits = (plain.logits(enc["input_ids"], enc["attention_mask"],
                               cls_only=plain.cls_only_ok())
                  if plain is not None and plain.usable() else
                  model(enc["input_ids"], attention_mask=enc["attention_mask"]))
        # the capture hooks change nothing: these are the clean logits and predictions
        classes = (logits.detach().argmax(1) if metric == "margin"
                   else labels[start:start + n].to(logits.device))
        total = _metric_sum(logits.double(), metric, classes)
        grads = torch.autograd.grad(total, [store[h] for h in names], allow_unused=True)
    mask = enc["attention_mask"].to(torch.float64).cpu()
    for name, grad in zip(names, grads):
        act = store[name].detach()
        if act.ndim == 3 and position == "cls":  # only [CLS] is edited: keep that row
            act = act[:, 0]
            grad = None if grad is None else grad[:, 0]
        act = act.double().cpu()
        grad = torch.zeros_like(act) if grad is None else grad.detach().double().cpu()
        if act.ndim == 3:  # all positions: sum the per-position terms over real tokens
            weight = mask[:, :, None]
            ga[name].append((grad * act * weight).sum(1))
            g[name].append((grad * weight).sum(1))
            act_sum[name] += (act * weight).sum((0, 1))
            act_count[name] += int(weight.sum())
        else:
            ga[name].append(grad * act)
            g[name].append(grad)
            act_sum[name] += act.sum(0)
            act_count[name] += act.shape[0]
    return start + n


def attribution_rankings(
    model: Any,
    data: TextDataset,
    names: Sequence[str],
    *,
    metric: Metric = "margin",
    baseline: Baseline = "zero",
    position: Position = "cls",
    per_class: bool = True,
    options: ExecOptions | None = None,
) -> list[Ranking]:
    """Attribution-patching rankings of the units at ``names`` (see module docstring).

    Args:
        model: a classifier from :func:`synapse_lens.load_classifier`.
        data: the texts and labels the estimate averages over.
        names: SYNAPSE hook names with a position axis or 2-D (layer outputs, MLP units, the
            embeddings, the pooled vector).
        metric, baseline, position: what a unit's ablation is measured by, ablated to, and
            where (module docstring).
        per_class: also one ranking per class (the mean over that class's examples).
        options: execution settings (:class:`~synapse_lens.ExecOptions`; default
            ``ExecOptions(progress=False)``).

    Returns:
        For each hook in ``names`` order, the :data:`~synapse_lens.analysis.rankings.GLOBAL` ranking
        then (with ``per_class``) one per class present in ``data``; ``method="attribution"``.

    Raises:
        ValueError: bad ``metric`` / ``baseline`` / ``position``, unknown or duplicate hooks,
            dataset classes that differ from the model's.

    Example:
        >>> attribution_rankings(model, data, [names.resid_post(5)], baseline="mean")
        ... # doctest: +SKIP
    """
    opts = resolve(options, progress=False)
    check_options(metric, baseline, position)
    info = classifier_info(model)
    names = list(names)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"names must be distinct hook names, got {names}")
    for name in names:
        info.names.parse(name)  # ValueError for unknown hooks
    if tuple(data.label_names) != tuple(info.id2label):
        raise ValueError(f"dataset classes {list(data.label_names)} differ from the model's "
                         f"{list(info.id2label)}; align them with synapse_lens.data.align_labels")
    order, batches = length_sorted_batches(model, data.texts, opts.batch_size, opts.max_length)
    labels = torch.as_tensor(data.labels[order])
    # per example and unit: sum over edited positions of g*a and of g (the mean baseline is
    # applied at the end: g.(a - mu) = g.a - mu.g), and the activation sums for mu
    ga: dict[str, list[Tensor]] = {n: [] for n in names}
    g: dict[str, list[Tensor]] = {n: [] for n in names}
    act_sum = {n: torch.zeros(info.width(n), dtype=torch.float64) for n in names}
    act_count = dict.fromkeys(names, 0)
    start = 0
    plain = plain_model(model) if opts.fast else None
    with frozen_weights(model):
        for enc in tqdm(batches, desc="attribution", disable=not opts.progress):
            start = _accumulate(model, plain, enc, names, position, metric, labels, start, ga,
                                g, act_sum, act_count)
    inverse = np.argsort(order, kind="stable")
    out: list[Ranking] = []
    present = [c for c in range(info.n_classes) if (data.labels == c).any()]
    for name in names:
        mu = act_sum[name] / max(act_count[name], 1) if baseline == "mean" else 0.0
        drop = (torch.cat(ga[name]) - torch.cat(g[name]) * mu).numpy()[inverse]
        layer = info.names.layer_of(name)
        out.append(Ranking(name, layer, drop.mean(0), GLOBAL, "attribution"))
        if per_class:
            out += [Ranking(name, layer, drop[data.labels == c].mean(0), info.id2label[c],
                            "attribution") for c in present]
    return out


def token_mean(model: Any, data: TextDataset, hook_name: str, *,
               options: ExecOptions | None = None) -> Float[Tensor, " d"]:
    """Mean activation of ``hook_name`` over every real (unpadded) token of ``data``."""
    opts = resolve(options)
    info = classifier_info(model)
    _, batches = length_sorted_batches(model, data.texts, opts.batch_size, opts.max_length)
    total = torch.zeros(info.width(hook_name), dtype=torch.float64)
    count = 0
    store: dict[str, Tensor] = {}

    def keep(activation: Tensor, hook: Any) -> None:
        store["act"] = activation.detach()

    with torch.inference_mode(), model.hooks(fwd_hooks=[(hook_name, keep)]):
        for enc in batches:
            model(enc["input_ids"], attention_mask=enc["attention_mask"])
            mask = enc["attention_mask"].to(torch.float64).cpu()[:, :, None]
            total += (store["act"].double().cpu() * mask).sum((0, 1))
            count += int(mask.sum())
    return (total / count).to(torch.float32)
