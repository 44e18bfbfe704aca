"""ALBERT's shared layers, unrolled into one module per application.

ALBERT applies the same ``AlbertLayer`` (``albert.encoder.albert_layer_groups[g].albert_layers[i]``)
at every depth. TransformerLens wraps modules, one bridge per module, and writes the bridge back
into the model tree; a module called ``n`` times would get one set of hooks fired ``n`` times
under a single name. :func:`unroll_albert` therefore gives every *application* its own module,
so that ``blocks.{l}.…`` names each application. The forward is HF's
``AlbertTransformer.forward`` with the group loop flattened, and is unchanged (bit for bit).

Repeated applications hold *copies* of the shared weights (same values, own tensors): a weight
edit at layer ``l`` (``synapse_lens.interventions.edits``) then acts on application ``l`` only,
exactly like a hook edit at ``blocks.{l}`` and like a weight edit on every other family. The price
is memory: the shared layer's parameters are stored once per application (ALBERT-base: 7M parameters
× 12 instead of × 1). Gradients are therefore per application too; fine-tune ALBERT in HF itself.
"""

from __future__ import annotations

import copy
from typing import Any

from jaxtyping import Float
from torch import Tensor, nn
from transformers.modeling_outputs import BaseModelOutput


def clone_layer(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` (own parameters and buffers, equal values) that keeps the
    original HF config object.

    Args:
        module: any ``nn.Module``.

    Returns:
        The copy: equal weights, not the same tensors.

    Example:
        >>> lin = nn.Linear(2, 2)
        >>> copy_ = clone_layer(lin)
        >>> bool((copy_.weight == lin.weight).all()), copy_.weight is lin.weight
        (True, False)
    """
    memo: dict[int, Any] = {}
    for sub in module.modules():
        config = getattr(sub, "config", None)
        if config is not None:
            memo[id(config)] = config
    return copy.deepcopy(module, memo)


class UnrolledAlbertTransformer(nn.Module):
    """``AlbertTransformer`` with one ``layer[l]`` module per layer application.

    ``layer[l]`` is the ``AlbertLayer`` that HF runs at step ``l`` (group
    ``int(i / (num_hidden_layers / num_hidden_groups))``, inner layer ``j`` for
    ``l = i * inner_group_num + j``); the first application of an ``AlbertLayer`` is the HF
    module itself, later ones are :func:`clone_layer` copies.
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
                layers.append(clone_layer(layer) if id(layer) in seen else layer)
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
        >>> from synapse_lens.testing import tiny_hf_classifier
        >>> unroll_albert(tiny_hf_classifier("albert", n_layers=3))
        3
    """
    albert: Any = hf_model.albert
    if not isinstance(albert.encoder, UnrolledAlbertTransformer):
        albert.encoder = UnrolledAlbertTransformer(albert.encoder)
    return len(albert.encoder.layer)
