"""Weight-space context managers (exact restore, relative norm, equivalence with activation
edits) and logit-space manipulations (bias hook, closed-form minimal biases and their ties)."""

from __future__ import annotations

import pytest
import torch

from synapse_lens import classifier_info
from synapse_lens.interventions.edits import (
    WeightSlice,
    class_id,
    class_row,
    logit_bias,
    minimal_flip_bias,
    minimal_redirect_bias,
    perturbed_weights,
    scaled_weights,
    unit_output_weights,
)
from synapse_lens.interventions.hooks import scale, zero_ablate

TEXTS = [
    "bad",
    "the film was good but the service was bad and the price was too much for me",
    "free cash prize call now",
    "what is the name of the city",
    "i love this book it is very good",
    "urgent reply now to claim your money",
]


def _run(model, hooks=()):  # type: ignore[no-untyped-def]
    with torch.inference_mode():
        return model.run_with_hooks(TEXTS, fwd_hooks=list(hooks))


def _snapshot(model):  # type: ignore[no-untyped-def]
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _assert_identical(model, snap) -> None:  # type: ignore[no-untyped-def]
    params = dict(model.named_parameters())
    assert params.keys() == snap.keys()
    for name, p in params.items():
        assert torch.equal(p, snap[name]), name


def test_identity_edits_are_bit_exact(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    names = classifier_info(tiny_bert).names
    clean = _run(tiny_bert)
    slices = unit_output_weights(tiny_bert, names.mlp_post(0), [1, 2, 3]) + class_row(tiny_bert, 1)
    with scaled_weights(tiny_bert, slices, 1.0):
        assert torch.equal(_run(tiny_bert), clean)
    with perturbed_weights(tiny_bert, slices, 0.0, seed=3):
        assert torch.equal(_run(tiny_bert), clean)
    assert torch.equal(_run(tiny_bert, [(names.logits, logit_bias(tiny_bert, 0, 0.0))]), clean)


def test_weights_restored_exactly_even_on_error(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    names = classifier_info(tiny_bert).names
    snap = _snapshot(tiny_bert)
    clean = _run(tiny_bert)
    slices = (unit_output_weights(tiny_bert, names.resid_post(1), range(0, 32, 3))
              + unit_output_weights(tiny_bert, names.mlp_post(1), [5, 6])
              + class_row(tiny_bert, "class_2"))
    with perturbed_weights(tiny_bert, slices, 0.5, seed=1):
        assert not torch.equal(_run(tiny_bert), clean)
    _assert_identical(tiny_bert, snap)
    for manager in (perturbed_weights(tiny_bert, slices, 0.3, seed=2),
                    scaled_weights(tiny_bert, slices, -1.5)):
        with pytest.raises(RuntimeError, match="boom"), manager:
            assert not torch.equal(_run(tiny_bert), clean)
            raise RuntimeError("boom")
        _assert_identical(tiny_bert, snap)
    assert torch.equal(_run(tiny_bert), clean)


def test_perturbation_has_the_requested_relative_norm(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    names = classifier_info(tiny_bert).names
    slices = unit_output_weights(tiny_bert, names.mlp_post(0), [0, 7, 9]) + class_row(tiny_bert, 0)
    params = {n.replace("._original_component", ""): p for n, p in tiny_bert.named_parameters()}
    before = {s.param: params[s.param].detach().clone() for s in slices}
    eps = 0.25
    with perturbed_weights(tiny_bert, slices, eps, seed=7):
        a = _run(tiny_bert)
        for s in slices:
            now = params[s.param].detach()
            idx = torch.tensor(s.index)
            w = before[s.param].index_select(s.dim, idx)
            delta = now.index_select(s.dim, idx) - w
            if w.norm() > 0:
                assert abs(float(delta.norm() / w.norm()) - eps) < 1e-4, s
            # entries outside the slice are untouched
            mask = torch.ones(now.shape[s.dim], dtype=torch.bool)
            mask[idx] = False
            rest = torch.arange(now.shape[s.dim])[mask]
            assert torch.equal(now.index_select(s.dim, rest),
                               before[s.param].index_select(s.dim, rest))
    with perturbed_weights(tiny_bert, slices, eps, seed=7):
        b = _run(tiny_bert)
    with perturbed_weights(tiny_bert, slices, eps, seed=8):
        c = _run(tiny_bert)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("site", ["mlp_post", "resid_post", "embed"])
def test_scaling_output_weights_equals_scaling_units_everywhere(tiny_bert, site: str) -> None:  # type: ignore[no-untyped-def]
    names = classifier_info(tiny_bert).names
    name = names.embed if site == "embed" else getattr(names, site)(0)
    units = [1, 4, 8, 15]
    for alpha in (0.0, 2.0):
        with scaled_weights(tiny_bert, unit_output_weights(tiny_bert, name, units), alpha):
            by_weights = _run(tiny_bert)
        fn = (zero_ablate(tiny_bert, name, units, position="all") if alpha == 0 else
              scale(tiny_bert, name, units, alpha, position="all"))
        by_hook = _run(tiny_bert, [(name, fn)])
        assert (by_weights - by_hook).abs().max() <= 1e-5, (site, alpha)
        assert (by_hook - _run(tiny_bert)).abs().max() > 1e-4


def test_class_row_scaled_to_zero_zeroes_that_logit(tiny_dirs) -> None:  # type: ignore[no-untyped-def]
    from synapse_lens import load_classifier

    for family in ("bert", "roberta"):
        model = load_classifier(tiny_dirs[family])
        clean = _run(model)
        with scaled_weights(model, class_row(model, "class_1"), 0.0):
            got = _run(model)
        assert (got[:, 1] == 0).all() and torch.equal(got[:, [0, 2]], clean[:, [0, 2]])


def test_logit_bias_hook_adds_exactly(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    names = classifier_info(tiny_bert).names
    clean = _run(tiny_bert)
    got = _run(tiny_bert, [(names.logits, logit_bias(tiny_bert, "class_2", 1.5))])
    expected = clean.clone()
    expected[:, 2] += 1.5
    assert torch.equal(got, expected)
    per_example = torch.arange(len(TEXTS), dtype=torch.float32)
    got = _run(tiny_bert, [(names.logits, logit_bias(tiny_bert, 0, per_example))])
    assert torch.equal(got[:, 0], clean[:, 0] + per_example)


def test_minimal_redirect_bias_flips_exactly_what_it_should(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    names = classifier_info(tiny_bert).names
    clean = _run(tiny_bert)
    delta = 1e-4
    for target in range(3):
        b = minimal_redirect_bias(clean, target)
        assert torch.equal(b < 0, clean.argmax(1) == target)  # negative = already predicted
        above = _run(tiny_bert, [(names.logits, logit_bias(tiny_bert, target, b + delta))])
        below = _run(tiny_bert, [(names.logits, logit_bias(tiny_bert, target, b - delta))])
        assert (above.argmax(1) == target).all()
        assert (below.argmax(1) != target).all()
    bias, runner_up = minimal_flip_bias(clean)
    pred = clean.argmax(1)
    assert (bias >= 0).all() and (runner_up != pred).all()
    for i in range(len(TEXTS)):
        z = clean[i : i + 1]
        r = int(runner_up[i])
        assert torch.isclose(bias[i], minimal_redirect_bias(z, r)[0])
        # no class can be reached with a smaller bias
        others = [minimal_redirect_bias(z, t)[0] for t in range(3) if t != int(pred[i])]
        assert bias[i] <= min(others)
        assert (z + (bias[i] + delta) * torch.eye(3)[r]).argmax(1) != pred[i]
        for t in range(3):
            assert (z + (bias[i] - delta) * torch.eye(3)[t]).argmax(1) == pred[i]


def test_tie_rule_at_the_threshold() -> None:
    """Exactly representable logits: at b == b*, t wins only when its index is lowest."""
    z = torch.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0], [0.0, 5.0, 1.0]])
    for target in range(3):
        b = minimal_redirect_bias(z, target)
        after = (z + b[:, None] * torch.eye(3)[target]).argmax(1)
        for i in range(3):
            others = [j for j in range(3) if j != target]
            m = max(float(z[i, j]) for j in others)
            competitors = [j for j in others if float(z[i, j]) == m]
            assert (int(after[i]) == target) == (target < min(competitors)), (i, target)
    bias, runner_up = minimal_flip_bias(z)
    assert bias.tolist() == [0.0, 0.0, 4.0] and runner_up.tolist() == [2, 1, 2]
    flipped = (z + bias[:, None] * torch.nn.functional.one_hot(runner_up, 3)).argmax(1)
    assert flipped.tolist() == [1, 0, 1]  # ties at the threshold go to the lower index


def test_bad_inputs(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    names = classifier_info(tiny_bert).names
    slices = class_row(tiny_bert, 0)
    with pytest.raises(ValueError, match="target class 'spam' not in the model"):
        class_row(tiny_bert, "spam")
    with pytest.raises(ValueError, match="not in the model"):
        class_id(tiny_bert, 3)
    with pytest.raises(ValueError, match="not in the model"):
        logit_bias(tiny_bert, "nope", 1.0)
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"), perturbed_weights(
            tiny_bert, slices, -0.1):
        pass
    with pytest.raises(ValueError, match="alpha must be a finite"), scaled_weights(
            tiny_bert, slices, float("inf")):
        pass
    with pytest.raises(ValueError, match="no unit output weights"):
        unit_output_weights(tiny_bert, names.logits, [0])
    with pytest.raises(ValueError, match="out of range"):
        unit_output_weights(tiny_bert, names.mlp_post(0), [64])
    with pytest.raises(ValueError, match="no parameter"), scaled_weights(
            tiny_bert, [WeightSlice("nope.weight", 0, (0,))], 0.0):
        pass
    with pytest.raises(ValueError, match="finite"):
        logit_bias(tiny_bert, 0, float("nan"))
    with pytest.raises(ValueError, match=r"target class 5 not in 0\.\.2"):
        minimal_redirect_bias(torch.zeros(2, 3), 5)
    with pytest.raises(ValueError, match="logits must be"):
        minimal_flip_bias(torch.zeros(3, 1))
