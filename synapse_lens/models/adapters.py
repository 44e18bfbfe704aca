"""TransformerLens 4.x architecture adapters for encoder *classifiers*.

TransformerLens ships adapters for ``BertForMaskedLM`` / ``RobertaForMaskedLM`` only; booting a
``*ForSequenceClassification`` checkpoint with them silently drops the classifier (FIELD-NOTES
§2). The adapters here reuse TL's encoder mapping (embeddings, blocks, attention, MLP) and replace
the masked-LM head with the classification head, so that

* ``classifier.hook_out`` carries the class logits, and
* the pooled vector that the final projection reads has a hook (see :mod:`synapse_lens.names`).

We build the bridge ourselves (:func:`build_bridge`) instead of registering adapters in TL's
global factory: loading a model never changes TransformerLens's state.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.model_bridge.generalized_components import (
    BertPoolerBridge,
    LinearBridge,
)
from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent
from transformer_lens.model_bridge.sources._bridge_builder import (
    build_bridge_config_from_hf,
    detect_tokenizer_bos_eos,
)
from transformer_lens.model_bridge.sources.transformers_driver import TransformersDriver
from transformer_lens.model_bridge.supported_architectures.bert import BertArchitectureAdapter
from transformer_lens.model_bridge.supported_architectures.roberta import (
    RobertaArchitectureAdapter,
)
from transformer_lens.utilities.attn_implementation import force_eager_attention

_MLM_COMPONENTS = ("mlm_head", "unembed", "ln_final")


def _strip_mlm_head(component_mapping: dict[str, Any]) -> None:
    for key in _MLM_COMPONENTS:
        component_mapping.pop(key, None)


class BertClassifierAdapter(BertArchitectureAdapter):
    """``BertForSequenceClassification`` (and our :class:`EncoderWithHead` over a ``BertModel``):
    TL's BERT encoder mapping, the pooler (when present) and a ``classifier`` head."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        _strip_mlm_head(self.component_mapping)
        self.component_mapping["classifier"] = LinearBridge(name="classifier")

    def prepare_model(self, hf_model: Any) -> None:
        if getattr(hf_model, "pooler", None) is not None:  # EncoderWithHead's own pooling
            self.components["pooler"] = GeneralizedComponent(name="pooler")
        elif getattr(getattr(hf_model, "bert", None), "pooler", None) is not None:
            self.components["pooler"] = BertPoolerBridge(
                name="bert.pooler", submodules={"dense": LinearBridge(name="dense")}
            )


class RobertaClassifierAdapter(RobertaArchitectureAdapter):
    """``RobertaForSequenceClassification``: TL's RoBERTa encoder mapping and the RoBERTa
    classification head (dense → tanh → out_proj on the first token)."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        _strip_mlm_head(self.component_mapping)
        self.component_mapping["classifier"] = GeneralizedComponent(
            name="classifier",
            submodules={
                "dense": LinearBridge(name="dense"),
                "out_proj": LinearBridge(name="out_proj"),
            },
        )


class RobertaHeadAdapter(RobertaArchitectureAdapter):
    """Our :class:`EncoderWithHead` over a ``RobertaModel``: a linear ``classifier`` reading
    the ``pooler`` output."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        _strip_mlm_head(self.component_mapping)
        self.component_mapping["classifier"] = LinearBridge(name="classifier")
        self.component_mapping["pooler"] = GeneralizedComponent(name="pooler")


def build_bridge(
    hf_model: nn.Module,
    hf_config: Any,
    adapter_cls: type,
    tokenizer: Any,
    *,
    architecture: str,
    model_name: str,
    device: str,
    dtype: torch.dtype,
) -> TransformerBridge:
    """Wrap ``hf_model`` (modified in place) in a ``TransformerBridge`` with ``adapter_cls``.

    Mirrors the steps of ``TransformerBridge.boot_transformers`` for an already-built model:
    bridge config from the HF config, eager attention (so attention hooks fire), the adapter's
    ``prepare_model``, TL's tokenizer set-up, then the bridge itself.
    """
    bridge_cfg = build_bridge_config_from_hf(hf_config, architecture, model_name, dtype)
    adapter = adapter_cls(bridge_cfg)
    adapter.cfg.device = device
    force_eager_attention(hf_model)
    adapter.prepare_model(hf_model)
    # TL's own tokenizer set-up re-creates BOS-bearing tokenizers from their hub name and
    # invents EOS/BOS tokens for BERT; an encoder needs neither, so we only pin right padding
    # on a private copy and record the tokenizer's special-token behaviour.
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.padding_side = "right"
    adapter.cfg.tokenizer_prepends_bos, adapter.cfg.tokenizer_appends_eos = (
        detect_tokenizer_bos_eos(tokenizer)
    )
    driver = TransformersDriver(hf_model, adapter, tokenizer)
    bridge = TransformerBridge(hf_model, adapter, tokenizer, driver=driver)
    bridge.eval()
    return bridge


def adapter_for(family: str, has_head: bool) -> type:
    """The adapter class for a model family, with the checkpoint's own head or ours."""
    if family == "bert":
        return BertClassifierAdapter
    if family == "roberta":
        return RobertaClassifierAdapter if has_head else RobertaHeadAdapter
    raise ValueError(f"no adapter for family {family!r}")
