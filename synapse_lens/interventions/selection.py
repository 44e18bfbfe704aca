"""From a ranking to hooks: which units (top / bottom / random k) and what to do to them.

:class:`Intervention` is a small spec of an intervention (kind and parameters);
:func:`make_hook` builds its hook function with the factories of
:mod:`synapse_lens.interventions.hooks`; :func:`ranking_hooks` turns a ranking selection into the
``[(hook_name, fn), ...]`` list accepted by ``model.hooks(fwd_hooks=...)`` (wrap
``run_with_cache`` in it: TL 4.3's bridge ``run_with_cache`` ignores ``fwd_hooks=``),
``run_with_hooks`` and :func:`synapse_lens.activations.predict_logits`.

Example:
    >>> hooks = ranking_hooks(model, ranking, 10, order="random", seed=2)  # doctest: +SKIP
    >>> with model.hooks(fwd_hooks=hooks):  # doctest: +SKIP
    ...     logits = model(texts)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from jaxtyping import Float, Int
from torch import Tensor

from synapse_lens.activations import ClsActivations
from synapse_lens.analysis.rankings import Ranking
from synapse_lens.interventions.hooks import (
    HookFn,
    Position,
    add_noise,
    check_finite,
    check_position,
    mean_ablate,
    scale,
    set_value,
    zero_ablate,
)
from synapse_lens.models import classifier_info
from synapse_lens.schema import GLOBAL

Kind = Literal["zero", "mean", "scale", "noise", "set"]


@dataclass(frozen=True)
class Intervention:
    """What to do to a set of units (a small JSON-friendly spec for experiments).

    Attributes:
        kind: ``"zero"``, ``"mean"`` (needs stats), ``"scale"`` (``alpha``), ``"noise"``
            (``sigma``, ``seed``), ``"set"`` (``value``).
        position: ``"cls"`` or ``"all"``.
        alpha: scale factor for ``"scale"``.
        sigma: noise standard deviation for ``"noise"``.
        value: value for ``"set"``.
        seed: noise seed for ``"noise"``.
    """

    kind: Kind = "zero"
    position: Position = "cls"
    alpha: float = 0.0
    sigma: float = 0.0
    value: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("zero", "mean", "scale", "noise", "set"):
            raise ValueError(f"kind must be zero, mean, scale, noise or set, got {self.kind!r}")
        check_position(self.position)
        for name in ("alpha", "sigma", "value"):
            check_finite(name, getattr(self, name))
        if self.sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {self.sigma}")


def make_hook(
    model: Any,
    hook_name: str,
    units: Any,
    spec: Intervention,
    stats: ClsActivations | Float[Tensor, " d"] | None = None,
) -> HookFn:
    """Build the hook function described by ``spec``.

    Args:
        model, hook_name, units: as :func:`zero_ablate`.
        spec: the :class:`Intervention`.
        stats: mean statistics for ``kind="mean"`` (see :func:`mean_ablate`).

    Returns:
        A TransformerLens hook function.

    Raises:
        ValueError: ``kind="mean"`` without ``stats``; see the factories.

    Example:
        >>> fn = make_hook(model, name, [1, 2], Intervention("scale", alpha=0.5))  # doctest: +SKIP
    """
    pos = spec.position
    if spec.kind == "zero":
        return zero_ablate(model, hook_name, units, position=pos)
    if spec.kind == "mean":
        if stats is None:
            raise ValueError("kind='mean' needs stats= (a ClsActivations or a mean vector)")
        return mean_ablate(model, hook_name, units, stats, position=pos)
    if spec.kind == "scale":
        return scale(model, hook_name, units, spec.alpha, position=pos)
    if spec.kind == "noise":
        return add_noise(model, hook_name, units, spec.sigma, seed=spec.seed, position=pos)
    return set_value(model, hook_name, units, spec.value, position=pos)


Order = Literal["top", "bottom", "random"]


def select_units(ranking: Ranking, k: int, order: Order = "top", seed: int = 0) -> Int[
        np.ndarray, " k"]:
    """The ``k`` units of a ranking to intervene on.

    Args:
        ranking: a :class:`~synapse_lens.analysis.rankings.Ranking`.
        k: how many units, ``0 <= k <= ranking.width``.
        order: ``"top"`` (most important), ``"bottom"`` (least important) or ``"random"``
            (uniform, from ``np.random.default_rng(seed)``).
        seed: used by ``"random"`` only.

    Returns:
        ``int64 [k]`` unit ids.

    Raises:
        ValueError: ``k`` larger than the layer width or negative, unknown ``order``.

    Example:
        >>> select_units(ranking, 8, "random", seed=3)  # doctest: +SKIP
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if not 0 <= k <= ranking.width:
        raise ValueError(f"k={k} is larger than the layer width ({ranking.width}) of "
                         f"{ranking.hook_name!r} or negative: allowed 0..{ranking.width}")
    if order == "top":
        return ranking.top(int(k))
    if order == "bottom":
        return ranking.bottom(int(k))
    if order == "random":
        return ranking.random(int(k), int(seed))
    raise ValueError(f"order must be 'top', 'bottom' or 'random', got {order!r}")


def ranking_hooks(
    model: Any,
    rankings: Ranking | Sequence[Ranking],
    k: int,
    *,
    order: Order = "top",
    seed: int = 0,
    spec: Intervention | None = None,
    stats: ClsActivations | None = None,
) -> list[tuple[str, HookFn]]:
    """Hooks intervening on the selected units of one or more rankings.

    Args:
        model: a model from :func:`synapse_lens.load_classifier`.
        rankings: one ranking or several (e.g. one per layer; each gets its own hook).
        k, order, seed: the selection (see :func:`select_units`).
        spec: what to do to the units (default: zero-ablation at [CLS]).
        stats: mean statistics for ``spec.kind == "mean"``.

    Returns:
        ``[(hook_name, fn), ...]`` for ``model.hooks(fwd_hooks=...)`` (also around
        ``run_with_cache``), ``run_with_hooks``, ``predict_logits(..., fwd_hooks=...)``.

    Raises:
        ValueError: a ranking of another model's hook or width, see :func:`select_units`.

    Example:
        >>> hooks = ranking_hooks(model, ranking, 10)  # doctest: +SKIP
        >>> model.run_with_hooks(texts, fwd_hooks=hooks)  # doctest: +SKIP
    """
    spec = Intervention() if spec is None else spec
    items = [rankings] if isinstance(rankings, Ranking) else list(rankings)
    info = classifier_info(model)
    hooks: list[tuple[str, HookFn]] = []
    for ranking in items:
        width = info.width(ranking.hook_name)
        if ranking.width != width:
            raise ValueError(f"ranking of {ranking.hook_name!r} has {ranking.width} scores but "
                             f"the model's hook has width {width}")
        units = select_units(ranking, k, order, seed)
        hooks.append((ranking.hook_name, make_hook(model, ranking.hook_name, units, spec, stats)))
    return hooks


def check_seeds(n_seeds: int) -> None:
    """Raise ``ValueError`` unless ``n_seeds`` is a positive int."""
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds < 1:
        raise ValueError(f"n_seeds must be a positive int, got {n_seeds!r}")


def check_rankings(model: Any, rankings: Ranking | Sequence[Ranking]) -> list[Ranking]:
    """``rankings`` as a non-empty list, each checked against ``model``: its hook's width, and
    its target a class of the model (or global).

    Raises:
        ValueError: no rankings, a width or class that does not match the model.
        TypeError: an item that is not a :class:`~synapse_lens.analysis.rankings.Ranking`.
    """
    items: list[Ranking] = [rankings] if isinstance(rankings, Ranking) else list(rankings)
    if not items:
        raise ValueError("no rankings given")
    info = classifier_info(model)
    for r in items:
        if not isinstance(r, Ranking):
            raise TypeError(f"expected Ranking objects, got {type(r).__name__}")
        if info.width(r.hook_name) != r.width:
            raise ValueError(f"ranking of {r.hook_name!r} has {r.width} scores, the model's hook "
                             f"has width {info.width(r.hook_name)}")
        if r.target != GLOBAL and r.target not in info.id2label:
            raise ValueError(f"ranking target {r.target!r} is not a class of the model "
                             f"{list(info.id2label)}")
    return items
