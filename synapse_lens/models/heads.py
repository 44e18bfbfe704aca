"""A bare HF encoder (``BertModel``, ``RobertaModel``, ...) with a classification head you supply.

The module tree mirrors HF's ``*ForSequenceClassification`` classes (the encoder lives under its
``base_model_prefix``, e.g. ``bert`` / ``roberta``, the head under ``classifier``), so the same
TransformerLens adapters wrap both; the pooling step is its own ``pooler`` module so that the
pooled vector has a hook point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformers.modeling_outputs import SequenceClassifierOutput

Pooling = Literal["cls", "mean"]


class Pooler(nn.Module):
    """[CLS] (first token) or attention-masked mean pooling of the last hidden states, then,
    with ``normalize``, L2 normalisation (sentence-transformers' ``Normalize`` module: what a
    head trained on normalised sentence embeddings reads)."""

    def __init__(self, pooling: Pooling, normalize: bool = False) -> None:
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        self.pooling = pooling
        self.normalize = bool(normalize)

    def extra_repr(self) -> str:
        return f"pooling={self.pooling!r}, normalize={self.normalize}"

    def forward(
        self,
        hidden: Float[Tensor, "batch _ d_model"],
        mask: Int[Tensor, "batch pos"] | None = None,
    ) -> Float[Tensor, "batch d_model"]:
        # [CLS] pooling may get the [CLS] row alone (runtime.pruned): only mean pooling
        # reads every position, and the mask must then match them
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif mask is None:
            pooled = hidden.mean(dim=1)
        else:
            weights = mask.to(hidden.dtype).unsqueeze(-1)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        return nn.functional.normalize(pooled, p=2.0, dim=-1) if self.normalize else pooled


class EncoderWithHead(nn.Module):
    """``encoder`` → ``pooler`` ([CLS] or mean, optionally L2-normalised) → ``classifier`` (a
    linear layer).

    Args:
        encoder: a bare HF encoder (``BertModel``, ``RobertaModel``, ``XLMRobertaModel``,
            ``ElectraModel``, ``DistilBertModel``, ``AlbertModel``); stored under its HF prefix
            (``bert``, ``roberta``, ``electra``, ``distilbert``, ``albert``).
        head: ``nn.Linear(d_model, n_classes)``.
        pooling: ``"cls"`` (first token) or ``"mean"`` (mean over non-padding tokens).
        normalize: L2-normalise the pooled vector before the head.
    """

    def __init__(self, encoder: nn.Module, head: nn.Linear, pooling: Pooling = "cls",
                 normalize: bool = False) -> None:
        super().__init__()
        config: Any = encoder.config
        prefix: str = str(getattr(encoder, "base_model_prefix", "") or config.model_type)
        self.base_model_prefix: str = prefix
        setattr(self, prefix, encoder)
        self.pooler = Pooler(pooling, normalize)
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


def load_head(path: str | Path) -> nn.Linear:
    """A classifier head from a ``.safetensors`` file holding ``weight`` ``[n_classes, d_model]``
    and ``bias`` ``[n_classes]`` (e.g. ``safetensors.torch.save_file(head.state_dict(), path)``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: another format, missing or extra tensors, wrong shapes, fewer than two
            classes, non-finite values.

    Example:
        >>> head = load_head("head.safetensors")  # doctest: +SKIP
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such head file: {str(path)!r}")
    if path.suffix != ".safetensors":
        raise ValueError(f"head file {str(path)!r} must be a .safetensors file holding 'weight' "
                         "[n_classes, d_model] and 'bias' [n_classes]")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"head file {str(path)!r} is not a readable safetensors file: "
                         f"{err}") from None
    if set(tensors) != {"weight", "bias"}:
        raise ValueError(f"head file {str(path)!r} must hold exactly 'weight' and 'bias', "
                         f"got {sorted(tensors)}")
    weight, bias = tensors["weight"].float(), tensors["bias"].float()
    if weight.ndim != 2 or bias.shape != (weight.shape[0],) or weight.shape[0] < 2:
        raise ValueError(f"head file {str(path)!r}: weight must be [n_classes >= 2, d_model] and "
                         f"bias [n_classes], got {list(weight.shape)} and {list(bias.shape)}")
    if not (torch.isfinite(weight).all() and torch.isfinite(bias).all()):
        raise ValueError(f"head file {str(path)!r} holds non-finite values")
    with torch.random.fork_rng(devices=[]):  # every value is overwritten: keep the caller's RNG
        head = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    return head
