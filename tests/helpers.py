"""Test helpers: reference runs on the plain Hugging Face model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import transformers

from synapse_lens.models.families import FAMILIES, family_of_config


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


# ----------------------------------------------------------------------------- per-family HF paths

def hf_encoder(model: Any) -> Any:
    """The bare encoder inside an HF ``*ForSequenceClassification`` (or the model itself)."""
    return getattr(model, model.base_model_prefix, model)


def hf_layer_applications(model: Any) -> list[tuple[Any, int]]:
    """``(module, call_index)`` of every layer application in depth order: the HF module run at
    depth ``l`` and how many times that module has already run before (ALBERT shares layers)."""
    encoder = hf_encoder(model)
    config = model.config
    if FAMILIES[family_of_config(config)].shares_layers:  # ALBERT's layer groups
        groups = encoder.encoder.albert_layer_groups
        out: list[tuple[Any, int]] = []
        calls: dict[int, int] = {}
        for i in range(config.num_hidden_layers):
            group = groups[int(i / (config.num_hidden_layers / config.num_hidden_groups))]
            for layer in group.albert_layers:
                out.append((layer, calls.get(id(layer), 0)))
                calls[id(layer)] = calls.get(id(layer), 0) + 1
        return out
    layers = encoder.get_submodule(FAMILIES[family_of_config(config)].layers)
    return [(layer, 0) for layer in layers]


def hf_mlp_out_linear(layer: Any, model_type: str) -> Any:
    """The linear layer that reads a layer's MLP units (its input = the units after the
    activation)."""
    name = next(f for f in FAMILIES.values() if f.model_type == model_type).mlp_out
    return layer.get_submodule(name)


def hf_final_projection(model: Any) -> Any:
    """The linear layer that produces the class logits."""
    classifier = model.classifier
    return getattr(classifier, "out_proj", classifier)


def on_call(n: int, fn: Any) -> Any:
    """A forward hook running ``fn(module, inputs, output)`` only on the ``n``-th call (0-based)
    of the module it is registered on; a fresh one is needed per forward."""
    count = [0]

    def hook(module: Any, inputs: Any, output: Any) -> Any:
        index = count[0]
        count[0] += 1
        return fn(module, inputs, output) if index == n else None

    return hook


def on_call_pre(n: int, fn: Any) -> Any:
    """As :func:`on_call`, for forward pre-hooks ``fn(module, args)``."""
    count = [0]

    def hook(module: Any, args: Any) -> Any:
        index = count[0]
        count[0] += 1
        return fn(module, args) if index == n else None

    return hook


def hf_run(model: Any, enc: Any, hooks: list[tuple[Any, Any]] = (),
           pre_hooks: list[tuple[Any, Any]] = ()) -> Any:
    """Run an in-memory HF model on a tokenizer batch with forward hooks / pre-hooks
    (``(module, hook)`` pairs), hidden states on; hooks removed afterwards."""
    handles = [m.register_forward_hook(fn) for m, fn in hooks]
    handles += [m.register_forward_pre_hook(fn) for m, fn in pre_hooks]
    try:
        with torch.inference_mode():
            return model(**enc, output_hidden_states=True)
    finally:
        for handle in handles:
            handle.remove()
