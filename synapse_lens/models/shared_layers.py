"""ALBERT's shared layers, unrolled into one module per application.

ALBERT applies the same ``AlbertLayer`` (``albert.encoder.albert_layer_groups[g].albert_layers[i]``)
at every depth. TransformerLens wraps modules, one bridge per module, and writes the bridge back
into the model tree; a module called ``n`` times would get one set of hooks fired ``n`` times
under a single name. :func:`unroll_albert` therefore gives every *application* its own module
object — structural copies that share the very same ``Parameter`` and buffer objects — so that
``blocks.{l}.…`` names each application while the weights stay tied (an edit or a gradient on one
is on all). The forward is HF's ``AlbertTransformer.forward`` with the group loop flattened.
"""

from __future__ import annotations

import copy
from typing import Any

from jaxtyping import Float
from torch import Tensor, nn
from transformers.modeling_outputs import BaseModelOutput


def share_clone(module: nn.Module) -> nn.Module:
    """A structural copy of ``module`` whose parameters, buffers and config are the original
    objects (new module objects, same weights).

    Args:
        module: any ``nn.Module``.

    Returns:
        The copy; ``copy.weight is module.weight`` for every parameter.

    Example:
        >>> lin = nn.Linear(2, 2)
        >>> share_clone(lin).weight is lin.weight
        True
    """
    memo: dict[int, Any] = {id(p): p for p in module.parameters()}
    memo.update({id(b): b for b in module.buffers()})
    for sub in module.modules():
        config = getattr(sub, "config", None)
        if config is not None:
            memo[id(config)] = config
    return copy.deepcopy(module, memo)


class UnrolledAlbertTransformer(nn.Module):
    """``AlbertTransformer`` with one ``layer[l]`` module per layer application.

    ``layer[l]`` is the ``AlbertLayer`` that HF runs at step ``l`` (group
    ``int(i / (num_hidden_layers / num_hidden_groups))``, inner layer ``j`` for
    ``l = i * inner_group_num + j``); all applications of one ``AlbertLayer`` share its weights.
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        config: Any = encoder.config
        self.config = config
        mapping_in: Any = encoder.embedding_hidden_mapping_in
        self.embedding_hidden_mapping_in: nn.Module = mapping_in
        groups: Any = encoder.albert_layer_groups
        seen: set[int] = set()
        layers: list[nn.Module] = []
        for i in range(config.num_hidden_layers):
            group = groups[int(i / (config.num_hidden_layers / config.num_hidden_groups))]
            for layer in group.albert_layers:
                layers.append(share_clone(layer) if id(layer) in seen else layer)
                seen.add(id(layer))
        self.layer = nn.ModuleList(layers)

    def forward(
        self,
        hidden_states: Float[Tensor, "batch pos d_embed"],
        attention_mask: Tensor | None = None,
        **kwargs: Any,
    ) -> BaseModelOutput:
        hidden_states = self.embedding_hidden_mapping_in(hidden_states)
        for layer in self.layer:
            hidden_states = layer(hidden_states, attention_mask, **kwargs)
        return BaseModelOutput(last_hidden_state=hidden_states)


def unroll_albert(hf_model: nn.Module) -> int:
    """Replace ``hf_model.albert.encoder`` by an :class:`UnrolledAlbertTransformer` (in place).

    Args:
        hf_model: an ``AlbertForSequenceClassification`` (or anything with ``.albert``, an
            ``AlbertModel``). Idempotent.

    Returns:
        The number of layer applications, ``num_hidden_layers * inner_group_num``.

    Example:
        >>> from synapse_lens.models import tiny_hf_classifier
        >>> unroll_albert(tiny_hf_classifier("albert", n_layers=3))
        3
    """
    albert: Any = hf_model.albert
    if not isinstance(albert.encoder, UnrolledAlbertTransformer):
        albert.encoder = UnrolledAlbertTransformer(albert.encoder)
    return len(albert.encoder.layer)
