"""``load_classifier``: an encoder classifier as a hooked TransformerLens model.

With TransformerLens 4.x installed the returned object is a plain ``TransformerBridge``
(:mod:`synapse_lens.models.adapters`); with TransformerLens 3.x it is a ``HookedEncoder``-based
classifier (:mod:`synapse_lens.models.tl3`). Either way ``run_with_hooks``, ``hooks()``,
``run_with_cache`` and ``transformer_lens.patching`` work on it unchanged, and what SYNAPSE needs
besides (label names, widths, the hook-name map for that backend) travels with it as
``model.synapse_info``; read it with :func:`classifier_info`.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from synapse_lens.models.checkpoints import (
    SUPPORTED_ARCHITECTURES,
    check_architecture,
    check_right_padding,
    check_vocabulary,
    installed_backend,
    label_names,
    read_checkpoint,
    resolve_device,
    supported_architectures,
    weights_fingerprint,
)
from synapse_lens.models.families import encoder_widths, head_hooks
from synapse_lens.models.heads import EncoderWithHead, Pooling
from synapse_lens.names import Backend, HookNames

logger = logging.getLogger(__name__)

__all__ = [
    "SUPPORTED_ARCHITECTURES",
    "ClassifierInfo",
    "classifier_info",
    "installed_backend",
    "load_classifier",
    "supported_architectures",
    "weights_fingerprint",
]


def _check_single_label(arch: str, n_classes: int, problem_type: str | None) -> None:
    """SYNAPSE reads predictions as the argmax over at least two class logits."""
    if n_classes < 2 or problem_type == "regression":
        raise ValueError(
            f"{arch} has a {n_classes}-output head (problem_type={problem_type!r}): synapse_lens "
            "analyses single-label classifiers with at least 2 classes, not regression heads"
        )
    if problem_type == "multi_label_classification":
        logger.warning(
            "%s is a multi-label classifier: synapse_lens scores the argmax class (one label "
            "per text), so accuracy, recall and flip rates treat it as single-label", arch
        )


@dataclass(frozen=True)
class ClassifierInfo:
    """What SYNAPSE knows about a loaded classifier.

    Attributes:
        architecture: HF architecture the model was built from (``"BertModel+head"`` for a bare
            encoder with a supplied head).
        family: ``"bert"``, ``"roberta"``, ``"xlm-roberta"``, ``"electra"``, ``"distilbert"``
            or ``"albert"``.
        n_layers, d_model, d_mlp, n_classes: widths.
        id2label: class names, indexed by class id.
        pad_token_id: the tokenizer's padding id (masks are derived from it).
        max_length: longest sequence the position table allows.
        fingerprint: SHA-256 of the weights at load time (ties caches and statistics to a model).
        source: checkpoint directory, or ``"<in-memory>"``.
        names: the model's hook-name map.
        pooling: what the final projection reads: ``"cls"`` (the first token, through the
            checkpoint's own pooler or head layers) or, for a bare encoder with your head,
            ``"cls"`` / ``"mean"``, with ``"+l2"`` when it is L2-normalised.
        trained_max_length: the sequence length the checkpoint was trained with where the
            checkpoint says so (sentence-transformers' ``max_seq_length``), else ``None``.
    """

    architecture: str
    family: str
    n_layers: int
    d_model: int
    d_mlp: int
    n_classes: int
    id2label: tuple[str, ...]
    pad_token_id: int
    max_length: int
    fingerprint: str
    source: str
    names: HookNames
    pooling: str = "cls"
    trained_max_length: int | None = None

    @property
    def backend(self) -> Backend:
        return self.names.backend

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.id2label)}

    def width(self, hook_name: str) -> int:
        """Number of units at a SYNAPSE hook point of this model."""
        site = self.names.parse(hook_name).site
        return {"embed": self.d_model, "resid_post": self.d_model, "mlp_post": self.d_mlp,
                "pooled": self.d_model, "logits": self.n_classes}[site]


def classifier_info(model: nn.Module) -> ClassifierInfo:
    """The :class:`ClassifierInfo` of a model returned by :func:`load_classifier`.

    Raises:
        TypeError: if ``model`` was not loaded by synapse_lens.
    """
    info = getattr(model, "synapse_info", None)
    if not isinstance(info, ClassifierInfo):
        raise TypeError(
            f"{type(model).__name__} was not loaded with synapse_lens.load_classifier "
            "(it carries no synapse_info)"
        )
    return info


def _derive_attention_mask(pad_token_id: int) -> Any:
    """A forward pre-hook deriving ``attention_mask`` from pad ids when none is given, so that
    callers passing tokens only (``transformer_lens.patching``) stay correct on padded batches,
    and refusing masks that are not right-padded (position 0 must be [CLS])."""

    def pre_hook(
        module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if kwargs.get("attention_mask") is None:
            ids = kwargs.get("input_ids", args[0] if args else None)
            if isinstance(ids, torch.Tensor) and not ids.is_floating_point():
                kwargs["attention_mask"] = (ids != pad_token_id).long()
        mask = kwargs.get("attention_mask")
        if isinstance(mask, torch.Tensor):
            check_right_padding(mask)
        return args, kwargs

    return pre_hook


def trained_length(checkpoint: Path) -> int | None:
    """The sequence length a checkpoint directory says it was trained with (the
    ``max_seq_length`` of sentence-transformers' ``sentence_bert_config.json``), or ``None``."""
    try:
        value = json.loads((checkpoint / "sentence_bert_config.json").read_text(
            encoding="utf-8")).get("max_seq_length")
    except (OSError, ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, int) and value > 0 else None


def load_classifier(
    source: str | os.PathLike[str] | nn.Module,
    tokenizer: Any = None,
    *,
    head: nn.Linear | None = None,
    pooling: Pooling = "cls",
    normalize: bool = False,
    id2label: Mapping[int, str] | Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Any:
    """Load an encoder classifier as a hooked TransformerLens model.

    Supported (TL 4.x): ``*ForSequenceClassification`` of BERT, RoBERTa, XLM-RoBERTa, ELECTRA,
    DistilBERT and ALBERT, and the bare ``*Model`` encoders with a ``head`` you supply; on TL 3.x
    the families that ``HookedEncoder`` represents exactly (see :func:`supported_architectures`).

    Args:
        source: a local Hugging Face checkpoint directory (``save_pretrained`` layout), or an
            already-loaded HF model (it is copied: the original stays untouched).
        tokenizer: required with an in-memory model; read from the directory otherwise.
        head: for a bare encoder (``BertModel``, ...): ``nn.Linear(d_model, n_classes)``.
        pooling: how ``head`` reads the encoder: ``"cls"`` (first token) or ``"mean"``.
        normalize: L2-normalise the pooled vector before ``head`` (a head trained on
            sentence-transformers embeddings that end with a ``Normalize`` module).
        id2label: class names (overrides the checkpoint's).
        device: ``"cpu"`` or ``"cuda"``.
        dtype: parameter dtype.

    Returns:
        TL 4.x: a ``TransformerBridge``; TL 3.x: a ``HookedEncoder``-based classifier. Its forward
        on a list of strings or a token tensor ``[batch, pos]`` (optionally with
        ``attention_mask=``) returns class logits ``[batch, n_classes]`` through the logits hook
        (``classifier_info(model).names.logits``). Token tensors without ``attention_mask`` get
        one derived from the pad id. Inputs must be right-padded (position 0 is [CLS]): a
        left-padded batch (``padding_side="left"`` or such a mask) raises ``ValueError``. Its
        :class:`ClassifierInfo` is ``classifier_info(model)``.

    Raises:
        FileNotFoundError: missing directory, config, weights or tokenizer files.
        ValueError: unsupported architecture (the message lists the supported ones), missing
            or misshapen head, a regression head (fewer than 2 outputs), bad device, a
            directory that needs its own code, refused pickled weights, a tokenizer with more
            tokens than the embedding table.
        PermissionError: unreadable checkpoint files.
        TypeError: ``source`` is neither a directory nor an HF model.

    Example:
        >>> from synapse_lens.testing import tiny_classifier_dir
        >>> model = load_classifier(tiny_classifier_dir(tmp_path, family="bert"))  # doctest: +SKIP
        >>> model(["a short text", "another"]).shape  # doctest: +SKIP
        torch.Size([2, 3])
    """
    dev = resolve_device(device)
    backend = installed_backend()
    supported = supported_architectures(backend)
    if isinstance(source, nn.Module):
        if tokenizer is None:
            raise ValueError("an in-memory model needs its tokenizer: pass tokenizer=")
        arch = check_architecture(type(source).__name__, supported, backend)
        hf_model: Any = copy.deepcopy(source)
        source_name = "<in-memory>"
    elif isinstance(source, (str, os.PathLike)):
        hf_model, tokenizer, arch = read_checkpoint(Path(source), tokenizer, supported, backend)
        source_name = str(source)
    else:
        raise TypeError(
            f"source must be a checkpoint directory or a HF model, got {type(source).__name__}"
        )

    family, has_head = supported[arch]
    config: Any = hf_model.config
    check_vocabulary(tokenizer, hf_model.get_input_embeddings())
    n_layers, d_model, d_mlp, max_length = encoder_widths(config, family)
    if has_head and head is not None:
        raise ValueError(f"{arch} already has a classifier head; do not pass head=")
    if has_head and (pooling != "cls" or normalize):
        raise ValueError(f"{arch} has its own classifier head, which decides its pooling; "
                         "pooling= and normalize= apply to a bare encoder with head= only")
    if not has_head:
        if head is None:
            raise ValueError(
                f"{arch} is a bare encoder with no classifier head: pass head=nn.Linear("
                f"{d_model}, n_classes) (and pooling='cls' or 'mean')"
            )
        if not isinstance(head, nn.Linear) or head.in_features != d_model:
            shape = (
                f"Linear({head.in_features}, {head.out_features})"
                if isinstance(head, nn.Linear)
                else type(head).__name__
            )
            raise ValueError(
                f"head must be nn.Linear({d_model}, n_classes) for this encoder "
                f"(d_model={d_model}), got {shape}"
            )
        hf_model = EncoderWithHead(hf_model, copy.deepcopy(head), pooling, normalize)
        n_classes = head.out_features
    else:
        n_classes = int(config.num_labels)
    problem_type = getattr(config, "problem_type", None) if has_head else None
    _check_single_label(arch, n_classes, problem_type)

    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token; synapse_lens needs one to mask padding")
    hf_model = hf_model.to(device=dev, dtype=dtype).eval()
    fingerprint = weights_fingerprint(hf_model)
    if backend == "tl4-bridge":
        from synapse_lens.models.adapters import adapter_for, build_bridge

        model = build_bridge(
            hf_model, config, adapter_for(family), tokenizer, architecture=arch,
            model_name=source_name, device=str(dev), dtype=dtype,
        )
        hf_model.register_forward_pre_hook(
            _derive_attention_mask(int(tokenizer.pad_token_id)), with_kwargs=True
        )
    else:
        from synapse_lens.models.tl3 import build_tl3_classifier

        model = build_tl3_classifier(hf_model, tokenizer, family=family, device=dev, dtype=dtype)
    pooled, logits = head_hooks(backend, family, own_head=has_head)
    model.synapse_info = ClassifierInfo(
        architecture=arch if has_head else f"{arch}+head",
        family=family,
        n_layers=n_layers,
        d_model=d_model,
        d_mlp=d_mlp,
        n_classes=n_classes,
        id2label=label_names(config, n_classes, id2label),
        pad_token_id=int(tokenizer.pad_token_id),
        max_length=max_length,
        fingerprint=fingerprint,
        source=source_name,
        names=HookNames(backend=backend, n_layers=n_layers, pooled=pooled, logits=logits),
        pooling="cls" if has_head else pooling + ("+l2" if normalize else ""),
        trained_max_length=(trained_length(Path(source))
                            if isinstance(source, (str, os.PathLike)) else None),
    )
    logger.info("loaded %s (%s) on %s from %s", arch, family, backend, source_name)
    return model
