"""A bare HF encoder (``BertModel``, ``RobertaModel``, ...) with a classification head you supply.

The module tree mirrors HF's ``*ForSequenceClassification`` classes (the encoder lives under its
``base_model_prefix``, e.g. ``bert`` / ``roberta``, the head under ``classifier``), so the same
TransformerLens adapters wrap both; the pooling step is its own ``pooler`` module so that the
pooled vector has a hook point.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformers.modeling_outputs import SequenceClassifierOutput

Pooling = Literal["cls", "mean"]


class Pooler(nn.Module):
    """[CLS] (first token) or attention-masked mean pooling of the last hidden states."""

    def __init__(self, pooling: Pooling) -> None:
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        self.pooling = pooling

    def forward(
        self,
        hidden: Float[Tensor, "batch pos d_model"],
        mask: Int[Tensor, "batch pos"] | None = None,
    ) -> Float[Tensor, "batch d_model"]:
        if self.pooling == "cls":
            return hidden[:, 0]
        if mask is None:
            return hidden.mean(dim=1)
        weights = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class EncoderWithHead(nn.Module):
    """``encoder`` → ``pooler`` ([CLS] or mean) → ``classifier`` (a linear layer).

    Args:
        encoder: a bare HF encoder (``BertModel``, ``RobertaModel``, ``XLMRobertaModel``,
            ``ElectraModel``, ``DistilBertModel``, ``AlbertModel``); stored under its HF prefix
            (``bert``, ``roberta``, ``electra``, ``distilbert``, ``albert``).
        head: ``nn.Linear(d_model, n_classes)``.
        pooling: ``"cls"`` (first token) or ``"mean"`` (mean over non-padding tokens).
    """

    def __init__(self, encoder: nn.Module, head: nn.Linear, pooling: Pooling = "cls") -> None:
        super().__init__()
        config: Any = encoder.config
        prefix: str = str(getattr(encoder, "base_model_prefix", "") or config.model_type)
        self.base_model_prefix: str = prefix
        setattr(self, prefix, encoder)
        self.pooler = Pooler(pooling)
        self.classifier = head
        self.config = config

    @property
    def encoder_module(self) -> nn.Module:
        return getattr(self, self.base_model_prefix)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(
        self,
        input_ids: Int[Tensor, "batch pos"] | None = None,
        attention_mask: Int[Tensor, "batch pos"] | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        kwargs.pop("labels", None)
        outputs = self.encoder_module(
            input_ids=input_ids, attention_mask=attention_mask, **kwargs
        )
        pooled = self.pooler(outputs.last_hidden_state, attention_mask)
        logits = self.classifier(pooled)
        return SequenceClassifierOutput(
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
