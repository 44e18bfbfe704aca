"""Foundation: load_classifier on tiny random models and the real MiniLM, checked against HF."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
import transformers
from helpers import hf_reference, hidden_of, replace_first
from torch import nn

from synapse_lens import classifier_info, load_classifier
from synapse_lens.models import minilm_path
from synapse_lens.testing import tiny_classifier_dir, tiny_hf_classifier, tiny_tokenizer

LONG = " ".join(["the film was good but the service was bad"] * 4)
PADDED = ["bad", LONG, "free cash", "what is the name of the city and the country"]
SHAPES = [  # (n_layers, d_model, n_heads, d_mlp, n_classes)
    (1, 16, 2, 32, 2),
    (2, 30, 5, 48, 3),  # odd head count
    (3, 21, 3, 40, 7),  # odd head count, odd width
]


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("shape", SHAPES)
def test_parity_with_hf_on_padded_batches(tmp_path: Path, family: str, shape: tuple) -> None:
    n_layers, d_model, n_heads, d_mlp, n_classes = shape
    path = tiny_classifier_dir(tmp_path, family, n_layers=n_layers, d_model=d_model,
                               n_heads=n_heads, d_mlp=d_mlp, n_classes=n_classes, seed=3)
    model = load_classifier(path)
    info = classifier_info(model)
    ref, enc = hf_reference(path, PADDED)
    assert enc["attention_mask"].sum(1).min() < enc["attention_mask"].shape[1] / 4  # very padded
    names = info.names.layer_outputs()
    with torch.inference_mode():
        for inputs in (PADDED, enc["input_ids"]):  # strings, and tokens with no mask
            logits, cache = model.run_with_cache(inputs, names_filter=names)
            assert logits.shape == (len(PADDED), n_classes)
            assert (logits - ref.logits).abs().max() <= 1e-4
            for i, name in enumerate(names):
                diff = (cache[name][:, 0] - ref.hidden_states[i][:, 0]).abs().max()
                assert diff <= 1e-4, (name, diff)


def test_unmasked_tokens_would_differ(tiny_dirs: dict[str, Path]) -> None:
    """The derived mask matters: HF without a mask gives different logits on padded rows."""
    path = tiny_dirs["bert"]
    ref, enc = hf_reference(path, PADDED)
    hf = transformers.BertForSequenceClassification.from_pretrained(
        path, attn_implementation="eager").eval()
    with torch.inference_mode():
        unmasked = hf(input_ids=enc["input_ids"]).logits
    assert (unmasked - ref.logits).abs().max() > 1e-3


def test_bare_encoder_with_head_matches_manual_head(tmp_path: Path) -> None:
    encoder = tiny_hf_classifier("roberta", with_head=False, seed=4)
    tokenizer = tiny_tokenizer("roberta")
    head = nn.Linear(32, 5)
    for pooling, normalize in (("cls", False), ("mean", False), ("mean", True), ("cls", True)):
        model = load_classifier(encoder, tokenizer, head=head, pooling=pooling,
                                normalize=normalize)
        info = classifier_info(model)
        assert info.pooling == pooling + ("+l2" if normalize else "")
        pooled_hook = info.names.pooled
        enc = tokenizer(PADDED, padding=True, return_tensors="pt")
        with torch.inference_mode():
            hidden = encoder(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = hidden[:, 0] if pooling == "cls" else (hidden * mask).sum(1) / mask.sum(1)
            if normalize:  # what sentence-transformers' Normalize module computes
                pooled = pooled / pooled.norm(dim=-1, keepdim=True)
            expected = head(pooled)
            got, cache = model.run_with_cache(enc["input_ids"], names_filter=pooled_hook)
        assert (got - expected).abs().max() <= 1e-5
        assert (cache[pooled_hook] - pooled).abs().max() <= 1e-5
    assert "bert" not in dict(encoder.named_children())  # the user's module was not modified
    assert not any("_original_component" in n for n, _ in encoder.named_parameters())


def _zero_units_hf(layer: int, units: list[int]):  # type: ignore[no-untyped-def]
    def hook(module, inputs, output):  # type: ignore[no-untyped-def]
        hidden = hidden_of(output).clone()
        hidden[:, 0, units] = 0.0
        return replace_first(output, hidden)

    return hook


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_hooks_match_plain_torch_hooks_on_hf(tiny_dirs: dict[str, Path], family: str) -> None:
    path = tiny_dirs[family]
    model = load_classifier(path)
    names = classifier_info(model).names
    units = [1, 5, 7]

    def zero_cls_units(act, hook):  # type: ignore[no-untyped-def]
        act = act.clone()
        act[:, 0, units] = 0.0
        return act

    def shift_logits(act, hook):  # type: ignore[no-untyped-def]
        return act + torch.tensor([1.0, -2.0, 0.5])

    def get_layer(m):  # type: ignore[no-untyped-def]
        return getattr(m, family).encoder.layer[0]

    def hf_shift(module, inputs, output):  # type: ignore[no-untyped-def]
        return output + torch.tensor([1.0, -2.0, 0.5])

    ref_zero, _ = hf_reference(path, PADDED, [(get_layer, _zero_units_hf(0, units))])
    ref_shift, _ = hf_reference(path, PADDED, [(lambda m: m.classifier, hf_shift)])
    clean, _ = hf_reference(path, PADDED)
    with torch.inference_mode():
        got_zero = model.run_with_hooks(PADDED, fwd_hooks=[(names.resid_post(0), zero_cls_units)])
        got_shift = model.run_with_hooks(PADDED, fwd_hooks=[(names.logits, shift_logits)])
    assert (got_zero - ref_zero.logits).abs().max() <= 1e-5
    assert (got_shift - ref_shift.logits).abs().max() <= 1e-5
    assert (ref_zero.logits - clean.logits).abs().max() > 1e-4  # the edit did something


def _attached_hooks(model: nn.Module) -> int:
    count = 0
    for module in model.modules():
        count += len(module._forward_hooks) + len(module._backward_hooks)
        count += len(getattr(module, "fwd_hooks", []) or []) + len(
            getattr(module, "bwd_hooks", []) or [])
    return count


def test_no_hooks_left_after_exception_in_user_hook(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    names = classifier_info(tiny_bert).names
    before = _attached_hooks(tiny_bert)
    clean = tiny_bert(PADDED)

    def boom(act, hook):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        tiny_bert.run_with_hooks(PADDED, fwd_hooks=[(names.resid_post(1), boom)])
    with pytest.raises(RuntimeError, match="boom"), tiny_bert.hooks(
            fwd_hooks=[(names.logits, boom)]):
        tiny_bert(PADDED)
    assert _attached_hooks(tiny_bert) == before
    assert torch.equal(tiny_bert(PADDED), clean)


def test_transformer_lens_patching_runs_masked(tiny_dirs: dict[str, Path]) -> None:
    """transformer_lens.patching passes tokens only; our derived mask keeps it exact."""
    from transformer_lens import patching

    model = load_classifier(tiny_dirs["bert"])
    tokenizer = model.tokenizer
    enc = tokenizer(PADDED, padding=True, return_tensors="pt")
    ref, _ = hf_reference(tiny_dirs["bert"], PADDED)
    with torch.inference_mode():
        _, cache = model.run_with_cache(enc["input_ids"])
        result = patching.get_act_patch_resid_pre(
            model, enc["input_ids"], cache, lambda logits: logits.sum(-1).mean()
        )
    # patching every layer/position with the clean cache restores the clean metric
    assert torch.allclose(result, ref.logits.sum(-1).mean().expand_as(result), atol=1e-4)


def test_minilm_with_head_parity() -> None:
    path = minilm_path()
    head = nn.Linear(384, 3)
    model = load_classifier(path, head=head, id2label=["a", "b", "c"])
    info = classifier_info(model)
    assert (info.n_layers, info.d_model, info.d_mlp) == (6, 384, 1536)
    assert info.id2label == ("a", "b", "c")
    hf = transformers.BertModel.from_pretrained(path, attn_implementation="eager").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    texts = ["Hi", "WINNER!! You have been selected to receive a £900 prize reward! To claim call "
             "09061701461. Claim code KL341. Valid 12 hours only.", "ok see you later then"]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    names = info.names.layer_outputs()
    with torch.inference_mode():
        out = hf(**enc, output_hidden_states=True)
        logits, cache = model.run_with_cache(enc["input_ids"], names_filter=names)
        expected = head(out.last_hidden_state[:, 0])
    assert (logits - expected).abs().max() <= 1e-4
    for i, name in enumerate(names):
        assert (cache[name][:, 0] - out.hidden_states[i][:, 0]).abs().max() <= 1e-4


# ----------------------------------------------------------------------------- bad input


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_classifier(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_classifier(tmp_path)


def test_unsupported_architecture_lists_supported(tmp_path: Path) -> None:
    config = transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=10)
    config.architectures = ["GPT2LMHeadModel"]
    config.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="GPT2LMHeadModel.*BertForSequenceClassification"):
        load_classifier(tmp_path)


def test_bare_encoder_needs_head_of_right_width(tmp_path: Path) -> None:
    encoder = tiny_hf_classifier("bert", with_head=False)
    encoder.save_pretrained(tmp_path)
    tiny_tokenizer("bert").save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="no classifier head"):
        load_classifier(tmp_path)
    with pytest.raises(ValueError, match=r"nn.Linear\(32, n_classes\).*Linear\(16, 2\)"):
        load_classifier(tmp_path, head=nn.Linear(16, 2))
    with pytest.raises(ValueError, match="already has a classifier head"):
        load_classifier(tiny_classifier_dir(tmp_path / "c"), head=nn.Linear(32, 2))


def test_regression_heads_refused_multi_label_warned(caplog: pytest.LogCaptureFixture) -> None:
    tokenizer = tiny_tokenizer("bert")
    regression = tiny_hf_classifier("bert", n_classes=1)
    with pytest.raises(ValueError, match="1-output head.*at least 2 classes"):
        load_classifier(regression, tokenizer)
    with pytest.raises(ValueError, match="1-output head"):
        load_classifier(tiny_hf_classifier("bert", with_head=False), tokenizer,
                        head=nn.Linear(32, 1))
    multi = tiny_hf_classifier("bert", n_classes=3)
    multi.config.problem_type = "multi_label_classification"
    with caplog.at_level("WARNING", logger="synapse_lens.models.loading"):
        model = load_classifier(multi, tokenizer)
    assert "multi-label" in caplog.text
    assert classifier_info(model).n_classes == 3


def test_missing_tokenizer_and_weights(tmp_path: Path) -> None:
    tiny_hf_classifier("bert").save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        load_classifier(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="holds no weights"):
        load_classifier(tmp_path)


def test_bad_device_and_source_type(tiny_dirs: dict[str, Path]) -> None:
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            load_classifier(tiny_dirs["bert"], device="cuda")
    with pytest.raises(TypeError, match="source"):
        load_classifier(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs its tokenizer"):
        load_classifier(tiny_hf_classifier("bert"))


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (print, ("pwned",))


# torch's weights-only unpickler notes that our deliberately malicious file uses protocol 4
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_pickle_weights_loaded_with_weights_only(tmp_path: Path) -> None:
    model = tiny_hf_classifier("bert")
    model.config.architectures = ["BertForSequenceClassification"]
    model.config.save_pretrained(tmp_path)
    tiny_tokenizer("bert").save_pretrained(tmp_path)
    # a legitimate .bin checkpoint loads ...
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    loaded = load_classifier(tmp_path)
    assert classifier_info(loaded).fingerprint
    # ... and one carrying an arbitrary pickled object is refused, not executed
    with open(tmp_path / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"x": _Evil()}, fh)
    with pytest.raises(Exception, match="(?i)weights_only|unpickl|unsupported"):
        load_classifier(tmp_path)


def test_info_widths_and_labels(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    info = classifier_info(tiny_bert)
    assert info.id2label == ("class_0", "class_1", "class_2")
    assert info.width(info.names.resid_post(1)) == 32
    assert info.width(info.names.mlp_post(0)) == 64
    assert info.width(info.names.logits) == 3
    with pytest.raises(TypeError, match="not loaded with synapse_lens"):
        classifier_info(nn.Linear(2, 2))


def test_own_head_refuses_pooling_options(tiny_dirs: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="own classifier head"):
        load_classifier(tiny_dirs["bert"], normalize=True)
    with pytest.raises(ValueError, match="own classifier head"):
        load_classifier(tiny_dirs["bert"], pooling="mean")
    assert classifier_info(load_classifier(tiny_dirs["bert"])).trained_max_length is None


def test_trained_length_is_read_from_sentence_transformers_config() -> None:
    from synapse_lens.models import minilm_path
    from synapse_lens.models.loading import trained_length

    assert trained_length(Path(minilm_path())) == 256  # sentence_bert_config.json
    assert trained_length(Path("/nonexistent")) is None
