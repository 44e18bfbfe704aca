"""The fast paths against the reference (a full forward through the TransformerLens bridge):
the plain HF copy (bit for bit HF with SDPA attention; within 1e-6 of the bridge, hooks fired with
the same hook points), resumed conditions on every
family (≤ 1e-5 on logits and metrics), resume points, declared weight edits, every fallback
(hooks elsewhere, outer hooks, undeclared or lying edits, raw torch hooks), chunked states,
determinism and model hygiene."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from synapse_lens import ExecOptions, classifier_info, load_classifier
from synapse_lens.activations import cache_cls, predict_logits
from synapse_lens.analysis.rankings import Ranking
from synapse_lens.data import TextDataset
from synapse_lens.experiments.engine import Condition, clean_run, run_conditions
from synapse_lens.experiments.redirect import weight_redirection
from synapse_lens.experiments.sweeps import ablation_curve, noise_curve
from synapse_lens.interventions.edits import class_row, perturbed_weights, unit_output_weights
from synapse_lens.interventions.hooks import add_noise, scale, set_value, zero_ablate
from synapse_lens.models import EncoderWithHead, installed_backend
from synapse_lens.runtime.forward import forward
from synapse_lens.runtime.plain import plain_model
from synapse_lens.runtime.pruned import is_cls_only, reads_cls_only
from synapse_lens.runtime.resume import capture, edit_point, named_parameters, resume, resume_point
from synapse_lens.runtime.scheduler import Job, run_resumed
from synapse_lens.testing import FAMILIES, TINY_WORDS, tiny_hf_classifier, tiny_tokenizer

TL4 = installed_backend() == "tl4-bridge"
needs_tl4 = pytest.mark.skipif(not TL4, reason="the plain copy exists for TL 4.x bridges only")
ML = 64
TOL = 1e-5
OPTS = ExecOptions(batch_size=4, max_length=ML, progress=False)
FULL = ExecOptions(batch_size=4, max_length=ML, progress=False, engine="full")  # the reference
CASES = [*FAMILIES, "bert+head-cls", "bert+head-mean", "bert+head-mean-l2"]


def _texts(n: int, seed: int = 0) -> tuple[str, ...]:
    rng = np.random.default_rng(seed)
    return tuple(" ".join(rng.choice(TINY_WORDS, size=int(rng.integers(2, 14))))
                 for _ in range(n))


def _model(case: str) -> Any:
    if case.startswith("bert+head"):
        encoder = tiny_hf_classifier("bert", with_head=False, n_layers=3, seed=3)
        head = nn.Linear(32, 3)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():  # a trained head's scale (1/sqrt(d)), not a raw randn's
            head.weight.copy_(torch.randn(3, 32, generator=gen) / 32 ** 0.5)
            head.bias.copy_(torch.randn(3, generator=gen))
        return load_classifier(encoder, tiny_tokenizer("bert"), head=head,
                               pooling="cls" if case.endswith("cls") else "mean",
                               normalize=case.endswith("l2"))
    family: Any = case
    return load_classifier(tiny_hf_classifier(family, n_layers=3, seed=3), tiny_tokenizer(family))


@pytest.fixture(scope="module", params=CASES)
def case(request: pytest.FixtureRequest) -> dict[str, Any]:
    try:
        model = _model(request.param)
    except ValueError as err:  # TL 3.x represents fewer families exactly
        if TL4:
            raise
        pytest.skip(f"{request.param} on {installed_backend()}: {err}")
    info = classifier_info(model)
    texts = _texts(14)
    labels = np.arange(len(texts)) % info.n_classes
    return {"model": model, "info": info, "data": TextDataset(texts, labels, info.id2label)}


def _full(model: Any, texts: Any, hooks: list, batch_size: int = 4) -> torch.Tensor:
    return forward(model, texts, [], batch_size=batch_size, max_length=ML, fwd_hooks=hooks,
                progress=False, desc="", engine="bridge")[1]


def _conditions(model: Any, info: Any) -> list[tuple[str, Any]]:
    """(label, hooks factory) covering every site the resumed path handles."""
    n = info.n_layers
    names = info.names
    last = names.resid_post(n - 1)
    return [
        ("embed-all", lambda: [(names.embed, zero_ablate(model, names.embed, [0, 3],
                                                         position="all"))]),
        ("resid0-cls", lambda: [(names.resid_post(0), zero_ablate(model, names.resid_post(0),
                                                                  [1, 2, 5]))]),
        ("resid1-noise", lambda: [(names.resid_post(1), add_noise(
            model, names.resid_post(1), [0, 4, 9], 0.7, seed=5))]),
        ("last-scale-all", lambda: [(last, scale(model, last, [2, 3], -2.0, position="all"))]),
        ("mlp1-set", lambda: [(names.mlp_post(1), set_value(model, names.mlp_post(1), [0, 7],
                                                             3.0, position="all"))]),
        ("pooled", lambda: [(names.pooled, set_value(model, names.pooled, [1], 2.5))]),
        ("logits", lambda: [(names.logits, scale(model, names.logits, [0], 3.0))]),
        ("two-sites", lambda: [
            (names.resid_post(1), zero_ablate(model, names.resid_post(1), [6])),
            (names.mlp_post(0), scale(model, names.mlp_post(0), [3], 0.0))]),
        ("none", lambda: []),
    ]


@needs_tl4
def test_plain_copy_is_hf_with_sdpa_attention(case: dict) -> None:
    """The plain copy runs HF's own modules with SDPA attention (the bridge keeps eager
    attention, so that its attention hook points fire): bit for bit an HF model of the same
    weights loaded with SDPA; with hooks attached (and the full last layer: an unmarked hook
    there asks for it) within 1e-6 + 1e-6·|x| of the bridge, every hook point fired with the
    bridge's own hook objects."""
    model, info = case["model"], case["info"]
    pm = plain_model(model)
    assert pm is not None
    assert {id(p) for p in pm.root.parameters()} == {id(p) for p in model.parameters()}
    assert model.original_model.config._attn_implementation == "eager"  # the bridge's own
    if info.family in FAMILIES and not isinstance(pm.root, EncoderWithHead):
        hf = tiny_hf_classifier(info.family, n_layers=3, seed=3)  # the same seeded weights
        hf.config._attn_implementation = "sdpa"
        ids, mask = _ids(model, case["data"].texts)
        assert int((mask == 0).sum()) > 0  # padded rows: the masks are exercised
        with torch.inference_mode():
            assert torch.equal(pm.logits(ids, mask), hf(input_ids=ids,
                                                        attention_mask=mask).logits)
    names = [*info.names.layer_outputs(), *info.names.mlp_units(), info.names.pooled,
             info.names.logits]
    texts = case["data"].texts
    last = info.names.resid_post(info.n_layers - 1)
    hooks = [(info.names.resid_post(0), zero_ablate(model, info.names.resid_post(0), [1, 4])),
             (last, lambda act, hook: None)]
    with model.hooks(fwd_hooks=hooks):
        assert pm.usable() and not pm.cls_only_ok()
    plain = forward(model, texts, names, batch_size=4, max_length=ML, fwd_hooks=hooks,
                 progress=False, desc="")
    bridge = forward(model, texts, names, batch_size=4, max_length=ML, fwd_hooks=hooks,
                  progress=False, desc="", engine="bridge")
    _near(plain[1], bridge[1])
    for name in names:
        _near(plain[0][name], bridge[0][name])
    # the hook function sees the hook point object the bridge gives it
    seen: list[str] = []
    with model.hooks(fwd_hooks=[(n, lambda a, hook: seen.append(hook.name)) for n in names]):
        assert pm.usable()
        with torch.inference_mode():
            pm.logits(*_ids(model, texts[:3]))
    plain_seen = list(seen)
    seen.clear()
    ids, mask = _ids(model, texts[:3])
    with model.hooks(fwd_hooks=[(n, lambda a, hook: seen.append(hook.name)) for n in names]), \
            torch.inference_mode():
        model(ids, attention_mask=mask)
    assert plain_seen == seen and len(seen) == len(names)


def _close(got: torch.Tensor, expected: torch.Tensor) -> None:
    """The [CLS]-only last layer against the full one, same attention kernel (runtime.pruned):
    |Δ| ≤ 1e-6 + 1e-6·|x| (a few float32 ulps: logits of the random test heads reach 10)."""
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


def _near(got: torch.Tensor, expected: torch.Tensor) -> None:
    """The plain copy (SDPA attention) against the bridge (eager attention): |Δ| ≤ 1e-5 +
    1e-5·|x|; the two attention kernels sum in different orders (about 2e-6 measured)."""
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def _reads_cls_only(case: dict) -> bool:
    root = plain_model(case["model"]).root  # type: ignore[union-attr]
    return not (isinstance(root, EncoderWithHead) and root.pooler.pooling == "mean")


@needs_tl4
def test_cls_only_last_layer_is_within_1e_6_of_the_full_forward(case: dict) -> None:
    """Where the head reads [CLS], extraction and predictions run the last layer for [CLS] only:
    cached [CLS] vectors and logits within 1e-6 + 1e-6·|x| of the full last layer (same
    attention kernel) and within 1e-5 of the bridge; hook functions marked as reading [CLS]
    see one position there, any other hook gets the full layer."""
    model, info, texts = case["model"], case["info"], case["data"].texts
    pm = plain_model(model)
    assert pm is not None
    prunable = _reads_cls_only(case)
    assert (pm.pruned_root is not None) == prunable
    names = [*info.names.layer_outputs(), *info.names.mlp_units(), info.names.pooled]
    fast = cache_cls(model, texts, names=names, options=OPTS)
    full = cache_cls(model, texts, names=names, options=FULL)
    unmarked = [(info.names.resid_post(info.n_layers - 1), lambda act, hook: None)]
    whole, whole_logits = forward(model, texts, names, batch_size=4, max_length=ML,
                                  progress=False, desc="", fwd_hooks=unmarked)
    for name in names:
        _close(fast[name], whole[name])
        _near(fast[name], full[name])
    fast_logits = predict_logits(model, texts, options=OPTS)
    _close(fast_logits, whole_logits)
    _near(fast_logits, predict_logits(model, texts, options=FULL))
    mlp_last = info.names.mlp_units()[-1]
    widths: list[int] = []
    marked = reads_cls_only(lambda act, hook: widths.append(act.shape[1]))
    _, logits = forward(model, texts, [], batch_size=4, max_length=ML, progress=False, desc="",
                        fwd_hooks=[(mlp_last, marked)])
    assert torch.equal(logits, fast_logits)
    assert (set(widths) == {1}) == prunable and len(widths) == -(-len(texts) // 4)
    widths.clear()
    _, logits = forward(model, texts, [], batch_size=4, max_length=ML, progress=False, desc="",
                        fwd_hooks=[(mlp_last, lambda act, hook: widths.append(act.shape[1]))])
    assert min(widths) > 1 and torch.equal(logits, whole_logits)
    _near(logits, _full(model, texts, []))
    # hook factories mark [CLS] edits only
    assert is_cls_only(zero_ablate(model, mlp_last, [0]))
    assert not is_cls_only(zero_ablate(model, mlp_last, [0], position="all"))


@needs_tl4
def test_the_cls_only_last_layer_attends_to_its_input_without_projecting_keys_and_values(
        case: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """The [CLS]-only last layer takes the [CLS] query back into the residual space instead of
    projecting every position's key and value (runtime.pruned.cls_row): on a padded batch, with
    the mask the layer is given and with its boolean / additive counterpart, within
    1e-6 + 1e-6·|x| of attending to projected keys and values, and of the full layer's row 0."""
    import synapse_lens.runtime.pruned as pruned

    model, texts = case["model"], case["data"].texts
    pm = plain_model(model)
    assert pm is not None
    if not _reads_cls_only(case):
        assert pm.cls_last is None  # mean pooling: no [CLS]-only layer to test
        return
    seen: list[tuple[Any, ...]] = []
    unprojected: list[int] = []
    real_row, real_attend = pruned.cls_row, pruned._attend_unprojected

    def spy_row(*args: Any, **kwargs: Any) -> torch.Tensor:
        seen.append(args)
        return real_row(*args, **kwargs)

    def spy_attend(*args: Any) -> torch.Tensor:
        unprojected.append(1)
        return real_attend(*args)

    monkeypatch.setattr(pruned, "cls_row", spy_row)
    monkeypatch.setattr(pruned, "_attend_unprojected", spy_attend)
    ids, mask = _ids(model, texts)
    assert not bool(mask.all())  # the batch is padded
    with torch.inference_mode():
        pm.logits(ids, mask, cls_only=True)
        assert len(seen) == 1 and len(unprojected) == 1
        layer, shape, hidden, given = seen[0]
        _, key, value = pruned.projections(layer, shape)
        keep = (mask[:, None, None, :] > 0).expand(-1, 1, hidden.shape[1], -1)
        additive = torch.zeros(keep.shape).masked_fill(~keep, torch.finfo(torch.float32).min)
        for m in (given, keep, additive):
            got = real_row(layer, shape, hidden, m)
            _close(got, real_row(layer, shape, hidden, m, (key(hidden), value(hidden))))
        full = layer(hidden, given)
        _close(real_row(layer, shape, hidden, given), (full[0] if isinstance(full, tuple)
                                                       else full)[:, :1])


@needs_tl4
def test_resumed_conditions_with_the_cls_only_last_layer(case: dict) -> None:
    """A sweep whose hooks read [CLS] captures and resumes with the [CLS]-only last layer
    (states at the last layer's output hold one position) and stays within 1e-6 + 1e-6·|x| of
    the full runs, at every resume point up to the head."""
    model, info, texts = case["model"], case["info"], case["data"].texts
    pm = plain_model(model)
    assert pm is not None
    names, n = info.names, info.n_layers
    last, mlp_last = names.resid_post(n - 1), names.mlp_units()[-1]

    def conds() -> list[list[tuple[str, Any]]]:
        return [[(names.resid_post(0), zero_ablate(model, names.resid_post(0), [1, 2, 5]))],
                [(mlp_last, add_noise(model, mlp_last, [0, 3, 8], 1.5, seed=2))],
                [(last, scale(model, last, [2, 3, 7], -2.0))],
                [(names.pooled, set_value(model, names.pooled, [1], 2.5))],
                []]

    jobs = [Job(hooks, resume_point(pm, hooks)) for hooks in conds()]  # type: ignore[arg-type]
    assert [j.point for j in jobs] == [1, n - 1, n, n, n]
    assert all(pm.cls_only_ok(j.hooks) for j in jobs) == _reads_cls_only(case)
    got = run_resumed(pm, texts, jobs, batch_size=4, max_length=ML)
    clean = _full(model, texts, [])
    for hooks, logits in zip(conds(), got):
        assert logits is not None
        expected = _full(model, texts, hooks)
        _close(logits, expected)
        assert not hooks or (expected - clean).abs().max() > 1e-4  # each edit does something
    if _reads_cls_only(case):
        ids, mask = _ids(model, texts[:3])
        states = capture(pm, [{"input_ids": ids, "attention_mask": mask}], [np.arange(3)],
                         [n - 1, n], cls_only=True)
        assert states[0].hidden[n].shape[1] == 1 and states[0].hidden[n - 1].shape[1] > 1


@needs_tl4
def test_after_a_cls_edit_the_next_layer_projects_the_cls_row_only(
        case: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job whose hooks edit [CLS] alone keeps the clean query/key/value projections of its
    first resumed layer and projects row 0 only (runtime.pruned.cls_edited_layer): within
    1e-6 + 1e-6·|x| of the same resumed run projecting every row, within 1e-5 of the bridge, at
    every resume point (the embeddings' output to the last layer's input, with and without the
    [CLS]-only last layer). Edits of every position and runs with nothing changed take the
    layer's own forward, bit for bit (so the scheduler's exactness check still holds), as does
    ``reuse=False`` (what the scheduler passes for jobs with a weight edit)."""
    import synapse_lens.runtime.resume as resume_module

    model, info, texts = case["model"], case["info"], case["data"].texts
    pm = plain_model(model)
    assert pm is not None
    names, n = info.names, info.n_layers
    calls: list[int] = []
    real = resume_module.cls_edited_layer

    def spy(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(resume_module, "cls_edited_layer", spy)
    sites = [names.embed, *(names.resid_post(layer) for layer in range(n - 1))]
    ids, mask = _ids(model, texts)
    unmarked = (names.resid_post(n - 1), lambda act, hook: None)  # forces the full last layer
    for cls_only in (True, False):
        if cls_only and not _reads_cls_only(case):
            continue
        for point, site in enumerate(sites):
            edit = [(site, zero_ablate(model, site, [0, 2, 5]))]
            hooks = edit if cls_only else [*edit, unmarked]
            job = Job(hooks, point)
            assert resume_point(pm, hooks) == point
            states = capture(pm, [{"input_ids": ids, "attention_mask": mask}],
                             [np.arange(len(texts))], [point], cls_only=cls_only,
                             keep_projections=[point])
            assert states[0].nbytes == 4 * ids.numel() * info.d_model * 4 or (
                cls_only and point == n - 1)  # the last layer's query: the [CLS] row only
            with model.hooks(fwd_hooks=list(job.hooks)), torch.inference_mode():
                calls.clear()
                reused = resume(pm, states[0], point)
                assert calls, (site, cls_only)
                own = resume(pm, states[0], point, reuse=False)
                calls.clear()
                _close(reused, own)
            _near(reused, _full(model, texts, hooks, batch_size=len(texts)))
            assert (reused - states[0].logits).abs().max() > 1e-4  # the edit does something
            everywhere = [(site, zero_ablate(model, site, [0, 2, 5], position="all")), unmarked]
            with model.hooks(fwd_hooks=everywhere), torch.inference_mode():
                got = resume(pm, states[0], point)
                assert not calls and torch.equal(got, resume(pm, states[0], point, reuse=False))
            with torch.inference_mode():
                assert torch.equal(resume(pm, states[0], point), states[0].logits)
                assert not calls
    # the scheduler keeps projections where every hook edits [CLS] and no weight changes
    sweep = [[(names.resid_post(0), zero_ablate(model, names.resid_post(0), [1, 2]))],
             [(names.resid_post(1), zero_ablate(model, names.resid_post(1), [3], position="all"))]]
    jobs = [Job(h, resume_point(pm, h)) for h in sweep]  # type: ignore[arg-type]
    got = run_resumed(pm, texts, jobs, batch_size=4, max_length=ML)
    for hooks, logits in zip(sweep, got):
        assert logits is not None
        _near(logits, _full(model, texts, hooks))
    assert len(calls) == -(-len(texts) // 4)  # the [CLS] job, once per batch


@needs_tl4
def test_the_plain_copy_is_kept_until_a_parameter_is_replaced(case: dict) -> None:
    """plain_model builds the copy once per model; a replaced Parameter (not an in-place edit,
    which the copy shares) makes it build a new one, which computes with the new weights. A
    deep copy of the model gets a copy of its own."""
    import copy

    model, texts = case["model"], case["data"].texts
    pm = plain_model(model)
    assert pm is not None and plain_model(model) is pm
    twin = copy.deepcopy(model)
    twin_pm = plain_model(twin)
    assert twin_pm is not None and twin_pm.model is twin
    assert {id(p) for p in twin_pm.root.parameters()} == {id(p) for p in twin.parameters()}
    assert not any(m.training for m in pm.root.modules())
    module = next(m for m in model.original_model.modules()
                  if isinstance(m, nn.Linear) and m.bias is not None)
    old = module.bias
    try:
        module.bias = nn.Parameter(old.detach() + 0.5)
        fresh = plain_model(model)
        assert fresh is not None and fresh is not pm
        _near(predict_logits(model, texts, options=OPTS), _full(model, texts, []))
    finally:
        module.bias = old
    assert plain_model(model) is not fresh


def _ids(model: Any, texts: Any) -> tuple[torch.Tensor, torch.Tensor]:
    from synapse_lens.data import tokenize

    enc = tokenize(model, list(texts), max_length=ML)
    return enc["input_ids"], enc["attention_mask"]


@needs_tl4
def test_resumed_logits_match_full_runs(case: dict) -> None:
    model, info, texts = case["model"], case["info"], case["data"].texts
    pm = plain_model(model)
    assert pm is not None
    labelled = _conditions(model, info)
    jobs = []
    for _, make in labelled:
        hooks = make()
        point = resume_point(pm, hooks)
        assert point is not None
        jobs.append(Job(hooks, point))
    n = info.n_layers
    assert [j.point for j in jobs] == [0, 1, 2, n, 1, n, n, 0, n]
    got = run_resumed(pm, texts, jobs, batch_size=4, max_length=ML)
    for (label, make), logits in zip(labelled, got):
        assert logits is not None, label
        expected = _full(model, texts, make())
        assert (logits - expected).abs().max() <= TOL, label
    # the intervention did something where it should
    clean = _full(model, texts, [])
    assert all((g - clean).abs().max() > 1e-4 for g, (lab, _) in zip(got, labelled)
               if lab != "none")


@needs_tl4
def test_in_place_hooks_do_not_leak_into_the_cache(case: dict) -> None:
    """TransformerLens hooks may edit the activation in place and return None."""
    model, info, data = case["model"], case["info"], case["data"]

    def zero_in_place(act: torch.Tensor, hook: Any) -> None:
        act[:, 0, :4] = 0.0

    def conds() -> list[Condition]:
        return [Condition({"site": name}, lambda name=name: [(name, zero_in_place)])
                for name in (info.names.embed, info.names.resid_post(0),
                             info.names.resid_post(info.n_layers - 1))] + [
            Condition({"site": "none"})]

    kw: dict[str, Any] = dict(options=OPTS)
    fast = run_conditions(model, data, conds(), **kw)
    slow = run_conditions(model, data, conds(), options=FULL)
    assert np.abs(fast.value.to_numpy() - slow.value.to_numpy()).max() <= TOL
    none = fast[fast.site == "none"]
    assert (none.value == none.clean_value).all()


@needs_tl4
def test_sweeps_fast_equal_reference(case: dict) -> None:
    model, info, data = case["model"], case["info"], case["data"]
    rng = np.random.default_rng(1)
    rankings = [Ranking(info.names.resid_post(layer), layer, rng.uniform(size=info.d_model))
                for layer in range(info.n_layers)]
    rankings.append(Ranking(info.names.mlp_post(1), 1, rng.uniform(size=info.d_mlp)))
    clean = clean_run(model, data, options=OPTS)
    fast = ablation_curve(model, data, rankings, [0, 2, 5], n_seeds=2, clean=clean, options=OPTS)
    noise = noise_curve(model, data, rankings[-2:], [0.0, 1.0], k=3, n_seeds=2, clean=clean,
                        options=OPTS)
    slow = ablation_curve(model, data, rankings, [0, 2, 5], n_seeds=2, clean=clean, options=FULL)
    slow_noise = noise_curve(model, data, rankings[-2:], [0.0, 1.0], k=3, n_seeds=2,
                             clean=clean, options=FULL)
    for a, b in ((fast, slow), (noise, slow_noise)):
        assert a.drop(columns="value").equals(b.drop(columns="value"))
        assert np.abs(a.value.to_numpy() - b.value.to_numpy()).max() <= TOL


@needs_tl4
def test_a_sweep_runs_one_clean_forward(case: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a given clean run, the sweep takes the clean logits from the forward that
    captures its resume states (no second clean forward), and its table is the same, byte for
    byte, as with a clean run computed beforehand."""
    import synapse_lens.experiments.engine as experiments
    import synapse_lens.runtime.scheduler as fastrun

    model, info, data = case["model"], case["info"], case["data"]
    rng = np.random.default_rng(2)
    rankings = [Ranking(info.names.resid_post(layer), layer, rng.uniform(size=info.d_model))
                for layer in range(info.n_layers)]
    kw: dict[str, Any] = dict(options=OPTS, n_seeds=2)
    given = ablation_curve(model, data, rankings, [0, 2, 5],
                           clean=clean_run(model, data,
                                           options=OPTS), **kw)
    clean_forwards: list[int] = []
    monkeypatch.setattr(experiments, "predict_logits",
                        lambda *a, **k: clean_forwards.append(1) or pytest.fail("2nd forward"))
    captures: list[int] = []
    real_capture = fastrun.capture
    monkeypatch.setattr(fastrun, "capture",
                        lambda *a, **k: captures.append(1) or real_capture(*a, **k))
    derived = ablation_curve(model, data, rankings, [0, 2, 5], **kw)
    assert not clean_forwards and len(captures) == 1  # one chunk: one clean forward
    pd.testing.assert_frame_equal(derived, given)


def test_batches_are_tokenize_in_length_order(case: dict) -> None:
    """One tokenisation, padded per batch, gives exactly what tokenize() gives the batch."""
    from synapse_lens.data import tokenize
    from synapse_lens.runtime.batching import length_sorted_batches

    model, texts = case["model"], case["data"].texts
    order, encodings = length_sorted_batches(model, texts, 4, ML)
    assert sorted(order.tolist()) == list(range(len(texts)))
    assert len(encodings) == -(-len(texts) // 4)
    for start, enc in zip(range(0, len(texts), 4), encodings):
        ref = tokenize(model, [texts[i] for i in order[start:start + 4]], max_length=ML)
        assert torch.equal(enc["input_ids"], ref["input_ids"])
        assert torch.equal(enc["attention_mask"], ref["attention_mask"])
        assert enc["attention_mask"].dtype == ref["attention_mask"].dtype == torch.long
    with pytest.raises(ValueError, match="max_length"):
        length_sorted_batches(model, texts, 4, 1)


@needs_tl4
def test_resume_and_edit_points(case: dict) -> None:
    model, info = case["model"], case["info"]
    pm = plain_model(model)
    assert pm is not None
    n, names = info.n_layers, info.names
    fn = zero_ablate(model, names.embed, [0])
    assert resume_point(pm, []) == n
    assert resume_point(pm, [(names.embed, fn)]) == 0
    for layer in range(n):
        assert resume_point(pm, [(names.resid_post(layer), fn)]) == layer + 1
        assert resume_point(pm, [(names.mlp_post(layer), fn)]) == layer
    assert resume_point(pm, [(names.pooled, fn), (names.logits, fn)]) == n
    assert resume_point(pm, [(names.logits, fn), (names.resid_post(0), fn)]) == 1
    assert resume_point(pm, [(lambda name: True, fn)]) is None  # filters run in full
    assert resume_point(pm, [("blocks.1.attn.hook_pattern", fn)]) is None
    assert resume_point(pm, [("no.such.hook", fn)]) is None
    assert edit_point(pm, [s.param for s in class_row(model, 0)]) == n
    assert edit_point(pm, ["no.such.weight"]) is None
    if info.family == "bert":
        for site, expected in ((names.mlp_post(1), 1), (names.resid_post(2), 2),
                               (names.embed, None)):
            params = [s.param for s in unit_output_weights(model, site, [0, 1])]
            assert edit_point(pm, params) == expected, site


@needs_tl4
def test_declared_edits_resume_and_lying_ones_run_in_full(case: dict) -> None:
    model, info, data = case["model"], case["info"], case["data"]
    kw: dict[str, Any] = dict(options=OPTS)
    clean = clean_run(model, data, options=OPTS)
    last = Ranking(info.names.resid_post(info.n_layers - 1), info.n_layers - 1,
                   np.linspace(0.0, 1.0, info.d_model))
    rankings = [last] if info.family in ("bert", "roberta") else []
    fast = weight_redirection(model, data, rankings, 3, [0.0, 0.5], n_seeds=2, clean=clean,
                              **kw)
    slices = class_row(model, 1)
    conds = [
        Condition({"i": i}, edit=lambda s=s: perturbed_weights(model, slices, 0.5, seed=s),
                  touches=tuple(x.param for x in slices))
        for i, s in enumerate((0, 1))]
    first = next(p for n, p in named_parameters(model).items()  # touched, not declared
                 if n.endswith("embeddings.LayerNorm.weight"))
    lying = Condition({"i": 9}, edit=lambda: perturbed_weights(model, slices, 0.5, seed=0),
                      touches=("no.such.weight",))
    sneaky = Condition({"i": 10}, edit=lambda: _bump(first),
                       touches=tuple(x.param for x in slices))
    table = run_conditions(model, data, [*conds, lying, sneaky], clean=clean, **kw)
    reference = run_conditions(model, data, [*conds, lying, sneaky], clean=clean, options=FULL)
    assert table.drop(columns="value").equals(reference.drop(columns="value"))
    assert np.abs(table.value.to_numpy() - reference.value.to_numpy()).max() <= TOL
    kl = reference[(reference.metric == "kl") & (reference.i == 10)].value
    assert kl.item() > 1e-6  # the undeclared change is real: resuming would have missed it
    if rankings:
        slow = weight_redirection(model, data, rankings, 3, [0.0, 0.5], n_seeds=2,
                                  clean=clean, options=FULL)
        assert np.abs(fast.value.to_numpy() - slow.value.to_numpy()).max() <= TOL


def _bump(param: torch.nn.Parameter) -> Any:
    """An edit that changes a parameter it does not declare (restored on exit)."""
    from contextlib import contextmanager

    @contextmanager
    def ctx() -> Any:
        saved = param.detach().clone()
        with torch.no_grad():
            param.mul_(1.5)
        try:
            yield
        finally:
            with torch.no_grad():
                param.copy_(saved)

    return ctx()


@needs_tl4
def test_fallbacks_give_full_runs(case: dict) -> None:
    """Hooks the plain copy does not fire, hooks attached from outside and raw torch hooks on
    bridge modules all run through the bridge — and give the reference results."""
    model, info, data = case["model"], case["info"], case["data"]
    kw: dict[str, Any] = dict(options=OPTS)
    clean = clean_run(model, data, options=OPTS)
    seen: list[int] = []

    def read_pattern(act: torch.Tensor, hook: Any) -> None:
        seen.append(act.shape[0])

    names = info.names
    pattern = "blocks.1.attn.hook_pattern"
    zero = zero_ablate(model, names.resid_post(0), [1, 2])
    conds = [Condition({"i": 0}, lambda: [(pattern, read_pattern),
                                          (names.resid_post(0), zero)]),
             Condition({"i": 1}, lambda: [(names.resid_post(0), zero)])]
    table = run_conditions(model, data, conds, clean=clean, **kw)
    assert sum(seen) == len(data)  # the pattern hook really ran: a full bridge run
    reference = run_conditions(model, data, conds, clean=clean, options=FULL)
    assert np.abs(table.value.to_numpy() - reference.value.to_numpy()).max() <= TOL
    assert np.abs(table[table.i == 0].value.to_numpy()
                  - table[table.i == 1].value.to_numpy()).max() <= TOL
    # hooks attached around the engine apply to every condition, as in full runs
    shift = scale(model, names.logits, [0], 0.5)
    with model.hooks(fwd_hooks=[(names.logits, shift)]):
        outer = run_conditions(model, data, conds[1:], clean=clean, **kw)
        outer_ref = run_conditions(model, data, conds[1:], clean=clean, options=FULL)
    assert np.abs(outer.value.to_numpy() - outer_ref.value.to_numpy()).max() <= TOL
    assert np.abs(outer.value.to_numpy() - table[table.i == 1].value.to_numpy()).max() > 1e-6
    # a raw torch hook on a bridge module is honoured (the plain copy is not used)
    calls: list[int] = []
    handle = model.blocks[0].register_forward_hook(lambda m, a, o: calls.append(1))
    try:
        pm = plain_model(model)
        assert pm is not None and not pm.usable()
        cache_cls(model, data.texts[:4], options=ExecOptions(progress=False, batch_size=4))
        assert calls == [1]
    finally:
        handle.remove()
    pm = plain_model(model)
    assert pm is not None and pm.usable()
    # TransformerLens's own caching leaves transformers' (inactive) output recorders behind
    with torch.inference_mode():
        model.run_with_cache(list(data.texts[:2]), names_filter=info.names.layer_outputs())
    assert pm.usable()


@needs_tl4
def test_chunked_states_equal_one_chunk_and_runs_are_deterministic(case: dict) -> None:
    model, info, data = case["model"], case["info"], case["data"]
    pm = plain_model(model)
    assert pm is not None
    names = info.names

    def jobs() -> list[Job]:
        noise = [(names.resid_post(0), add_noise(model, names.resid_post(0), [1, 2], 1.0,
                                                 seed=3))]
        slices = class_row(model, 0)
        return [Job(noise, 1),
                Job([], info.n_layers, edit=lambda: perturbed_weights(model, slices, 0.3),
                    touches=[s.param for s in slices])]

    one = run_resumed(pm, data.texts, jobs(), batch_size=4, max_length=ML)
    many = run_resumed(pm, data.texts, jobs(), batch_size=4, max_length=ML, budget_bytes=1)
    assert one[0] is not None and many[0] is not None and torch.equal(one[0], many[0])
    assert one[1] is not None and many[1] is None  # edits are entered once: one chunk only
    # the [CLS]-only last layer (where the head reads [CLS]): close to the full run
    _near(one[0], _full(model, data.texts, jobs()[0].hooks))
    a = run_conditions(model, data, [Condition({"i": 0}, lambda: jobs()[0].hooks)],
                       options=OPTS)
    b = run_conditions(model, data, [Condition({"i": 0}, lambda: jobs()[0].hooks)],
                       options=OPTS)
    assert a.to_csv(index=False) == b.to_csv(index=False)


@needs_tl4
def test_capture_and_resume_directly(case: dict) -> None:
    model, info, data = case["model"], case["info"], case["data"]
    pm = plain_model(model)
    assert pm is not None
    n = info.n_layers
    ids, mask = _ids(model, data.texts[:5])
    states = capture(pm, [{"input_ids": ids, "attention_mask": mask}], [np.arange(5)],
                     range(n + 1))
    with torch.inference_mode():
        _near(states[0].logits, model(ids, attention_mask=mask))
        for point in range(n + 1):
            assert torch.equal(resume(pm, states[0], point), states[0].logits), point
    assert states[0].nbytes == (n + 1) * ids.numel() * info.d_model * 4
    with pytest.raises(ValueError, match="resume points"):
        capture(pm, [{"input_ids": ids, "attention_mask": mask}], [np.arange(5)], [n + 1])
    small = capture(pm, [{"input_ids": ids, "attention_mask": mask}], [np.arange(5)], [1])
    with pytest.raises(ValueError, match="not captured"):
        resume(pm, small[0], 2)


@pytest.mark.skipif(TL4, reason="TransformerLens 3.x backend only")
def test_tl3_runs_every_condition_in_full(case: dict) -> None:
    model, info, data = case["model"], case["info"], case["data"]
    assert plain_model(model) is None
    names = info.names
    conds = [Condition({"i": 0}, lambda: [(names.resid_post(0), zero_ablate(
        model, names.resid_post(0), [1, 2]))])]
    fast = run_conditions(model, data, conds, options=OPTS)
    full = run_conditions(model, data, conds, options=FULL)
    assert fast.to_csv(index=False) == full.to_csv(index=False)
