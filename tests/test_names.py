from __future__ import annotations

import pytest

from synapse_lens.names import HookNames, HookSite

TL4 = HookNames(backend="tl4-bridge", n_layers=3, pooled="pooler.hook_out",
                logits="classifier.hook_out")
TL3 = HookNames(backend="tl3-hooked-encoder", n_layers=3, pooled="pooler.hook_pooler_out",
                logits="hook_logits")


def test_round_trip_every_site() -> None:
    for names in (TL4, TL3):
        for layer in range(3):
            for site in ("resid_post", "mlp_post"):
                name = names.site(site, layer)  # type: ignore[arg-type]
                assert names.parse(name) == HookSite(site, layer)  # type: ignore[arg-type]
        for site in ("embed", "pooled", "logits"):
            assert names.parse(names.site(site)) == HookSite(site, None)  # type: ignore[arg-type]


def test_backend_spellings() -> None:
    assert TL4.resid_post(2) == "blocks.2.hook_resid_post"
    assert TL3.resid_post(2) == "blocks.2.hook_normalized_resid_post"
    assert TL4.resid_post(-1) == TL4.resid_post(2)
    assert TL4.layer_outputs()[0] == "blocks.0.hook_resid_pre"
    assert [TL4.layer_of(n) for n in TL4.layer_outputs()] == [-1, 0, 1, 2]


def test_errors() -> None:
    with pytest.raises(ValueError, match="out of range"):
        TL4.resid_post(3)
    with pytest.raises(ValueError, match="unknown hook name"):
        TL4.parse("blocks.7.hook_resid_post")
    with pytest.raises(ValueError, match="unknown hook name"):
        TL4.parse("blocks.0.hook_normalized_resid_post")
    with pytest.raises(ValueError, match="needs a layer"):
        TL4.site("mlp_post")
    with pytest.raises(TypeError):
        TL4.resid_post(1.0)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="nope"):  # TypeCheckError under jaxtyping, else ValueError
        HookNames(backend="nope", n_layers=1, pooled="p", logits="l")  # type: ignore[arg-type]
