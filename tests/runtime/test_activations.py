"""cache_cls / predict_logits: padding-correct [CLS] caching, hooks, save/load, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import hf_reference

from synapse_lens import ExecOptions, classifier_info, load_classifier
from synapse_lens.activations import ClsActivations, cache_cls, predict_logits
from synapse_lens.testing import tiny_classifier_dir

LONG = " ".join(["the film was good but the service was bad"] * 3)
TEXTS = ["bad", LONG, "free cash prize call now", "what is the name of the city", "good"]


def _all_names(model) -> list[str]:  # type: ignore[no-untyped-def]
    names = classifier_info(model).names
    return [*names.layer_outputs(), *names.mlp_units(), names.pooled, names.logits]


def test_matches_hf_hidden_states(tiny_dirs: dict[str, Path]) -> None:
    model = load_classifier(tiny_dirs["bert"])
    info = classifier_info(model)
    acts = cache_cls(model, TEXTS, options=ExecOptions(batch_size=2, progress=False))
    assert acts.names == info.names.layer_outputs()
    ref, _ = hf_reference(tiny_dirs["bert"], TEXTS)
    for i, name in enumerate(acts.names):
        assert acts[name].shape == (len(TEXTS), info.d_model)
        assert acts[name].dtype == torch.float32
        assert (acts[name] - ref.hidden_states[i][:, 0]).abs().max() <= 1e-4
    assert acts.layers[info.names.embed] == -1 and acts.layer(info.names.resid_post(1)) == 1
    assert acts.n == len(TEXTS) and acts.model_fingerprint == info.fingerprint


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_padded_batch_equals_per_example(tiny_dirs: dict[str, Path], family: str) -> None:
    model = load_classifier(tiny_dirs[family])
    names = _all_names(model)
    batched = cache_cls(model, TEXTS, names=names,
                        options=ExecOptions(batch_size=len(TEXTS), progress=False))
    single = cache_cls(model, TEXTS, names=names, options=ExecOptions(batch_size=1, progress=False))
    assert batched.names == single.names
    assert len(batched.names) == len(names)
    for name in names:
        assert (batched[name] - single[name]).abs().max() <= 1e-5, name
    info = classifier_info(model)
    assert batched[info.names.mlp_post(0)].shape == (len(TEXTS), info.d_mlp)
    assert batched[info.names.logits].shape == (len(TEXTS), info.n_classes)
    # the cached logits are the model's logits, in input order
    logits = predict_logits(model, TEXTS, options=ExecOptions(batch_size=2))
    assert (batched[info.names.logits] - logits).abs().max() <= 1e-5
    with torch.inference_mode():
        direct = model(TEXTS)
    assert (logits - direct).abs().max() <= 1e-5


def test_empty_fwd_hooks_is_bit_identical(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    names = _all_names(tiny_bert)
    plain = cache_cls(tiny_bert, TEXTS, names=names,
                      options=ExecOptions(batch_size=2, progress=False))
    empty = cache_cls(tiny_bert, TEXTS, names=names, fwd_hooks=[],
                      options=ExecOptions(batch_size=2, progress=False))
    for name in names:
        assert torch.equal(plain[name], empty[name])
    assert torch.equal(predict_logits(tiny_bert, TEXTS), predict_logits(tiny_bert, TEXTS,
                                                                        fwd_hooks=[]))


def test_fwd_hooks_apply_before_caching(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    info = classifier_info(tiny_bert)
    units = [2, 7]

    def zero(act, hook):  # type: ignore[no-untyped-def]
        act = act.clone()
        act[:, 0, units] = 0.0
        return act

    hooks = [(info.names.resid_post(0), zero)]
    clean = cache_cls(tiny_bert, TEXTS, options=ExecOptions(progress=False))
    edited = cache_cls(tiny_bert, TEXTS, fwd_hooks=hooks, options=ExecOptions(progress=False))
    layer0, layer1 = info.names.resid_post(0), info.names.resid_post(1)
    assert torch.equal(edited[layer0][:, units], torch.zeros(len(TEXTS), 2))
    keep = [u for u in range(info.d_model) if u not in units]
    assert torch.equal(edited[layer0][:, keep], clean[layer0][:, keep])
    assert (edited[layer1] - clean[layer1]).abs().max() > 1e-4  # the edit propagates
    with torch.inference_mode():
        expected = tiny_bert.run_with_hooks(TEXTS, fwd_hooks=hooks)
    assert (predict_logits(tiny_bert, TEXTS, fwd_hooks=hooks) - expected).abs().max() <= 1e-5


def test_hooks_removed_after_error(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    info = classifier_info(tiny_bert)

    def boom(act, hook):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    def attached() -> int:
        return sum(len(hp._forward_hooks) for hp in tiny_bert.hook_dict.values())

    before, n_hooks = predict_logits(tiny_bert, TEXTS), attached()
    with pytest.raises(RuntimeError, match="boom"):
        cache_cls(tiny_bert, TEXTS, fwd_hooks=[(info.names.logits, boom)],
                  options=ExecOptions(progress=False))
    assert attached() == n_hooks
    assert torch.equal(predict_logits(tiny_bert, TEXTS), before)


def test_save_load_roundtrip(tiny_bert, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    acts = cache_cls(tiny_bert, TEXTS, names=_all_names(tiny_bert), dataset_fingerprint="abc",
                     options=ExecOptions(progress=False))
    path = acts.save(tmp_path / "acts.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["acts.safetensors"]  # no temp files left
    back = ClsActivations.load(path, model=tiny_bert)
    assert back.names == acts.names and back.layers == acts.layers
    assert back.dataset_fingerprint == "abc" and back.model_fingerprint == acts.model_fingerprint
    for name in acts.names:
        assert torch.equal(back[name], acts[name])
    assert torch.equal(back.mean(acts.names[0]), acts[acts.names[0]].mean(0))


def test_load_refuses_other_model(tiny_bert, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = cache_cls(tiny_bert, TEXTS,
                     options=ExecOptions(progress=False)).save(tmp_path / "a.safetensors")
    other = load_classifier(tiny_classifier_dir(tmp_path / "other", seed=7))
    with pytest.raises(ValueError, match="from another model"):
        ClsActivations.load(path, model=other)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a"):
        ClsActivations.load(junk)
    with pytest.raises(FileNotFoundError):
        ClsActivations.load(tmp_path / "missing.safetensors")


def test_bad_input_writes_nothing(tiny_bert, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="no texts"):
        cache_cls(tiny_bert, [], options=ExecOptions(progress=False))
    with pytest.raises(ValueError, match="unknown hook name"):
        cache_cls(tiny_bert, TEXTS, names=["blocks.0.hook_nonsense"],
                  options=ExecOptions(progress=False))
    with pytest.raises(ValueError, match="out of range|unknown hook name"):
        cache_cls(tiny_bert, TEXTS, names=["blocks.9.hook_resid_post"],
                  options=ExecOptions(progress=False))
    with pytest.raises(ValueError, match="batch_size"):
        cache_cls(tiny_bert, TEXTS, options=ExecOptions(batch_size=0, progress=False))
    acts = cache_cls(tiny_bert, TEXTS, options=ExecOptions(progress=False))
    with pytest.raises(ValueError, match="was not cached"):
        acts["pooler.hook_out"]
    with pytest.raises(FileNotFoundError):
        acts.save(tmp_path / "missing_dir" / "a.safetensors")
    assert list(tmp_path.iterdir()) == []
