"""Computing less where a run changes or reads [CLS] only: the [CLS]-only last layer, and the
layer after a [CLS]-only edit.

A classifier that reads [CLS] (every family's own head, and a user head with ``pooling="cls"``)
uses one row of the last layer's output. That row attends to every position, but its query,
attention output, output projection, MLP and LayerNorms are needed for position 0 alone, and
the keys and values of every position need not be projected either: the [CLS] query is taken
back into the residual space through the key weights and attends to the layer's input itself,
and the attention-weighted input goes through the value weights once (:func:`_attend_unprojected`;
the key bias shifts every score alike, the value bias passes through weights that sum to 1).
On MiniLM at 40-64 tokens this [CLS]-only layer costs 5-7 % of the full layer, a quarter to a
third of what projecting every key and value cost (CPU time, ``benchmarks/bench_cls_layer.py``).
:class:`ClsLastLayer` wraps the last HF layer module and computes exactly that, calling the
layer's own query, output and MLP submodules (so hooks on them, such as the MLP units' hook
point, fire with the ``[batch, 1, d]`` [CLS] row). Its output is ``[batch, 1, d]``.

It is not bit for bit the full layer: a matrix product of one row may round differently from
the same row inside the full product. The difference is below 1e-6 on logits and on the cached
[CLS] vectors (tested on every family against the full TransformerLens forward).

Hook functions see the shortened activations at the last layer's output and MLP units, so the
pruned layer runs only when every hook attached there touches position 0 alone. Such hook
functions carry a mark (:func:`reads_cls_only`): the factories of
:mod:`synapse_lens.interventions.hooks` set it for ``position="cls"``, the caching hooks of the
forward pass set it. Any other hook at those sites (a user's own function, ``position="all"``)
makes the caller run the full layer.

The second saving is at the other end of a resumed run (:mod:`synapse_lens.runtime.resume`): an
edit of [CLS] alone at a layer's output leaves the next layer's input unchanged at every other
position, and a projection acts on each position alone, so that layer's queries, keys and
values at those positions are the clean run's. :func:`cls_edited_layer` projects row 0 anew
and takes the other rows from the clean run's projections, then runs attention (HF's own
kernel) and the rest of the layer as HF does. Again not bit for bit (row 0 is projected
alone), within 1e-6 of the full layer (tested).

Example:
    >>> fn = reads_cls_only(lambda act, hook: None)
    >>> is_cls_only(fn)
    True
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from jaxtyping import Float
from torch import Tensor, nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

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


def _attend_unprojected(attn: Any, query: nn.Module, key: nn.Linear, value: nn.Linear,
                        first: Tensor, hidden: Tensor, mask: Tensor | None) -> Tensor:
    """:func:`_attend` of the [CLS] query without projecting every position's key and value.

    Per head ``h`` (``W_h``, ``b_h``: its rows of a projection), the scores ``q_h · (W_k,h x_j +
    b_k,h)`` are ``(W_k,hᵀ q_h) · x_j`` plus a term that is the same at every position ``j``
    (softmax drops it), and the context ``Σ_j p_hj (W_v,h x_j + b_v,h)`` is ``W_v,h (Σ_j p_hj x_j)
    + b_v,h`` (the weights ``p_hj`` sum to 1). So the query is taken back into the residual
    space (``[b, heads, d]``) and attends to the layer input itself: ``2 · b · heads · pos · d``
    multiply-adds instead of the ``2 · b · pos · d²`` of the key and value projections (a 32nd
    on MiniLM). Same mathematics, different rounding (within 1e-6, tested).
    Returns ``[b, 1, heads · dh]``."""
    size = attn.attention_head_size
    b, _, d = hidden.shape
    q = query(first).view(b, -1, size).transpose(0, 1)  # [heads, b, dh]
    heads = q.shape[0]
    u = torch.bmm(q, key.weight.view(heads, size, d)).transpose(0, 1)  # [b, heads, d]
    scores = torch.bmm(u, hidden.transpose(1, 2)) * attn.scaling  # [b, heads, pos]
    if mask is not None:
        row = mask[:, 0, :1]  # [b, 1, pos]
        if row.dtype == torch.bool:
            scores = scores.masked_fill(~row, torch.finfo(scores.dtype).min)
        else:
            scores = scores + row
    mixed = torch.bmm(torch.softmax(scores, dim=-1), hidden).transpose(0, 1)  # [heads, b, d]
    context = torch.bmm(mixed, value.weight.view(heads, size, d).transpose(1, 2))
    if value.bias is not None:
        context = context + value.bias.view(heads, 1, size)
    return context.transpose(0, 1).reshape(b, 1, heads * size)


def _heads(x: Tensor, head_size: int) -> Tensor:
    """``[b, s, heads · dh]`` → ``[b, heads, s, dh]``."""
    return x.view(x.shape[0], x.shape[1], -1, head_size).transpose(1, 2)


def _parts(layer: Any, shape: LayerShape) -> tuple[Any, nn.Module, nn.Module, nn.Module]:
    """``(attention module, query, key, value projections)`` of an HF layer; the attention
    module holds ``attention_head_size``, ``scaling`` and ``config``."""
    if shape == "bert":  # BERT, RoBERTa, XLM-R, ELECTRA
        sa = layer.attention.self
        return sa, sa.query, sa.key, sa.value
    if shape == "distilbert":
        at = layer.attention
        return at, at.q_lin, at.k_lin, at.v_lin
    if shape == "albert":
        at = layer.attention
        return at, at.query, at.key, at.value
    raise ValueError(f"no [CLS]-only form for layer shape {shape!r}")


def projections(layer: Any, shape: LayerShape) -> tuple[nn.Module, nn.Module, nn.Module]:
    """The query, key and value projection modules of an HF layer (``[b, pos, d]`` in, ``[b, pos,
    heads · dh]`` out)."""
    return _parts(layer, shape)[1:]


def _tail(layer: Any, shape: LayerShape, context: Tensor, residual: Tensor) -> Tensor:
    """The rest of the layer after attention, as HF's forward runs it: output projection,
    residual and LayerNorm, then the MLP (``context``: ``[b, rows, heads · dh]``, ``residual``:
    the layer input at the same rows)."""
    if shape == "bert":  # post-LN attention, then MLP
        attended = layer.attention.output(context, residual)
        return layer.output(layer.intermediate(attended), attended)  # type: ignore[no-any-return]
    if shape == "distilbert":
        attended = layer.sa_layer_norm(layer.attention.out_lin(context) + residual)
        return layer.output_layer_norm(layer.ffn(attended) + attended)  # type: ignore[no-any-return]
    at = layer.attention  # albert
    attended = at.LayerNorm(residual + at.output_dropout(at.dense(context)))
    mlp = layer.ffn_output(layer.activation(layer.ffn(attended)))
    return layer.full_layer_layer_norm(mlp + attended)  # type: ignore[no-any-return]


def cls_row(layer: Any, shape: LayerShape, hidden: Float[Tensor, "batch pos d_model"],
            mask: Tensor | None,
            keys_values: tuple[Tensor, Tensor] | None = None) -> Float[Tensor, "batch 1 d_model"]:
    """The [CLS] row of an HF encoder layer's output (see the module docstring).

    Args:
        layer: the HF layer module (``BertLayer``, ``TransformerBlock``, ``AlbertLayer``, ...).
        shape: its :data:`~synapse_lens.models.families.LayerShape`.
        hidden: the layer's input, every position.
        mask: the attention mask HF passes the layer (``[b, 1, pos, pos]``), or None.
        keys_values: the key and value projections of ``hidden`` (``[b, pos, heads · dh]``),
            when known (then attention reads them); when None the query attends to ``hidden``
            through the key and value weights (:func:`_attend_unprojected`).

    Returns:
        ``[batch, 1, d_model]``: position 0 of what ``layer(hidden, mask)`` returns.
    """
    attn, query, key, value = _parts(layer, shape)
    first = hidden[:, :1]
    if keys_values is None and isinstance(key, nn.Linear) and isinstance(value, nn.Linear):
        context = _attend_unprojected(attn, query, key, value, first, hidden, mask)
        return _tail(layer, shape, context, first)
    keys, values = (key(hidden), value(hidden)) if keys_values is None else keys_values
    size = attn.attention_head_size
    context = _attend(_heads(query(first), size), _heads(keys, size), _heads(values, size), mask,
                      attn.scaling)
    return _tail(layer, shape, context, first)


def cls_edited_layer(layer: Any, shape: LayerShape, hidden: Float[Tensor, "batch pos d_model"],
                     mask: Tensor | None, clean: tuple[Tensor, Tensor, Tensor], *,
                     cls_only: bool) -> Float[Tensor, "batch _ d_model"]:
    """An HF layer's output for an input that differs from a clean input in row 0 ([CLS]) only,
    given the query, key and value projections of the clean input (``clean``, each ``[b, pos,
    heads · dh]``).

    Rows 1.. of the projections are the clean ones (a projection acts on each row alone), so
    only row 0 is projected anew; attention (HF's own kernel for the layer), the output
    projection and the MLP then run as in the layer — for every row, or for row 0 alone with
    ``cls_only`` (then ``clean``'s query is not read). This saves the three projections of
    every other row: a quarter of a BERT layer's matrix work, all but the [CLS] row of the
    [CLS]-only last layer's. Not bit for bit the full layer (row 0 is projected alone), within
    1e-6 of it (tested).

    Returns:
        ``[batch, pos, d_model]`` (``[batch, 1, d_model]`` with ``cls_only``).
    """
    attn, query, key, value = _parts(layer, shape)
    first = hidden[:, :1]
    keys, values = (torch.cat([proj(first), old[:, 1:]], dim=1)
                    for proj, old in ((key, clean[1]), (value, clean[2])))
    if cls_only:
        return cls_row(layer, shape, hidden, mask, (keys, values))
    queries = torch.cat([query(first), clean[0][:, 1:]], dim=1)
    size = attn.attention_head_size
    eager = sys.modules[type(attn).__module__].eager_attention_forward
    kernel = ALL_ATTENTION_FUNCTIONS.get_interface(attn.config._attn_implementation, eager)
    context, _ = kernel(attn, _heads(queries, size), _heads(keys, size), _heads(values, size),
                        mask, dropout=0.0, scaling=attn.scaling)
    context = context.reshape(*hidden.shape[:2], -1).contiguous()
    return _tail(layer, shape, context, hidden)


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
