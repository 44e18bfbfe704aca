"""``load_classifier``: an encoder classifier as a hooked TransformerLens model.

The returned object is a plain TL 4.x ``TransformerBridge``: ``run_with_hooks``, ``hooks()``,
``run_with_cache`` and ``transformer_lens.patching`` work on it unchanged. What SYNAPSE needs
besides (label names, widths, the hook-name map) travels with it as ``model.synapse_info``; read
it with :func:`classifier_info`.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from synapse_lens.models.heads import EncoderWithHead, Pooling
from synapse_lens.names import Backend, HookNames

logger = logging.getLogger(__name__)

# HF architecture name -> (family, whether the checkpoint carries its own classifier head)
SUPPORTED_ARCHITECTURES: dict[str, tuple[str, bool]] = {
    "BertForSequenceClassification": ("bert", True),
    "RobertaForSequenceClassification": ("roberta", True),
    "BertModel": ("bert", False),
    "RobertaModel": ("roberta", False),
}
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)

_TOKENIZER_FILES = (
    "tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model"
)


@dataclass(frozen=True)
class ClassifierInfo:
    """What SYNAPSE knows about a loaded classifier.

    Attributes:
        architecture: HF architecture the model was built from (``"BertModel+head"`` for a bare
            encoder with a supplied head).
        family: ``"bert"`` or ``"roberta"``.
        n_layers, d_model, d_mlp, n_classes: widths.
        id2label: class names, indexed by class id.
        pad_token_id: the tokenizer's padding id (masks are derived from it).
        max_length: longest sequence the position table allows.
        fingerprint: SHA-256 of the weights at load time (ties caches and statistics to a model).
        source: checkpoint directory, or ``"<in-memory>"``.
        names: the model's hook-name map.
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


def weights_fingerprint(module: nn.Module) -> str:
    """SHA-256 over parameter names, shapes and bytes (stable across runs and devices)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _resolve_device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available; use 'cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {str(device)!r}")
    return dev


def _architecture_of(config: Any) -> str:
    archs = getattr(config, "architectures", None) or []
    arch = archs[0] if archs else None
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ValueError(
            f"unsupported architecture {arch!r} "
            f"(model_type {getattr(config, 'model_type', None)!r}); "
            f"synapse_lens supports {sorted(SUPPORTED_ARCHITECTURES)}"
        )
    return arch


def _load_from_directory(path: Path, tokenizer: Any) -> tuple[Any, Any, str]:
    import transformers

    if not path.is_dir():
        raise FileNotFoundError(f"model directory {str(path)!r} does not exist")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{str(path)!r} has no config.json; expected a Hugging Face save_pretrained directory"
        )
    config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
    arch = _architecture_of(config)
    if not any((path / f).is_file() for f in _WEIGHT_FILES):
        raise FileNotFoundError(f"{str(path)!r} holds no weights; expected one of {_WEIGHT_FILES}")
    if tokenizer is None:
        if not any((path / f).is_file() for f in _TOKENIZER_FILES):
            raise FileNotFoundError(
                f"no tokenizer files in {str(path)!r} (expected one of {_TOKENIZER_FILES}); "
                "save the tokenizer with save_pretrained or pass tokenizer="
            )
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, TypeError) as err:
            raise FileNotFoundError(
                f"no usable tokenizer files in {str(path)!r} (tokenizer.json, vocab.txt or "
                f"vocab.json + merges.txt with tokenizer_config.json); pass tokenizer= instead"
            ) from err
    # .bin checkpoints go through transformers' loader, which uses torch.load(weights_only=True).
    model_cls = getattr(transformers, arch)
    hf_model = model_cls.from_pretrained(path, local_files_only=True, attn_implementation="eager")
    return hf_model, tokenizer, arch


def _label_names(
    config: Any, n_classes: int, id2label: Mapping[int, str] | Sequence[str] | None
) -> tuple[str, ...]:
    if id2label is None:
        mapping = getattr(config, "id2label", None) or {}
        names = [str(mapping.get(i, f"LABEL_{i}")) for i in range(n_classes)]
    elif isinstance(id2label, Mapping):
        names = [str(id2label[i]) if i in id2label else f"LABEL_{i}" for i in range(n_classes)]
    else:
        names = [str(x) for x in id2label]
    if len(names) != n_classes:
        raise ValueError(f"id2label has {len(names)} names but the head has {n_classes} classes")
    if len(set(names)) != len(names):
        raise ValueError(f"id2label names must be unique, got {names}")
    return tuple(names)


def _derive_attention_mask(pad_token_id: int) -> Any:
    """A forward pre-hook deriving ``attention_mask`` from pad ids when none is given, so that
    callers passing tokens only (``transformer_lens.patching``) stay correct on padded batches."""

    def pre_hook(
        module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if kwargs.get("attention_mask") is None:
            ids = kwargs.get("input_ids", args[0] if args else None)
            if isinstance(ids, torch.Tensor) and not ids.is_floating_point():
                kwargs["attention_mask"] = (ids != pad_token_id).long()
        return args, kwargs

    return pre_hook


def load_classifier(
    source: str | os.PathLike[str] | nn.Module,
    tokenizer: Any = None,
    *,
    head: nn.Linear | None = None,
    pooling: Pooling = "cls",
    id2label: Mapping[int, str] | Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Any:
    """Load an encoder classifier as a hooked TransformerLens 4.x model.

    Args:
        source: a local Hugging Face checkpoint directory (``save_pretrained`` layout), or an
            already-loaded HF model (it is copied: the original stays untouched).
        tokenizer: required with an in-memory model; read from the directory otherwise.
        head: for a bare ``BertModel`` / ``RobertaModel``: ``nn.Linear(d_model, n_classes)``.
        pooling: how ``head`` reads the encoder: ``"cls"`` (first token) or ``"mean"``.
        id2label: class names (overrides the checkpoint's).
        device: ``"cpu"`` or ``"cuda"``.
        dtype: parameter dtype.

    Returns:
        A ``TransformerBridge`` whose forward on a list of strings or a token tensor returns
        class logits ``[batch, n_classes]`` through the hook ``classifier.hook_out``. Token
        tensors without ``attention_mask`` get one derived from the pad id. Its
        :class:`ClassifierInfo` is ``classifier_info(model)``.

    Raises:
        FileNotFoundError: missing directory, config, weights or tokenizer files.
        ValueError: unsupported architecture, missing or misshapen head, bad device.

    Example:
        >>> from synapse_lens.models import tiny_classifier_dir
        >>> model = load_classifier(tiny_classifier_dir(tmp_path, family="bert"))  # doctest: +SKIP
        >>> model(["a short text", "another"]).shape  # doctest: +SKIP
        torch.Size([2, 3])
    """
    dev = _resolve_device(device)
    if isinstance(source, nn.Module):
        if tokenizer is None:
            raise ValueError("an in-memory model needs its tokenizer: pass tokenizer=")
        arch = type(source).__name__
        if arch not in SUPPORTED_ARCHITECTURES:
            raise ValueError(
                f"unsupported model class {arch}; synapse_lens supports "
                f"{sorted(SUPPORTED_ARCHITECTURES)}"
            )
        hf_model: Any = copy.deepcopy(source)
        source_name = "<in-memory>"
    elif isinstance(source, (str, os.PathLike)):
        hf_model, tokenizer, arch = _load_from_directory(Path(source), tokenizer)
        source_name = str(source)
    else:
        raise TypeError(
            f"source must be a checkpoint directory or a HF model, got {type(source).__name__}"
        )

    family, has_head = SUPPORTED_ARCHITECTURES[arch]
    config: Any = hf_model.config
    if has_head and head is not None:
        raise ValueError(f"{arch} already has a classifier head; do not pass head=")
    if not has_head:
        if head is None:
            raise ValueError(
                f"{arch} is a bare encoder with no classifier head: pass head=nn.Linear("
                f"{config.hidden_size}, n_classes) (and pooling='cls' or 'mean')"
            )
        if not isinstance(head, nn.Linear) or head.in_features != config.hidden_size:
            shape = (
                f"Linear({head.in_features}, {head.out_features})"
                if isinstance(head, nn.Linear)
                else type(head).__name__
            )
            raise ValueError(
                f"head must be nn.Linear({config.hidden_size}, n_classes) for this encoder "
                f"(d_model={config.hidden_size}), got {shape}"
            )
        hf_model = EncoderWithHead(hf_model, copy.deepcopy(head), pooling)
        n_classes = head.out_features
    else:
        n_classes = int(config.num_labels)

    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token; synapse_lens needs one to mask padding")
    hf_model = hf_model.to(device=dev, dtype=dtype).eval()
    fingerprint = weights_fingerprint(hf_model)
    from synapse_lens.models.adapters import adapter_for, build_bridge

    bridge = build_bridge(
        hf_model,
        config,
        adapter_for(family, has_head),
        tokenizer,
        architecture=arch,
        model_name=source_name,
        device=str(dev),
        dtype=dtype,
    )
    hf_model.register_forward_pre_hook(
        _derive_attention_mask(int(tokenizer.pad_token_id)), with_kwargs=True
    )
    # "pooled" is what the final projection reads: RoBERTa's head has its own dense+tanh.
    pooled = "classifier.out_proj.hook_in" if (family, has_head) == ("roberta", True) else (
        "pooler.hook_out"
    )
    names = HookNames(
        backend="tl4-bridge", n_layers=int(config.num_hidden_layers), pooled=pooled,
        logits="classifier.hook_out",
    )
    max_positions = int(config.max_position_embeddings)
    if family == "roberta":
        max_positions -= int(config.pad_token_id) + 1
    bridge.synapse_info = ClassifierInfo(
        architecture=arch if has_head else f"{arch}+head",
        family=family,
        n_layers=int(config.num_hidden_layers),
        d_model=int(config.hidden_size),
        d_mlp=int(config.intermediate_size),
        n_classes=n_classes,
        id2label=_label_names(config, n_classes, id2label),
        pad_token_id=int(tokenizer.pad_token_id),
        max_length=max_positions,
        fingerprint=fingerprint,
        source=source_name,
        names=names,
    )
    logger.info("loaded %s (%s) from %s", arch, family, source_name)
    return bridge
