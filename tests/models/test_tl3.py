"""The TransformerLens 3.x backend (``HookedEncoder``): only meaningful where transformer-lens 3.x
is installed (``make test-tl3``); the backend-independent behaviour is in test_models.py and
test_architectures.py, which run on both backends."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import transformers
from helpers import hf_run
from torch import nn

from synapse_lens import classifier_info, load_classifier
from synapse_lens.models import installed_backend, minilm_path
from synapse_lens.testing import tiny_classifier_dir, tiny_hf_classifier, tiny_tokenizer

pytestmark = pytest.mark.skipif(
    installed_backend() != "tl3-hooked-encoder",
    reason=f"TL 3.x backend tests; this environment runs {installed_backend()} "
           "(run `make test-tl3`)",
)
PADDED = ["bad", "the film was good but the service was bad and the food was awful too",
          "free cash"]


def _hf(path: Path) -> nn.Module:
    return transformers.BertForSequenceClassification.from_pretrained(
        path, attn_implementation="eager").eval()


def test_model_is_a_hooked_encoder_with_tl3_names(tmp_path: Path) -> None:
    from transformer_lens import HookedEncoder

    model = load_classifier(tiny_classifier_dir(tmp_path, "bert", n_layers=2, seed=1))
    info = classifier_info(model)
    assert isinstance(model, HookedEncoder)
    assert info.backend == "tl3-hooked-encoder"
    assert info.names.resid_post(1) == "blocks.1.hook_normalized_resid_post"
    assert (info.names.pooled, info.names.logits) == ("pooler.hook_pooler_out", "hook_logits")
    for name in [*info.names.layer_outputs(), *info.names.mlp_units(), info.names.pooled,
                 info.names.logits]:
        assert name in model.hook_dict, name
    # the masked-LM head is gone (never computed), the classifier is ours
    assert not any(hasattr(model, m) for m in ("mlm_head", "unembed", "nsp_head"))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_layer_output_is_the_normalized_residual(tmp_path: Path) -> None:
    """TL 3.x's hook_resid_post is the raw pre-LayerNorm sum; HF's layer output is after LN."""
    path = tiny_classifier_dir(tmp_path, "bert", n_layers=2, seed=2)
    model = load_classifier(path)
    enc = model.tokenizer(PADDED, padding=True, return_tensors="pt")
    ref = hf_run(_hf(path), enc)
    with torch.inference_mode():
        _, cache = model.run_with_cache(enc["input_ids"], names_filter=[
            "blocks.0.hook_normalized_resid_post", "blocks.0.hook_resid_post"])
    assert (cache["blocks.0.hook_normalized_resid_post"][:, 0] - ref.hidden_states[1][:, 0]
            ).abs().max() <= 1e-5
    assert (cache["blocks.0.hook_resid_post"][:, 0] - ref.hidden_states[1][:, 0]
            ).abs().max() > 1e-2


def test_inputs_masks_and_return_type(tmp_path: Path) -> None:
    model = load_classifier(tiny_classifier_dir(tmp_path, "roberta", seed=3))
    enc = model.tokenizer(PADDED, padding=True, return_tensors="pt")
    with torch.inference_mode():
        from_text = model(PADDED)
        derived = model(enc["input_ids"])
        explicit = model(enc["input_ids"], attention_mask=enc["attention_mask"])
        tl_style = model(enc["input_ids"], one_zero_attention_mask=enc["attention_mask"])
        unmasked = model(enc["input_ids"], attention_mask=torch.ones_like(enc["input_ids"]))
        assert model(PADDED, return_type=None) is None
    assert from_text.shape == (3, 3)
    for other in (derived, explicit, tl_style):
        assert torch.equal(other, from_text)
    assert (unmasked - from_text).abs().max() > 1e-3  # padding really is masked


def test_loading_is_deterministic_and_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    path = tiny_classifier_dir(tmp_path, "distilbert", seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # HookedEncoder's own warning is muted
        a, b = load_classifier(path), load_classifier(path)
    with torch.inference_mode():
        assert torch.equal(a(PADDED), b(PADDED))
    assert classifier_info(a).fingerprint == classifier_info(b).fingerprint
    assert capsys.readouterr().out == ""  # no "Moving model to device" prints


@pytest.mark.parametrize("family", ["albert", "electra"])
def test_families_that_do_not_convert_are_refused(tmp_path: Path, family: str) -> None:
    path = tiny_classifier_dir(tmp_path, family)  # ELECTRA here has an embedding projection
    with pytest.raises(ValueError, match="(?s)(unsupported architecture|projects its embeddings)"
                                         ".*BertForSequenceClassification"):
        load_classifier(path)


def test_minilm_with_head_on_tl3() -> None:
    path = minilm_path()
    head = nn.Linear(384, 2)
    model = load_classifier(path, head=head, pooling="mean")
    names = classifier_info(model).names
    hf = transformers.BertModel.from_pretrained(path, attn_implementation="eager").eval()
    tok = transformers.AutoTokenizer.from_pretrained(path)
    enc = tok(["Hi", "WINNER!! claim your prize now, call 09061701461", "ok"], padding=True,
              return_tensors="pt")
    with torch.inference_mode():
        out = hf(**enc)
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (out.last_hidden_state * mask).sum(1) / mask.sum(1)
        expected = head(pooled)
        logits, cache = model.run_with_cache(enc["input_ids"], names_filter=names.pooled)
    assert names.pooled == "hook_pooled"
    assert (cache[names.pooled] - pooled).abs().max() <= 1e-4
    assert (logits - expected).abs().max() <= 1e-4


def test_in_memory_model_is_not_modified() -> None:
    hf = tiny_hf_classifier("bert", seed=5)
    before = {k: v.clone() for k, v in hf.state_dict().items()}
    model = load_classifier(hf, tiny_tokenizer("bert"))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert all(torch.equal(before[k], v) for k, v in hf.state_dict().items())
