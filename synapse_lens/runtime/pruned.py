"""The last encoder layer computed for the [CLS] row only.

A classifier that reads [CLS] (every family's own head, and a user head with ``pooling="cls"``)
uses one row of the last layer's output. That row still attends to every position, so the last
layer's keys and values need every position, but its queries, attention output, output
projection, MLP and LayerNorms are needed for position 0 alone: about five sixths of the last
layer's work is skipped (the MLP dominates). :class:`ClsLastLayer` wraps the last HF layer module
and computes exactly that, calling the layer's own submodules (so hooks on them, such as the MLP
units' hook point, fire with the ``[batch, 1, d]`` [CLS] row). Its output is ``[batch, 1, d]``.

It is not bit for bit the full layer: a matrix product of one row may round differently from
the same row inside the full product. The difference is below 1e-6 on logits and on the cached
[CLS] vectors (tested on every family against the full TransformerLens forward).

Hook functions see the shortened activations at the last layer's output and MLP units, so the
pruned layer runs only when every hook attached there touches position 0 alone. Such hook
functions carry a mark (:func:`reads_cls_only`): the factories of
:mod:`synapse_lens.interventions.hooks` set it for ``position="cls"``, the caching hooks of the
forward pass set it. Any other hook at those sites (a user's own function, ``position="all"``)
makes the caller run the full layer.

Example:
    >>> fn = reads_cls_only(lambda act, hook: None)
    >>> is_cls_only(fn)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
from jaxtyping import Float
from torch import Tensor, nn

from synapse_lens.models.families import LayerShape

_MARK = "_synapse_lens_cls_only"
F = TypeVar("F", bound=Callable[..., Any])


def reads_cls_only(fn: F) -> F:
    """Mark a hook function that reads and edits position 0 ([CLS]) of a ``[batch, pos, d]``
    activation only (and works unchanged on ``[batch, 1, d]``), so that the [CLS]-only last
    layer may run while it is attached there.

    Returns:
        ``fn`` itself, marked.
    """
    setattr(fn, _MARK, True)
    return fn


def is_cls_only(fn: Any) -> bool:
    """Whether ``fn`` carries the :func:`reads_cls_only` mark."""
    return getattr(fn, _MARK, False) is True


def _attend(query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None,
            scaling: float) -> Tensor:
    """Eager attention of the [CLS] query: ``[b, heads, 1, dh]`` against ``[b, heads, pos, dh]``
    keys and values, ``mask`` the layer's ``[b, 1, q, pos]`` mask (additive float or boolean
    keep-mask; only its first query row is read). Returns ``[b, 1, heads · dh]``."""
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if mask is not None:
        row = mask[:, :, :1]
        if row.dtype == torch.bool:
            scores = scores.masked_fill(~row, torch.finfo(scores.dtype).min)
        else:
            scores = scores + row
    context = torch.matmul(torch.softmax(scores, dim=-1), value)
    return context.transpose(1, 2).reshape(query.shape[0], 1, -1)


def _heads(x: Tensor, head_size: int) -> Tensor:
    """``[b, s, heads · dh]`` → ``[b, heads, s, dh]``."""
    return x.view(x.shape[0], x.shape[1], -1, head_size).transpose(1, 2)


def cls_row(layer: Any, shape: LayerShape, hidden: Float[Tensor, "batch pos d_model"],
            mask: Tensor | None) -> Float[Tensor, "batch 1 d_model"]:
    """The [CLS] row of an HF encoder layer's output (see the module docstring).

    Args:
        layer: the HF layer module (``BertLayer``, ``TransformerBlock``, ``AlbertLayer``, ...).
        shape: its :data:`~synapse_lens.models.families.LayerShape`.
        hidden: the layer's input, every position.
        mask: the attention mask HF passes the layer (``[b, 1, pos, pos]``), or None.

    Returns:
        ``[batch, 1, d_model]``: position 0 of what ``layer(hidden, mask)`` returns.
    """
    first = hidden[:, :1]
    if shape == "bert":  # BERT, RoBERTa, XLM-R, ELECTRA: post-LN attention, then MLP
        sa = layer.attention.self
        size = sa.attention_head_size
        context = _attend(_heads(sa.query(first), size), _heads(sa.key(hidden), size),
                          _heads(sa.value(hidden), size), mask, sa.scaling)
        attended = layer.attention.output(context, first)
        return layer.output(layer.intermediate(attended), attended)  # type: ignore[no-any-return]
    if shape == "distilbert":
        at = layer.attention
        size = at.attention_head_size
        context = _attend(_heads(at.q_lin(first), size), _heads(at.k_lin(hidden), size),
                          _heads(at.v_lin(hidden), size), mask, at.scaling)
        attended = layer.sa_layer_norm(at.out_lin(context) + first)
        return layer.output_layer_norm(layer.ffn(attended) + attended)  # type: ignore[no-any-return]
    if shape == "albert":
        at = layer.attention
        size = at.attention_head_size
        context = _attend(_heads(at.query(first), size), _heads(at.key(hidden), size),
                          _heads(at.value(hidden), size), mask, at.scaling)
        attended = at.LayerNorm(first + at.output_dropout(at.dense(context)))
        mlp = layer.ffn_output(layer.activation(layer.ffn(attended)))
        return layer.full_layer_layer_norm(mlp + attended)  # type: ignore[no-any-return]
    raise ValueError(f"no [CLS]-only form for layer shape {shape!r}")


class ClsLastLayer(nn.Module):
    """An HF encoder layer computed for the [CLS] row only (:func:`cls_row`); called like the
    layer (``(hidden_states, attention_mask, ...)``; further arguments, which an encoder
    classifier passes as None, are ignored).

    Attributes:
        layer: the wrapped HF layer (same module, same parameters).
        shape: its layer shape.
    """

    def __init__(self, layer: nn.Module, shape: LayerShape) -> None:
        super().__init__()
        self.layer = layer
        self.shape: LayerShape = shape

    def extra_repr(self) -> str:
        return f"shape={self.shape!r}"

    def forward(self, hidden_states: Tensor, attention_mask: Tensor | None = None,
                *args: Any, **kwargs: Any) -> Tensor:
        return cls_row(self.layer, self.shape, hidden_states, attention_mask)
