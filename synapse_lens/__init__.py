"""synapse_lens: neuron-level robustness analysis of Transformer encoder classifiers (SYNAPSE),
as a TransformerLens plugin.

The pipeline stages are modules: ``models`` (load) → ``activations`` (cache [CLS]) → ``probes``
/ ``rankings`` / ``stability`` / ``redundancy`` (understand) → ``interventions`` / ``edits`` /
``sweeps`` / ``classwise`` / ``redirect`` / ``targeted`` / ``vulnerability`` (stress-test) →
``plots`` / ``report`` / ``pipeline`` / ``cli`` (show). The names below are re-exported lazily:
importing ``synapse_lens`` loads nothing heavy.

Example:
    >>> import synapse_lens as sl  # doctest: +SKIP
    >>> model = sl.load_classifier("path/to/checkpoint")  # doctest: +SKIP
    >>> acts = sl.cache_cls(model, texts)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "load_classifier": "synapse_lens.models",
    "load_head": "synapse_lens.models",
    "classifier_info": "synapse_lens.models",
    "ClassifierInfo": "synapse_lens.models",
    "HookNames": "synapse_lens.names",
    "TextDataset": "synapse_lens.data",
    "load_texts": "synapse_lens.data",
    "align_labels": "synapse_lens.data",
    "model_labels": "synapse_lens.data",
    "from_lists": "synapse_lens.data",
    "train_test_split": "synapse_lens.data",
    "cache_cls": "synapse_lens.activations",
    "predict_logits": "synapse_lens.activations",
    "ClsActivations": "synapse_lens.activations",
    "fit_probes": "synapse_lens.analysis.probes",
    "ProbeConfig": "synapse_lens.analysis.probes",
    "ProbeResults": "synapse_lens.analysis.probes",
    "load_probes": "synapse_lens.analysis.probes",
    "Ranking": "synapse_lens.analysis.rankings",
    "zero_ablate": "synapse_lens.interventions.hooks",
    "mean_ablate": "synapse_lens.interventions.hooks",
    "scale": "synapse_lens.interventions.hooks",
    "add_noise": "synapse_lens.interventions.hooks",
    "set_value": "synapse_lens.interventions.hooks",
    "patch_from": "synapse_lens.interventions.hooks",
    "ranking_hooks": "synapse_lens.interventions.selection",
    "ablation_curve": "synapse_lens.experiments.sweeps",
    "class_matrix": "synapse_lens.experiments.classwise",
    "noise_curve": "synapse_lens.experiments.sweeps",
    "redirection": "synapse_lens.experiments.redirect",
    "targeted_redirection": "synapse_lens.experiments.vulnerability",
    "VulnerabilityConfig": "synapse_lens.experiments.vulnerability",
    "steer": "synapse_lens.interventions.hooks",
    "summarize": "synapse_lens.experiments.engine",
    "run_synapse": "synapse_lens.pipeline.run",
    "RunConfig": "synapse_lens.pipeline.config",
    "RunResult": "synapse_lens.pipeline.result",
    "load_demo_classifier": "synapse_lens.demo.zoo",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'synapse_lens' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
