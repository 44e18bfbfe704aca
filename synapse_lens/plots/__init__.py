"""Plotly figures from synapse_lens result tables: pure functions, ``DataFrame -> Figure``.

Each function reads one tidy table (columns as documented by the module that produced it),
checks the columns it needs (``ValueError`` naming the missing ones) and returns a
:class:`plotly.graph_objects.Figure`. Nothing is shown or written; this package knows only
pandas and plotly. Labels taken from the data (class names, hook names, run labels) are
HTML-escaped, since plotly renders a subset of HTML in text.

Tables with repetitions (ablation, noise, weight redirection) are passed through
:func:`synapse_lens.experiments.engine.summarize` first.

Example:
    >>> from synapse_lens.plots import probe_figure
    >>> fig = probe_figure(fit_probes(acts, ds).table)  # doctest: +SKIP
    >>> fig.show()  # doctest: +SKIP
"""

from synapse_lens.plots._base import NothingToPlot, hook_order
from synapse_lens.plots.analysis import (
    agreement_figure,
    faithfulness_figure,
    probe_figure,
    ranking_figure,
    redundancy_figure,
    stability_figure,
)
from synapse_lens.plots.classes import class_matrix_figure, overlap_figure
from synapse_lens.plots.compare import (
    compare_ablation_figure,
    compare_asymmetry_figure,
    compare_probe_figure,
    compare_redundancy_figure,
)
from synapse_lens.plots.redirection import (
    logit_redirection_figure,
    minimal_bias_figure,
    weight_redirection_figure,
)
from synapse_lens.plots.stress import ablation_figure, noise_figure
from synapse_lens.plots.vulnerability import vulnerability_figure

__all__ = [
    "NothingToPlot",
    "ablation_figure",
    "agreement_figure",
    "class_matrix_figure",
    "compare_ablation_figure",
    "compare_asymmetry_figure",
    "compare_probe_figure",
    "compare_redundancy_figure",
    "faithfulness_figure",
    "hook_order",
    "logit_redirection_figure",
    "minimal_bias_figure",
    "noise_figure",
    "overlap_figure",
    "probe_figure",
    "ranking_figure",
    "redundancy_figure",
    "stability_figure",
    "vulnerability_figure",
    "weight_redirection_figure",
]
