"""Resume a forward pass from a cached clean residual: intervened runs pay only for the layers
after the intervention.

An intervention at layer ``l``'s output (``blocks.{l}.hook_resid_post``) cannot change layers
``0..l``. :func:`capture` runs the clean forward once per batch (through the plain copy of
:mod:`synapse_lens.runtime.plain`) and keeps the input of each layer a condition will resume from;
:func:`resume` then fires the hook point of the intervened site on that cached tensor — so the
user's hook function is what edits it, with the same ``hook`` object as in a full run — and
re-runs only the layers after it and the classifier head. For an intervention on the last layer
(or on the pooled vector / logits) only the head re-runs.

The *resume point* ``r`` of a condition (:func:`resume_point`) is the first layer it can change:
``l + 1`` for a hook on layer ``l``'s output, ``l`` for a hook inside layer ``l`` (MLP units,
``hook_resid_pre``), ``0`` for the embeddings output, ``n_layers`` for the head; a weight edit
whose parameters are declared (:func:`edit_point`) resumes at the first layer holding one of them.
Anything else (a hook elsewhere, an undeclared edit, the embeddings' own weights) has no resume
point and runs in full.

Example:
    >>> pm = plain_model(model)  # doctest: +SKIP
    >>> states = capture(pm, encodings, points={3})  # doctest: +SKIP
    >>> with model.hooks(fwd_hooks=hooks):  # doctest: +SKIP
    ...     logits = resume(pm, states[0], 3)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from synapse_lens.models import classifier_info
from synapse_lens.models.families import FAMILIES
from synapse_lens.runtime.plain import PlainModel, first_tensor
from synapse_lens.runtime.pruned import cls_edited_layer, projections


@dataclass(frozen=True, eq=False)
class BatchState:
    """The clean run of one batch, kept for resuming.

    Attributes:
        rows: dataset positions of the batch's examples (its order).
        attention_mask: ``[batch, pos]`` 0/1 mask.
        hidden: layer index ``r`` -> the input of layer ``r`` (``[batch, pos, d_model]``);
            ``n_layers`` -> the output of the last layer.
        calls: per layer, the other positional and keyword arguments HF passed it.
        logits: ``[batch, n_classes]`` clean logits.
        cls_only: the last layer ran for [CLS] only (``hidden[n_layers]`` is
            ``[batch, 1, d_model]``), and resumed runs of this state run it so too.
        projections: layer index ``r`` -> the query, key and value projections of
            ``hidden[r]`` in layer ``r`` (each ``[batch, pos, heads · dh]``; the query ``[batch,
            1, ·]`` for the [CLS]-only last layer), for the resume points where runs edit [CLS]
            only (:func:`~synapse_lens.runtime.pruned.cls_edited_layer`).
    """

    rows: Int[np.ndarray, " batch"]
    attention_mask: Int[Tensor, "batch pos"]
    hidden: Mapping[int, Float[Tensor, "batch _ d_model"]]
    calls: tuple[tuple[tuple[Any, ...], dict[str, Any]], ...]
    logits: Float[Tensor, "batch n_classes"]
    cls_only: bool = False
    projections: Mapping[int, tuple[Tensor, Tensor, Tensor]] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached hidden states and projections."""
        tensors = [*self.hidden.values(), *(t for qkv in self.projections.values() for t in qkv)]
        return sum(t.numel() * t.element_size() for t in tensors)


def depths(pm: PlainModel) -> dict[int, int]:
    """The resume point of every hook point the plain copy fires.

    Args:
        pm: the plain copy of the model.

    Returns:
        ``id(hook point) -> resume point``: ``l`` for layer ``l``'s input and MLP units,
        ``l + 1`` for its output, ``n_layers`` for the pooled vector and the logits.

    Example:
        >>> depths(pm)[id(model.hook_dict[names.resid_post(2)])]  # doctest: +SKIP
        3
    """
    model = pm.model
    info = classifier_info(model)
    n = info.n_layers
    out: dict[int, int] = {}
    for layer, block in enumerate(model.blocks):
        out[id(block.hook_in)] = layer
        out[id(block.hook_out)] = layer + 1
    hook_dict = model.hook_dict
    for layer, name in enumerate(info.names.mlp_units()):
        out[id(hook_dict[name])] = layer
    out[id(hook_dict[info.names.pooled])] = n
    out[id(hook_dict[info.names.logits])] = n
    return out


def resume_point(pm: PlainModel, hooks: Sequence[tuple[Any, Any]],
                 depth: Mapping[int, int] | None = None) -> int | None:
    """The first layer that ``hooks`` can change, or ``None`` when they need a full run.

    Args:
        pm: the plain copy of the model.
        hooks: ``[(hook_name, fn), ...]`` as for ``model.hooks(fwd_hooks=...)``.
        depth: :func:`depths` of ``pm`` (computed when None).

    Returns:
        ``0..n_layers`` (``n_layers``: only the head re-runs; also for no hooks), or ``None``
        for a hook name that is not a string or not one of the sites the copy fires.

    Example:
        >>> resume_point(pm, [(names.resid_post(2), fn)])  # doctest: +SKIP
        3
    """
    depth = depths(pm) if depth is None else depth
    hook_dict = pm.model.hook_dict
    point = len(pm.blocks)
    for name, _ in hooks:
        hook_point = hook_dict.get(name) if isinstance(name, str) else None
        if hook_point is None or id(hook_point) not in depth:
            return None
        point = min(point, depth[id(hook_point)])
    return point


def named_parameters(model: Any) -> dict[str, torch.nn.Parameter]:
    """Parameters under their Hugging Face names (bridge levels removed), as
    :class:`~synapse_lens.interventions.edits.WeightSlice` spells them.

    Example:
        >>> named_parameters(model)["bert.encoder.layer.0.output.dense.weight"].shape
        ...     # doctest: +SKIP
        torch.Size([384, 1536])
    """
    return {n.replace("._original_component", ""): p for n, p in model.named_parameters()}


def edit_point(pm: PlainModel, params: Collection[str]) -> int | None:
    """Where a weight edit of ``params`` lets a run resume.

    Args:
        pm: the plain copy of the model.
        params: Hugging Face parameter names (:func:`named_parameters`), e.g. the ``param`` of
            each :class:`~synapse_lens.interventions.edits.WeightSlice` an edit changes.

    Returns:
        The first layer holding one of them (``n_layers`` when all are head parameters), or
        ``None`` when one is unknown or sits before layer 0 (embeddings).

    Example:
        >>> edit_point(pm, [s.param for s in class_row(model, "spam")])  # doctest: +SKIP
        6
    """
    by_name = named_parameters(pm.model)
    point = len(pm.blocks)
    for name in params:
        param = by_name.get(name)
        if param is None:
            return None
        layers = [i for i, ids in enumerate(pm.block_params) if id(param) in ids]
        if layers:
            point = min(point, layers[0])
        elif id(param) not in pm.head_params:
            return None
    return point


def capture(
    pm: PlainModel,
    encodings: Sequence[Mapping[str, Tensor]],
    rows: Sequence[np.ndarray],
    points: Collection[int],
    *,
    cls_only: bool = False,
    keep_projections: Collection[int] = (),
) -> list[BatchState]:
    """Run the clean forward of each batch and keep the inputs of the layers in ``points``.

    Call it with no hook attached to the model (the states must be clean).

    Args:
        pm: the plain copy of the model.
        encodings: per batch ``{"input_ids", "attention_mask"}``.
        rows: per batch, the dataset positions of its examples.
        points: resume points (``0..n_layers``).
        cls_only: run the last layer for [CLS] only (``pm.cls_last``; only when every job
            resumed from these states passes :meth:`PlainModel.cls_only_ok`).
        keep_projections: points (below ``n_layers``) whose layer's clean query, key and value
            projections are kept too (three more tensors of the hidden state's size), so that
            runs editing [CLS] alone there project only row 0 anew (:func:`resume`).

    Returns:
        One :class:`BatchState` per batch.

    Raises:
        ValueError: a point outside ``0..n_layers``, or a projection point not among them.

    Example:
        >>> states = capture(pm, encodings, rows, {2, 6})  # doctest: +SKIP
    """
    n = len(pm.blocks)
    wanted = sorted(set(points))
    if any(not 0 <= r <= n for r in wanted):
        raise ValueError(f"resume points must lie in 0..{n}, got {wanted}")
    kept = sorted(set(keep_projections))
    if any(r not in wanted or r == n for r in kept):
        raise ValueError(f"projections can be kept at resume points below {n} only, got {kept}")
    seen: dict[int, Tensor] = {}
    proj: dict[int, list[Tensor | None]] = {}
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def record(layer: int) -> Any:
        def pre_hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if layer in wanted:
                seen[layer] = args[0] if args else kwargs["hidden_states"]
            calls.append((tuple(args[1:]), dict(kwargs)))

        return pre_hook

    def record_last(module: Any, args: tuple[Any, ...], output: Any) -> None:
        seen[n] = first_tensor(output, "last layer")

    def record_projection(layer: int, which: int) -> Any:
        def hook(module: Any, args: tuple[Any, ...], output: Tensor) -> None:
            proj[layer][which] = output

        return hook

    layers = [pm.layer(i, cls_only) for i in range(n)]
    handles = [b.register_forward_pre_hook(record(i), with_kwargs=True, prepend=True)
               for i, b in enumerate(layers)]
    handles.append(layers[-1].register_forward_hook(record_last, prepend=True))
    shape = FAMILIES[classifier_info(pm.model).family].layer_shape
    for r in kept:
        proj[r] = [None, None, None]
        handles += [m.register_forward_hook(record_projection(r, j))
                    for j, m in enumerate(projections(pm.blocks[r], shape))]
    states = []
    try:
        with torch.inference_mode():
            for enc, idx in zip(encodings, rows):
                seen.clear()
                calls.clear()
                for r in kept:
                    proj[r] = [None, None, None]
                logits = pm.logits(enc["input_ids"], enc["attention_mask"], cls_only=cls_only)
                if any(not isinstance(a, tuple) for a, _ in calls) or len(calls) != n:
                    raise RuntimeError("the encoder did not call every layer once")
                for r in kept:  # the [CLS]-only last layer projects no key or value
                    for j, module in enumerate(projections(pm.blocks[r], shape)):
                        if proj[r][j] is None and j > 0:
                            proj[r][j] = module(seen[r])
                qkv = {r: tuple(proj[r]) for r in kept}
                if any(t is None for three in qkv.values() for t in three):
                    raise RuntimeError("a layer did not call its query, key and value projections")
                states.append(BatchState(np.asarray(idx), enc["attention_mask"],
                                         {r: seen[r] for r in wanted}, tuple(calls), logits,
                                         cls_only, qkv))  # type: ignore[arg-type]
    finally:
        for handle in handles:
            handle.remove()
    return states


def resume(pm: PlainModel, state: BatchState, point: int, *,
           reuse: bool = True) -> Float[Tensor, "batch n_classes"]:
    """Logits of one batch resumed at layer ``point`` (hooks attached to the model fire).

    The hook point just before ``point`` (layer ``point - 1``'s output) is fired on a copy of
    the cached tensor first (hooks may edit in place), then layers ``point..n_layers-1`` and
    the head run (the last layer for [CLS] only when the state was captured so). When the state
    holds layer ``point``'s clean projections, ``reuse`` is set and the hooks changed the
    layer's input at row 0 alone (compared with the clean input, exactly), that layer projects
    row 0 only (:func:`~synapse_lens.runtime.pruned.cls_edited_layer`); pass ``reuse=False``
    when a weight edit may have changed the layer's projections.

    Raises:
        ValueError: ``point`` was not captured.

    Example:
        >>> with model.hooks(fwd_hooks=hooks):  # doctest: +SKIP
        ...     logits = resume(pm, state, 4)
    """
    if point not in state.hidden:
        raise ValueError(f"resume point {point} was not captured (have {sorted(state.hidden)})")
    hidden = state.hidden[point].clone()  # a hook editing in place must not touch the cache
    if point > 0:
        hidden = pm.model.blocks[point - 1].hook_out(hidden)
    start = point
    if reuse and point in state.projections:
        hidden = _first_layer(pm, state, point, hidden)
        start = point + 1
    for layer in range(start, len(pm.blocks)):
        args, kwargs = state.calls[layer]
        hidden = first_tensor(pm.layer(layer, state.cls_only)(hidden, *args, **kwargs),
                              f"layer {layer}")
    return pm.head(hidden, state.attention_mask)


def _first_layer(pm: PlainModel, state: BatchState, point: int, hidden: Tensor) -> Tensor:
    """Layer ``point`` of a resumed run, its input and output hook points fired here (as the
    plain layer module's own hooks would): with the clean projections for the rows the hooks
    left unchanged when they changed row 0 alone, else the layer's own forward."""
    block = pm.model.blocks[point]
    hidden = block.hook_in(hidden)
    clean = state.hidden[point]
    args, kwargs = state.calls[point]
    last = point == len(pm.blocks) - 1
    if torch.equal(hidden[:, 1:], clean[:, 1:]) and not torch.equal(hidden[:, :1], clean[:, :1]):
        shape = FAMILIES[classifier_info(pm.model).family].layer_shape
        mask = args[0] if args else kwargs.get("attention_mask")
        out = cls_edited_layer(pm.blocks[point], shape, hidden, mask, state.projections[point],
                               cls_only=state.cls_only and last)
    else:
        out = first_tensor(pm.layer(point, state.cls_only).forward(hidden, *args, **kwargs),
                           f"layer {point}")
    return block.hook_out(out)  # type: ignore[no-any-return]
