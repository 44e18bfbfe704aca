"""Self-repair: how much of a [CLS]-only edit survives the layers above it.

Zeroing units of [CLS] at a middle layer may change nothing downstream, not because the model
is robust to losing them but because attention in the layers above rebuilds [CLS] from the
other positions, which still hold the information. :func:`self_repair` makes the same edit at
[CLS] only and at every position and compares:

* at the output — the mean KL(clean ‖ edited), the drop of the true-class probability and the
  flip rate; ``survival = kl_cls / kl_all``: the share of the all-position edit's effect a
  [CLS]-only edit keeps (near 0: repaired; 1: the edit's effect is all at [CLS]);
* along the way — the relative distance of the edited [CLS] vector from the clean one,
  ``‖h' − h‖ / ‖h‖`` (mean over examples) at the edited layer and every layer above;
  ``returned = 1 − distance_last / distance_edit`` for the [CLS]-only edit (1: [CLS] is back to
  the clean vector at the last layer).

Example:
    >>> summary, trace = self_repair(model, ds, [ranking_l3], ks=[192])  # doctest: +SKIP
    >>> summary[["layer", "k", "kl_cls", "kl_all", "survival", "returned"]]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from synapse_lens.activations import cache_cls
from synapse_lens.analysis.rankings import Ranking
from synapse_lens.data import TextDataset
from synapse_lens.interventions.hooks import zero_ablate
from synapse_lens.interventions.selection import check_rankings, select_units
from synapse_lens.models import classifier_info
from synapse_lens.runtime.options import ExecOptions, resolve

SUMMARY_COLUMNS = ["hook_name", "layer", "method", "k", "kl_cls", "kl_all", "survival",
                   "prob_drop_cls", "prob_drop_all", "flip_cls", "flip_all", "distance_edit",
                   "distance_last", "returned"]
TRACE_COLUMNS = ["hook_name", "layer", "method", "k", "position", "downstream_layer",
                 "downstream_hook", "distance"]


def _distance(edited: torch.Tensor, clean: torch.Tensor) -> float:
    diff = (edited.double() - clean.double()).norm(dim=1)
    return float((diff / clean.double().norm(dim=1).clamp_min(1e-12)).mean())


def _output(logits: torch.Tensor, clean: torch.Tensor, labels: np.ndarray) -> dict[str, float]:
    log_p = torch.log_softmax(clean.double(), dim=1)
    log_q = torch.log_softmax(logits.double(), dim=1)
    rows = np.arange(len(labels))
    return {"kl": float((log_p.exp() * (log_p - log_q)).sum(1).mean()),
            "prob_drop": float((log_p.exp().numpy()[rows, labels]
                                - log_q.exp().numpy()[rows, labels]).mean()),
            "flip": float((logits.argmax(1) != clean.argmax(1)).double().mean())}


def self_repair(
    model: Any,
    data: TextDataset,
    rankings: Sequence[Ranking],
    ks: Sequence[int],
    *,
    options: ExecOptions | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Zero-ablate the top-k units of each layer-output ranking at [CLS] only and at every
    position; compare their effects (see module docstring).

    Args:
        model, data: a classifier and labelled texts with its classes.
        rankings: rankings of layer outputs (``blocks.{l}.hook_resid_post``), e.g. the global
            ranking of each stress layer.
        ks: set sizes (each ``1 <= k <= width``).
        options: execution settings (:class:`~synapse_lens.ExecOptions`; default ``ExecOptions()``).

    Returns:
        ``(summary, trace)``: one row per (ranking, k) with :data:`SUMMARY_COLUMNS`, and one row
        per (ranking, k, position, downstream layer) with :data:`TRACE_COLUMNS`.

    Raises:
        ValueError: a ranking that is not of a layer output, k outside ``1..width``.

    Example:
        >>> summary, trace = self_repair(model, ds, rankings, ks=[19, 192])  # doctest: +SKIP
    """
    opts = resolve(options)
    info = classifier_info(model)
    items = check_rankings(model, rankings)
    outputs = {info.names.resid_post(layer): layer for layer in range(info.n_layers)}
    for r in items:
        if r.hook_name not in outputs:
            raise ValueError(f"self_repair needs rankings of layer outputs "
                             f"(blocks.L.hook_resid_post), got {r.hook_name!r}")
    k_values = sorted({int(k) for k in ks})
    for r in items:
        for k in k_values:
            select_units(r, k)  # ValueError outside 1..width
    if not k_values or k_values[0] < 1:
        raise ValueError(f"ks must be unit counts >= 1, got {list(ks)}")
    names = [*outputs, info.names.logits]
    clean = cache_cls(model, data.texts, names=names, options=opts.quiet())
    summary, trace = [], []
    jobs = [(r, k) for r in items for k in k_values]
    for r, k in tqdm(jobs, desc="self-repair", disable=not opts.progress):
        units = select_units(r, k)
        layer = outputs[r.hook_name]
        above = [n for n in outputs if outputs[n] >= layer]
        out: dict[str, dict[str, float]] = {}
        dist: dict[str, list[float]] = {}
        for position in ("cls", "all"):
            edit = [(r.hook_name, zero_ablate(model, r.hook_name, units, position=position))]
            acts = cache_cls(model, data.texts, names=[*above, info.names.logits],
                             fwd_hooks=edit, options=opts.quiet())
            out[position] = _output(acts[info.names.logits], clean[info.names.logits],
                                    data.labels)
            dist[position] = [_distance(acts[n], clean[n]) for n in above]
            trace += [(r.hook_name, layer, r.method, k, position, outputs[n], n, d)
                      for n, d in zip(above, dist[position])]
        kl_cls, kl_all = out["cls"]["kl"], out["all"]["kl"]
        first, last = dist["cls"][0], dist["cls"][-1]
        summary.append((r.hook_name, layer, r.method, k, kl_cls, kl_all,
                        kl_cls / kl_all if kl_all > 1e-12 else np.nan,
                        out["cls"]["prob_drop"], out["all"]["prob_drop"], out["cls"]["flip"],
                        out["all"]["flip"], first, last,
                        1 - last / first if first > 1e-12 else np.nan))
    return (pd.DataFrame(summary, columns=SUMMARY_COLUMNS),
            pd.DataFrame(trace, columns=TRACE_COLUMNS))
