"""The whole SYNAPSE pipeline on one model and one labelled dataset → a run directory.

``run_synapse`` chains the stages (cache → probe → rank → stress-test → report) with
:class:`RunConfig` defaults sized for a MiniLM-class model on 2 CPU cores, and writes, atomically:

```
run_dir/
  report.html      offline, self-contained
  summary.json     config, model and data fingerprints, headline numbers, examples
  tables/*.csv     probes, selectivity, rankings, agreement, stability, redundancy,
                   redundancy_minimal, ablation, ablation_summary, faithfulness, outliers,
                   outlier_ablation, class_matrix, class_asymmetry, overlap, noise,
                   noise_summary, redirection, redirection_logit, minimal_bias,
                   self_repair, self_repair_trace, vulnerability, vulnerability_curves,
                   head_diagnostics
```
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from synapse_lens.activations import cache_cls, predict_logits
from synapse_lens.atomic import MIN_FREE_BYTES, atomic_directory, check_output_dir
from synapse_lens.attribution import attribution_rankings, exact_ranking
from synapse_lens.data import TextDataset, align_labels
from synapse_lens.experiments import summarize
from synapse_lens.faithfulness import (
    best_method,
    faithfulness,
    outlier_ablation,
    outlier_units,
)
from synapse_lens.grids import DEFAULT_K_FRACTIONS, fitted_ks
from synapse_lens.interventions import Position
from synapse_lens.models import classifier_info
from synapse_lens.probes import ProbeConfig, fit_probes
from synapse_lens.rankings import GLOBAL, Ranking, ranking_agreement, rankings_frame
from synapse_lens.redundancy import redundancy
from synapse_lens.report import headline, prepare, write_report
from synapse_lens.schema import RUN_SCHEMA, SUMMARY_FILE
from synapse_lens.selection import Intervention
from synapse_lens.selfrepair import self_repair
from synapse_lens.stability import bootstrap_stability
from synapse_lens.stress import StressConfig, run_stress_tests
from synapse_lens.sweeps import ablation_curve
from synapse_lens.vulnerability import VulnerabilityConfig, targeted_redirection

logger = logging.getLogger(__name__)

#: Ranking methods a run can compare (``RunConfig.rankings``).
RANKING_METHODS = ("probe", "probeless", "attribution", "probe_contribution")
#: Metrics of the ablation curves (continuous ones first: they move before accuracy does).
ABLATION_METRICS = ("true_prob", "margin", "kl", "accuracy", "macro_f1", "flip_rate")

#: Where the residual-stream edits are made: [CLS] only, and every position.
POSITIONS: tuple[Position, ...] = ("cls", "all")
#: Noise levels and weight-perturbation sizes tried first, and the caps they are extended to
#: (doubling) until top-k units differ from random ones.
DEFAULT_SIGMAS = (0.0, 0.5, 1.0, 2.0, 4.0)
SIGMA_CAP = 64.0
DEFAULT_EPS = (0.0, 0.1, 0.3, 1.0)
EPS_CAP = 8.0


@dataclass(frozen=True)
class RunConfig:
    """Settings of one SYNAPSE run (JSON round-trip; unknown keys are ignored on load).

    Attributes:
        layers: encoder layers to probe and rank (``None``: all); the embeddings output is
            always probed.
        rankings: ranking methods compared in the ablation curves and the faithfulness table
            (:data:`RANKING_METHODS`); the class-wise, noise and redirection experiments use
            the one the faithfulness table finds most causal at the last layer (the first
            listed when none is causal).
        exact: also rank the last analysed layer by exact single-unit ablation (one condition
            per unit, resumed at the head: cheap), the reference the others are scored against.
            TL 4.x only: on TL 3.x each condition is a full forward, so it is skipped (logged).
        stress_layers: layers whose rankings drive the ablation curves, self-repair and
            faithfulness (``None``: :func:`default_stress_layers`, the middle and the last
            analysed layer).
        ks: unit-set sizes for ablation curves, class-wise effects, stability and agreement
            (``None``: ``k_fractions`` of each hook's width, plus the full width as an explicit
            extreme of the ablation curves; given values must all fit).
        k_fractions: the fractions of the width used when ``ks`` is ``None``.
        positions: where residual-stream units are ablated (:data:`POSITIONS`): [CLS] only
            (every ranking method) and every position (the class-wise ranking); with both, the
            self-repair table compares them.
        n_seeds: random-k draws per ablation condition (for intervals; ≥ 5 recommended); also
            the weight-perturbation draws.
        class_k: units per set in the noise and weight-redirection experiments and the
            class-matrix size when given (``None``: 5 % of the width, at least 1; the class
            matrix then runs over the whole k grid). Run on the last analysed layer.
        sigmas: noise levels (relative to each unit's clean standard deviation; ``None``:
            :data:`DEFAULT_SIGMAS` doubled up to :data:`SIGMA_CAP` until top-k noise differs
            from random-k noise; given values are used as they are).
        noise_seeds: noise draws per level.
        eps_values: relative weight-perturbation sizes for redirection (``None``:
            :data:`DEFAULT_EPS` extended to :data:`EPS_CAP` the same way).
        biases: logit bias sizes for redirection (``None``: spanning the measured minimal
            flipping biases up to their 95th percentile).
        n_boot: bootstrap resamples for ranking stability.
        max_examples: cap on the texts analysed (stratified subsample; ``None``: all).
        test_size: probe held-out fraction; interventions are evaluated on that held-out part.
        batch_size, max_length: forward-pass batching and truncation.
        device: ``"cpu"`` or ``"cuda"``.
        seed: seeds every random choice of the run.
    """

    layers: tuple[int, ...] | None = None
    stress_layers: tuple[int, ...] | None = None
    rankings: tuple[str, ...] = ("probe", "probeless", "attribution")
    exact: bool = True
    ks: tuple[int, ...] | None = None
    k_fractions: tuple[float, ...] = DEFAULT_K_FRACTIONS
    positions: tuple[Position, ...] = POSITIONS
    n_seeds: int = 5
    class_k: int | None = None
    sigmas: tuple[float, ...] | None = None
    noise_seeds: int = 2
    eps_values: tuple[float, ...] | None = None
    biases: tuple[float, ...] | None = None
    n_boot: int = 5
    max_examples: int | None = 300
    test_size: float = 0.5
    batch_size: int = 32
    max_length: int = 64
    device: Literal["cpu", "cuda"] = "cpu"
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [m for m in self.rankings if m not in RANKING_METHODS]
        if not self.rankings or unknown or len(set(self.rankings)) != len(self.rankings):
            raise ValueError(f"rankings must be distinct methods among {list(RANKING_METHODS)}, "
                             f"got {list(self.rankings)}")
        if self.ks is not None and (not self.ks or any(k <= 0 for k in self.ks)):
            raise ValueError(f"ks must be positive unit counts, got {self.ks}")
        for name in ("layers", "stress_layers"):
            value = getattr(self, name)
            if value is not None and (not value or any(v < 0 for v in value)):
                raise ValueError(f"{name} must be non-empty layer indices >= 0, got {value}")
            if value is not None and len(set(value)) != len(value):
                raise ValueError(f"{name} lists a layer twice: {value}")
        if self.n_seeds < 1 or self.n_boot < 1 or (self.class_k is not None and self.class_k < 1):
            raise ValueError("n_seeds, n_boot and class_k must be >= 1")
        if any(s < 0 for s in self.sigmas or ()) or any(e < 0 for e in self.eps_values or ()):
            raise ValueError("sigmas and eps_values must be >= 0")
        if not self.positions or not set(self.positions) <= set(POSITIONS) or len(
                set(self.positions)) != len(self.positions):
            raise ValueError(f"positions must be distinct values among {list(POSITIONS)}, got "
                             f"{list(self.positions)}")
        if not self.k_fractions or any(not 0 < f <= 1 for f in self.k_fractions):
            raise ValueError(f"k_fractions must lie in (0, 1], got {list(self.k_fractions)}")
        if self.max_examples is not None and self.max_examples < 20:
            raise ValueError(f"max_examples must be >= 20 (or None), got {self.max_examples}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return dataclasses.asdict(self)

    def grid(self, width: int, *, full: bool = False) -> tuple[int, ...]:
        """The unit-set sizes used on hooks of ``width`` units (see ``ks``); with ``full`` the
        fitted grid ends with the width itself (the ablation curves' explicit extreme)."""
        if self.ks is None:
            return fitted_ks(width, self.k_fractions, full=full)
        return tuple(sorted(set(self.ks)))

    def set_size(self, width: int) -> int:
        """Units per set in the noise and weight experiments (see ``class_k``)."""
        return self.class_k if self.class_k is not None else fitted_ks(width, (0.05,),
                                                                       full=False)[0]

    def check(self, n_layers: int, width: int) -> None:
        """Every setting is valid for a model of ``n_layers`` layers of ``width`` units.

        Raises:
            ValueError: naming each setting that does not fit, and what would.
        """
        problems = []
        for name in ("layers", "stress_layers"):
            bad = [v for v in getattr(self, name) or () if v >= n_layers]
            if bad:
                problems.append(f"{name} {bad} do not exist (the model has layers "
                                f"0..{n_layers - 1})")
        if self.layers is not None and self.stress_layers is not None:
            outside = sorted(set(self.stress_layers) - set(self.layers))
            if outside:
                problems.append(f"stress_layers {outside} are not among the analysed layers "
                                f"{list(self.layers)}")
        too_big = [k for k in self.ks or () if k > width]
        if too_big:
            problems.append(f"ks {too_big} exceed the width {width} of the model's [CLS] "
                            f"residual stream (allowed: 1..{width})")
        if self.class_k is not None and self.class_k > width:
            problems.append(f"class_k {self.class_k} exceeds the width {width}")
        if problems:
            raise ValueError("; ".join(problems))

    def stress_config(self, width: int) -> StressConfig:
        """The :class:`~synapse_lens.stress.StressConfig` of this run for layers of ``width``
        units (``k = 0``, the clean reference, is always part of the ablation curve)."""
        k = min(self.set_size(width), width)
        return StressConfig(
            ks=(0, *self.grid(width, full=True)), n_seeds=self.n_seeds,
            class_k=k, class_ks=(k,) if self.class_k is not None else self.grid(width),
            noise_k=k, sigmas=self.sigmas or DEFAULT_SIGMAS,
            sigma_cap=None if self.sigmas else SIGMA_CAP, noise_seeds=self.noise_seeds,
            weight_k=k, eps_values=self.eps_values or DEFAULT_EPS,
            eps_cap=None if self.eps_values else EPS_CAP, weight_seeds=self.n_seeds,
            biases=self.biases, seed=self.seed, batch_size=self.batch_size,
            max_length=self.max_length, scope="last")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields
        }
        return cls(**kwargs)


def default_stress_layers(layers: Sequence[int]) -> tuple[int, ...]:
    """The middle and the last of the analysed ``layers`` (one layer when there is one): a
    middle layer, where edits of [CLS] may be repaired by the layers above, and the layer the
    head reads. Each sweep condition at a middle layer re-runs the layers above it, so two
    layers keep a default run within minutes on 2 CPU cores."""
    ordered = sorted(layers)
    return tuple(sorted({ordered[(len(ordered) - 1) // 2], ordered[-1]}))


def _subsample(data: TextDataset, cap: int | None, seed: int) -> TextDataset:
    if cap is None or len(data) <= cap:
        return data
    from synapse_lens.data import train_test_split

    kept, _ = train_test_split(data, test_size=len(data) - cap, seed=seed)
    counts = np.bincount(kept.labels, minlength=len(kept.label_names))
    rare = [(kept.label_names[i], int(c)) for i, c in enumerate(counts) if 0 < c < 2]
    if rare:
        raise ValueError(f"max_examples={cap} leaves too few examples of {rare} (each class needs "
                         "at least 2 for the probe and evaluation splits); raise max_examples")
    return dataclasses.replace(kept, name=data.name)


def _write_tables(tables: dict[str, pd.DataFrame], directory: Path) -> None:
    directory.mkdir()
    for name, frame in tables.items():
        frame.to_csv(directory / f"{name}.csv", index=False, float_format="%.6g")


def check_out_dir(
    out_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    inputs: Sequence[str | os.PathLike[str]] = (),
    need_bytes: int = MIN_FREE_BYTES,
) -> Path:
    """Fail early (before any computation) unless ``out_dir`` may be written as a run directory:
    absent, empty, or an earlier run directory (its ``summary.json`` names the run schema)
    replaced only with ``overwrite``; never the current directory, an input or a parent of
    either (:func:`synapse_lens.atomic.check_output_dir`).

    Raises:
        FileExistsError / ValueError / PermissionError / NotADirectoryError / OSError: with the
            offending path and what is allowed.
    """
    return check_output_dir(out_dir, marker=SUMMARY_FILE, schema=RUN_SCHEMA,
                            overwrite=overwrite, inputs=inputs, need_bytes=need_bytes)


def _estimated_bytes(n_layers: int, d_model: int, n_classes: int) -> int:
    """A generous size estimate of a run directory (the rankings table dominates)."""
    ranking_rows = (n_layers + 1) * d_model * (n_classes + 1) * 2
    return MIN_FREE_BYTES + 80 * ranking_rows


def _check_classes(data: TextDataset) -> None:
    counts = np.bincount(data.labels, minlength=data.n_classes)
    rare = {data.label_names[i]: int(c) for i, c in enumerate(counts) if 0 < c < 2}
    if rare:
        present = {data.label_names[i]: int(c) for i, c in enumerate(counts) if c > 0}
        raise ValueError(f"classes {sorted(rare)} have a single example in the analysed data "
                         f"(counts {present}); each class needs at least 2 for the probe and "
                         "evaluation splits: add examples or drop the class")


def _rankings(config: RunConfig, model: Any, probes: Any, acts: Any, train: TextDataset,
              hooks: Sequence[str], *, progress: bool, batch_size: int,
              max_length: int) -> dict[str, list[Ranking]]:
    """Global and per-class rankings of every probed hook, per requested method (ranked on the
    probes' training examples, evaluated on the held-out ones)."""
    out: dict[str, list[Ranking]] = {}
    for method in config.rankings:
        if method == "probe":
            out[method] = probes.rankings()
        elif method == "probeless":
            out[method] = probes.probeless_rankings(acts)
        elif method == "probe_contribution":
            out[method] = probes.contribution_rankings(acts)
        else:
            logger.info("attribution rankings of %d hooks (one forward and backward pass per "
                        "batch)", len(hooks))
            out[method] = attribution_rankings(model, train, hooks, progress=progress,
                                               batch_size=batch_size, max_length=max_length)
    return out


def run_synapse(
    model: Any,
    data: TextDataset,
    out_dir: str | os.PathLike[str],
    config: RunConfig | None = None,
    *,
    overwrite: bool = False,
    inputs: Sequence[str | os.PathLike[str]] = (),
    extra_summary: dict[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Run the whole SYNAPSE pipeline and write a run directory (see module docstring).

    Every check that can be made without a forward pass runs first: the output directory (see
    :func:`check_out_dir`), the configuration against the model's widths and layers, the labels
    against the model's classes, the class counts.

    Args:
        model: a classifier from :func:`synapse_lens.load_classifier`.
        data: labelled texts (names aligned to the model's ``id2label``).
        out_dir: the run directory to create. It must not exist, be empty, or be an earlier
            run directory (then ``overwrite=True`` is required). It is written atomically: a
            failure leaves nothing new and an earlier run as it was.
        config: :class:`RunConfig` (defaults sized for MiniLM on 2 CPU cores).
        overwrite: replace an earlier run directory at ``out_dir``.
        inputs: further paths the output must not be or contain (the data file); the
            model's checkpoint directory is always protected.
        extra_summary: extra JSON-able fields for ``summary.json`` (e.g. the demo task).
        progress: tqdm progress bars.

    Returns:
        The run directory.

    Raises:
        ValueError: bad configuration for this model, labels the model does not know, too few
            examples, an output path the policy refuses.
        FileExistsError: ``out_dir`` holds other files, or an earlier run without
            ``overwrite``.

    Example:
        >>> run_synapse(model, ds, "runs/sms", RunConfig(ks=(1, 8)))  # doctest: +SKIP
    """
    config = config or RunConfig()
    info = classifier_info(model)
    protected = [*inputs, *([info.source] if info.source != "<in-memory>" else [])]
    check_out_dir(out_dir, overwrite=overwrite, inputs=protected,
                  need_bytes=_estimated_bytes(info.n_layers, info.d_model, info.n_classes))
    config.check(info.n_layers, info.d_model)
    data = _subsample(align_labels(data, info.id2label), config.max_examples, config.seed)
    _check_classes(data)
    ks = config.grid(info.d_model)
    logger.info("unit-set sizes k=%s of the width %d", ",".join(map(str, ks)), info.d_model)
    layers = range(info.n_layers) if config.layers is None else config.layers
    hooks = [info.names.embed] + [info.names.resid_post(layer) for layer in layers]
    batch: dict[str, Any] = {"batch_size": config.batch_size, "max_length": config.max_length}

    logger.info("caching [CLS] activations of %d texts at %d hook points", len(data), len(hooks))
    acts = cache_cls(model, data.texts, names=hooks, progress=progress,
                     dataset_fingerprint=data.fingerprint, **batch)
    probes = fit_probes(acts, data, config=ProbeConfig(test_size=config.test_size,
                                                        seed=config.seed), progress=progress)
    probe_rankings = probes.rankings()
    probeless = probes.probeless_rankings(acts)
    red = redundancy(probes, acts, seed=config.seed, progress=progress)

    eval_data = data.subset(probes.test_idx)
    eval_stats = acts.subset(probes.test_idx)
    by_method = _rankings(config, model, probes, acts, data.subset(probes.train_idx), hooks,
                          progress=progress, **batch)
    last = info.names.resid_post(max(layers))
    stress_layers = (default_stress_layers(layers) if config.stress_layers is None
                     else config.stress_layers)
    stress_hooks = {info.names.resid_post(layer) for layer in stress_layers}
    exact = []
    if config.exact and info.backend == "tl4-bridge":
        logger.info("exact single-unit ranking of %s (%d conditions)", last, info.width(last))
        exact = [exact_ranking(model, data.subset(probes.train_idx), last, progress=progress,
                               **batch)]
    elif config.exact:
        logger.info("exact ranking skipped: on TL 3.x every single-unit condition is a full "
                    "forward pass (%d of them); call synapse_lens.attribution.exact_ranking "
                    "to run it anyway", info.width(last))
    stress_cfg = config.stress_config(info.d_model)
    glob = [r for method in config.rankings for r in by_method[method]
            if r.target == GLOBAL and r.hook_name in stress_hooks] + exact
    sweep = {"n_seeds": config.n_seeds, "seed": config.seed, "metrics": ABLATION_METRICS,
             "progress": progress, **batch}
    first, *others = config.positions
    ablation = ablation_curve(model, eval_data, glob, stress_cfg.ks,
                              spec=Intervention("zero", position=first), **sweep)
    widths = {h: info.width(h) for h in stress_hooks}
    faith = faithfulness(ablation, widths=widths, rankings=glob, exact=exact)
    chosen = best_method(faith[faith["method"].isin(config.rankings)
                               & (faith["position"] == first)], last, default=config.rankings[0])
    logger.info("class-wise, all-position and redirection experiments use the %r ranking",
                chosen)
    chosen_glob = [r for r in glob if r.method == chosen]
    for position in others:  # the same edits elsewhere, for the chosen ranking
        ablation = pd.concat([ablation, ablation_curve(
            model, eval_data, chosen_glob, stress_cfg.ks,
            spec=Intervention("zero", position=position), **sweep)], ignore_index=True)
    if others:
        faith = faithfulness(ablation, widths=widths, rankings=glob, exact=exact)
    repair: dict[str, pd.DataFrame] = {}
    if set(config.positions) == set(POSITIONS):
        below = [k for k in stress_cfg.ks if 0 < k < info.d_model]
        repair["self_repair"], repair["self_repair_trace"] = self_repair(
            model, eval_data, chosen_glob, sorted({*below[-1:], info.d_model}),
            progress=progress, **batch)
    outliers = outlier_units(acts, hooks)
    stress = run_stress_tests(model, eval_data,
                              [r for r in by_method[chosen] if r.hook_name == last],
                              dataclasses.replace(stress_cfg, ablation=False),
                              stats=eval_stats, progress=progress)
    for name in ("redirection", "overlap"):  # say which ranking drove them, as the others do
        if name in stress and "method" not in stress[name]:
            stress[name] = stress[name].assign(method=chosen)
    run_edits = info.backend == "tl4-bridge"
    if run_edits:
        logger.info("targeted redirection in weight, activation and logit space at %s", last)
    else:
        logger.info("targeted redirection: classifier-weight and logit edits only; on TL 3.x "
                    "every activation or unit-bias condition is a full forward pass (call "
                    "synapse_lens.vulnerability.targeted_redirection to run them anyway)")
    vuln_cfg = VulnerabilityConfig(seed=config.seed)
    vuln = targeted_redirection(model, eval_data,
                                [r for r in by_method[chosen] if r.hook_name == last
                                 and r.target != GLOBAL],
                                stats=acts.subset(probes.train_idx),
                                labels=data.labels[probes.train_idx], config=vuln_cfg,
                                run_edits=run_edits, progress=progress, **batch)
    every_ranking = [r for method in by_method.values() for r in method] + exact
    tables = {
        "probes": probes.table,
        "selectivity": probes.selectivity(),
        "rankings": rankings_frame(every_ranking),
        "agreement": ranking_agreement(probe_rankings, probeless, list(ks)),
        "stability": bootstrap_stability(probes, acts, ks=list(ks), n_boot=config.n_boot,
                                         seed=config.seed, progress=progress),
        "redundancy": red.table,
        "redundancy_minimal": red.minimal,
        "ablation": ablation,
        "ablation_summary": summarize(ablation),
        "faithfulness": faith,
        "outliers": outliers,
        "outlier_ablation": outlier_ablation(
            model, eval_data, outliers[outliers["hook_name"].isin(stress_hooks)], **sweep),
        **repair,
        **stress,
        "vulnerability": vuln.profile.assign(method=chosen),
        "vulnerability_curves": vuln.curves.assign(method=chosen),
        "head_diagnostics": vuln.head,
    }
    clean_logits = predict_logits(model, eval_data.texts, **batch)
    predictions = clean_logits.argmax(-1).tolist()
    summary = {
        "schema": RUN_SCHEMA,
        "config": config.to_dict(),
        "model": {"architecture": info.architecture, "family": info.family,
                  "source": info.source, "fingerprint": info.fingerprint,
                  "n_layers": info.n_layers, "d_model": info.d_model,
                  "labels": list(info.id2label)},
        "data": {"name": data.name, "fingerprint": data.fingerprint, "n": len(data),
                 "n_eval": len(eval_data),
                 "class_counts": {name: int((data.labels == i).sum())
                                  for i, name in enumerate(data.label_names)}},
        "clean_accuracy": float(np.mean(np.asarray(predictions) == eval_data.labels)),
        "class_experiments_ranking": chosen,
        "grids": {  # what each stress test actually ran (extended grids included)
            "ks": [int(k) for k in stress_cfg.ks if k > 0],
            "positions": list(config.positions),
            "sigmas": sorted({float(v) for v in tables["noise"]["sigma"]}),
            "eps": sorted({float(v) for v in tables["redirection"]["eps"]}),
            "biases": sorted({float(v) for v in tables["redirection_logit"]["bias"]}),
            "vulnerability": {"margin": vuln_cfg.margin, "alphas": list(vuln_cfg.alphas),
                              "ks": sorted({int(k) for k in vuln.curves["k"].dropna()}),
                              "weight_scales": list(vuln_cfg.weight_scales),
                              "unit_scales": list(vuln_cfg.unit_scales),
                              "n_seeds": vuln_cfg.n_seeds, "position": vuln_cfg.position,
                              "run_edits": run_edits},
        },
        "exact_ranking": exact[0].hook_name if exact else None,
        "headline": headline(prepare(tables)),
        "examples": [{"text": eval_data.texts[i], "label": info.id2label[eval_data.labels[i]],
                      "prediction": info.id2label[predictions[i]]}
                     for i in range(min(12, len(eval_data)))],
        **(extra_summary or {}),
    }

    with atomic_directory(out_dir) as tmp:
        _write_tables(tables, tmp / "tables")
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        write_report(tmp)
    logger.info("run written to %s", out_dir)
    return Path(out_dir)
