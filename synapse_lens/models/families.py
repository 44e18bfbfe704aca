"""What synapse_lens knows about each encoder family, one record per family.

Everything that depends on the family reads its :class:`Family` record: the checkpoint reader
(HF class names, config widths), the TransformerLens 4.x adapter and pooled-vector hook, the
TL 3.x conversion, the parameter names of weight edits, the plain HF head of the fast path and
the tiny test models. Adding a family is adding a record here (plus an adapter class in
:mod:`synapse_lens.models.adapters` when its module tree is not one the existing adapters map)
and its tiny model to the test matrix (docs/architectures.md).

Paths are HF attribute paths: ``prefix`` from the classifier to the bare encoder, ``layers``
from the encoder to its list of layers, ``mlp_out`` / ``output_norm`` from a layer to the MLP's
output projection / the layer's output LayerNorm.

Example:
    >>> FAMILIES["distilbert"].mlp_out
    'ffn.lin2'
    >>> family_of_architecture("XLMRobertaModel")
    ('xlm-roberta', False)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from synapse_lens.names import (
    TL3_BERT_POOLED,
    TL3_LOGITS,
    TL3_POOLED,
    TL4_LOGITS,
    TL4_OWN_HEAD_POOLED,
    Backend,
)

#: The shapes of classifier head the fast path knows (``runtime.plain``), by what follows the
#: encoder in HF's ``forward``: BERT's pooler → classifier; RoBERTa's ``classifier`` module
#: (dense → act → out_proj on the first token); DistilBERT's pre_classifier → ReLU →
#: classifier; ALBERT's pooler → tanh → classifier.
HeadShape = Literal["bert", "roberta", "distilbert", "albert"]

#: The shapes of encoder layer the [CLS]-only last layer knows (``runtime.pruned``), by module
#: names: BERT's ``attention.self.{query,key,value}`` → ``attention.output`` → ``intermediate``
#: → ``output`` (also RoBERTa, XLM-R, ELECTRA); DistilBERT's ``attention.{q,k,v,out}_lin`` →
#: ``sa_layer_norm`` → ``ffn`` → ``output_layer_norm``; ALBERT's ``attention`` (with its own
#: dense + LayerNorm) → ``ffn`` → ``ffn_output`` → ``full_layer_layer_norm``.
LayerShape = Literal["bert", "distilbert", "albert"]


@dataclass(frozen=True)
class Family:
    """One encoder family.

    Attributes:
        name: synapse_lens's name (``"bert"``, ``"xlm-roberta"``, ...).
        classifier: the HF ``*ForSequenceClassification`` class name.
        encoder: the bare HF encoder class name (a head supplied by the user goes on top).
        model_type: HF ``config.model_type``.
        config_class: the HF config class name (tiny test models).
        prefix: attribute of the bare encoder inside the classifier.
        layers: path from the encoder to its layers (ALBERT: after unrolling, see
            :mod:`synapse_lens.models.shared_layers`).
        mlp_out: path from a layer to the linear map that reads its MLP units.
        output_norm: path from a layer to its output LayerNorm (every family is post-LN).
        embed_projection: path from the encoder to a linear map applied to the embeddings
            before layer 0, when the family may have one.
        widths: config attribute names of (layers, width, MLP width).
        heads: config attribute name of the number of attention heads.
        shares_layers: layers are applied repeatedly (ALBERT: ``num_hidden_layers`` ×
            ``inner_group_num`` applications).
        positions_after_pad: position ids start at ``pad_token_id + 1`` (RoBERTa), which
            shortens the longest usable sequence by that much.
        head: the head's shape (:data:`HeadShape`).
        layer_shape: the encoder layer's shape (:data:`LayerShape`).
        tl4_adapter: the adapter class's name in :mod:`synapse_lens.models.adapters`.
        tl4_pooled: the TL 4.x hook of the vector the final projection reads (own head).
        tl3: whether the family converts exactly onto TL 3.x ``HookedEncoder``.
        roberta_tokens: the tokenizer uses RoBERTa's special tokens (``<s>`` = 0, ``<pad>`` = 1).
        tiny_config: config values of the tiny test models beyond their widths (special token
            ids, dropout off).
    """

    name: str
    classifier: str
    encoder: str
    model_type: str
    config_class: str
    prefix: str
    layers: str = "encoder.layer"
    mlp_out: str = "output.dense"
    output_norm: str = "output.LayerNorm"
    embed_projection: str | None = None
    widths: tuple[str, str, str] = ("num_hidden_layers", "hidden_size", "intermediate_size")
    heads: str = "num_attention_heads"
    shares_layers: bool = False
    positions_after_pad: bool = False
    head: HeadShape = "roberta"
    layer_shape: LayerShape = "bert"
    tl4_adapter: str = "BertClassifierAdapter"
    tl4_pooled: str = "classifier.out_proj.hook_in"
    tl3: bool = True
    roberta_tokens: bool = False
    tiny_config: Mapping[str, Any] = field(default_factory=dict)

    def encoder_of(self, classifier: Any) -> Any:
        """The bare encoder module inside an HF classifier of this family."""
        return getattr(classifier, self.prefix)


_NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}

_RECORDS = (
    Family("bert", "BertForSequenceClassification", "BertModel", "bert", "BertConfig", "bert",
           head="bert", tl4_pooled="pooler.hook_out",
           tiny_config={**_NO_DROPOUT, "pad_token_id": 0}),
    Family("roberta", "RobertaForSequenceClassification", "RobertaModel", "roberta",
           "RobertaConfig", "roberta", positions_after_pad=True,
           tl4_adapter="RobertaClassifierAdapter", roberta_tokens=True,
           tiny_config={**_NO_DROPOUT, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
                        "type_vocab_size": 1}),
    Family("xlm-roberta", "XLMRobertaForSequenceClassification", "XLMRobertaModel",
           "xlm-roberta", "XLMRobertaConfig", "roberta", positions_after_pad=True,
           tl4_adapter="RobertaClassifierAdapter", roberta_tokens=True,
           tiny_config={**_NO_DROPOUT, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
                        "type_vocab_size": 1}),
    Family("electra", "ElectraForSequenceClassification", "ElectraModel", "electra",
           "ElectraConfig", "electra", embed_projection="embeddings_project",
           tl4_adapter="ElectraClassifierAdapter",
           tiny_config={**_NO_DROPOUT, "pad_token_id": 0}),
    Family("distilbert", "DistilBertForSequenceClassification", "DistilBertModel", "distilbert",
           "DistilBertConfig", "distilbert", layers="transformer.layer", mlp_out="ffn.lin2",
           output_norm="output_layer_norm", widths=("n_layers", "dim", "hidden_dim"),
           heads="n_heads", head="distilbert", layer_shape="distilbert",
           tl4_adapter="DistilBertClassifierAdapter",
           tl4_pooled="classifier.hook_in",
           tiny_config={"pad_token_id": 0, "dropout": 0.0, "attention_dropout": 0.0,
                        "seq_classif_dropout": 0.0}),
    Family("albert", "AlbertForSequenceClassification", "AlbertModel", "albert", "AlbertConfig",
           "albert", mlp_out="ffn_output", output_norm="full_layer_layer_norm",
           embed_projection="encoder.embedding_hidden_mapping_in", shares_layers=True,
           head="albert", layer_shape="albert", tl4_adapter="AlbertClassifierAdapter",
           tl4_pooled="classifier.hook_in", tl3=False,
           tiny_config={**_NO_DROPOUT, "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3,
                        "classifier_dropout_prob": 0.0, "hidden_act": "gelu"}),
)

#: Family name -> record, in the order tests and docs list them.
FAMILIES: Mapping[str, Family] = MappingProxyType({f.name: f for f in _RECORDS})


def family(name: str) -> Family:
    """The record of family ``name``.

    Raises:
        ValueError: an unknown family (the message lists the known ones).
    """
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; expected one of {list(FAMILIES)}")
    return FAMILIES[name]


def family_of_architecture(architecture: str) -> tuple[str, bool] | None:
    """``(family, has_own_head)`` of an HF architecture class name, or None when unsupported."""
    for f in _RECORDS:
        if architecture in (f.classifier, f.encoder):
            return f.name, architecture == f.classifier
    return None


def family_of_config(config: Any) -> str:
    """The family of an HF config, from its ``model_type``.

    Raises:
        ValueError: a model type of no supported family.
    """
    for f in _RECORDS:
        if f.model_type == config.model_type:
            return f.name
    raise ValueError(f"unsupported model_type {config.model_type!r}; supported: "
                     f"{[f.model_type for f in _RECORDS]}")


def encoder_widths(config: Any, name: str) -> tuple[int, int, int, int]:
    """``(n_layers, d_model, d_mlp, max_length)`` of an HF encoder config of family ``name``.

    ``n_layers`` counts layer *applications* (ALBERT: ``num_hidden_layers * inner_group_num``);
    ``max_length`` is the longest sequence the position table allows (RoBERTa-style tables
    reserve ``pad_token_id + 1`` rows).
    """
    rec = family(name)
    n_layers, d_model, d_mlp = (int(getattr(config, attr)) for attr in rec.widths)
    if rec.shares_layers:
        n_layers *= int(config.inner_group_num)
    max_positions = int(config.max_position_embeddings)
    if rec.positions_after_pad:
        max_positions -= int(config.pad_token_id) + 1
    return n_layers, d_model, d_mlp, max_positions


def head_hooks(backend: Backend, name: str, own_head: bool) -> tuple[str, str]:
    """``(pooled, logits)`` hook names of a classifier head.

    Args:
        backend: the TransformerLens backend.
        name: the model's family.
        own_head: ``True`` for the checkpoint's own head, ``False`` for a linear head supplied to
            ``load_classifier(head=...)`` over a bare encoder.

    Returns:
        The hook name of the vector the final projection reads, and of the class logits.

    Raises:
        ValueError: unknown backend or family.

    Example:
        >>> head_hooks("tl4-bridge", "distilbert", own_head=True)
        ('classifier.hook_in', 'classifier.hook_out')
    """
    rec = family(name)
    if backend == "tl4-bridge":
        return (rec.tl4_pooled if own_head else TL4_OWN_HEAD_POOLED), TL4_LOGITS
    if backend == "tl3-hooked-encoder":
        return (TL3_BERT_POOLED if own_head and rec.head == "bert" else TL3_POOLED), TL3_LOGITS
    raise ValueError(f"unknown backend {backend!r}; expected 'tl4-bridge' or "
                     "'tl3-hooked-encoder'")

