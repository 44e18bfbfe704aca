"""The whole SYNAPSE pipeline on one model and one labelled dataset → a run directory.

``run_synapse`` chains the stages (cache → probe → rank → stress-test → report) with
:class:`RunConfig` defaults sized for a MiniLM-class model on 2 CPU cores, and writes, atomically:

```
run_dir/
  report.html      offline, self-contained
  summary.json     config, model and data fingerprints, headline numbers, examples
  tables/*.csv     probes, selectivity, rankings, agreement, stability, redundancy,
                   redundancy_minimal, ablation, ablation_summary, class_matrix, class_asymmetry,
                   overlap, noise, redirection, redirection_logit, minimal_bias
```
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from synapse_lens.activations import cache_cls, predict_logits
from synapse_lens.atomic import atomic_directory
from synapse_lens.data import TextDataset, align_labels
from synapse_lens.models import classifier_info
from synapse_lens.probes import ProbeConfig, fit_probes
from synapse_lens.rankings import GLOBAL, ranking_agreement, rankings_frame
from synapse_lens.redundancy import redundancy
from synapse_lens.report import headline, prepare, write_report
from synapse_lens.stability import bootstrap_stability
from synapse_lens.stress import StressConfig, run_stress_tests

logger = logging.getLogger(__name__)

SCHEMA = "synapse_lens.run/1"


@dataclass(frozen=True)
class RunConfig:
    """Settings of one SYNAPSE run (JSON round-trip; unknown keys are ignored on load).

    Attributes:
        layers: encoder layers to probe and rank (``None``: all); the embeddings output is
            always probed.
        stress_layers: layers whose rankings drive the ablation curves (``None``: every other
            analysed layer, ending with the last one; sweeps cost one forward pass per
            condition, so this keeps the default run within minutes on 2 CPU cores).
        ks: unit-set sizes for ablation curves, stability and agreement.
        n_seeds: random-k draws per ablation condition (for intervals; ≥ 5 recommended); also
            the weight-perturbation draws.
        class_k: units per set in the class matrix, noise and weight-redirection experiments
            (run on the last analysed layer).
        sigmas: noise levels (relative to each unit's clean standard deviation).
        noise_seeds: noise draws per level.
        eps_values: relative weight-perturbation sizes for redirection.
        biases: logit bias sizes for redirection.
        n_boot: bootstrap resamples for ranking stability.
        max_examples: cap on the texts analysed (stratified subsample; ``None``: all).
        test_size: probe held-out fraction; interventions are evaluated on that held-out part.
        batch_size, max_length: forward-pass batching and truncation.
        device: ``"cpu"`` or ``"cuda"``.
        seed: seeds every random choice of the run.
    """

    layers: tuple[int, ...] | None = None
    stress_layers: tuple[int, ...] | None = None
    ks: tuple[int, ...] = (8, 64, 384)
    n_seeds: int = 5
    class_k: int = 16
    sigmas: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0)
    noise_seeds: int = 2
    eps_values: tuple[float, ...] = (0.0, 0.1, 0.3, 1.0)
    biases: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0)
    n_boot: int = 5
    max_examples: int | None = 300
    test_size: float = 0.5
    batch_size: int = 32
    max_length: int = 64
    device: Literal["cpu", "cuda"] = "cpu"
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.ks or any(k <= 0 for k in self.ks):
            raise ValueError(f"ks must be positive unit counts, got {self.ks}")
        if self.n_seeds < 1 or self.n_boot < 1 or self.class_k < 1:
            raise ValueError("n_seeds, n_boot and class_k must be >= 1")
        if any(s < 0 for s in self.sigmas) or any(e < 0 for e in self.eps_values):
            raise ValueError("sigmas and eps_values must be >= 0")
        if self.max_examples is not None and self.max_examples < 20:
            raise ValueError(f"max_examples must be >= 20 (or None), got {self.max_examples}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return dataclasses.asdict(self)

    def stress_config(self, width: int) -> StressConfig:
        """The :class:`~synapse_lens.stress.StressConfig` of this run for layers of ``width``
        units (``k = 0``, the clean reference, is always part of the ablation curve)."""
        k = min(self.class_k, width)
        return StressConfig(
            ks=(0, *sorted(k for k in self.ks if k <= width)), n_seeds=self.n_seeds,
            class_k=k, noise_k=k, sigmas=self.sigmas, noise_seeds=self.noise_seeds,
            weight_k=k, eps_values=self.eps_values, weight_seeds=self.n_seeds,
            biases=self.biases, seed=self.seed, batch_size=self.batch_size,
            max_length=self.max_length, scope="last")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields
        }
        return cls(**kwargs)


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


def check_out_dir(out_dir: str | os.PathLike[str]) -> Path:
    """Fail early (before any computation) if ``out_dir`` cannot be created.

    Raises:
        NotADirectoryError / FileExistsError / PermissionError: with the offending path.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output path {str(out)!r} exists and is not a directory")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(f"cannot create {str(out)!r}: {str(parent)!r} is not a directory")
    try:
        probe = tempfile.mkdtemp(dir=parent, prefix=".synapse-write-check.")
    except OSError as err:
        raise PermissionError(f"output directory {str(parent)!r} is not writable: {err}") from err
    os.rmdir(probe)
    return out


def run_synapse(
    model: Any,
    data: TextDataset,
    out_dir: str | os.PathLike[str],
    config: RunConfig | None = None,
    *,
    extra_summary: dict[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Run the whole SYNAPSE pipeline and write a run directory (see module docstring).

    Args:
        model: a classifier from :func:`synapse_lens.load_classifier`.
        data: labelled texts (names aligned to the model's ``id2label``).
        out_dir: the run directory to create (replaced if it exists; nothing is written on
            failure).
        config: :class:`RunConfig` (defaults sized for MiniLM on 2 CPU cores).
        extra_summary: extra JSON-able fields for ``summary.json`` (e.g. the demo task).
        progress: tqdm progress bars.

    Returns:
        The run directory.

    Raises:
        ValueError: bad configuration, labels the model does not know, too few examples.

    Example:
        >>> run_synapse(model, ds, "runs/sms", RunConfig(ks=(1, 8)))  # doctest: +SKIP
    """
    config = config or RunConfig()
    check_out_dir(out_dir)
    info = classifier_info(model)
    data = _subsample(align_labels(data, info.id2label), config.max_examples, config.seed)
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
    k_small = [k for k in config.ks if k <= info.d_model]
    if not k_small:
        raise ValueError(f"every k in {config.ks} exceeds the layer width {info.d_model}")
    red = redundancy(probes, acts, seed=config.seed, progress=progress)

    eval_data = data.subset(probes.test_idx)
    last = info.names.resid_post(max(layers))
    stress_layers = (sorted(layers)[::-1][::2] if config.stress_layers is None
                     else config.stress_layers)
    stress_hooks = {info.names.resid_post(layer) for layer in stress_layers}
    stress_rankings = [r for r in probe_rankings
                       if (r.target == GLOBAL and r.hook_name in stress_hooks)
                       or r.hook_name == last]
    stress = run_stress_tests(model, eval_data, stress_rankings,
                              config.stress_config(info.d_model),
                              stats=acts.subset(probes.test_idx), progress=progress)
    tables = {
        "probes": probes.table,
        "selectivity": probes.selectivity(),
        "rankings": rankings_frame(probe_rankings + probeless),
        "agreement": ranking_agreement(probe_rankings, probeless, k_small),
        "stability": bootstrap_stability(probes, acts, ks=k_small, n_boot=config.n_boot,
                                         seed=config.seed, progress=progress),
        "redundancy": red.table,
        "redundancy_minimal": red.minimal,
        **stress,
    }
    clean_logits = predict_logits(model, eval_data.texts, **batch)
    predictions = clean_logits.argmax(-1).tolist()
    summary = {
        "schema": SCHEMA,
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
        "headline": headline(prepare(tables)),
        "examples": [{"text": eval_data.texts[i], "label": info.id2label[eval_data.labels[i]],
                      "prediction": info.id2label[predictions[i]]}
                     for i in range(min(12, len(eval_data)))],
        **(extra_summary or {}),
    }

    with atomic_directory(out_dir) as tmp:
        _write_tables(tables, tmp / "tables")
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        write_report(tmp)
    logger.info("run written to %s", out_dir)
    return Path(out_dir)
