"""How stable is a neuron ranking? Bootstrap resamples of the training split, re-ranked, and the
Jaccard overlap of their top-k sets with the full-data ranking, beside a random-k baseline.

Example:
    >>> results = fit_probes(acts, ds)  # doctest: +SKIP
    >>> df = bootstrap_stability(results, acts, ks=[5, 10], n_boot=10, seed=0)  # doctest: +SKIP
    >>> stability_summary(df)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from jaxtyping import Int
from tqdm.auto import tqdm

from synapse_lens.activations import ClsActivations
from synapse_lens.analysis.probes import ProbeResults, check_activations, coef_scores, fit_probe
from synapse_lens.analysis.rankings import probeless_scores
from synapse_lens.schema import GLOBAL

STABILITY_COLUMNS = ["hook_name", "layer", "class", "method", "k", "resample", "jaccard"]
SUMMARY_COLUMNS = ["hook_name", "layer", "class", "method", "k", "mean_jaccard", "std_jaccard",
                   "n_resamples"]
Methods = Sequence[str]


def stratified_bootstrap(
    labels: Int[np.ndarray, " n"], idx: Int[np.ndarray, " m"], rng: np.random.Generator
) -> Int[np.ndarray, " m"]:
    """Resample ``idx`` with replacement within each class (class counts kept), sorted.

    Example:
        >>> stratified_bootstrap(y, train_idx, np.random.default_rng(0))  # doctest: +SKIP
    """
    parts = []
    for cls in np.unique(labels[idx]):
        members = idx[labels[idx] == cls]
        parts.append(rng.choice(members, size=members.size, replace=True))
    return np.sort(np.concatenate(parts)).astype(np.int64)


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    sa, sb = set(a.tolist()), set(b.tolist())
    union = sa | sb
    return len(sa & sb) / len(union) if union else 1.0


def _check_ks(ks: Sequence[int], widths: dict[str, int]) -> list[int]:
    ks = [int(k) for k in ks]
    if not ks:
        raise ValueError("ks is empty: give at least one top-k size")
    narrowest = min(widths.values())
    bad = [k for k in ks if not 0 < k <= narrowest]
    if bad:
        raise ValueError(f"k values {bad} out of range: 0 < k <= width ({narrowest}, the "
                         "narrowest probed hook)")
    return sorted(set(ks))


def bootstrap_stability(
    results: ProbeResults,
    acts: ClsActivations,
    *,
    ks: Sequence[int] = (5, 10, 20),
    n_boot: int = 10,
    seed: int = 0,
    methods: Methods = ("probe", "probeless"),
    targets: Sequence[str] = (GLOBAL,),
    progress: bool = False,
) -> pd.DataFrame:
    """Bootstrap stability of top-k neuron sets, per hook point.

    For each resample ``b`` (``np.random.default_rng([seed, b])``) the training split is
    resampled with replacement within each class; the probe (same :class:`ProbeConfig`) and /
    or the probeless scores are recomputed, and the top-k set is compared with the ranking from
    the full training split by Jaccard similarity. Method ``"random"`` rows give the baseline:
    a random k-set drawn from the same generator against the full-data probe top-k.

    Args:
        results: fitted probes (:func:`~synapse_lens.analysis.probes.fit_probes`).
        acts: the activations they were fitted on.
        ks: top-k sizes (``0 < k <= width`` of every probed hook).
        n_boot: number of resamples (>= 1).
        seed: seeds the resamples and the random baseline.
        methods: any of ``"probe"``, ``"probeless"``.
        targets: :data:`GLOBAL` and / or class names.
        progress: tqdm progress bar.

    Returns:
        Tidy table, columns ``hook_name``, ``layer``, ``class``, ``method`` (``"probe"``,
        ``"probeless"``, ``"random"``), ``k``, ``resample`` (0..n_boot-1), ``jaccard``;
        sorted by layer, hook_name, class, method, k, resample.

    Raises:
        ValueError: activations that do not match ``results``, bad ``ks``/``n_boot``/methods,
            unknown classes.

    Example:
        >>> bootstrap_stability(results, acts, ks=[10], n_boot=20, seed=1)  # doctest: +SKIP
    """
    check_activations(results, acts)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive int, got {n_boot!r}")
    unknown = [m for m in methods if m not in ("probe", "probeless")]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of ('probe', 'probeless'), got "
                         f"{list(methods)}")
    class_ids = {t: results.class_id(t) for t in targets}  # ValueError on unknown classes
    widths = {name: acts[name].shape[1] for name in results.names}
    ks = _check_ks(ks, widths)
    y, train = results.labels, results.train_idx
    refs: dict[tuple[str, str, str], np.ndarray] = {}
    for name in results.names:
        x_train = acts.numpy(name)[train]
        for t, cid in class_ids.items():
            refs[(name, t, "probe")] = results.ranking(name, t).order()
            refs[(name, t, "probeless")] = np.argsort(
                -probeless_scores(x_train, y[train], cid), kind="stable")
    rows = []
    for b in tqdm(range(n_boot), desc="bootstrap", disable=not progress):
        rng = np.random.default_rng([seed, b])
        sample = stratified_bootstrap(y, train, rng)
        for name in results.names:
            x = acts.numpy(name)[sample]
            layer = results.layers[name]
            orders: dict[tuple[str, str], np.ndarray] = {}
            if "probe" in methods:
                probe = fit_probe(x, y[sample], results.config)
                coef = np.asarray(probe[-1].coef_, dtype=np.float64)
                for t, cid in class_ids.items():
                    orders[(t, "probe")] = np.argsort(
                        -coef_scores(coef, probe[-1].classes_, cid), kind="stable")
            if "probeless" in methods:
                for t, cid in class_ids.items():
                    orders[(t, "probeless")] = np.argsort(
                        -probeless_scores(x, y[sample], cid), kind="stable")
            perm = rng.permutation(widths[name])
            for t in class_ids:
                for k in ks:
                    for method in methods:
                        rows.append((name, layer, t, method, k, b, _jaccard(
                            orders[(t, method)][:k], refs[(name, t, method)][:k])))
                    rows.append((name, layer, t, "random", k, b,
                                 _jaccard(perm[:k], refs[(name, t, "probe")][:k])))
    df = pd.DataFrame(rows, columns=STABILITY_COLUMNS)
    return df.sort_values(["layer", "hook_name", "class", "method", "k", "resample"],
                          kind="stable").reset_index(drop=True)


def stability_summary(stability: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of the Jaccard over resamples.

    Args:
        stability: a :func:`bootstrap_stability` table.

    Returns:
        Columns ``hook_name``, ``layer``, ``class``, ``method``, ``k``, ``mean_jaccard``,
        ``std_jaccard`` (ddof 0), ``n_resamples``; sorted by layer, hook_name, class, method, k.

    Raises:
        ValueError: a table without the :func:`bootstrap_stability` columns.

    Example:
        >>> stability_summary(bootstrap_stability(results, acts))  # doctest: +SKIP
    """
    missing = [c for c in STABILITY_COLUMNS if c not in stability.columns]
    if missing:
        raise ValueError(f"not a bootstrap_stability table: missing columns {missing}")
    keys = ["hook_name", "layer", "class", "method", "k"]
    out = stability.groupby(keys, sort=True)["jaccard"].agg(
        mean_jaccard="mean", std_jaccard=lambda s: float(np.std(s)), n_resamples="size"
    ).reset_index()
    return out.sort_values(["layer", "hook_name", "class", "method", "k"],
                           kind="stable").reset_index(drop=True)[SUMMARY_COLUMNS]
