"""TransformerLens 4.x architecture adapters for encoder *classifiers*.

TransformerLens ships adapters for ``BertForMaskedLM`` / ``RobertaForMaskedLM`` only; booting a
``*ForSequenceClassification`` checkpoint with them silently drops the classifier (its
weights are not mapped and no warning is raised). The adapters here reuse TL's own components
(``BlockBridge``, ``AttentionBridge``, ``MLPBridge``, ...) and TL's BERT adapter settings, map each
family's module paths onto the same TL names, and replace the masked-LM head with the family's
classification head, so that

* ``blocks.{l}.hook_resid_post`` is HF ``hidden_states[l + 1]`` and ``blocks.{l}.mlp.hook_post``
  the MLP units, for every family;
* ``classifier.hook_out`` carries the class logits, and the vector that the final projection
  reads has a hook (see :func:`synapse_lens.models.families.head_hooks`).

==============  ==================================  ==========================================
family          encoder (HF paths)                  head
==============  ==================================  ==========================================
bert            ``bert.encoder.layer``              pooler (dense+tanh) → classifier
roberta         ``roberta.encoder.layer``           first token → dense → tanh → out_proj
xlm-roberta     as roberta                          as roberta
electra         ``electra.encoder.layer``           first token → dense → gelu → out_proj
                (``electra.embeddings_project``)
distilbert      ``distilbert.transformer.layer``    first token → pre_classifier → ReLU
                                                    → classifier
albert          ``albert.encoder``, shared layers   pooler (dense+tanh) → classifier
                unrolled, one copy per application
                (:mod:`.shared_layers`)
==============  ==================================  ==========================================

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
    AttentionBridge,
    BertPoolerBridge,
    BlockBridge,
    EmbeddingBridge,
    LinearBridge,
    MLPBridge,
    NormalizationBridge,
    PosEmbedBridge,
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

from synapse_lens.models import families
from synapse_lens.models.heads import EncoderWithHead
from synapse_lens.models.shared_layers import unroll_albert

_MLM_COMPONENTS = ("mlm_head", "unembed", "ln_final")


def _strip_mlm_head(component_mapping: dict[str, Any]) -> None:
    for key in _MLM_COMPONENTS:
        component_mapping.pop(key, None)


def _install_head(components: dict[str, Any], hf_model: Any, family_head: dict[str, Any]) -> None:
    """Our :class:`EncoderWithHead` (a ``pooler`` module + linear ``classifier``) or the
    checkpoint's own head."""
    if isinstance(hf_model, EncoderWithHead):
        components["pooler"] = GeneralizedComponent(name="pooler")
        components["classifier"] = LinearBridge(name="classifier")
    else:
        components.update(family_head)


def _dense_out_proj_head() -> dict[str, Any]:
    """RoBERTa / XLM-R / ELECTRA classification head: first token → dense → act → out_proj."""
    return {
        "classifier": GeneralizedComponent(
            name="classifier",
            submodules={
                "dense": LinearBridge(name="dense"),
                "out_proj": LinearBridge(name="out_proj"),
            },
        )
    }


def _ln(name: str, cfg: Any) -> NormalizationBridge:
    return NormalizationBridge(name=name, config=cfg, use_native_layernorm_autograd=True)


def _attention(cfg: Any, q: str, k: str, v: str, o: str) -> AttentionBridge:
    """The layer's ``attention`` module with its four projections' HF names."""
    submodules = {"q": LinearBridge(name=q), "k": LinearBridge(name=k),
                  "v": LinearBridge(name=v), "o": LinearBridge(name=o)}
    return AttentionBridge(name="attention", config=cfg, submodules=submodules)


def _mlp(cfg: Any, name: str | None, fc_in: str, fc_out: str) -> MLPBridge:
    """The layer's MLP (``name=None``: its two linears are direct children of the layer)."""
    submodules = {"in": LinearBridge(name=fc_in), "out": LinearBridge(name=fc_out)}
    return MLPBridge(name=name, config=cfg, submodules=submodules)


def _reprefix(components: dict[str, Any], old: str, new: str) -> None:
    for component in components.values():
        if component.name and component.name.startswith(old + "."):
            component.name = new + component.name[len(old) :]


class BertClassifierAdapter(BertArchitectureAdapter):
    """``BertForSequenceClassification`` (and :class:`EncoderWithHead` over a ``BertModel``):
    TL's BERT encoder mapping, the pooler (when present) and a ``classifier`` head."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        _strip_mlm_head(self.components)

    def prepare_model(self, hf_model: Any) -> None:
        head: dict[str, Any] = {"classifier": LinearBridge(name="classifier")}
        if getattr(getattr(hf_model, "bert", None), "pooler", None) is not None:
            head["pooler"] = BertPoolerBridge(
                name="bert.pooler", submodules={"dense": LinearBridge(name="dense")}
            )
        _install_head(self.components, hf_model, head)


class RobertaClassifierAdapter(RobertaArchitectureAdapter):
    """``RobertaForSequenceClassification`` / ``XLMRobertaForSequenceClassification`` (same
    module tree under ``roberta``): TL's RoBERTa encoder mapping and the RoBERTa head."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        _strip_mlm_head(self.components)

    def prepare_model(self, hf_model: Any) -> None:
        super().prepare_model(hf_model)
        _install_head(self.components, hf_model, _dense_out_proj_head())


class ElectraClassifierAdapter(BertArchitectureAdapter):
    """``ElectraForSequenceClassification``: BERT's layer under ``electra.``. When
    ``embedding_size != hidden_size`` the embeddings pass ``electra.embeddings_project`` before
    layer 0, so ``blocks.0.hook_resid_pre`` is the projected vector (HF ``hidden_states[0]``)."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        _strip_mlm_head(self.components)
        _reprefix(self.components, "bert", "electra")

    def prepare_model(self, hf_model: Any) -> None:
        if getattr(hf_model.electra, "embeddings_project", None) is not None:
            self.components["embed_proj"] = LinearBridge(name="electra.embeddings_project")
        _install_head(self.components, hf_model, _dense_out_proj_head())


class DistilBertClassifierAdapter(BertArchitectureAdapter):
    """``DistilBertForSequenceClassification``: no token types; post-LN layers
    ``distilbert.transformer.layer.*`` (attention ``q_lin/k_lin/v_lin/out_lin``,
    ``sa_layer_norm``, ``ffn.lin1/lin2``, ``output_layer_norm``); head first token →
    ``pre_classifier`` → ReLU → ``classifier``."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        cfg = self.cfg
        self.component_mapping = {
            "embed": EmbeddingBridge(name="distilbert.embeddings.word_embeddings"),
            "pos_embed": PosEmbedBridge(name="distilbert.embeddings.position_embeddings"),
            "embed_ln": _ln("distilbert.embeddings.LayerNorm", cfg),
            "blocks": BlockBridge(
                name="distilbert.transformer.layer",
                submodules={
                    "ln1": _ln("sa_layer_norm", cfg),
                    "ln2": _ln("output_layer_norm", cfg),
                    "attn": _attention(cfg, "q_lin", "k_lin", "v_lin", "out_lin"),
                    "mlp": _mlp(cfg, "ffn", "lin1", "lin2"),
                },
            ),
        }

    def prepare_model(self, hf_model: Any) -> None:
        head = {
            "pre_classifier": LinearBridge(name="pre_classifier"),
            "classifier": LinearBridge(name="classifier"),
        }
        _install_head(self.components, hf_model, head)


class AlbertClassifierAdapter(BertArchitectureAdapter):
    """``AlbertForSequenceClassification``: the shared layer is unrolled into one module per
    application (:func:`~synapse_lens.models.shared_layers.unroll_albert`; repeated applications
    hold copies of the shared weights), so ``blocks.{l}`` names application ``l``;
    ``embedding_hidden_mapping_in`` projects the embeddings before layer 0; head
    ``albert.pooler`` (dense) → tanh → ``classifier``."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        cfg = self.cfg
        self.component_mapping = {
            "embed": EmbeddingBridge(name="albert.embeddings.word_embeddings"),
            "token_type_embed": EmbeddingBridge(name="albert.embeddings.token_type_embeddings"),
            "pos_embed": PosEmbedBridge(name="albert.embeddings.position_embeddings"),
            "embed_ln": _ln("albert.embeddings.LayerNorm", cfg),
            "embed_proj": LinearBridge(name="albert.encoder.embedding_hidden_mapping_in"),
            "blocks": BlockBridge(
                name="albert.encoder.layer",
                # ffn / ffn_output are siblings on AlbertLayer, as in BertLayer (see TL's bert.py).
                hook_alias_overrides={
                    "hook_mlp_out": "mlp.out.hook_out",
                    "hook_mlp_in": "mlp.in.hook_in",
                },
                submodules={
                    "ln1": _ln("attention.LayerNorm", cfg),
                    "ln2": _ln("full_layer_layer_norm", cfg),
                    "attn": _attention(cfg, "query", "key", "value", "dense"),
                    "mlp": _mlp(cfg, None, "ffn", "ffn_output"),
                },
            ),
        }

    def prepare_model(self, hf_model: Any) -> None:
        self.cfg.n_layers = unroll_albert(hf_model)
        head: dict[str, Any] = {"classifier": LinearBridge(name="classifier")}
        if getattr(hf_model.albert, "pooler", None) is not None:
            head["pooler"] = LinearBridge(name="albert.pooler")
        _install_head(self.components, hf_model, head)


def adapter_for(family: str) -> type:
    """The adapter class for a model family (it handles both the checkpoint's own head and
    :class:`EncoderWithHead`).

    Raises:
        ValueError: unknown family.
    """
    adapter: type = globals()[families.family(family).tl4_adapter]
    return adapter


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
