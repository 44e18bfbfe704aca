"""Weight-space and logit-space manipulations that never change the model for good.

Weight space: :func:`scaled_weights` and :func:`perturbed_weights` are context managers that edit
parts of parameters (:class:`WeightSlice`: the output weights of ranked units, or a class's
classifier row) and copy the exact original tensors back on exit, even on error.

Logit space: :func:`logit_bias` is a hook on ``names.logits`` adding a bias to one class's logit;
:func:`minimal_redirect_bias` / :func:`minimal_flip_bias` give, per example and in closed form,
the smallest such bias that makes the model predict a chosen class / change its prediction.

Tie rule (everywhere): the prediction is ``argmax`` with the **first** (lowest-index) maximum
winning, as ``torch.argmax``. Adding ``b`` to class ``t``'s logit makes ``t`` the prediction iff
``b > b*`` with ``b* = max_{j != t} z_j - z_t``, or ``b == b*`` and ``t`` is below every
``j != t`` with ``z_j = max_{j != t} z_j``.

Example:
    >>> with perturbed_weights(model, class_row(model, "spam"), eps=0.1, seed=0):  # doctest: +SKIP
    ...     logits = predict_logits(model, texts)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from synapse_lens.interventions.hooks import HookFn, check_units
from synapse_lens.models import classifier_info
from synapse_lens.models.params import (
    classifier_parameters,
    named_parameters,
    unit_output_parameters,
)


@dataclass(frozen=True)
class WeightSlice:
    """Part of a parameter: the entries ``index`` along ``dim`` of ``param``.

    Attributes:
        param: parameter name in Hugging Face spelling (e.g.
            ``"bert.encoder.layer.3.output.dense.weight"``).
        dim: the axis ``index`` selects along.
        index: the selected positions.
    """

    param: str
    dim: int
    index: tuple[int, ...]


def _parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Parameters under their HF names (the bridge's ``._original_component`` levels removed)."""
    return named_parameters(model)


def class_id(model: Any, target: int | str) -> int:
    """A class id from a class name or id of ``model``.

    Raises:
        ValueError: the class is not in the model.

    Example:
        >>> class_id(model, "spam")  # doctest: +SKIP
        1
    """
    labels = classifier_info(model).id2label
    if isinstance(target, str) and target in labels:
        return labels.index(target)
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool) and (
            0 <= int(target) < len(labels)):
        return int(target)
    raise ValueError(f"target class {target!r} not in the model; classes are {list(labels)} "
                     f"(or ids 0..{len(labels) - 1})")


def unit_output_weights(model: Any, hook_name: str, units: Any) -> tuple[WeightSlice, ...]:
    """The output weights of ``units``: the parameters through which their values leave.

    * MLP units of layer ``l``: their columns of the MLP output projection
      (``encoder.layer.l.output.dense.weight[:, units]``).
    * Layer ``l`` output (BERT/RoBERTa are post-LayerNorm): their entries of that output
      LayerNorm's gain and bias (``encoder.layer.l.output.LayerNorm.{weight,bias}[units]``).
    * Embeddings output: their entries of the embedding LayerNorm's gain and bias.

    Scaling these slices by 0 is the same as zero-ablating the units at every position.

    Args:
        model: a model from :func:`synapse_lens.load_classifier`.
        hook_name: an ``embed``, ``resid_post`` or ``mlp_post`` hook name.
        units: unit ids (validated as :func:`synapse_lens.interventions.hooks.check_units`).

    Returns:
        Slices for :func:`scaled_weights` / :func:`perturbed_weights`.

    Raises:
        ValueError: pooled or logits hooks (use :func:`class_row`), bad units.

    Example:
        >>> slices = unit_output_weights(model, names.mlp_post(2), ranking.top(8))  # doctest: +SKIP
    """
    idx = tuple(int(u) for u in check_units(model, hook_name, units))
    slices = [WeightSlice(name, dim, idx) for name, dim in unit_output_parameters(model, hook_name)]
    _resolve(model, slices)
    return tuple(slices)


def class_row(model: Any, target: int | str) -> tuple[WeightSlice, ...]:
    """The final classifier's row (weights and bias) producing class ``target``'s logit.

    Raises:
        ValueError: unknown class.

    Example:
        >>> with scaled_weights(model, class_row(model, "spam"), 0.5):  # doctest: +SKIP
        ...     logits = predict_logits(model, texts)
    """
    c = class_id(model, target)
    slices = [WeightSlice(name, dim, (c,)) for name, dim in classifier_parameters(model)]
    _resolve(model, slices)
    return tuple(slices)


def _resolve(model: Any, slices: Sequence[WeightSlice]) -> list[tuple[nn.Parameter, WeightSlice]]:
    params = _parameters(model)
    out = []
    for s in slices:
        if not isinstance(s, WeightSlice):
            raise TypeError(f"expected WeightSlice, got {type(s).__name__}")
        if s.param not in params:
            raise ValueError(f"model has no parameter {s.param!r}")
        p = params[s.param]
        if not -p.ndim <= s.dim < p.ndim or any(not 0 <= i < p.shape[s.dim] for i in s.index):
            raise ValueError(f"slice {s} out of range for {s.param} of shape {tuple(p.shape)}")
        out.append((p, s))
    return out


@contextmanager
def _restoring(model: Any, slices: Sequence[WeightSlice]) -> Iterator[
        list[tuple[nn.Parameter, WeightSlice]]]:
    resolved = _resolve(model, slices)
    saved = {id(p): (p, p.detach().clone()) for p, _ in resolved}
    try:
        yield resolved
    finally:
        with torch.no_grad():
            for p, original in saved.values():
                p.copy_(original)


@contextmanager
def scaled_weights(model: Any, slices: Sequence[WeightSlice], alpha: float) -> Iterator[None]:
    """Multiply the selected weights by ``alpha`` inside the ``with`` block.

    Args:
        model: a model from :func:`synapse_lens.load_classifier`.
        slices: from :func:`unit_output_weights` / :func:`class_row`.
        alpha: finite factor (``1`` leaves every weight untouched).

    Yields:
        Nothing; on exit (also on error) every touched parameter is copied back bit for bit.

    Raises:
        ValueError: ``alpha`` not finite, slices not in this model.

    Example:
        >>> with scaled_weights(model, class_row(model, 0), 0.0):  # doctest: +SKIP
        ...     logits = model(texts)
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise ValueError(f"alpha must be a finite number, got {alpha!r}")
    with _restoring(model, slices) as resolved:
        if alpha != 1:
            with torch.no_grad():
                for p, s in resolved:
                    idx = torch.as_tensor(s.index, device=p.device)
                    p.index_copy_(s.dim, idx, p.index_select(s.dim, idx) * float(alpha))
        yield


@contextmanager
def perturbed_weights(
    model: Any, slices: Sequence[WeightSlice], eps: float, *, seed: int = 0
) -> Iterator[None]:
    """Add seeded Gaussian noise of relative norm ``eps`` to the selected weights.

    Each slice ``W`` gets ``W + D`` with ``D`` a Gaussian direction (CPU ``torch.Generator``
    seeded with ``seed``, drawn slice by slice in order) scaled to ``||D|| = eps * ||W||``
    (Frobenius norms over the slice; a slice with ``||W|| = 0`` stays as it is).

    Args:
        model: a model from :func:`synapse_lens.load_classifier`.
        slices: from :func:`unit_output_weights` / :func:`class_row`.
        eps: relative norm, finite and >= 0 (``0`` leaves every weight untouched).
        seed: generator seed.

    Yields:
        Nothing; on exit (also on error) every touched parameter is copied back bit for bit.

    Raises:
        ValueError: negative or non-finite ``eps``, slices not in this model.

    Example:
        >>> sl = unit_output_weights(model, names.resid_post(5), ranking.top(10))  # doctest: +SKIP
        >>> with perturbed_weights(model, sl, eps=0.2, seed=1):  # doctest: +SKIP
        ...     logits = predict_logits(model, texts)
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or (
            eps < 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    with _restoring(model, slices) as resolved:
        if eps > 0:
            with torch.no_grad():
                for p, s in resolved:
                    idx = torch.as_tensor(s.index, device=p.device)
                    w = p.index_select(s.dim, idx)
                    d = torch.randn(w.shape, generator=generator, dtype=torch.float64)
                    norm_w, norm_d = w.double().norm(), d.norm()
                    if norm_w > 0 and norm_d > 0:
                        d = d * (float(eps) * norm_w.cpu() / norm_d)
                        p.index_copy_(s.dim, idx, (w.double() + d.to(p.device)).to(p.dtype))
        yield


def logit_bias(model: Any, target: int | str, bias: float | Float[Tensor, " batch"]) -> HookFn:
    """A hook for ``names.logits`` adding ``bias`` to class ``target``'s logit.

    Args:
        model: a model from :func:`synapse_lens.load_classifier`.
        target: class name or id.
        bias: a finite number (``0`` gives a pass-through), or one value per example of the
            batch the hook will see (``[batch]``; run that batch with ``run_with_hooks``).

    Returns:
        A TransformerLens hook function for ``classifier_info(model).names.logits``.

    Raises:
        ValueError: unknown class, non-finite bias.

    Example:
        >>> fn = logit_bias(model, "spam", 2.0)  # doctest: +SKIP
        >>> model.run_with_hooks(texts, fwd_hooks=[(names.logits, fn)])  # doctest: +SKIP
    """
    c = class_id(model, target)
    b = torch.as_tensor(bias, dtype=torch.float32).detach().cpu()
    if b.ndim > 1 or not torch.isfinite(b).all():
        raise ValueError(f"bias must be a finite number or a [batch] vector, got {bias!r}")
    if b.ndim == 0 and float(b) == 0.0:
        return lambda activation, hook: activation

    def hook(activation: Tensor, hook: Any) -> Tensor:
        if b.ndim == 1 and b.shape[0] != activation.shape[0]:
            raise ValueError(f"bias has {b.shape[0]} values but the batch has "
                             f"{activation.shape[0]} examples")
        out = activation.clone()
        out[:, c] = out[:, c] + b.to(activation.device, activation.dtype)
        return out

    return hook


def _check_logits(logits: Tensor) -> Tensor:
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must be [batch, n_classes>=2], got {tuple(logits.shape)}")
    return logits


def minimal_redirect_bias(
    logits: Float[Tensor, "batch n_classes"], target: int
) -> Float[Tensor, " batch"]:
    """Per example, the threshold bias ``b* = max_{j != t} z_j - z_t`` on class ``t``'s logit.

    The prediction becomes ``t`` for every ``b > b*``; at ``b == b*`` only when ``t`` wins the tie
    (lower index than every other class reaching the maximum). ``b* < 0`` means ``t`` is
    already predicted with margin ``-b*``.

    Args:
        logits: clean logits ``[batch, n_classes]``.
        target: class id ``t``.

    Returns:
        ``[batch]`` thresholds, in the logits' dtype.

    Raises:
        ValueError: bad logits shape, ``target`` out of range.

    Example:
        >>> minimal_redirect_bias(torch.tensor([[1.0, 3.0, 2.0]]), 0)
        tensor([2.])
    """
    n_classes = _check_logits(logits).shape[1]
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not (
            0 <= target < n_classes):
        raise ValueError(f"target class {target!r} not in 0..{n_classes - 1}")
    others = torch.cat([logits[:, :target], logits[:, target + 1:]], dim=1)
    return others.max(dim=1).values - logits[:, target]


def minimal_flip_bias(
    logits: Float[Tensor, "batch n_classes"],
) -> tuple[Float[Tensor, " batch"], Int[Tensor, " batch"]]:
    """Per example, the smallest bias on one other class's logit that changes the prediction.

    With ``p`` the clean prediction, it is ``z_p - max_{j != p} z_j >= 0``, reached by the
    runner-up ``r`` (lowest index among ties). Adding ``b`` to ``r``'s logit changes the
    prediction for every ``b >`` that value, and at equality only when ``r < p``.

    Args:
        logits: clean logits ``[batch, n_classes]``.

    Returns:
        ``(bias [batch], runner_up [batch] int64)``.

    Raises:
        ValueError: bad logits shape.

    Example:
        >>> minimal_flip_bias(torch.tensor([[1.0, 3.0, 2.0]]))
        (tensor([1.]), tensor([2]))
    """
    _check_logits(logits)
    pred = logits.argmax(dim=1, keepdim=True)
    masked = logits.scatter(1, pred, float("-inf"))
    runner_up = masked.argmax(dim=1)
    bias = logits.gather(1, pred).squeeze(1) - masked.max(dim=1).values
    return bias, runner_up


@contextmanager
def shifted_weights(
    model: Any, slices: Sequence[WeightSlice], deltas: Sequence[Tensor]
) -> Iterator[None]:
    """Add ``deltas[i]`` to the weights selected by ``slices[i]`` inside the ``with`` block.

    Args:
        model: a model from :func:`synapse_lens.load_classifier`.
        slices: the parts edited (:class:`WeightSlice`; a whole parameter is the slice of all
            its indices along ``dim``).
        deltas: one finite tensor per slice, shaped like the selected part
            (``p.index_select(dim, index)``).

    Yields:
        Nothing; on exit (also on error or Ctrl-C) every touched parameter is copied back bit
        for bit.

    Raises:
        ValueError: a count, shape or non-finite mismatch; slices not in this model.

    Example:
        >>> dw = classifier_set_edit(pooled, logits, target=1)  # doctest: +SKIP
        >>> with shifted_weights(model, classifier_weight(model), [dw]):  # doctest: +SKIP
        ...     logits = predict_logits(model, texts)
    """
    if len(slices) != len(deltas):
        raise ValueError(f"need one delta per slice, got {len(deltas)} for {len(slices)}")
    for s, d in zip(slices, deltas):
        if not isinstance(d, Tensor) or not torch.isfinite(d).all():
            raise ValueError(f"delta for {s.param} must be a finite tensor")
    with _restoring(model, slices) as resolved:
        with torch.no_grad():
            for (p, s), d in zip(resolved, deltas):
                idx = torch.as_tensor(s.index, device=p.device)
                w = p.index_select(s.dim, idx)
                if tuple(d.shape) != tuple(w.shape):
                    raise ValueError(f"delta for {s.param} has shape {tuple(d.shape)}, the "
                                     f"slice {tuple(w.shape)}")
                p.index_copy_(s.dim, idx, (w.double() + d.double().to(p.device)).to(p.dtype))
        yield


def classifier_weight(model: Any) -> tuple[WeightSlice]:
    """The whole weight matrix of the final classifier projection (``[n_classes, d]``), as one
    slice for :func:`shifted_weights` / :func:`perturbed_weights`.

    Example:
        >>> classifier_weight(model)[0].param  # doctest: +SKIP
        'classifier.weight'
    """
    params = _parameters(model)
    name = next(n for n, _ in classifier_parameters(model) if n.endswith("weight"))
    return (WeightSlice(name, 0, tuple(range(params[name].shape[0]))),)
