"""The family records: the one place that knows each family, checked against the HF classes
and configs they describe."""

from __future__ import annotations

import pytest
import torch

from synapse_lens.models.families import (
    FAMILIES,
    encoder_widths,
    family,
    family_of_architecture,
    family_of_config,
)
from synapse_lens.testing import tiny_hf_classifier


def test_head_hooks_per_family() -> None:
    from synapse_lens.models.families import head_hooks

    assert head_hooks("tl4-bridge", "bert", own_head=True) == ("pooler.hook_out",
                                                               "classifier.hook_out")
    assert head_hooks("tl4-bridge", "electra", own_head=True)[0] == "classifier.out_proj.hook_in"
    assert head_hooks("tl4-bridge", "albert", own_head=False)[0] == "pooler.hook_out"
    assert head_hooks("tl3-hooked-encoder", "bert", own_head=True)[1] == "hook_logits"
    with pytest.raises(ValueError, match="unknown family"):
        head_hooks("tl4-bridge", "gpt2", own_head=True)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_record_describes_its_hf_model(name: str) -> None:
    """Every path and width name of the record exists on a real (tiny) HF model of the family:
    a wrong record fails here before any adapter or edit uses it."""
    rec = family(name)
    model = tiny_hf_classifier(name, n_layers=3, d_model=16, n_heads=2, d_mlp=24)
    assert type(model).__name__ == rec.classifier
    assert family_of_architecture(rec.classifier) == (name, True)
    assert family_of_architecture(rec.encoder) == (name, False)
    assert family_of_config(model.config) == name
    n_layers, d_model, d_mlp, _ = encoder_widths(model.config, name)
    assert (n_layers, d_model, d_mlp) == (3, 16, 24)
    encoder = rec.encoder_of(model)
    if rec.shares_layers:
        from synapse_lens.models.shared_layers import unroll_albert

        unroll_albert(model)
    layers = encoder.get_submodule(rec.layers)
    assert len(layers) == 3
    mlp_out = layers[0].get_submodule(rec.mlp_out)
    assert isinstance(mlp_out, torch.nn.Linear) and mlp_out.in_features == 24
    assert isinstance(layers[0].get_submodule(rec.output_norm), torch.nn.LayerNorm)
    if rec.embed_projection is not None:
        assert isinstance(encoder.get_submodule(rec.embed_projection), torch.nn.Linear)


def test_unknown_names_are_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown family 'gpt2'; expected one of"):
        family("gpt2")
    assert family_of_architecture("GPT2ForSequenceClassification") is None
