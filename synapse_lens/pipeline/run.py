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
import datetime
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synapse_lens import __version__
from synapse_lens.activations import cache_cls, predict_logits
from synapse_lens.analysis.attribution import attribution_rankings
from synapse_lens.analysis.probes import ProbeConfig, fit_probes
from synapse_lens.analysis.rankings import Ranking, ranking_agreement, rankings_frame
from synapse_lens.analysis.redundancy import redundancy
from synapse_lens.analysis.stability import bootstrap_stability
from synapse_lens.atomic import MIN_FREE_BYTES, atomic_directory, check_output_dir
from synapse_lens.data import TextDataset, align_labels, truncation_stats
from synapse_lens.experiments.engine import summarize
from synapse_lens.experiments.faithfulness import (
    best_method,
    exact_ranking,
    faithfulness,
    outlier_ablation,
    outlier_units,
)
from synapse_lens.experiments.selfrepair import self_repair
from synapse_lens.experiments.suite import run_stress_tests
from synapse_lens.experiments.sweeps import ablation_curve
from synapse_lens.experiments.vulnerability import VulnerabilityConfig, targeted_redirection
from synapse_lens.interventions.selection import Intervention
from synapse_lens.models import classifier_info
from synapse_lens.pipeline.config import (
    POSITIONS,
    RunConfig,
    default_stress_layers,
)
from synapse_lens.pipeline.result import RunResult
from synapse_lens.report import headline, prepare, write_report
from synapse_lens.runtime.options import ExecOptions
from synapse_lens.schema import GLOBAL, RUN_SCHEMA, SUMMARY_FILE, TABLES_DIR, save_tables

logger = logging.getLogger(__name__)

#: Metrics of the ablation curves (continuous ones first: they move before accuracy does).
ABLATION_METRICS = ("true_prob", "margin", "kl", "accuracy", "macro_f1", "flip_rate")


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


def _manifest_length(extra: dict[str, Any] | None) -> int | None:
    """The training length a demo classifier's manifest records (``zoo_manifest``)."""
    manifest = (extra or {}).get("zoo_manifest")
    value = ((manifest or {}).get("config") or {}).get("max_length") if isinstance(
        manifest, dict) else None
    return int(value) if isinstance(value, int) else None


def _check_classes(data: TextDataset) -> None:
    counts = np.bincount(data.labels, minlength=data.n_classes)
    rare = {data.label_names[i]: int(c) for i, c in enumerate(counts) if 0 < c < 2}
    if rare:
        present = {data.label_names[i]: int(c) for i, c in enumerate(counts) if c > 0}
        raise ValueError(f"classes {sorted(rare)} have a single example in the analysed data "
                         f"(counts {present}); each class needs at least 2 for the probe and "
                         "evaluation splits: add examples or drop the class")


def per_class_targets(data: TextDataset, max_classes: int | None) -> list[str]:
    """The classes given per-class work: every class with an example in ``data``, or, when more
    than ``max_classes`` have one, the ``max_classes`` most frequent (ties in class order);
    in class order."""
    counts = np.bincount(data.labels, minlength=data.n_classes)
    present = [int(c) for c in np.flatnonzero(counts)]
    if max_classes is not None and len(present) > max_classes:
        present = sorted(sorted(present, key=lambda c: (-counts[c], c))[:max_classes])
    return [data.label_names[c] for c in present]


def _rankings(config: RunConfig, model: Any, probes: Any, acts: Any, train: TextDataset,
              hooks: Sequence[str], targets: Sequence[str],
              opts: ExecOptions) -> dict[str, list[Ranking]]:
    """Global and per-class rankings (``targets``: :data:`GLOBAL` and the classes) of every
    probed hook, per requested method (ranked on the probes' training examples, evaluated on
    the held-out ones)."""
    out: dict[str, list[Ranking]] = {}
    for method in config.rankings:
        if method == "probe":
            out[method] = probes.rankings(targets)
        elif method == "probeless":
            out[method] = probes.probeless_rankings(acts, targets)
        elif method == "probe_contribution":
            out[method] = probes.contribution_rankings(acts, targets)
        else:
            logger.info("attribution rankings of %d hooks (one forward and backward pass per "
                        "batch)", len(hooks))
            out[method] = [r for r in attribution_rankings(model, train, hooks, options=opts)
                           if r.target in targets]
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
) -> RunResult:
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
        A :class:`~synapse_lens.pipeline.result.RunResult`: the run directory (path-like), its
        summary and its tables, read lazily.

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
    truncation = truncation_stats(model, data.texts, config.max_length)
    if truncation["n_truncated"]:
        logger.warning("%d of %d texts are longer than %d tokens and are cut there (by a median "
                       "of %g tokens, at most %d): the analysis sees only their beginning",
                       truncation["n_truncated"], truncation["n_texts"],
                       truncation["max_length"], truncation["cut_tokens_median"],
                       truncation["cut_tokens_max"])
    trained_length = info.trained_max_length or _manifest_length(extra_summary)
    if trained_length is not None and trained_length != config.max_length:
        logger.warning("the analysis reads at most %d tokens per text, but the classifier was "
                       "trained with %d: its predictions here may differ from its use",
                       config.max_length, trained_length)
    ks = config.grid(info.d_model)
    logger.info("unit-set sizes k=%s of the width %d", ",".join(map(str, ks)), info.d_model)
    layers = range(info.n_layers) if config.layers is None else config.layers
    hooks = ([info.names.embed] if config.with_embeddings else []) + [
        info.names.resid_post(layer) for layer in layers]
    opts = config.exec_options(progress=progress)

    logger.info("caching [CLS] activations of %d texts at %d hook points", len(data), len(hooks))
    acts = cache_cls(model, data.texts, names=hooks, options=opts,
                     dataset_fingerprint=data.fingerprint)
    probes = fit_probes(acts, data, config=ProbeConfig(test_size=config.test_size,
                                                        seed=config.seed), progress=progress)
    classes = per_class_targets(data, config.max_classes)
    n_present = int((np.bincount(data.labels, minlength=data.n_classes) > 0).sum())
    capped = len(classes) < n_present
    if capped:
        logger.info("per-class experiments cover the %d most frequent of the %d classes present "
                    "(max_classes=%d)", len(classes), n_present, config.max_classes)
    targets = [GLOBAL, *(c for c in probes.targets() if c in classes)]
    probe_rankings = probes.rankings(targets)
    probeless = probes.probeless_rankings(acts, targets)
    red = redundancy(probes, acts, seed=config.seed, progress=progress)

    eval_data = data.subset(probes.test_idx)
    eval_stats = acts.subset(probes.test_idx)
    by_method = _rankings(config, model, probes, acts, data.subset(probes.train_idx), hooks,
                          targets, opts)
    last = info.names.resid_post(max(layers))
    stress_layers = (default_stress_layers(layers) if config.stress_layers is None
                     else config.stress_layers)
    stress_hooks = {info.names.resid_post(layer) for layer in stress_layers}
    exact = []
    if config.exact and info.backend == "tl4-bridge":
        logger.info("exact single-unit ranking of %s (%d conditions)", last, info.width(last))
        exact = [exact_ranking(model, data.subset(probes.train_idx), last, options=opts)]
    elif config.exact:
        logger.info("exact ranking skipped: on TL 3.x every single-unit condition is a full "
                    "forward pass (%d of them); call "
                    "synapse_lens.experiments.faithfulness.exact_ranking to run it anyway",
                    info.width(last))
    stress_cfg = config.stress_config(info.d_model)
    glob = [r for method in config.rankings for r in by_method[method]
            if r.target == GLOBAL and r.hook_name in stress_hooks] + exact
    sweep: dict[str, Any] = {"n_seeds": config.n_seeds, "seed": config.seed,
                             "metrics": ABLATION_METRICS, "options": opts}
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
            model, eval_data, chosen_glob, sorted({*below[-1:], info.d_model}), options=opts)
    outliers = outlier_units(acts, hooks)
    stress = run_stress_tests(model, eval_data,
                              [r for r in by_method[chosen] if r.hook_name == last],
                              dataclasses.replace(stress_cfg, ablation=False),
                              stats=eval_stats, classes=classes, options=opts)
    for name in ("redirection", "overlap"):  # say which ranking drove them, as the others do
        if name in stress and "method" not in stress[name]:
            stress[name] = stress[name].assign(method=chosen)
    run_edits = info.backend == "tl4-bridge"
    if run_edits:
        logger.info("targeted redirection in weight, activation and logit space at %s", last)
    else:
        logger.info("targeted redirection: classifier-weight and logit edits only; on TL 3.x "
                    "every activation or unit-bias condition is a full forward pass (call "
                    "synapse_lens.experiments.vulnerability.targeted_redirection to run them "
                    "anyway)")
    vuln_cfg = VulnerabilityConfig(seed=config.seed)
    vuln = targeted_redirection(model, eval_data,
                                [r for r in by_method[chosen] if r.hook_name == last
                                 and r.target != GLOBAL],
                                stats=acts.subset(probes.train_idx),
                                labels=data.labels[probes.train_idx], config=vuln_cfg,
                                sources=classes if capped else None,
                                run_edits=run_edits, options=opts)
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
    clean_logits = predict_logits(model, eval_data.texts, options=opts.quiet())
    predictions = clean_logits.argmax(-1).tolist()
    summary = {
        "schema": RUN_SCHEMA,
        "config": config.to_dict(),
        "model": {"architecture": info.architecture, "family": info.family,
                  "source": info.source, "fingerprint": info.fingerprint,
                  "n_layers": info.n_layers, "d_model": info.d_model,
                  "labels": list(info.id2label), "pooling": info.pooling,
                  "trained_max_length": trained_length,
                  "device": str(next(model.parameters()).device)},
        "generated": {"synapse_lens": __version__,
                      "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat()},
        "data": {"name": data.name, "fingerprint": data.fingerprint, "n": len(data),
                 "n_eval": len(eval_data),
                 "class_counts": {name: int((data.labels == i).sum())
                                  for i, name in enumerate(data.label_names)},
                 "n_classes_present": n_present, "per_class": classes},
        "clean_accuracy": float(np.mean(np.asarray(predictions) == eval_data.labels)),
        "truncation": truncation,
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
        save_tables(tables, tmp / TABLES_DIR)
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        write_report(tmp)
    logger.info("run written to %s", out_dir)
    return RunResult(out_dir)
