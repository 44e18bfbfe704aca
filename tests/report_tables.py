"""Synthetic run tables for the plot and report tests, with the columns the analysis modules
document. Tables that pure functions can make without a model (rankings, agreement, overlap,
logit redirection, minimal biases) come from those functions; the others are built here with
controlled numbers (so that tests can change them and watch the report change)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from synapse_lens.analysis.rankings import GLOBAL, Ranking, ranking_agreement, rankings_frame
from synapse_lens.experiments.classwise import topk_overlap
from synapse_lens.experiments.engine import CleanRun
from synapse_lens.experiments.faithfulness import faithfulness
from synapse_lens.experiments.redirect import logit_redirection, minimal_biases
from synapse_lens.experiments.vulnerability import CURVE_COLUMNS, head_diagnostics, profile

HOOKS = (("blocks.0.hook_resid_pre", -1), ("blocks.0.hook_resid_post", 0),
         ("blocks.1.hook_resid_post", 1))
WIDTH = 16
ALL = "__all__"


def _probes(acc: Sequence[float]) -> pd.DataFrame:
    rows = []
    for (hook, layer), a in zip(HOOKS, acc):
        for task, split, value in (("real", "train", min(1.0, a + 0.03)), ("real", "test", a),
                                   ("control", "train", 0.7), ("control", "test", 0.5)):
            for metric, v in (("accuracy", value), ("macro_f1", value - 0.02)):
                rows.append((hook, layer, task, split, metric, v))
    return pd.DataFrame(rows, columns=["hook_name", "layer", "task", "split", "metric", "value"])


def _rankings(classes: Sequence[str], rng: np.random.Generator) -> tuple[list[Ranking],
                                                                          list[Ranking]]:
    probe, probeless = [], []
    for hook, layer in HOOKS:
        for target in (GLOBAL, *classes):
            probe.append(Ranking(hook, layer, rng.normal(size=WIDTH), target, "probe"))
            probeless.append(Ranking(hook, layer, rng.normal(size=WIDTH), target, "probeless"))
    return probe, probeless


def _stability(rng: np.random.Generator) -> pd.DataFrame:
    rows = [(hook, layer, GLOBAL, method, k, b, float(rng.uniform(lo, lo + 0.2)))
            for hook, layer in HOOKS for method, lo in (("probe", 0.7), ("probeless", 0.5),
                                                        ("random", 0.05))
            for k in (2, 4) for b in range(3)]
    return pd.DataFrame(rows, columns=["hook_name", "layer", "class", "method", "k", "resample",
                                       "jaccard"])


def _redundancy(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    scopes = [("layer", hook, layer, WIDTH) for hook, layer in HOOKS]
    scopes.append(("all", ALL, pd.NA, WIDTH * len(HOOKS)))
    for scope, hook, layer, width in scopes:
        full = 0.9
        for percent in (5.0, 10.0, 25.0, 50.0, 100.0):
            k = max(1, min(width, math.ceil(percent / 100 * width - 1e-9)))
            top = full if percent >= 25 else full * (0.8 + percent / 100)
            rows.append((scope, hook, layer, "top", 0, percent, k, width, top, full, top / full))
            for draw in range(2):
                acc = full * min(1.0, 0.6 + percent / 200 + float(rng.uniform(0, 0.05)))
                rows.append((scope, hook, layer, "random", draw, percent, k, width, acc, full,
                             acc / full))
    df = pd.DataFrame(rows, columns=["scope", "hook_name", "layer", "selection", "draw",
                                     "percent", "k", "width", "accuracy", "full_accuracy",
                                     "kept"])
    return df.astype({"layer": "Int64"})


def _ablation(rng: np.random.Generator, top_drop: float) -> pd.DataFrame:
    rows, clean = [], 0.9
    for position, boost in (("cls", 1.0), ("all", 3.0)):
        for hook, layer in HOOKS[1:]:
            for order in ("top", "random", "bottom"):
                seeds = list(range(5)) if order == "random" else [None]
                for k in (0, 2, 4, 8):
                    for seed in seeds:
                        scale = boost * {"top": top_drop * (1 + layer), "random": 0.02,
                                         "bottom": 0.01}[order]
                        acc = clean - (0.0 if k == 0 else scale * k / 8
                                       + (float(rng.uniform(0, 0.02)) if seed is not None else 0))
                        for metric, value, base in (("accuracy", acc, clean),
                                                    ("true_prob", acc - 0.05, clean - 0.05),
                                                    ("flip_rate", clean - acc, 0.0)):
                            rows.append((hook, layer, GLOBAL, "probe", position, order, k, seed,
                                         metric, ALL, value, base))
    df = pd.DataFrame(rows, columns=["hook_name", "layer", "ranking", "method", "position",
                                     "order", "k", "seed", "metric", "class", "value",
                                     "clean_value"])
    return df.astype({"seed": "Int64"})


def _class_matrix(classes: Sequence[str], fragile: str) -> pd.DataFrame:
    hook, layer = HOOKS[-1]
    rows = []
    for k in (2, 4):
        for a in classes:
            for c in classes:
                drop = ((0.6 if c == fragile else 0.0) if a == c else 0.05) * k / 4
                for metric in ("class_true_prob", "recall"):
                    rows.append((hook, layer, "probe", a, "top", k, None, metric, c, 0.9 - drop,
                                 0.9, -drop))
        for seed in range(5):
            for c in classes:
                drop = 0.01 * seed * k / 4
                for metric in ("class_true_prob", "recall"):
                    rows.append((hook, layer, "probe", "__random__", "random", k, seed, metric,
                                 c, 0.9 - drop, 0.9, -drop))
    return pd.DataFrame(rows, columns=["hook_name", "layer", "method", "ablated_class", "order",
                                       "k", "seed", "metric", "class", "value", "clean_value",
                                       "delta"]).astype({"seed": "Int64"})


def _noise(rng: np.random.Generator) -> pd.DataFrame:
    hook, layer = HOOKS[-1]
    rows = []
    for units, k, slope in (("top", 4, 0.15), ("random", 4, 0.03), ("all", WIDTH, 0.2)):
        for sigma in (0.0, 0.5, 1.0, 2.0):
            for seed in range(3):
                acc = 0.9 - slope * sigma - (float(rng.uniform(0, 0.02)) if sigma else 0.0)
                rows.append((hook, layer, GLOBAL, "probe", units, k, sigma, seed, "accuracy",
                             ALL, acc, 0.9))
    return pd.DataFrame(rows, columns=["hook_name", "layer", "ranking", "method", "units", "k",
                                       "sigma", "seed", "metric", "class", "value",
                                       "clean_value"])


def _weights(classes: Sequence[str], rng: np.random.Generator) -> pd.DataFrame:
    hook, layer = HOOKS[-1]
    rows = []
    edits = [("top_units", hook, layer, GLOBAL, 4, 0.6), ("random_units", hook, layer, GLOBAL, 4,
                                                          0.1)]
    edits += [("class_row", "classifier.hook_out", 2, c, None, 0.3 + 0.1 * i)
              for i, c in enumerate(classes)]
    for edit, h, lay, target, k, slope in edits:
        for eps in (0.0, 0.1, 0.5):
            for seed in range(3):
                flip = slope * eps + (float(rng.uniform(0, 0.02)) if eps else 0.0)
                for metric, value, base in (("flip_rate", flip, 0.0),
                                            ("accuracy", 0.9 - flip, 0.9)):
                    rows.append((edit, h, lay, target, k, eps, seed, metric, ALL, value, base))
    df = pd.DataFrame(rows, columns=["edit", "hook_name", "layer", "target", "k", "eps", "seed",
                                     "metric", "class", "value", "clean_value"])
    return df.astype({"k": "Int64"})


def _curve(space: str, edit: str, unit: str, pairs: list[tuple[str, str]], k: int | None,
           sizes: Sequence[float], targeted: Sequence[float], random: Sequence[float] | None,
           hook: tuple[str, int | None] = ("logits", None)) -> list[dict]:
    rows = []
    for source, target in pairs:
        base = {"space": space, "edit": edit, "hook_name": hook[0], "layer": hook[1],
                "position": "cls" if space == "activation" else None, "target": target,
                "source": source, "k": k, "size_unit": unit, "n": 20}
        rows += [{**base, "control": "targeted", "size": s, "seed": None, "rate": r}
                 for s, r in zip(sizes, targeted)]
        for seed in (0, 1):
            rows += [{**base, "control": "random", "size": s, "seed": seed, "rate": r}
                     for s, r in zip(sizes, random or [])]
    return rows


def vulnerability_curves(classes: Sequence[str], steer_targeted: Sequence[float] = (
        0.0, 0.1, 0.6, 1.0), steer_random: Sequence[float] = (0.0, 0.0, 0.0, 0.55)
                         ) -> pd.DataFrame:
    """Redirection curves with controlled numbers: the classifier edit reaches 50 % at 0.4
    (random never), steering at alpha 4 (random at 16 with the defaults), the logit bias at 2
    (random never)."""
    pairs = [(s, t) for t in classes for s in classes if s != t]
    hook = (HOOKS[-1][0], HOOKS[-1][1])
    rows = (_curve("weight", "classifier_set", "relative_frobenius", pairs, None,
                   [0.1, 0.2, 0.4, 0.8], [0.0, 0.2, 0.6, 1.0], [0.0, 0.0, 0.0, 0.05],
                   ("classifier.weight", 2))
            + _curve("weight", "classifier_example", "relative_frobenius", pairs, None,
                     [0.05, 0.1, 0.3], [0.2, 0.5, 1.0], None, ("classifier.weight", 2))
            + _curve("weight", "unit_bias", "relative_norm", pairs, 2, [5.0, 10.0, 20.0],
                     [0.0, 0.3, 0.9], [0.0, 0.0, 0.0], hook)
            + _curve("activation", "steer", "alpha", pairs, 2, [1, 2, 4, 16], steer_targeted,
                     steer_random, hook)
            + _curve("activation", "scale", "alpha", pairs, 2, [1, 2, 4, 16], [0.0] * 4,
                     [0.0] * 4, hook)
            + _curve("logit", "bias", "logit_norm", pairs, None, [1.0, 2.0, 4.0],
                     [0.1, 0.5, 1.0], [0.0, 0.2, 0.4]))
    df = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    for col in ("k", "seed", "layer", "n"):
        df[col] = df[col].astype("Int64")
    return df


def synthetic_tables(classes: Sequence[str] = ("ham", "spam"), *, seed: int = 0,
                     probe_acc: Sequence[float] = (0.6, 0.8, 0.95), top_drop: float = 0.3,
                     fragile: str | None = None) -> dict[str, pd.DataFrame]:
    """Every table of a run (raw, as the pipeline saves them), for ``classes``."""
    rng = np.random.default_rng(seed)
    probe, probeless = _rankings(classes, rng)
    per_class = [r for r in probe if r.target != GLOBAL]
    logits = torch.tensor(rng.normal(size=(40, len(classes))), dtype=torch.float32)
    labels = np.asarray(rng.integers(0, len(classes), size=40), dtype=np.int64)
    clean = CleanRun(logits, labels, tuple(classes), "model-fp", "data-fp")
    ablation = _ablation(rng, top_drop)
    return {
        "probes": _probes(probe_acc),
        "rankings": rankings_frame(probe + probeless),
        "agreement": ranking_agreement(probe, probeless, [2, 4]),
        "stability": _stability(rng),
        "redundancy": _redundancy(rng),
        "ablation": ablation,
        "faithfulness": faithfulness(ablation, widths={h: WIDTH for h, _ in HOOKS},
                                     metrics=["accuracy"]),
        "outliers": pd.DataFrame({"hook_name": [HOOKS[1][0]], "layer": [HOOKS[1][1]],
                                  "neuron": [3], "mean_abs": [4.0], "median_abs": [0.1],
                                  "ratio": [40.0]}),
        "class_matrix": _class_matrix(classes, fragile or classes[-1]),
        "overlap": topk_overlap(per_class, [4]),
        "noise": _noise(rng),
        "redirection": _weights(classes, rng),
        "redirection_logit": logit_redirection(clean, [0.0, 0.5, 1.0, 2.0]),
        "minimal_bias": minimal_biases(clean),
        "vulnerability": profile(vulnerability_curves(classes)),
        "vulnerability_curves": vulnerability_curves(classes),
        "head_diagnostics": head_diagnostics(
            torch.tensor(rng.uniform(-0.5, 0.5, size=(40, WIDTH)), dtype=torch.float32), clean),
    }
