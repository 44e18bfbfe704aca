"""The TransformerLens 3.x backend: an encoder classifier on ``HookedEncoder``.

:class:`HookedEncoderClassifier` is a ``HookedEncoder`` (TL 3.9's BERT-style encoder: every
``blocks.{l}.…`` hook, ``to_tokens``, ``encoder_output``, ``W_Q``…) whose forward returns class
logits instead of masked-LM logits: ``encoder_output`` → the checkpoint's head → ``hook_logits``.
The MLM / NSP heads are removed (never computed: a classifier reads the encoder output only). Hook
names (see :mod:`synapse_lens.names`): layer ``l`` output ``blocks.{l}.hook_normalized_resid_post``,
MLP units ``blocks.{l}.mlp.hook_post``, pooled vector ``pooler.hook_pooler_out`` (BERT's pooler) or
``hook_pooled`` (other heads), logits ``hook_logits``.

Weights come from the HF model by hand (:mod:`synapse_lens.models.tl3_convert`): HookedEncoder
allocates with ``torch.empty`` and never initialises, so every parameter is checked to be loaded.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformer_lens import HookedEncoder
from transformer_lens.hook_points import HookPoint
from transformer_lens.utilities import devices

from synapse_lens.models.checkpoints import check_right_padding
from synapse_lens.models.heads import EncoderWithHead, Pooler, Pooling
from synapse_lens.models.tl3_convert import (
    bare_encoder,
    encoder_state_dict,
    family_of,
    tl3_config_dict,
    tl3_unsupported_reason,
)

HeadKind = Literal["bert", "dense", "distilbert", "linear"]
_ACT: dict[str, Any] = {"roberta": torch.tanh, "xlm-roberta": torch.tanh,
                        "electra": nn.functional.gelu, "distilbert": torch.relu}


class HookedEncoderClassifier(HookedEncoder):
    """``HookedEncoder`` + a sequence-classification head with a ``hook_logits`` HookPoint.

    Build it with :func:`build_tl3_classifier` (or ``load_classifier`` on TL 3.x).

    Heads (``head_kind``): ``"bert"`` BERT's pooler (dense + tanh on [CLS]) → ``classifier``;
    ``"dense"`` RoBERTa / XLM-R / ELECTRA (first token → ``pre_classifier`` → tanh or gelu →
    ``classifier``); ``"distilbert"`` (first token → ``pre_classifier`` → ReLU → ``classifier``);
    ``"linear"`` your ``nn.Linear`` over [CLS] or mean pooling.
    """

    def __init__(self, cfg: Any, tokenizer: Any, *, head_kind: HeadKind, n_classes: int,
                 family: str, pooling: Pooling = "cls", normalize: bool = False) -> None:
        with warnings.catch_warnings():  # TL 3.9 warns on every construction
            warnings.simplefilter("ignore", DeprecationWarning)
            super().__init__(cfg, tokenizer=tokenizer, move_to_device=False)
        del self.mlm_head, self.unembed, self.nsp_head
        self.head_kind = head_kind
        self.family = family
        d_model = self.cfg.d_model
        if head_kind != "bert":
            del self.pooler
            self.hook_pooled = HookPoint()
        if head_kind in ("dense", "distilbert"):
            self.pre_classifier = nn.Linear(d_model, d_model, dtype=self.cfg.dtype)
        if head_kind == "linear":
            self.pooling = Pooler(pooling, normalize)
        self.classifier = nn.Linear(d_model, n_classes, dtype=self.cfg.dtype)
        self.hook_logits = HookPoint()
        self.setup()

    def to(self, device_or_dtype: Any, print_details: bool = False) -> HookedEncoderClassifier:  # type: ignore[override]
        """Move / cast like ``HookedEncoder.to`` (keeps ``cfg`` in sync), silently."""
        return devices.move_to_and_update_config(self, device_or_dtype, print_details)

    def _tokenize(self, texts: str | list[str]) -> tuple[Tensor, Tensor | None, Tensor]:
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True,
                             max_length=self.cfg.n_ctx)
        device = self.cfg.device
        types = enc.get("token_type_ids")
        return (enc["input_ids"].to(device), None if types is None else types.to(device),
                enc["attention_mask"].to(device))

    def pooled(self, resid: Float[Tensor, "batch pos d_model"],
               mask: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch d_model"]:
        """The vector the final projection reads (its hook fires here)."""
        if self.head_kind == "bert":
            return self.pooler(resid)  # fires pooler.hook_pooler_out
        if self.head_kind == "linear":
            return self.hook_pooled(self.pooling(resid, mask))
        act = _ACT[self.family]
        return self.hook_pooled(act(self.pre_classifier(resid[:, 0])))

    def forward(  # type: ignore[override]
        self,
        input: str | list[str] | Int[Tensor, "batch pos"],
        return_type: Literal["logits"] | None = "logits",
        token_type_ids: Int[Tensor, "batch pos"] | None = None,
        one_zero_attention_mask: Int[Tensor, "batch pos"] | None = None,
        attention_mask: Int[Tensor, "batch pos"] | None = None,
        padding_side: str | None = None,
    ) -> Float[Tensor, "batch n_classes"] | None:
        """Class logits ``[batch, n_classes]`` (``return_type=None``: ``None``).

        ``input`` is a text, a list of texts (tokenised with right padding and a mask) or token
        ids ``[batch, pos]``; with token ids, ``attention_mask`` (or TL's
        ``one_zero_attention_mask``) defaults to ``input != pad_token_id``. Masks must be
        right-padded (``ValueError`` otherwise).
        """
        if padding_side not in (None, "right"):
            raise ValueError(f"padding_side={padding_side!r}: synapse_lens reads position 0 as "
                             "[CLS], so texts are padded on the right (padding_side='right')")
        mask = attention_mask if attention_mask is not None else one_zero_attention_mask
        if isinstance(input, (str, list)):
            tokens, types, text_mask = self._tokenize(input)
            token_type_ids = types if token_type_ids is None else token_type_ids
            mask = text_mask if mask is None else mask
        else:
            tokens = input if input.ndim == 2 else input.unsqueeze(0)
            if mask is None:
                mask = (tokens != self.tokenizer.pad_token_id).long()
        tokens = tokens.to(self.cfg.device)
        mask = mask.to(self.cfg.device).long()
        check_right_padding(mask)
        if self.family == "distilbert" or token_type_ids is None:
            token_type_ids = torch.zeros_like(tokens)
        resid = self.encoder_output(tokens, token_type_ids.to(self.cfg.device), mask)
        logits = self.hook_logits(self.classifier(self.pooled(resid, mask)))
        return None if return_type is None else logits


def _head_state_dict(hf_model: Any, kind: HeadKind) -> dict[str, Tensor]:
    if kind == "bert":
        dense = hf_model.bert.pooler.dense
        sd = {"pooler.W": dense.weight.T, "pooler.b": dense.bias}
        final = hf_model.classifier
    elif kind == "dense":
        dense, final = hf_model.classifier.dense, hf_model.classifier.out_proj
        sd = {"pre_classifier.weight": dense.weight, "pre_classifier.bias": dense.bias}
    elif kind == "distilbert":
        dense, final = hf_model.pre_classifier, hf_model.classifier
        sd = {"pre_classifier.weight": dense.weight, "pre_classifier.bias": dense.bias}
    else:
        sd, final = {}, hf_model.classifier
    sd.update({"classifier.weight": final.weight, "classifier.bias": final.bias})
    return {k: v.detach().clone() for k, v in sd.items()}


def build_tl3_classifier(hf_model: nn.Module, tokenizer: Any, *, family: str,
                         device: torch.device, dtype: torch.dtype) -> HookedEncoderClassifier:
    """A :class:`HookedEncoderClassifier` with the weights of ``hf_model``.

    Args:
        hf_model: an HF ``*ForSequenceClassification`` of a convertible family, or an
            :class:`EncoderWithHead` over its bare encoder.
        tokenizer: the model's tokenizer (a right-padding copy is kept).
        family: the synapse_lens family.
        device, dtype: where and how to hold the weights.

    Returns:
        The classifier in eval mode.

    Raises:
        ValueError: the encoder does not convert exactly (the reason is given), or a weight was
            left unloaded.

    Example:
        >>> model = build_tl3_classifier(hf, tok, family="bert", device=torch.device("cpu"),
        ...                              dtype=torch.float32)  # doctest: +SKIP
    """
    import copy

    from transformer_lens import HookedTransformerConfig

    from synapse_lens.models.checkpoints import supported_architectures

    config: Any = hf_model.config
    reason = tl3_unsupported_reason(config)
    if reason is not None:
        raise ValueError(f"cannot load this {family} model on tl3-hooked-encoder: {reason}; "
                         f"supported: {sorted(supported_architectures('tl3-hooked-encoder'))}")
    own = isinstance(hf_model, EncoderWithHead)
    kind: HeadKind = "linear" if own else (
        "bert" if family == "bert" else "distilbert" if family == "distilbert" else "dense")
    head: Any = hf_model.classifier
    pooler: Any = getattr(hf_model, "pooler", None)
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.padding_side = "right"
    cfg = HookedTransformerConfig(**tl3_config_dict(config, str(device), dtype))
    # nn.Linear initialises from the global RNG; every weight is overwritten below, so the
    # caller's RNG state is restored rather than consumed.
    with torch.random.fork_rng(devices=[]):
        model = HookedEncoderClassifier(
            cfg, tokenizer, head_kind=kind, family=family_of(config),
            n_classes=int(head.out_features if own else config.num_labels),
            pooling=pooler.pooling if own else "cls",
            normalize=pooler.normalize if own else False,
        )
    state = encoder_state_dict(bare_encoder(hf_model), config)
    state.update(_head_state_dict(hf_model, kind))
    params = dict(model.named_parameters())
    missing = sorted(set(params) - set(state))
    unexpected = sorted(set(state) - set(params))
    if missing or unexpected:
        raise ValueError(f"weight conversion mismatch: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        for name, value in state.items():
            if params[name].shape != value.shape:
                raise ValueError(f"{name}: shape {tuple(value.shape)} does not fit "
                                 f"{tuple(params[name].shape)}")
            params[name].copy_(value)
    return model.to(device).eval()
