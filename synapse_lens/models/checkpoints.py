"""Reading HF checkpoints for :func:`synapse_lens.load_classifier`: supported architectures,
directory checks, widths, label names, device and weight fingerprints (backend-independent)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from torch import nn

from synapse_lens.models.families import FAMILIES
from synapse_lens.names import Backend

#: HF architecture name -> (family, whether the checkpoint carries its own classifier head).
SUPPORTED_ARCHITECTURES: dict[str, tuple[str, bool]] = {
    arch: (f.name, arch == f.classifier)
    for f in FAMILIES.values() for arch in (f.classifier, f.encoder)
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


def weights_fingerprint(module: nn.Module) -> str:
    """SHA-256 over parameter names, shapes and bytes (stable across runs and devices)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device`` for ``"cpu"`` / ``"cuda"``; ValueError for anything else or a missing
    GPU."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available; use 'cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {str(device)!r}")
    return dev


def check_architecture(arch: str | None, supported: Mapping[str, Any], backend: str) -> str:
    """``arch`` if ``supported`` has it, else a ValueError listing the supported ones."""
    if arch is None or arch not in supported:
        raise ValueError(
            f"unsupported architecture {arch!r}; synapse_lens on {backend} supports "
            f"{sorted(supported)}"
        )
    return arch


def _check_readable(path: Path) -> None:
    for name in ("config.json", *_WEIGHT_FILES, *_TOKENIZER_FILES, "tokenizer_config.json"):
        file = path / name
        if file.is_file() and not os.access(file, os.R_OK):
            raise PermissionError(f"cannot read {str(file)!r}: permission denied")


def _read_config(path: Path, backend: str, supported: Mapping[str, Any]) -> Any:
    """The checkpoint's HF config, never running code from the directory."""
    import transformers

    try:
        raw = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:
        raise ValueError(f"{str(path / 'config.json')!r} is not valid JSON "
                         f"({type(err).__name__})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{str(path / 'config.json')!r} must hold a JSON object")
    try:
        return transformers.AutoConfig.from_pretrained(path, local_files_only=True,
                                                       trust_remote_code=False)
    except (ValueError, KeyError) as err:
        if "auto_map" in raw or "trust_remote_code" in str(err):
            raise ValueError(
                f"{str(path)!r} needs its own Python code to load (model_type "
                f"{raw.get('model_type')!r} with auto_map); synapse_lens never runs code from a "
                f"model directory. Supported architectures on {backend}: {sorted(supported)}"
            ) from None
        raise ValueError(f"cannot read the config of {str(path)!r} (model_type "
                         f"{raw.get('model_type')!r}): {' '.join(str(err).split())}") from None


def _read_tokenizer(path: Path) -> Any:
    import transformers

    if not any((path / f).is_file() for f in _TOKENIZER_FILES):
        raise FileNotFoundError(
            f"no tokenizer files in {str(path)!r} (expected one of {_TOKENIZER_FILES}); "
            "save the tokenizer with save_pretrained or pass tokenizer="
        )
    try:
        return transformers.AutoTokenizer.from_pretrained(path, local_files_only=True,
                                                          trust_remote_code=False)
    except RecursionError:
        raise ValueError(f"the tokenizer files in {str(path)!r} are nested too deeply to "
                         "parse; save the tokenizer again with save_pretrained") from None
    except (OSError, ValueError, TypeError) as err:
        raise FileNotFoundError(
            f"no usable tokenizer files in {str(path)!r} (tokenizer.json, vocab.txt or "
            f"vocab.json + merges.txt with tokenizer_config.json); pass tokenizer= instead"
        ) from err


def read_checkpoint(
    path: Path, tokenizer: Any, supported: Mapping[str, Any], backend: str
) -> tuple[Any, Any, str]:
    """``(hf_model, tokenizer, architecture)`` from a ``save_pretrained`` directory.

    No code from the directory is ever run (``trust_remote_code=False``; pickled ``.bin``
    weights go through ``torch.load(weights_only=True)``, and a file it refuses is reported as
    such).
    """
    import pickle

    import transformers

    if not path.is_dir():
        raise FileNotFoundError(f"model directory {str(path)!r} does not exist")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{str(path)!r} has no config.json; expected a Hugging Face save_pretrained directory"
        )
    _check_readable(path)
    config = _read_config(path, backend, supported)
    archs = getattr(config, "architectures", None) or []
    try:
        arch = check_architecture(archs[0] if archs else None, supported, backend)
    except ValueError as err:
        raise ValueError(f"{err} (model_type {getattr(config, 'model_type', None)!r})") from None
    weights = [f for f in _WEIGHT_FILES if (path / f).is_file()]
    if not weights:
        raise FileNotFoundError(f"{str(path)!r} holds no weights; expected one of {_WEIGHT_FILES}")
    if tokenizer is None:
        tokenizer = _read_tokenizer(path)
    model_cls = getattr(transformers, arch)
    try:
        hf_model = model_cls.from_pretrained(path, config=config, local_files_only=True,
                                             attn_implementation="eager")
    except pickle.UnpicklingError:
        raise ValueError(
            f"refused to load {str(path / weights[0])!r}: it pickles Python objects other than "
            "tensors, which could run code (torch.load(weights_only=True) refused it); use a "
            "safetensors checkpoint from a source you trust") from None
    return hf_model, tokenizer, arch


def check_vocabulary(tokenizer: Any, embeddings: nn.Embedding) -> None:
    """Every id the tokenizer can produce has a row in the model's embedding table.

    Raises:
        ValueError: the tokenizer's vocabulary is larger than the table.
    """
    size = len(tokenizer)
    if size > embeddings.num_embeddings:
        raise ValueError(
            f"the tokenizer has {size} tokens but the model's embedding table has only "
            f"{embeddings.num_embeddings} rows: this tokenizer does not belong to this model")


def check_right_padding(attention_mask: torch.Tensor) -> None:
    """Reject masks that are not right-padded: every row starts with a real token ([CLS]) and
    never attends again after its first pad position.

    Raises:
        ValueError: left padding or a gap in a mask.
    """
    if attention_mask.ndim != 2 or attention_mask.shape[1] == 0:
        return
    mask = attention_mask != 0
    if not bool(mask[:, 0].all()) or bool((mask[:, 1:] & ~mask[:, :-1]).any()):
        raise ValueError(
            "the attention mask is not right-padded: synapse_lens reads position 0 as [CLS], "
            "so texts must be padded on the right (padding_side='right', the default)")


def label_names(
    config: Any, n_classes: int, id2label: Mapping[int, str] | Sequence[str] | None
) -> tuple[str, ...]:
    """Class names: ``id2label`` when given, else the config's, else ``LABEL_i``."""
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


def installed_backend() -> Backend:
    """The TransformerLens backend of this environment: ``"tl4-bridge"`` for
    transformer-lens 4.x, ``"tl3-hooked-encoder"`` for 3.x.

    Raises:
        ValueError: transformer-lens is missing or older than 3.
    """
    try:
        major = int(version("transformer-lens").split(".")[0])
    except (PackageNotFoundError, ValueError) as err:
        raise ValueError(f"transformer-lens 3.x or 4.x is required ({err})") from err
    if major >= 4:
        return "tl4-bridge"
    if major == 3:
        return "tl3-hooked-encoder"
    raise ValueError(f"transformer-lens {version('transformer-lens')} is too old; need 3.x or 4.x")


def supported_architectures(backend: Backend | None = None) -> dict[str, tuple[str, bool]]:
    """HF architecture name -> ``(family, has_own_head)`` that ``load_classifier`` accepts on
    ``backend`` (default: :func:`installed_backend`).

    Example:
        >>> sorted(supported_architectures("tl3-hooked-encoder"))[:2]
        ['BertForSequenceClassification', 'BertModel']
    """
    backend = installed_backend() if backend is None else backend
    if backend == "tl4-bridge":
        return dict(SUPPORTED_ARCHITECTURES)
    return {a: fh for a, fh in SUPPORTED_ARCHITECTURES.items() if FAMILIES[fh[0]].tl3}
