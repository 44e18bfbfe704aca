"""Every supported family, checked against its plain Hugging Face model: logits and every layer's
[CLS] on padded batches, the pooled and MLP-unit hooks, and interventions vs plain torch hooks."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from helpers import (
    hf_final_projection,
    hf_layer_applications,
    hf_mlp_out_linear,
    hf_run,
    hidden_of,
    on_call,
    on_call_pre,
    replace_first,
)
from torch import nn

from synapse_lens import classifier_info, load_classifier
from synapse_lens.models.loading import installed_backend, supported_architectures
from synapse_lens.testing import FAMILIES, tiny_classifier_dir, tiny_hf_classifier, tiny_tokenizer

BACKEND = installed_backend()
SUPPORTED_FAMILIES = sorted({fam for fam, _ in supported_architectures(BACKEND).values()})
LONG = " ".join(["the film was good but the service was bad"] * 4)
PADDED = ["bad", LONG, "free cash", "what is the name of the city and the country"]
#: every family, plus ELECTRA without its embedding projection (embedding_size == d_model), the
#: only ELECTRA that HookedEncoder (TL 3.x) represents
CASES = [*FAMILIES, "electra-noproj"]
SHAPES = [  # (n_layers, d_model, n_heads, d_mlp, n_classes)
    (1, 16, 2, 32, 2),
    (2, 30, 5, 48, 3),  # odd head count
    (3, 21, 3, 40, 7),  # odd head count, odd width
]


def case(name: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    """``(family, tiny_classifier_dir kwargs)`` of a test case; skips, with the reason, when
    this backend cannot represent it exactly."""
    family = "electra" if name == "electra-noproj" else name
    if name == "electra-noproj":
        kwargs["embedding_size"] = kwargs.get("d_model", 32)
    needs(family, **kwargs)
    return family, kwargs


def needs(family: str, **kwargs: Any) -> None:
    """Skip, with the reason, when this backend cannot represent the family exactly."""
    if family not in SUPPORTED_FAMILIES:
        pytest.skip(f"{family} is not supported on {BACKEND}: supported {SUPPORTED_FAMILIES}")
    if BACKEND == "tl3-hooked-encoder":
        from synapse_lens.models.tl3_convert import tl3_unsupported_reason

        config = tiny_hf_classifier(family, **kwargs).config
        reason = tl3_unsupported_reason(config)
        if reason:
            pytest.skip(f"{family} with these settings on {BACKEND}: {reason}")


def hf_model_of(path: Path) -> Any:
    config = transformers.AutoConfig.from_pretrained(path)
    cls = getattr(transformers, config.architectures[0])
    return cls.from_pretrained(path, attn_implementation="eager").eval()


def tokens(path: Path) -> Any:
    return transformers.AutoTokenizer.from_pretrained(path)(PADDED, padding=True,
                                                            return_tensors="pt")


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("shape", SHAPES)
def test_parity_with_hf_on_padded_batches(tmp_path: Path, name: str, shape: tuple) -> None:
    n_layers, d_model, n_heads, d_mlp, n_classes = shape
    family, kwargs = case(name, n_layers=n_layers, d_model=d_model, n_heads=n_heads,
                          d_mlp=d_mlp, n_classes=n_classes, seed=3)
    path = tiny_classifier_dir(tmp_path, family, **kwargs)
    model = load_classifier(path)
    info = classifier_info(model)
    assert (info.family, info.n_layers, info.d_model, info.d_mlp, info.n_classes) == (
        family, n_layers, d_model, d_mlp, n_classes)
    hf = hf_model_of(path)
    enc = tokens(path)
    ref = hf_run(hf, enc)
    mask = enc["attention_mask"]
    assert mask.sum(1).min() < mask.shape[1] / 4  # very different lengths, right-padded
    names = info.names.layer_outputs()
    assert len(ref.hidden_states) == len(names)
    with torch.inference_mode():
        runs = [model.run_with_cache(inp, names_filter=names, **kw) for inp, kw in (
            (PADDED, {}),  # strings
            (enc["input_ids"], {}),  # tokens, mask derived from the pad id
            (enc["input_ids"], {"attention_mask": mask}),  # tokens with an explicit mask
        )]
    for logits, cache in runs:
        assert logits.shape == (len(PADDED), n_classes)
        assert (logits - ref.logits).abs().max() <= 1e-4
        for i, name in enumerate(names):
            diff = (cache[name][:, 0] - ref.hidden_states[i][:, 0]).abs().max()
            assert diff <= 1e-4, (name, diff)
    # the layers are really different (no hook reads the same tensor twice)
    cache = runs[0][1]
    assert all((cache[a] - cache[b]).abs().max() > 1e-3 for a, b in itertools.pairwise(names))


@pytest.mark.parametrize("name", CASES)
def test_pooled_and_mlp_hooks_read_what_hf_computes(tmp_path: Path, name: str) -> None:
    family, kwargs = case(name, n_layers=2, seed=5)
    path = tiny_classifier_dir(tmp_path, family, **kwargs)
    model = load_classifier(path)
    names = classifier_info(model).names
    hf = hf_model_of(path)
    enc = tokens(path)
    seen: dict[str, torch.Tensor] = {}

    def grab(key: str) -> Any:
        def pre_hook(module: Any, args: Any) -> None:
            seen[key] = args[0].detach().clone()
        return pre_hook

    pre_hooks = [(hf_final_projection(hf), grab("pooled"))]
    for layer, (module, call) in enumerate(hf_layer_applications(hf)):
        pre_hooks.append((hf_mlp_out_linear(module, hf.config.model_type),
                          on_call_pre(call, grab(f"mlp{layer}"))))
    hf_run(hf, enc, pre_hooks=pre_hooks)
    wanted = [names.pooled, *names.mlp_units()]
    with torch.inference_mode():
        _, cache = model.run_with_cache(enc["input_ids"], names_filter=wanted)
    assert (cache[names.pooled] - seen["pooled"]).abs().max() <= 1e-5
    real = enc["attention_mask"].bool()
    for layer, name in enumerate(names.mlp_units()):
        assert (cache[name][real] - seen[f"mlp{layer}"][real]).abs().max() <= 1e-5, name


def _zero_cls_units(units: list[int]) -> Any:
    def hook(module: Any, inputs: Any, output: Any) -> Any:
        hidden = hidden_of(output).clone()
        hidden[:, 0, units] = 0.0
        return replace_first(output, hidden)
    return hook


@pytest.mark.parametrize("name", CASES)
def test_interventions_match_plain_torch_hooks(tmp_path: Path, name: str) -> None:
    family, kwargs = case(name, n_layers=3, seed=6)
    path = tiny_classifier_dir(tmp_path, family, **kwargs)
    model = load_classifier(path)
    names = classifier_info(model).names
    hf = hf_model_of(path)
    enc = tokens(path)
    units = [1, 5, 7]
    clean = hf_run(hf, enc).logits
    applications = hf_layer_applications(hf)
    for layer, (module, call) in enumerate(applications):
        def ours(act: torch.Tensor, hook: Any) -> torch.Tensor:
            act = act.clone()
            act[:, 0, units] = 0.0
            return act

        ref = hf_run(hf, enc, hooks=[(module, on_call(call, _zero_cls_units(units)))]).logits
        with torch.inference_mode():
            got = model.run_with_hooks(PADDED, fwd_hooks=[(names.resid_post(layer), ours)])
        assert (got - ref).abs().max() <= 1e-5, layer
        assert (ref - clean).abs().max() > 1e-4  # the edit did something

    # zero MLP units of the middle layer at every position
    module, call = applications[1]

    def zero_mlp(act: torch.Tensor, hook: Any) -> torch.Tensor:
        act = act.clone()
        act[..., :10] = 0.0
        return act

    def hf_zero_mlp(mod: Any, args: Any) -> Any:
        x = args[0].clone()
        x[..., :10] = 0.0
        return (x, *args[1:])

    ref = hf_run(hf, enc, pre_hooks=[(hf_mlp_out_linear(module, hf.config.model_type),
                                      on_call_pre(call, hf_zero_mlp))]).logits
    shift = torch.tensor([1.0, -2.0, 0.5])
    ref_shift = hf_run(hf, enc, hooks=[(hf_final_projection(hf),
                                        lambda m, i, o: o + shift)]).logits
    with torch.inference_mode():
        got = model.run_with_hooks(enc["input_ids"], fwd_hooks=[(names.mlp_post(1), zero_mlp)])
        got_shift = model.run_with_hooks(PADDED, fwd_hooks=[(names.logits,
                                                             lambda a, hook: a + shift)])
    assert (ref - clean).abs().max() > 1e-4
    assert (got - ref).abs().max() <= 1e-5
    assert (got_shift - ref_shift).abs().max() <= 1e-5


@pytest.mark.parametrize("name", ["xlm-roberta", "electra", "electra-noproj", "distilbert",
                                  "albert"])
def test_bare_encoder_with_head(name: str) -> None:
    family, kwargs = case(name, seed=4)
    encoder = tiny_hf_classifier(family, with_head=False, **kwargs)
    tokenizer = tiny_tokenizer(family)
    head = nn.Linear(32, 5)
    enc = tokenizer(PADDED, padding=True, return_tensors="pt")
    model = load_classifier(encoder, tokenizer, head=head, pooling="mean")
    names = classifier_info(model).names
    with torch.inference_mode():
        hidden = encoder(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        expected = head(pooled)
        got, cache = model.run_with_cache(enc["input_ids"], names_filter=names.pooled)
    assert (cache[names.pooled] - pooled).abs().max() <= 1e-5
    assert (got - expected).abs().max() <= 1e-5
    assert classifier_info(model).architecture.endswith("Model+head")


@pytest.mark.parametrize(
    "overrides", [{"num_hidden_groups": 2}, {"inner_group_num": 2}],
    ids=["two-groups", "two-inner-layers"],
)
def test_albert_layer_groups(tmp_path: Path, overrides: dict[str, int]) -> None:
    """ALBERT's sharing schemes: hook names follow HF's hidden states, one per layer
    application; every application holds its own copy of the (equal) shared weights."""
    needs("albert", n_layers=4, config_overrides=overrides)
    path = tiny_classifier_dir(tmp_path, "albert", n_layers=4, seed=2,
                               config_overrides=overrides)
    model = load_classifier(path)
    info = classifier_info(model)
    hf = hf_model_of(path)
    enc = tokens(path)
    ref = hf_run(hf, enc)
    names = info.names.layer_outputs()
    assert info.n_layers == 4 * overrides.get("inner_group_num", 1) == len(names) - 1
    assert len(ref.hidden_states) == len(names)
    with torch.inference_mode():
        logits, cache = model.run_with_cache(PADDED, names_filter=names)
    assert (logits - ref.logits).abs().max() <= 1e-4
    for i, name in enumerate(names):
        assert (cache[name][:, 0] - ref.hidden_states[i][:, 0]).abs().max() <= 1e-4, name
    if BACKEND == "tl4-bridge":  # one weight copy per application, equal to HF's shared one
        from synapse_lens.models.params import named_parameters

        params = named_parameters(model)
        layers = hf.albert.encoder.albert_layer_groups
        n_apps, n_shared = info.n_layers, sum(len(g.albert_layers) for g in layers)
        per_layer = len(dict(layers[0].albert_layers[0].named_parameters()))
        assert len(params) == len(dict(hf.named_parameters())) + (n_apps - n_shared) * per_layer
        for layer, (module, _) in enumerate(hf_layer_applications(hf)):
            for name, p in module.named_parameters():
                assert torch.equal(params[f"albert.encoder.layer.{layer}.{name}"], p)


def test_electra_embedding_projection_exists_only_when_widths_differ() -> None:
    """The two ELECTRA cases above really differ in structure."""
    assert hasattr(tiny_hf_classifier("electra").electra, "embeddings_project")
    assert not hasattr(tiny_hf_classifier("electra", embedding_size=32).electra,
                       "embeddings_project")


@pytest.mark.parametrize("name", CASES)
def test_patching_runs_masked(tmp_path: Path, name: str) -> None:
    """transformer_lens.patching passes tokens only; the derived mask keeps it exact."""
    from transformer_lens import patching

    family, kwargs = case(name, seed=1)
    path = tiny_classifier_dir(tmp_path, family, **kwargs)
    model = load_classifier(path)
    enc = tokens(path)
    ref = hf_run(hf_model_of(path), enc)
    with torch.inference_mode():
        _, cache = model.run_with_cache(enc["input_ids"])
        result = patching.get_act_patch_resid_pre(
            model, enc["input_ids"], cache, lambda logits: logits.sum(-1).mean()
        )
    assert result.shape == (classifier_info(model).n_layers, enc["input_ids"].shape[1])
    assert torch.allclose(result, ref.logits.sum(-1).mean().expand_as(result), atol=1e-4)


def test_unsupported_architectures_are_listed(tmp_path: Path) -> None:
    masked_lm = transformers.BertForMaskedLM(transformers.BertConfig(
        vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16))
    with pytest.raises(ValueError, match="unsupported architecture 'BertForMaskedLM'.*"
                                         "BertForSequenceClassification"):
        load_classifier(masked_lm, tiny_tokenizer("bert"))
    for family in FAMILIES:
        if family not in SUPPORTED_FAMILIES:  # TL 3.x: refused with the list, not mis-converted
            path = tiny_classifier_dir(tmp_path / family, family)
            with pytest.raises(ValueError, match=f"unsupported architecture.*{BACKEND}"):
                load_classifier(path)


@pytest.mark.parametrize("name", CASES)
def test_unit_output_parameters_zero_like_ablation(tmp_path: Path, name: str) -> None:
    """Zeroing the parameters through which units leave == zero-ablating them by hook."""
    from synapse_lens.models.params import (
        classifier_parameters,
        named_parameters,
        unit_output_parameters,
    )

    family, kwargs = case(name, n_layers=2, seed=7)  # ALBERT: one layer shared by both
    model = load_classifier(tiny_classifier_dir(tmp_path, family, **kwargs))
    names = classifier_info(model).names
    params = named_parameters(model)
    for hook_name in (names.embed, names.resid_post(0), names.mlp_post(1), names.logits):
        units = [0, 2] if hook_name == names.logits else [0, 3, 4]

        def zero(act: torch.Tensor, hook: Any, units: list[int] = units) -> torch.Tensor:
            act = act.clone()
            act[..., units] = 0.0
            return act

        slots = (classifier_parameters(model) if hook_name == names.logits
                 else unit_output_parameters(model, hook_name))
        with torch.inference_mode():
            clean = model(PADDED)
            ablated = model.run_with_hooks(PADDED, fwd_hooks=[(hook_name, zero)])
        saved = {n: params[n].detach().clone() for n, _ in slots}
        try:
            with torch.no_grad():
                for n, dim in slots:
                    params[n].index_fill_(dim, torch.tensor(units), 0.0)
            with torch.inference_mode():
                edited = model(PADDED)
        finally:
            with torch.no_grad():
                for n, _ in slots:
                    params[n].copy_(saved[n])
        assert (ablated - clean).abs().max() > 1e-4, hook_name
        assert (edited - ablated).abs().max() <= 1e-5, hook_name
    with pytest.raises(ValueError, match="classifier_parameters"):
        unit_output_parameters(model, names.pooled)


@pytest.mark.parametrize("name", ["bert", "distilbert", "albert"])
def test_loading_leaves_the_global_rng_alone(tmp_path: Path, name: str) -> None:
    family, kwargs = case(name, seed=2)
    path = tiny_classifier_dir(tmp_path, family, **kwargs)
    encoder = tiny_hf_classifier(family, with_head=False, **kwargs)
    head = nn.Linear(32, 2)
    state = torch.random.get_rng_state()
    load_classifier(path)
    load_classifier(encoder, tiny_tokenizer(family), head=head)
    assert torch.equal(torch.random.get_rng_state(), state)
