"""Test helpers: reference runs on the plain Hugging Face model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import transformers


def hf_reference(path: Path, texts: list[str], hooks: list[tuple[Any, Any]] = ()) -> Any:
    """Run the HF model saved at ``path`` (eager attention) on ``texts`` with ``hooks``
    (``(module_getter, forward_hook)`` pairs) and return the HF output (hidden states on)."""
    config = transformers.AutoConfig.from_pretrained(path)
    model = getattr(transformers, config.architectures[0]).from_pretrained(
        path, attn_implementation="eager"
    ).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    handles = [get(model).register_forward_hook(fn) for get, fn in hooks]
    try:
        with torch.inference_mode():
            return model(**enc, output_hidden_states=True), enc
    finally:
        for handle in handles:
            handle.remove()


def replace_first(output: Any, new: torch.Tensor) -> Any:
    """Replace the hidden-state tensor of a HF layer output (a tensor or a tuple)."""
    if isinstance(output, tuple):
        return (new, *output[1:])
    return new


def hidden_of(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output
