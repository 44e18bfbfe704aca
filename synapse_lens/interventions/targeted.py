"""Targeted edits in closed form: the smallest change of the logits, or of the final classifier
projection's weight, that makes the model predict a chosen class with a chosen margin.

Notation: the final projection computes ``z = W h + b`` from the pooled vector ``h``
(``names.pooled``). "Predict ``t`` with margin ``m``" means ``z_t - z_j >= m`` for every
``j != t``.

* :func:`minimal_logit_shift` — per example, the logit change ``u`` of least Euclidean norm
  meeting the margin (a small quadratic programme solved exactly by water-filling: ``u_t = L``,
  ``u_j = -max(0, d_j - L)`` with ``d_j = m - (z_t - z_j)`` and ``L = sum_j max(0, d_j - L)``).
* :func:`minimal_classifier_edit` — per example, the rank-one ``dW = u h^T / ||h||^2``: the
  least-Frobenius-norm weight edit meeting the margin (any edit with ``dW h = u'`` has
  ``||dW|| >= ||u'|| / ||h|| >= ||u|| / ||h||``).
* :func:`classifier_set_edit` — for a set of examples, the minimum-norm least-squares
  ``dW = U^T (H^+)^T``: exact (every example meets the margin) when the pooled vectors are
  linearly independent, the least-squares compromise otherwise.

Apply an edit with :func:`synapse_lens.interventions.edits.shifted_weights` (restored bit for bit on
exit).

Example:
    >>> import torch
    >>> minimal_logit_shift(torch.tensor([[2.0, 0.0]]), target=1, margin=1.0)
    tensor([[-1.5000,  1.5000]], dtype=torch.float64)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor


def _check(logits: Tensor, target: int, margin: float) -> Tensor:
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must be [n, n_classes>=2], got {tuple(logits.shape)}")
    n_classes = logits.shape[1]
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not (
            0 <= target < n_classes):
        raise ValueError(f"target class {target!r} not in 0..{n_classes - 1}")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not (
            math.isfinite(margin)) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    return logits.detach().to(torch.float64)


def minimal_logit_shift(
    logits: Float[Tensor, "n n_classes"], target: int, margin: float = 1.0
) -> Float[Tensor, "n n_classes"]:
    """Per example, the least-norm logit change after which ``target`` wins by ``margin``.

    Args:
        logits: clean logits ``[n, n_classes]``.
        target: class id ``t``.
        margin: required ``z_t - z_j`` for every ``j != t`` (finite, >= 0).

    Returns:
        ``float64 [n, n_classes]``; a zero row where ``t`` already wins by ``margin``.

    Raises:
        ValueError: bad shape, target or margin.

    Example:
        >>> minimal_logit_shift(torch.tensor([[3.0, 0.0, 0.0]]), 1, 0.0)
        tensor([[-1.5000,  1.5000,  0.0000]], dtype=torch.float64)
    """
    z = _check(logits, target, margin)
    n, c = z.shape
    others = [j for j in range(c) if j != target]
    d = margin - (z[:, target:target + 1] - z[:, others])  # [n, c-1] gaps to close
    ordered = d.sort(dim=1, descending=True).values
    lam_s = ordered.cumsum(1) / torch.arange(2, c + 1, dtype=torch.float64)  # L if s active
    active = (ordered > lam_s).sum(1)  # the active set is a prefix of the sorted gaps
    lam = torch.where(active > 0, lam_s.gather(1, (active - 1).clamp(min=0)[:, None])[:, 0],
                      torch.zeros(n, dtype=torch.float64))
    u = torch.zeros(n, c, dtype=torch.float64)
    u[:, target] = lam
    u[:, others] = -(d - lam[:, None]).clamp(min=0)
    return u


def _check_pooled(pooled: Tensor, logits: Tensor) -> Tensor:
    if pooled.ndim != 2 or pooled.shape[0] != logits.shape[0]:
        raise ValueError(f"pooled must be [n, d] with the logits' n={logits.shape[0]}, got "
                         f"{tuple(pooled.shape)}")
    h = pooled.detach().to(torch.float64)
    if not torch.isfinite(h).all() or (h.norm(dim=1) == 0).any():
        raise ValueError("pooled vectors must be finite and non-zero")
    return h


def minimal_classifier_edit(
    pooled: Float[Tensor, "n d"], logits: Float[Tensor, "n n_classes"], target: int,
    margin: float = 1.0,
) -> Float[Tensor, "n n_classes d"]:
    """Per example, the least-Frobenius-norm edit of the final projection's weight after which
    that example is predicted as ``target`` with ``margin`` (rank one: ``u h^T / ||h||^2``).

    Args:
        pooled: the vectors the projection reads (``names.pooled``), ``[n, d]``.
        logits: their clean logits ``[n, n_classes]``.
        target, margin: as :func:`minimal_logit_shift`.

    Returns:
        ``float64 [n, n_classes, d]``: one edit per example (zero where nothing is needed);
        its norm is ``||u_i|| / ||h_i||``.

    Raises:
        ValueError: bad shapes, target or margin; zero or non-finite pooled vectors.

    Example:
        >>> dw = minimal_classifier_edit(pooled, clean.logits, target=1)  # doctest: +SKIP
    """
    u = minimal_logit_shift(logits, target, margin)
    h = _check_pooled(pooled, logits)
    return u[:, :, None] * (h / (h * h).sum(1, keepdim=True))[:, None, :]


def classifier_set_edit(
    pooled: Float[Tensor, "n d"], logits: Float[Tensor, "n n_classes"], target: int,
    margin: float = 1.0, *, rtol: float = 0.0,
) -> Float[Tensor, "n_classes d"]:
    """One edit of the final projection's weight for a set of examples: the minimum-norm
    least-squares solution of ``dW h_i = u_i`` (``u_i`` from :func:`minimal_logit_shift`).

    With ``rtol=0`` it is exact — every example predicted as ``target`` with ``margin`` — when
    the pooled vectors are linearly independent (``n <= d``); otherwise the least-squares
    compromise. ``rtol > 0`` truncates the pseudo-inverse (singular values below ``rtol`` times
    the largest are ignored): the examples of one class have nearly parallel pooled vectors,
    and fitting their small differences exactly inflates the norm several-fold
    (docs/redirection.md has the measurements); ``rtol=1`` keeps only the dominant direction.

    Args:
        pooled, logits, target, margin: as :func:`minimal_classifier_edit`.
        rtol: relative singular-value cutoff of the pseudo-inverse, in ``[0, 1]``.

    Returns:
        ``float64 [n_classes, d]``.

    Raises:
        ValueError: as :func:`minimal_classifier_edit`.

    Example:
        >>> dw = classifier_set_edit(pooled[ham], clean.logits[ham], target=1)  # doctest: +SKIP
    """
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0 <= rtol <= 1:
        raise ValueError(f"rtol must be a number in [0, 1], got {rtol!r}")
    u = minimal_logit_shift(logits, target, margin)
    h = _check_pooled(pooled, logits)
    inverse = torch.linalg.pinv(h, rtol=rtol) if rtol > 0 else torch.linalg.pinv(h)
    return (inverse @ u).T
