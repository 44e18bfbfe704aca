"""Interventions on units as plain TransformerLens hook functions.

Every factory returns ``fn(activation, hook) -> activation`` for one hook point and a set of
units (neuron ids along the last axis). The function never edits the tensor TransformerLens
hands it: it returns an edited copy. Use it only inside ``model.hooks(fwd_hooks=...)`` (put
``run_with_cache`` inside it: TL 4.3's bridge ``run_with_cache`` ignores ``fwd_hooks=``),
``model.run_with_hooks``, or :func:`synapse_lens.activations.predict_logits` / ``cache_cls``
with ``fwd_hooks=``, so nothing outlives the call.

``position``: for 3-D activations ``[batch, pos, d]`` (embeddings, layer outputs, MLP units)
``"cls"`` edits position 0 only, ``"all"`` every position (padding included; padded positions are
masked out of attention and pooling). 2-D activations (pooled output, logits) have no position
axis and are edited as they are.

Identity settings (no units, ``alpha=1``, ``sigma=0``) give a pass-through hook, so the result is
bit-identical to a clean run.

Example (zero the top-8 ranked [CLS] units of layer 3 while ``transformer_lens.patching`` runs):
    >>> from transformer_lens import patching  # doctest: +SKIP
    >>> hooks = [(names.resid_post(3), zero_ablate(model, names.resid_post(3), units))]
    >>> with model.hooks(fwd_hooks=hooks):  # doctest: +SKIP
    ...     table = patching.get_act_patch_resid_pre(model, tokens, cache, metric)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from synapse_lens.activations import ClsActivations
from synapse_lens.models import classifier_info
from synapse_lens.names import Position, check_position
from synapse_lens.runtime.forward import HookFn
from synapse_lens.runtime.pruned import reads_cls_only

_THREE_D = ("embed", "resid_post", "mlp_post")


def check_units(model: Any, hook_name: str, units: Any) -> Int[np.ndarray, " k"]:
    """Validate unit ids at a hook point of ``model``.

    Args:
        model: a model from :func:`synapse_lens.load_classifier`.
        hook_name: one of the model's SYNAPSE hook names (``classifier_info(model).names``).
        units: integer unit ids (list, tuple, NumPy array or tensor), each in ``0..width-1``,
            no duplicates; may be empty.

    Returns:
        ``int64 [k]`` array of the unit ids, in the given order.

    Raises:
        ValueError: unknown hook name, ids out of range, duplicates, not 1-D.
        TypeError: non-integer ids.

    Example:
        >>> check_units(model, names.resid_post(0), [3, 1])  # doctest: +SKIP
        array([3, 1])
    """
    width = classifier_info(model).width(hook_name)  # ValueError on unknown hook names
    if isinstance(units, Tensor):
        units = units.detach().cpu().numpy()
    arr = np.asarray(units)
    if arr.ndim != 1:
        raise ValueError(f"units must be a 1-D sequence of ints, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"units must be integers, got dtype {arr.dtype}")
    bad = arr[(arr < 0) | (arr >= width)]
    if bad.size:
        raise ValueError(
            f"units {bad.tolist()} out of range for {hook_name!r}: allowed 0..{width - 1} "
            f"(width {width})"
        )
    if np.unique(arr).size != arr.size:
        raise ValueError(f"duplicate units in {arr.tolist()}")
    return arr.astype(np.int64)


def check_finite(name: str, value: Any) -> float:
    """``value`` as a float; TypeError if not a real number, ValueError if not finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def _per_unit(name: str, value: Any, k: int) -> Tensor:
    """A finite scalar or a ``[k]`` vector as a float32 tensor of shape ``[]`` or ``[k]``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(check_finite(name, value))
    tensor = torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=torch.float32)
    if tensor.shape != (k,):
        raise ValueError(f"{name} must be a number or have one value per unit ({k}), "
                         f"got shape {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must be finite")
    return tensor


@reads_cls_only
def _identity(activation: Tensor, hook: Any) -> Tensor:
    return activation


def _unit_hook(
    width: int, units: np.ndarray, position: str, edit: Callable[[Tensor], Tensor]
) -> HookFn:
    """A hook replacing the selected units by ``edit(selected)`` on a copy of the activation."""
    index = torch.as_tensor(units)

    def hook(activation: Tensor, hook: Any) -> Tensor:
        if activation.shape[-1] != width:
            raise ValueError(f"hook {getattr(hook, 'name', '?')!r}: expected width {width}, "
                             f"got an activation of shape {tuple(activation.shape)}")
        idx = index.to(activation.device)
        out = activation.clone()
        if activation.ndim == 3 and position == "cls":
            out[:, 0, idx] = edit(activation[:, 0, idx]).to(activation.dtype)
        else:
            out[..., idx] = edit(activation[..., idx]).to(activation.dtype)
        return out

    # a [CLS] edit reads and writes position 0 only: the [CLS]-only last layer may run
    return reads_cls_only(hook) if position == "cls" else hook


def _prepare(model: Any, hook_name: str, units: Any, position: str) -> tuple[int, np.ndarray]:
    check_position(position)
    arr = check_units(model, hook_name, units)
    return classifier_info(model).width(hook_name), arr


def zero_ablate(model: Any, hook_name: str, units: Any, *, position: Position = "cls") -> HookFn:
    """Set ``units`` to 0.

    Args:
        model: a model from :func:`synapse_lens.load_classifier` (for validation).
        hook_name: where the hook will be attached.
        units: unit ids (see :func:`check_units`).
        position: ``"cls"`` (position 0) or ``"all"``; ignored for 2-D hooks.

    Returns:
        A TransformerLens hook function (a pass-through when ``units`` is empty).

    Raises:
        ValueError / TypeError: see :func:`check_units`; bad ``position``.

    Example:
        >>> fn = zero_ablate(model, names.resid_post(1), [0, 5])  # doctest: +SKIP
        >>> model.run_with_hooks(texts, fwd_hooks=[(names.resid_post(1), fn)])  # doctest: +SKIP
    """
    width, arr = _prepare(model, hook_name, units, position)
    if arr.size == 0:
        return _identity
    return _unit_hook(width, arr, position, torch.zeros_like)


def mean_ablate(
    model: Any,
    hook_name: str,
    units: Any,
    stats: ClsActivations | Float[Tensor, " d"],
    *,
    position: Position = "cls",
) -> HookFn:
    """Replace ``units`` by their mean over a reference set.

    Args:
        model, hook_name, units, position: as :func:`zero_ablate`.
        stats: a :class:`~synapse_lens.activations.ClsActivations` of this model holding
            ``hook_name`` (its [CLS] mean is used; only ``position="cls"`` or 2-D hooks), or a
            ``[width]`` mean vector (any position).

    Returns:
        A TransformerLens hook function (a pass-through when ``units`` is empty).

    Raises:
        ValueError: stats from a different model, ``hook_name`` not in ``stats``,
            ``position="all"`` with [CLS] statistics, a mean vector of the wrong width.

    Example:
        >>> acts = cache_cls(model, ds.texts)  # doctest: +SKIP
        >>> fn = mean_ablate(model, names.resid_post(1), [0, 5], acts)  # doctest: +SKIP
    """
    width, arr = _prepare(model, hook_name, units, position)
    if isinstance(stats, ClsActivations):
        if stats.model_fingerprint != classifier_info(model).fingerprint:
            raise ValueError(
                f"mean-ablation stats from a different model (stats fingerprint "
                f"{stats.model_fingerprint}, model {classifier_info(model).fingerprint})"
            )
        if position == "all" and _is_3d(model, hook_name):
            raise ValueError("ClsActivations hold [CLS] statistics only; pass a [width] mean "
                             "tensor for position='all'")
        means = stats.mean(hook_name)
    else:
        means = torch.as_tensor(stats, dtype=torch.float32)
    if means.shape != (width,):
        raise ValueError(f"mean vector must have shape ({width},), got {tuple(means.shape)}")
    if arr.size == 0:
        return _identity
    selected = means[torch.as_tensor(arr)].detach().cpu()
    return _unit_hook(width, arr, position,
                      lambda x: selected.to(x.device, x.dtype).expand_as(x))


def _is_3d(model: Any, hook_name: str) -> bool:
    return classifier_info(model).names.parse(hook_name).site in _THREE_D


def scale(
    model: Any, hook_name: str, units: Any, alpha: float, *, position: Position = "cls"
) -> HookFn:
    """Multiply ``units`` by ``alpha`` (``alpha=1`` is a pass-through).

    Args:
        model, hook_name, units, position: as :func:`zero_ablate`.
        alpha: finite scale factor.

    Returns:
        A TransformerLens hook function.

    Raises:
        ValueError: ``alpha`` not finite; see :func:`check_units`.
        TypeError: ``alpha`` not a number.

    Example:
        >>> fn = scale(model, names.mlp_post(0), [1, 2], 2.0)  # doctest: +SKIP
    """
    width, arr = _prepare(model, hook_name, units, position)
    factor = check_finite("alpha", alpha)
    if arr.size == 0 or factor == 1.0:
        return _identity
    return _unit_hook(width, arr, position, lambda x: x * factor)


def add_noise(
    model: Any,
    hook_name: str,
    units: Any,
    sigma: float | Float[Tensor, " k"] | Sequence[float],
    *,
    seed: int = 0,
    position: Position = "cls",
) -> HookFn:
    """Add Gaussian noise ``N(0, sigma^2)`` to ``units``.

    The noise comes from a CPU ``torch.Generator`` seeded with ``seed`` and created by this
    call: two hooks made with the same arguments add the same noise to the same sequence of
    batches, whatever the global RNG state. The generator advances from batch to batch.

    Args:
        model, hook_name, units, position: as :func:`zero_ablate`.
        sigma: standard deviation, a number or one value per unit (``[k]``), all >= 0.
        seed: generator seed.

    Returns:
        A TransformerLens hook function (a pass-through when ``sigma`` is all zero).

    Raises:
        ValueError: negative or non-finite ``sigma``; see :func:`check_units`.

    Example:
        >>> fn = add_noise(model, names.resid_post(2), [4, 9], 0.5, seed=1)  # doctest: +SKIP
    """
    width, arr = _prepare(model, hook_name, units, position)
    std = _per_unit("sigma", sigma, arr.size)
    if (std < 0).any():
        raise ValueError(f"sigma must be >= 0, got {std.tolist()}")
    if arr.size == 0 or not (std > 0).any():
        return _identity
    generator = torch.Generator(device="cpu").manual_seed(int(seed))

    def noisy(x: Tensor) -> Tensor:
        noise = torch.randn(x.shape, generator=generator, dtype=torch.float32)
        return x + (noise * std).to(x.device, x.dtype)

    return _unit_hook(width, arr, position, noisy)


def set_value(
    model: Any,
    hook_name: str,
    units: Any,
    value: float | Float[Tensor, " k"] | Sequence[float],
    *,
    position: Position = "cls",
) -> HookFn:
    """Set ``units`` to ``value`` (a number, or one value per unit).

    Args:
        model, hook_name, units, position: as :func:`zero_ablate`.
        value: finite number or ``[k]`` values.

    Returns:
        A TransformerLens hook function (a pass-through when ``units`` is empty).

    Raises:
        ValueError: non-finite or misshapen ``value``; see :func:`check_units`.

    Example:
        >>> fn = set_value(model, names.resid_post(0), [2], 3.0)  # doctest: +SKIP
    """
    width, arr = _prepare(model, hook_name, units, position)
    values = _per_unit("value", value, arr.size)
    if arr.size == 0:
        return _identity
    return _unit_hook(width, arr, position,
                      lambda x: values.to(x.device, x.dtype).expand_as(x))


def steer(
    model: Any,
    hook_name: str,
    units: Any,
    vector: float | Float[Tensor, " k"] | Sequence[float],
    *,
    position: Position = "cls",
) -> HookFn:
    """Add ``vector`` (a number, or one value per unit) to ``units``: activation steering,
    e.g. ``alpha * (mu_t - mu_rest)`` on class ``t``'s top units.

    Args:
        model, hook_name, units, position: as :func:`zero_ablate`.
        vector: finite number or ``[k]`` values.

    Returns:
        A TransformerLens hook function (a pass-through when ``units`` is empty or ``vector``
        is all zero).

    Raises:
        ValueError: non-finite or misshapen ``vector``; see :func:`check_units`.

    Example:
        >>> fn = steer(model, names.resid_post(5), [3, 7], [0.5, -1.0])  # doctest: +SKIP
    """
    width, arr = _prepare(model, hook_name, units, position)
    values = _per_unit("vector", vector, arr.size)
    if arr.size == 0 or not (values != 0).any():
        return _identity
    return _unit_hook(width, arr, position, lambda x: x + values.to(x.device, x.dtype))


def patch_from(
    model: Any,
    hook_name: str,
    units: Any,
    source: ClsActivations | Tensor,
    *,
    row: int | None = None,
    position: Position = "cls",
) -> HookFn:
    """Interchange: write ``units`` from another run's activations.

    Args:
        model, hook_name, units, position: as :func:`zero_ablate`.
        source: a :class:`~synapse_lens.activations.ClsActivations` of this model holding
            ``hook_name`` ([CLS] rows ``[n, d]``; ``position="cls"`` or 2-D hooks), or a tensor
            ``[d]`` (one vector, written into every example), ``[batch, d]`` or
            ``[batch, pos, d]`` (one row per example of the batch the hook will see, e.g. a
            ``run_with_cache`` value).
        row: take only this example of ``source`` and write it into every example.

    Returns:
        A TransformerLens hook function. With per-example sources it raises at run time if the
        batch does not have the source's shape.

    Raises:
        ValueError: source from another model or of the wrong width, ``row`` out of range.

    Example:
        >>> _, cache = model.run_with_cache(spam_text)  # doctest: +SKIP
        >>> fn = patch_from(model, name, units, cache[name][0, 0])  # doctest: +SKIP
    """
    width, arr = _prepare(model, hook_name, units, position)
    if isinstance(source, ClsActivations):
        if source.model_fingerprint != classifier_info(model).fingerprint:
            raise ValueError("patch source comes from a different model (fingerprint "
                             f"{source.model_fingerprint})")
        if position == "all" and _is_3d(model, hook_name):
            raise ValueError("ClsActivations hold [CLS] rows only; use position='cls'")
        tensor = source[hook_name]
    else:
        tensor = torch.as_tensor(source).detach()
    if tensor.ndim == 0 or tensor.shape[-1] != width or tensor.ndim > 3:
        raise ValueError(f"patch source must end in width {width}, got {tuple(tensor.shape)}")
    if row is not None:
        if tensor.ndim != 2 or not 0 <= row < tensor.shape[0]:
            raise ValueError(f"row {row} needs a [n, {width}] source with n > row, "
                             f"got {tuple(tensor.shape)}")
        tensor = tensor[row]
    if arr.size == 0:
        return _identity
    values = tensor[..., torch.as_tensor(arr)].cpu()

    def patched(x: Tensor) -> Tensor:
        if values.ndim > 1 and values.shape != x.shape:
            raise ValueError(f"patch source has shape {tuple(values.shape)} for the units but "
                             f"the batch needs {tuple(x.shape)}; pass one row per example of "
                             "this batch, a single [d] vector, or row=")
        return values.to(x.device, x.dtype).expand_as(x)

    return _unit_hook(width, arr, position, patched)
