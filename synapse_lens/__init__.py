"""synapse_lens: neuron-level robustness analysis of Transformer encoder classifiers (SYNAPSE),
as a TransformerLens plugin.

The pipeline stages are folders (docs/design.md): ``models`` (load) → ``runtime`` (run fast) →
``activations`` (cache [CLS]) → ``analysis`` (probes, rankings, stability, redundancy) →
``interventions`` (hooks, edits, unit selection) → ``experiments`` (sweeps, class-wise,
redirection, self-repair, vulnerability, faithfulness, the stress suite) → ``plots`` /
``report`` → ``pipeline`` → ``cli``; ``names``, ``schema``, ``data`` and ``metrics`` are shared
by all. The names below are re-exported lazily: importing ``synapse_lens`` loads nothing heavy.

Example:
    >>> import synapse_lens as sl  # doctest: +SKIP
    >>> model = sl.load_classifier("path/to/checkpoint")  # doctest: +SKIP
    >>> acts = sl.cache_cls(model, texts)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
    "probeless_ranking": "synapse_lens.analysis.rankings",
    "rankings_frame": "synapse_lens.analysis.rankings",
    "attribution_rankings": "synapse_lens.analysis.attribution",
    "bootstrap_stability": "synapse_lens.analysis.stability",
    "redundancy": "synapse_lens.analysis.redundancy",
    "zero_ablate": "synapse_lens.interventions.hooks",
    "mean_ablate": "synapse_lens.interventions.hooks",
    "scale": "synapse_lens.interventions.hooks",
    "add_noise": "synapse_lens.interventions.hooks",
    "set_value": "synapse_lens.interventions.hooks",
    "patch_from": "synapse_lens.interventions.hooks",
    "steer": "synapse_lens.interventions.hooks",
    "Intervention": "synapse_lens.interventions.selection",
    "ranking_hooks": "synapse_lens.interventions.selection",
    "select_units": "synapse_lens.interventions.selection",
    "Condition": "synapse_lens.experiments.engine",
    "run_conditions": "synapse_lens.experiments.engine",
    "clean_run": "synapse_lens.experiments.engine",
    "summarize": "synapse_lens.experiments.engine",
    "ablation_curve": "synapse_lens.experiments.sweeps",
    "ablation_conditions": "synapse_lens.experiments.sweeps",
    "noise_curve": "synapse_lens.experiments.sweeps",
    "class_matrix": "synapse_lens.experiments.classwise",
    "redirection": "synapse_lens.experiments.redirect",
    "faithfulness": "synapse_lens.experiments.faithfulness",
    "exact_ranking": "synapse_lens.experiments.faithfulness",
    "self_repair": "synapse_lens.experiments.selfrepair",
    "targeted_redirection": "synapse_lens.experiments.vulnerability",
    "VulnerabilityConfig": "synapse_lens.experiments.vulnerability",
    "run_stress_tests": "synapse_lens.experiments.suite",
    "StressConfig": "synapse_lens.experiments.suite",
    "write_report": "synapse_lens.report",
    "write_comparison_report": "synapse_lens.report",
    "read_run": "synapse_lens.schema",
    "run_synapse": "synapse_lens.pipeline.run",
    "RunConfig": "synapse_lens.pipeline.config",
    "RunResult": "synapse_lens.pipeline.result",
    "load_demo_classifier": "synapse_lens.demo.zoo",
    "ExecOptions": "synapse_lens.runtime.options",
}

if TYPE_CHECKING:  # the same names, eagerly, for type checkers and IDEs
    from synapse_lens.activations import (
        ClsActivations as ClsActivations,
        cache_cls as cache_cls,
        predict_logits as predict_logits,
    )
    from synapse_lens.analysis.attribution import (
        attribution_rankings as attribution_rankings,
    )
    from synapse_lens.analysis.probes import (
        ProbeConfig as ProbeConfig,
        ProbeResults as ProbeResults,
        fit_probes as fit_probes,
        load_probes as load_probes,
    )
    from synapse_lens.analysis.rankings import (
        Ranking as Ranking,
        probeless_ranking as probeless_ranking,
        rankings_frame as rankings_frame,
    )
    from synapse_lens.analysis.redundancy import (
        redundancy as redundancy,
    )
    from synapse_lens.analysis.stability import (
        bootstrap_stability as bootstrap_stability,
    )
    from synapse_lens.data import (
        TextDataset as TextDataset,
        align_labels as align_labels,
        from_lists as from_lists,
        load_texts as load_texts,
        model_labels as model_labels,
        train_test_split as train_test_split,
    )
    from synapse_lens.demo.zoo import (
        load_demo_classifier as load_demo_classifier,
    )
    from synapse_lens.experiments.classwise import (
        class_matrix as class_matrix,
    )
    from synapse_lens.experiments.engine import (
        Condition as Condition,
        clean_run as clean_run,
        run_conditions as run_conditions,
        summarize as summarize,
    )
    from synapse_lens.experiments.faithfulness import (
        exact_ranking as exact_ranking,
        faithfulness as faithfulness,
    )
    from synapse_lens.experiments.redirect import (
        redirection as redirection,
    )
    from synapse_lens.experiments.selfrepair import (
        self_repair as self_repair,
    )
    from synapse_lens.experiments.suite import (
        StressConfig as StressConfig,
        run_stress_tests as run_stress_tests,
    )
    from synapse_lens.experiments.sweeps import (
        ablation_conditions as ablation_conditions,
        ablation_curve as ablation_curve,
        noise_curve as noise_curve,
    )
    from synapse_lens.experiments.vulnerability import (
        VulnerabilityConfig as VulnerabilityConfig,
        targeted_redirection as targeted_redirection,
    )
    from synapse_lens.interventions.hooks import (
        add_noise as add_noise,
        mean_ablate as mean_ablate,
        patch_from as patch_from,
        scale as scale,
        set_value as set_value,
        steer as steer,
        zero_ablate as zero_ablate,
    )
    from synapse_lens.interventions.selection import (
        Intervention as Intervention,
        ranking_hooks as ranking_hooks,
        select_units as select_units,
    )
    from synapse_lens.models import (
        ClassifierInfo as ClassifierInfo,
        classifier_info as classifier_info,
        load_classifier as load_classifier,
        load_head as load_head,
    )
    from synapse_lens.names import (
        HookNames as HookNames,
    )
    from synapse_lens.pipeline.config import (
        RunConfig as RunConfig,
    )
    from synapse_lens.pipeline.result import (
        RunResult as RunResult,
    )
    from synapse_lens.pipeline.run import (
        run_synapse as run_synapse,
    )
    from synapse_lens.report import (
        write_comparison_report as write_comparison_report,
        write_report as write_report,
    )
    from synapse_lens.runtime.options import (
        ExecOptions as ExecOptions,
    )
    from synapse_lens.schema import (
        read_run as read_run,
    )

__all__ = [
    "ClassifierInfo",
    "ClsActivations",
    "Condition",
    "ExecOptions",
    "HookNames",
    "Intervention",
    "ProbeConfig",
    "ProbeResults",
    "Ranking",
    "RunConfig",
    "RunResult",
    "StressConfig",
    "TextDataset",
    "VulnerabilityConfig",
    "ablation_conditions",
    "ablation_curve",
    "add_noise",
    "align_labels",
    "attribution_rankings",
    "bootstrap_stability",
    "cache_cls",
    "class_matrix",
    "classifier_info",
    "clean_run",
    "exact_ranking",
    "faithfulness",
    "fit_probes",
    "from_lists",
    "load_classifier",
    "load_demo_classifier",
    "load_head",
    "load_probes",
    "load_texts",
    "mean_ablate",
    "model_labels",
    "noise_curve",
    "patch_from",
    "predict_logits",
    "probeless_ranking",
    "ranking_hooks",
    "rankings_frame",
    "read_run",
    "redirection",
    "redundancy",
    "run_conditions",
    "run_stress_tests",
    "run_synapse",
    "scale",
    "select_units",
    "self_repair",
    "set_value",
    "steer",
    "summarize",
    "targeted_redirection",
    "train_test_split",
    "write_comparison_report",
    "write_report",
    "zero_ablate",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'synapse_lens' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
