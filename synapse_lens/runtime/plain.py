"""A plain Hugging Face copy of a TransformerLens bridge that still fires its SYNAPSE hooks.

TransformerLens 4.x wraps every Hugging Face module of the classifier in a bridge component that
fires hook points around it. Where no hook is attached that costs time only: on MiniLM the
LayerNorm bridges alone make a bridged forward 1.2-1.4x slower than the plain HF forward (they
recompute the LayerNorm statistics for ``hook_scale`` / ``hook_normalized`` on every call).

:func:`plain_model` builds a structural copy of the HF module tree with every bridge replaced by
the module it wraps. The copy *shares* the parameters and buffers (same ``Parameter`` objects:
weight edits act on both) and runs HF's own code with SDPA attention — bit for bit an HF model of
the same weights loaded with ``attn_implementation="sdpa"``, within about 2e-6 of the bridge, which
keeps eager attention so that its attention hook points fire (tested to 1e-5 + 1e-5·|x|). Eager
attention materialises ``[batch, heads, pos, pos]`` scores: at 512 tokens a third of the time went
to the kernel mapping and zeroing those buffers; SDPA does not build them. It fires the bridge's
own :class:`~transformer_lens.hook_points.HookPoint` objects at the SYNAPSE sites — every layer's
input and output (``hook_resid_pre`` / ``hook_resid_post``), the MLP units (``mlp.hook_post``), the
pooled vector and the logits — so hook functions attached with ``model.hooks(...)`` run unchanged,
with the same ``hook`` argument.

:meth:`PlainModel.usable` says whether the attached hooks allow the copy: a hook anywhere else
(attention patterns, LayerNorm scale, a raw torch hook on a bridge module...), backward hooks, or
a model in training mode send the caller back to the bridge. TransformerLens 3.x models have no
bridge: :func:`plain_model` returns ``None`` for them.

For a head that reads [CLS] the copy also has a second module tree, ``pruned_root``, the same
modules except that the last layer is :class:`~synapse_lens.runtime.pruned.ClsLastLayer` (its
[CLS] row only, within 1e-6 of the full layer). :meth:`PlainModel.logits` runs it with
``cls_only=True``; :meth:`PlainModel.cls_only_ok` says when the attached hooks allow it.

Example:
    >>> pm = plain_model(model)  # doctest: +SKIP
    >>> with model.hooks(fwd_hooks=hooks), torch.inference_mode():  # doctest: +SKIP
    ...     logits = pm.logits(ids, mask) if pm and pm.usable() else model(ids, attention_mask=mask)
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from synapse_lens.models import EncoderWithHead, classifier_info
from synapse_lens.models.families import FAMILIES
from synapse_lens.runtime.pruned import ClsLastLayer, is_cls_only

logger = logging.getLogger(__name__)

# Raw torch hooks that TransformerLens, transformers and our loader put on modules themselves:
# they forward to hook points (checked on their own), derive the attention mask, or record
# outputs only while HF collects ``output_hidden_states`` (never in our runs).
_KNOWN_MODULE_HOOKS = ("_maybe_wire_capture_hooks.<locals>.", "_derive_attention_mask.<locals>.",
                       "install_output_capuring_hook.<locals>.",
                       "install_output_capturing_hook.<locals>.")
_KNOWN_HOOK_FNS = ("_wire_symbolic_hooks.<locals>.",)  # TL's permanent mirror hooks
_INPUT_KWARGS = ("input", "hidden_states", "input_ids", "query_input", "x", "inputs_embeds")


def _known(fn: Any, markers: tuple[str, ...]) -> bool:
    name = getattr(fn, "__qualname__", "")
    return any(marker in name for marker in markers)


def first_tensor(output: Any, where: str) -> Tensor:
    """A module's output tensor (HF layers return a tuple whose first item is the hidden state);
    ``where`` names the module in the error raised for anything else."""
    if isinstance(output, Tensor):
        return output
    if isinstance(output, tuple) and output and isinstance(output[0], Tensor):
        return output[0]
    raise RuntimeError(f"{where}: unexpected module output {type(output).__name__}")


def _fire_in(hook_point: nn.Module, args_first: bool) -> Callable[..., Any]:
    """Forward pre-hook firing ``hook_point`` on a module's input, as the bridge does."""

    def pre_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if args_first and args and isinstance(args[0], Tensor):
            return (hook_point(args[0]), *args[1:]), kwargs
        for name in _INPUT_KWARGS:
            if name in kwargs:
                return args, {**kwargs, name: hook_point(kwargs[name])}
        if args and isinstance(args[0], Tensor):
            return (hook_point(args[0]), *args[1:]), kwargs
        raise RuntimeError(f"{getattr(hook_point, 'name', '?')}: no input tensor to hook")

    return pre_hook


def _fire_out(hook_point: nn.Module) -> Callable[..., Any]:
    """Forward hook firing ``hook_point`` on a module's output (a tensor or a tuple's first)."""

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        if isinstance(output, Tensor):
            return hook_point(output)
        first = first_tensor(output, str(getattr(hook_point, "name", "?")))
        return (hook_point(first), *output[1:])

    return hook


def _plain(module: nn.Module, memo: dict[int, Any], bridge_cls: type) -> nn.Module:
    """Copy of ``module`` with every bridge replaced by (a copy of) the module it wraps."""
    if id(module) in memo:
        return memo[id(module)]  # type: ignore[no-any-return]
    if isinstance(module, bridge_cls):
        original = module._modules.get("_original_component")
        if original is None:
            raise ValueError(f"bridge {type(module).__name__} wraps no module")
        out = _plain(original, memo, bridge_cls)
        memo[id(module)] = out
        return out
    for child in module._modules.values():
        if child is not None:
            _plain(child, memo, bridge_cls)
    return copy.deepcopy(module, memo)


@dataclass(frozen=True, eq=False)
class PlainModel:
    """A plain HF copy of a bridge model (see the module docstring); build with
    :func:`plain_model`.

    Attributes:
        model: the bridge it copies.
        root: the plain HF module tree (``*ForSequenceClassification`` or ``EncoderWithHead``).
        blocks: the plain encoder layers, in depth order (``model.blocks[l]``'s module).
        hook_points: ``id(hook point) -> hook point`` of the hook points the copy fires.
        head: ``(last hidden states, attention mask) -> logits`` through the plain head modules.
        block_params: per layer, the ids of its parameters.
        head_params: ids of the head's parameters.
        pruned_root: ``root`` with the last layer computed for [CLS] only (``None`` when the
            head pools more than [CLS], or the layer or attention has no [CLS]-only form).
        cls_last: that last layer (:class:`~synapse_lens.runtime.pruned.ClsLastLayer`), or None.
        last_sites: ids of the hook points whose activations the pruned layer shortens to
            ``[batch, 1, ·]``: the last layer's output and MLP units.
    """

    model: Any
    root: nn.Module
    blocks: tuple[nn.Module, ...]
    hook_points: Mapping[int, Any]
    head: Callable[[Tensor, Tensor], Tensor]
    block_params: tuple[frozenset[int], ...]
    head_params: frozenset[int]
    pruned_root: nn.Module | None = None
    cls_last: nn.Module | None = None
    last_sites: frozenset[int] = frozenset()

    def attached(self) -> list[str]:
        """Names of the hook points that have a user hook attached right now."""
        return [str(getattr(hp, "name", "?")) for hp in self.hook_points.values()
                if any(not _known(h.user_hook, _KNOWN_HOOK_FNS) for h in hp.fwd_hooks)
                or len(hp._forward_hooks) != len(hp.fwd_hooks) or hp._forward_pre_hooks]

    def usable(self) -> bool:
        """True when every hook attached to the bridge right now is one this copy fires and
        the model is in eval mode (call it inside ``model.hooks(...)``)."""
        for module in self.model.modules():
            if module.training:
                return False
            raw = [*module._forward_hooks.values(), *module._forward_pre_hooks.values(),
                   *module._backward_hooks.values(), *module._backward_pre_hooks.values()]
            if not hasattr(module, "fwd_hooks"):  # a bridge module: only TL's own raw hooks
                if any(not _known(fn, _KNOWN_MODULE_HOOKS) for fn in raw):
                    return False
                continue
            if module.bwd_hooks or module._backward_hooks or module._backward_pre_hooks:
                return False
            user = [h for h in module.fwd_hooks if not _known(h.user_hook, _KNOWN_HOOK_FNS)]
            extra = len(module._forward_hooks) != len(module.fwd_hooks) or bool(
                module._forward_pre_hooks)
            if (user or extra) and id(module) not in self.hook_points:
                return False
        return True

    def cls_only_ok(self, hooks: Sequence[tuple[Any, Any]] | None = None) -> bool:
        """Whether the [CLS]-only last layer may run: it exists, and every hook function at the
        last layer's output and MLP units is marked
        (:func:`~synapse_lens.runtime.pruned.reads_cls_only`).

        Args:
            hooks: ``[(hook_name, fn), ...]`` to check (a job about to be attached); ``None``
                checks the hooks attached to the model right now.
        """
        if self.pruned_root is None:
            return False
        if hooks is not None:
            hook_dict = self.model.hook_dict
            for name, fn in hooks:
                point = hook_dict.get(name) if isinstance(name, str) else None
                if point is None or (id(point) in self.last_sites and not is_cls_only(fn)):
                    return False
            return True
        for point in self.hook_points.values():
            if id(point) not in self.last_sites:
                continue
            if point._forward_pre_hooks or len(point._forward_hooks) != len(point.fwd_hooks):
                return False
            if not all(is_cls_only(h.user_hook) or _known(h.user_hook, _KNOWN_HOOK_FNS)
                       for h in point.fwd_hooks):
                return False
        return True

    def layer(self, index: int, cls_only: bool = False) -> nn.Module:
        """The plain module of layer ``index`` (the [CLS]-only one for the last layer when
        ``cls_only``)."""
        if cls_only and index == len(self.blocks) - 1:
            if self.cls_last is None:
                raise ValueError("this model has no [CLS]-only last layer")
            return self.cls_last
        return self.blocks[index]

    def logits(self, input_ids: Int[Tensor, "batch pos"], attention_mask: Int[Tensor, "batch pos"],
               *, cls_only: bool = False) -> Float[Tensor, "batch n_classes"]:
        """Class logits of one batch through the plain copy (hooks at the SYNAPSE sites fire);
        ``cls_only`` computes the last layer for [CLS] only (check :meth:`cls_only_ok`)."""
        root = self.root
        if cls_only:
            if self.pruned_root is None:
                raise ValueError("this model has no [CLS]-only last layer")
            root = self.pruned_root
        out = root(input_ids=input_ids, attention_mask=attention_mask)
        return out.logits if not isinstance(out, Tensor) else out  # type: ignore[no-any-return]


Head = Callable[[Tensor, Tensor], Tensor]


def _head_fn(root: nn.Module, family: str) -> tuple[Head, list[nn.Module]]:
    """The classifier head of ``root`` after the last layer — the statements of HF's
    ``*ForSequenceClassification.forward`` (or :class:`EncoderWithHead`) that follow the
    encoder, calling the same modules — and the modules holding its parameters. Which
    statements: the family record's head shape (:data:`~synapse_lens.models.families.HeadShape`).
    """
    r: Any = root
    if isinstance(root, EncoderWithHead):
        return (lambda h, mask: r.classifier(r.pooler(h, mask))), [r.pooler, r.classifier]
    if family not in FAMILIES:
        raise ValueError(f"no plain head for family {family!r}")
    shape, enc = FAMILIES[family].head, FAMILIES[family].encoder_of(r)
    if shape == "bert":  # pooler (dense + tanh) -> dropout -> classifier
        return (lambda h, mask: r.classifier(r.dropout(enc.pooler(h)))), [enc.pooler, r.classifier]
    if shape == "roberta":  # the classifier module reads the first token itself
        return (lambda h, mask: r.classifier(h)), [r.classifier]
    if shape == "distilbert":
        return (lambda h, mask: r.classifier(r.dropout(torch.relu(r.pre_classifier(h[:, 0]))))), [
            r.pre_classifier, r.classifier]
    # albert: pooler (dense) -> tanh -> dropout -> classifier
    return (lambda h, mask: r.classifier(r.dropout(enc.pooler_activation(enc.pooler(h[:, 0]))))), [
        enc.pooler, r.classifier]


#: Attribute of a bridge model holding its plain copy (a :class:`_Kept`).
_CACHED = "_synapse_lens_plain"


class _Kept:
    """The plain copy kept on its model and the key it was built for; pickles and deep-copies
    as empty (the copy is rebuilt where needed), so the model stays as picklable as before."""

    __slots__ = ("key", "pm")

    def __init__(self, key: Any = None, pm: PlainModel | None = None) -> None:
        self.key, self.pm = key, pm

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Kept, ())


def plain_model(model: Any) -> PlainModel | None:
    """The plain copy of a bridge model, or ``None`` when there is none to build
    (TransformerLens 3.x backend, an unknown family, an unexpected module tree).

    The copy is built once per model (about 10 ms for MiniLM) and kept on it; it is built anew
    when the model's parameters or buffers are other objects than those it shares (a replaced
    module or ``Parameter``), or the attention settings changed. Its modules are always in eval
    mode: it is only used while the model is (:meth:`PlainModel.usable`).

    Args:
        model: a model from :func:`synapse_lens.load_classifier`.

    Returns:
        A :class:`PlainModel` sharing ``model``'s parameters, or ``None``.

    Raises:
        TypeError: ``model`` was not loaded by synapse_lens.

    Example:
        >>> pm = plain_model(model)  # doctest: +SKIP
        >>> pm.root(input_ids=ids, attention_mask=mask).logits  # doctest: +SKIP
    """
    info = classifier_info(model)
    if info.backend != "tl4-bridge":
        return None
    root = model.original_model
    key = (tuple(id(t) for t in root.parameters()), tuple(id(t) for t in root.buffers()),
           _sdpa_ok(root))
    kept = model.__dict__.get(_CACHED)
    if isinstance(kept, _Kept) and kept.key == key:
        return kept.pm
    pm = _build(model)
    model.__dict__[_CACHED] = _Kept(key, pm)  # not a submodule: no nn.Module registration
    return pm


def _build(model: Any) -> PlainModel | None:
    """Build the plain copy (see :func:`plain_model`)."""
    from transformer_lens.model_bridge.generalized_components import BlockBridge, LinearBridge
    from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent

    info = classifier_info(model)
    root = model.original_model
    memo: dict[int, Any] = {id(t): t for t in (*root.parameters(), *root.buffers())}
    sdpa = _sdpa_ok(root)
    for module in root.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "to_dict") and id(config) not in memo:
            memo[id(config)] = _with_sdpa(config) if sdpa else config
    try:
        plain = _plain(root, memo, GeneralizedComponent)
    except (ValueError, TypeError, RuntimeError) as err:  # pragma: no cover - defensive
        logger.info("no plain copy of this model: %s", err)
        return None
    shared = {id(p) for p in plain.parameters()} == {id(p) for p in root.parameters()}
    if not shared or any(isinstance(m, GeneralizedComponent) for m in plain.modules()):
        logger.info("no plain copy of this model: its module tree is not a plain HF tree")
        return None
    plain.eval()  # used only while the model is in eval mode (usable())
    blocks = tuple(memo[id(b)] for b in model.blocks)
    cls_last, pruned_root = _pruned(plain, info.family, blocks[-1])
    names = info.names
    hook_dict = model.hook_dict
    sites = [*(b.hook_in for b in model.blocks), *(b.hook_out for b in model.blocks),
             *(hook_dict[n] for n in (*names.mlp_units(), names.pooled, names.logits))]
    owner = {}
    for comp in model.modules():
        if isinstance(comp, GeneralizedComponent) and id(comp) in memo:
            owner[id(comp.hook_in)] = (comp, "in")
            owner[id(comp.hook_out)] = (comp, "out")
    points: dict[int, nn.Module] = {}
    for hook_point in sites:
        if id(hook_point) in points:
            continue
        if id(hook_point) not in owner:
            logger.info("no plain copy: hook point %s is not a bridge input/output",
                        getattr(hook_point, "name", "?"))
            return None
        comp, side = owner[id(hook_point)]
        target: nn.Module = memo[id(comp)]
        # the last layer's hooks fire on its [CLS]-only form too
        targets = [target, *([cls_last] if cls_last is not None and target is blocks[-1] else [])]
        for module in targets:
            if side == "in":
                args_first = isinstance(comp, (BlockBridge, LinearBridge))  # as their forward()
                module.register_forward_pre_hook(_fire_in(hook_point, args_first),
                                                 with_kwargs=True)
            else:
                module.register_forward_hook(_fire_out(hook_point))
        points[id(hook_point)] = hook_point
    try:
        head, head_modules = _head_fn(plain, info.family)
    except (ValueError, AttributeError) as err:
        logger.info("no plain copy: %s", err)
        return None
    last = info.n_layers - 1
    last_sites = frozenset(id(hook_dict[n]) for n in (names.resid_post(last),
                                                      names.mlp_units()[last]))
    return PlainModel(
        model, plain, blocks, points, head,
        tuple(frozenset(id(p) for p in b.parameters()) for b in blocks),
        frozenset(id(p) for m in head_modules for p in m.parameters()),
        pruned_root, cls_last, last_sites)


def _sdpa_ok(root: nn.Module) -> bool:
    """Whether every HF model in ``root`` supports SDPA attention (all six families do) and no
    config asks for attention weights (which only eager attention returns)."""
    models = [m for m in root.modules() if hasattr(m, "_supports_sdpa")]
    return bool(models) and all(
        m._supports_sdpa and not getattr(getattr(m, "config", None), "output_attentions", False)
        for m in models)


def _with_sdpa(config: Any) -> Any:
    """A copy of an HF config that selects SDPA attention (the bridge's own config keeps eager
    attention, so that its attention hook points fire)."""
    out = copy.deepcopy(config)
    out._attn_implementation = "sdpa"
    return out


def _shallow(module: nn.Module) -> nn.Module:
    """A new module object sharing everything with ``module`` except its dict of children."""
    out = copy.copy(module)
    out._modules = dict(module._modules)
    return out


def _pruned(root: nn.Module, family: str,
            last: nn.Module) -> tuple[nn.Module | None, nn.Module | None]:
    """``(ClsLastLayer, root with it in place of the last layer)`` for a plain tree whose head
    reads [CLS], else ``(None, None)``. The containers on the way to the layer list are
    shallow copies; every other module (and every parameter) is ``root``'s own."""
    record = FAMILIES.get(family)
    pooler = getattr(root, "pooler", None) if isinstance(root, EncoderWithHead) else None
    attn = getattr(getattr(root, "config", None), "_attn_implementation", None)
    if record is None or getattr(pooler, "pooling", "cls") != "cls" or attn not in (
            "eager", "sdpa"):
        return None, None
    cls_last = ClsLastLayer(last, record.layer_shape)
    pruned = _shallow(root)
    parent = pruned
    for name in f"{record.prefix}.{record.layers}".split("."):
        child = parent._modules.get(name)
        if child is None:
            return None, None
        parent._modules[name] = parent = _shallow(child)
    key = list(parent._modules)[-1] if parent._modules else None
    if key is None or parent._modules[key] is not last:
        return None, None
    parent._modules[key] = cls_last
    return cls_last, pruned
