"""Hook factories and the ranking → hooks helper: identities, parity with plain torch hooks on
the HF model, each edit doing what it says, composition with transformer_lens.patching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import hf_reference, hidden_of, replace_first

from synapse_lens import ExecOptions, classifier_info, load_classifier
from synapse_lens.activations import ClsActivations, cache_cls, predict_logits
from synapse_lens.analysis.rankings import Ranking
from synapse_lens.interventions.hooks import (
    add_noise,
    check_units,
    mean_ablate,
    patch_from,
    scale,
    set_value,
    zero_ablate,
)
from synapse_lens.interventions.selection import (
    Intervention,
    make_hook,
    ranking_hooks,
    select_units,
)

PADDED = [
    "bad",
    "the film was good but the service was bad and the price was too much for me",
    "free cash prize call now",
    "what is the name of the city",
]


def _run(model, hooks):  # type: ignore[no-untyped-def]
    with torch.inference_mode():
        return model.run_with_hooks(PADDED, fwd_hooks=hooks)


def _record(store: dict):  # type: ignore[no-untyped-def]
    def hook(act, hook):  # type: ignore[no-untyped-def]
        store["act"] = act.detach().clone()

    return hook


def test_identity_cases_are_bit_exact(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    names = classifier_info(tiny_bert).names
    clean = _run(tiny_bert, [])
    # the bridge's own values (the fast path's SDPA attention differs from its eager one by ~1e-7)
    acts = cache_cls(tiny_bert, PADDED, options=ExecOptions(progress=False, max_length=64,
                                                            engine="full"))
    for name in (names.embed, names.resid_post(1), names.mlp_post(0), names.pooled,
                 names.logits):
        identities = [
            zero_ablate(tiny_bert, name, []),
            mean_ablate(tiny_bert, name, [], torch.zeros(classifier_info(tiny_bert).width(name))),
            scale(tiny_bert, name, [0, 1], 1.0, position="all"),
            add_noise(tiny_bert, name, [0, 1], 0.0, seed=3),
            add_noise(tiny_bert, name, [0, 1], [0.0, 0.0]),
            set_value(tiny_bert, name, [], 5.0),
        ]
        for fn in identities:
            assert torch.equal(_run(tiny_bert, [(name, fn)]), clean)
    # patching a run's own values back is an identity too (same floats written back)
    name = names.resid_post(0)
    fn = patch_from(tiny_bert, name, [2, 7], acts.acts[name])
    assert torch.equal(_run(tiny_bert, [(name, fn)]), clean)
    empty = [(name, zero_ablate(tiny_bert, name, []))]
    assert torch.equal(predict_logits(tiny_bert, PADDED, fwd_hooks=empty,
                                      options=ExecOptions(max_length=64)),
                       predict_logits(tiny_bert, PADDED, options=ExecOptions(max_length=64)))


def _zero_hf(units: list[int], position: str):  # type: ignore[no-untyped-def]
    def hook(module, inputs, output):  # type: ignore[no-untyped-def]
        hidden = hidden_of(output).clone()
        if position == "cls":
            hidden[:, 0, units] = 0.0
        else:
            hidden[..., units] = 0.0
        return replace_first(output, hidden)

    return hook


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("position", ["cls", "all"])
def test_zero_ablation_matches_plain_torch_hook(tiny_dirs: dict[str, Path], family: str,
                                               position: str) -> None:
    path = tiny_dirs[family]
    model = load_classifier(path)
    names = classifier_info(model).names
    units = [0, 3, 17, 31]
    cases = [
        (names.resid_post(0), lambda m: getattr(m, family).encoder.layer[0]),
        (names.mlp_post(1), lambda m: getattr(m, family).encoder.layer[1].intermediate),
        (names.embed, lambda m: getattr(m, family).embeddings),
    ]
    clean, _ = hf_reference(path, PADDED)
    for name, getter in cases:
        ref, _ = hf_reference(path, PADDED, [(getter, _zero_hf(units, position))])
        got = _run(model, [(name, zero_ablate(model, name, units, position=position))])
        assert (got - ref.logits).abs().max() <= 1e-5, name
        assert (ref.logits - clean.logits).abs().max() > 1e-4, name  # the edit did something


def test_each_factory_edits_only_its_units(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    names = classifier_info(tiny_bert).names
    name = names.resid_post(1)
    units = [4, 9, 30]
    others = [u for u in range(32) if u not in units]
    clean: dict = {}
    _run(tiny_bert, [(name, _record(clean))])
    base = clean["act"]
    means = torch.arange(32, dtype=torch.float32)
    cases = {
        "zero": (zero_ablate(tiny_bert, name, units), torch.zeros(len(units))),
        "scale": (scale(tiny_bert, name, units, -2.5), None),
        "set": (set_value(tiny_bert, name, units, [1.0, 2.0, 3.0]), torch.tensor([1.0, 2, 3])),
        "mean": (mean_ablate(tiny_bert, name, units, means), means[units]),
        "patch": (patch_from(tiny_bert, name, units, base[2, 0]), base[2, 0, units]),
    }
    for kind, (fn, expected) in cases.items():
        seen: dict = {}
        _run(tiny_bert, [(name, fn), (name, _record(seen))])
        got = seen["act"]
        if expected is None:
            expected = base[:, 0, units] * -2.5
        assert torch.allclose(got[:, 0, units], expected.expand_as(got[:, 0, units])), kind
        assert torch.equal(got[:, 0, others], base[:, 0, others]), kind
        assert torch.equal(got[:, 1:], base[:, 1:]), kind  # position "cls" only
    seen = {}
    _run(tiny_bert, [(name, zero_ablate(tiny_bert, name, units, position="all")),
                     (name, _record(seen))])
    assert (seen["act"][..., units] == 0).all() and torch.equal(seen["act"][..., others],
                                                                base[..., others])


def test_hooks_do_not_mutate_their_input(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    names = classifier_info(tiny_bert).names
    x = torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(0))
    original = x.clone()
    for fn in (zero_ablate(tiny_bert, names.embed, [1], position="all"),
               scale(tiny_bert, names.embed, [1], 3.0),
               add_noise(tiny_bert, names.embed, [1, 2], 1.0)):
        out = fn(x, None)
        assert torch.equal(x, original) and not torch.equal(out, x)


def test_2d_hooks_pooled_and_logits(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    names = classifier_info(tiny_bert).names
    clean = _run(tiny_bert, [])
    got = _run(tiny_bert, [(names.logits, set_value(tiny_bert, names.logits, [1], 7.0))])
    assert (got[:, 1] == 7.0).all() and torch.equal(got[:, [0, 2]], clean[:, [0, 2]])
    seen: dict = {}
    _run(tiny_bert, [(names.pooled, zero_ablate(tiny_bert, names.pooled, [0, 1])),
                     (names.pooled, _record(seen))])
    assert seen["act"].ndim == 2 and (seen["act"][:, :2] == 0).all()


def test_noise_is_seeded_and_independent_of_global_rng(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    name = classifier_info(tiny_bert).names.resid_post(0)
    torch.manual_seed(123)
    a = _run(tiny_bert, [(name, add_noise(tiny_bert, name, [1, 2, 3], 0.7, seed=5))])
    torch.manual_seed(999)
    torch.randn(10)
    b = _run(tiny_bert, [(name, add_noise(tiny_bert, name, [1, 2, 3], 0.7, seed=5))])
    c = _run(tiny_bert, [(name, add_noise(tiny_bert, name, [1, 2, 3], 0.7, seed=6))])
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # per-unit sigma: zero for a unit leaves it untouched
    seen: dict = {}
    base: dict = {}
    _run(tiny_bert, [(name, _record(base))])
    _run(tiny_bert, [(name, add_noise(tiny_bert, name, [1, 2], [0.0, 1.0])),
                     (name, _record(seen))])
    assert torch.equal(seen["act"][:, 0, 1], base["act"][:, 0, 1])
    assert not torch.equal(seen["act"][:, 0, 2], base["act"][:, 0, 2])


def test_mean_ablation_from_cls_stats(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    name = classifier_info(tiny_bert).names.resid_post(0)
    acts = cache_cls(tiny_bert, PADDED, options=ExecOptions(progress=False, max_length=64))
    seen: dict = {}
    _run(tiny_bert, [(name, mean_ablate(tiny_bert, name, [3, 5], acts)), (name, _record(seen))])
    assert torch.allclose(seen["act"][:, 0, [3, 5]], acts.mean(name)[[3, 5]].expand(4, 2))


def test_ranking_hooks_work_with_every_tl_entry_point(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    info = classifier_info(tiny_bert)
    scores = np.linspace(1.0, 0.0, 32)
    rankings = [Ranking(info.names.resid_post(layer), layer, scores) for layer in range(2)]
    assert select_units(rankings[0], 3).tolist() == [0, 1, 2]
    assert select_units(rankings[0], 2, "bottom").tolist() == [31, 30]
    r = select_units(rankings[0], 5, "random", seed=4)
    assert r.tolist() == select_units(rankings[0], 5, "random", seed=4).tolist()
    assert len(set(r.tolist())) == 5
    hooks = ranking_hooks(tiny_bert, rankings, 4, spec=Intervention("zero"))
    assert [h for h, _ in hooks] == [info.names.resid_post(0), info.names.resid_post(1)]
    a = _run(tiny_bert, hooks)
    with torch.inference_mode(), tiny_bert.hooks(fwd_hooks=hooks):
        b = tiny_bert(PADDED)
    # TL 4.3's bridge run_with_cache silently ignores fwd_hooks=: wrap it in hooks() instead
    with torch.inference_mode(), tiny_bert.hooks(fwd_hooks=hooks):
        c, cache = tiny_bert.run_with_cache(PADDED, names_filter=info.names.resid_post(1))
    assert torch.equal(a, b) and torch.equal(a, c)
    assert (cache[info.names.resid_post(1)][:, 0, :4] == 0).all()
    assert not torch.equal(a, _run(tiny_bert, []))
    assert torch.equal(_run(tiny_bert, ranking_hooks(tiny_bert, rankings, 0)), _run(tiny_bert, []))
    noise = Intervention("noise", sigma=1.0, seed=2)
    assert torch.equal(_run(tiny_bert, ranking_hooks(tiny_bert, rankings[1], 4, spec=noise)),
                       _run(tiny_bert, ranking_hooks(tiny_bert, rankings[1], 4, spec=noise)))


def test_patching_with_ablation_hooks_active_on_padded_batch(tiny_dirs: dict[str, Path]) -> None:
    """transformer_lens.patching composes with our hooks: with the [CLS] of layer 0 zero-ablated,
    patching the clean [CLS] back at resid_pre of layer 1 restores the clean metric; every
    other patch leaves the ablated metric, which matches the HF model with a plain hook."""
    from transformer_lens import patching

    path = tiny_dirs["bert"]
    model = load_classifier(path)
    names = classifier_info(model).names
    units = list(range(0, 32, 2))
    tokens = model.tokenizer(PADDED, padding=True, return_tensors="pt")["input_ids"]
    assert (tokens == classifier_info(model).pad_token_id).any()  # really padded

    def metric(logits):  # type: ignore[no-untyped-def]
        return logits[:, 0].mean() - logits[:, 1].mean()

    ablate = [(names.resid_post(0), zero_ablate(model, names.resid_post(0), units))]
    with torch.inference_mode():
        clean_logits, clean_cache = model.run_with_cache(tokens)
        with model.hooks(fwd_hooks=ablate):
            ablated = metric(model(tokens))
            table = patching.get_act_patch_resid_pre(model, tokens, clean_cache, metric)
    ref, _ = hf_reference(path, PADDED, [(lambda m: m.bert.encoder.layer[0],
                                          _zero_hf(units, "cls"))])
    clean_ref, _ = hf_reference(path, PADDED)
    assert abs(float(ablated - metric(ref.logits))) <= 1e-5
    assert table.shape == (2, tokens.shape[1])
    assert abs(float(table[1, 0] - metric(clean_ref.logits))) <= 1e-5
    mask = torch.ones_like(table, dtype=torch.bool)
    mask[1, 0] = False
    assert torch.allclose(table[mask], ablated.expand(int(mask.sum())), atol=1e-5)
    assert abs(float(ablated - metric(clean_logits))) > 1e-3  # the ablation mattered
    assert torch.equal(model(tokens), clean_logits)  # no hooks left behind


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clear_errors(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    info = classifier_info(tiny_bert)
    name = info.names.resid_post(0)
    with pytest.raises(ValueError, match="unknown hook name"):
        zero_ablate(tiny_bert, "blocks.0.hook_nope", [1])
    with pytest.raises(ValueError, match=r"out of range.*0\.\.31"):
        zero_ablate(tiny_bert, name, [32])
    with pytest.raises(ValueError, match="out of range"):
        check_units(tiny_bert, info.names.mlp_post(0), [-1])
    with pytest.raises(ValueError, match="duplicate"):
        check_units(tiny_bert, name, [1, 1])
    with pytest.raises(TypeError, match="integers"):
        check_units(tiny_bert, name, [1.5])
    with pytest.raises((ValueError, TypeError), match="position"):  # beartype checks Literal
        zero_ablate(tiny_bert, name, [1], position="first")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        add_noise(tiny_bert, name, [1], -0.1)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        Intervention("noise", sigma=-1.0)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="alpha must be finite"):
            scale(tiny_bert, name, [1], bad)
    with pytest.raises(ValueError, match="value must be finite"):
        set_value(tiny_bert, name, [1], float("nan"))
    ranking = Ranking(name, 0, np.arange(32.0))
    with pytest.raises(ValueError, match="larger than the layer width"):
        select_units(ranking, 33)
    with pytest.raises((ValueError, TypeError), match="order"):
        select_units(ranking, 3, "middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="has 16 scores"):
        ranking_hooks(tiny_bert, Ranking(name, 0, np.arange(16.0)), 3)
    with pytest.raises(ValueError, match="needs stats"):
        make_hook(tiny_bert, name, [1], Intervention("mean"))
    acts = cache_cls(tiny_bert, PADDED, options=ExecOptions(progress=False, max_length=64))
    other = ClsActivations(dict(acts.acts), "0123456789abcdef", None, dict(acts.layers))
    with pytest.raises(ValueError, match="mean-ablation stats from a different model"):
        mean_ablate(tiny_bert, name, [1], other)
    with pytest.raises(ValueError, match="position='all'"):
        mean_ablate(tiny_bert, name, [1], acts, position="all")
    with pytest.raises(ValueError, match="different model"):
        patch_from(tiny_bert, name, [1], other)
    wrong_batch = patch_from(tiny_bert, name, [1], torch.zeros(3, 32))
    with pytest.raises(ValueError, match="one row per example"):
        _run(tiny_bert, [(name, wrong_batch)])
    with pytest.raises(ValueError, match="expected width 32"):
        _run(tiny_bert, [(info.names.mlp_post(0), zero_ablate(tiny_bert, name, [1]))])
