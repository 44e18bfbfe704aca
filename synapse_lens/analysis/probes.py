"""Per-hook linear probes on cached [CLS] activations, with a control task, and the neuron
rankings read off their standardised coefficients.

One probe per hook point: ``Pipeline(StandardScaler(), LogisticRegression())`` built by
:func:`make_probe` (the only place that knows scikit-learn's penalty API). The control task
(Hewitt & Liang 2019) trains the same probe on labels permuted with the run's seed; selectivity
is the real task's score minus the control's.

Example:
    >>> acts = cache_cls(model, ds.texts)  # doctest: +SKIP
    >>> results = fit_probes(acts, ds, seed=0)  # doctest: +SKIP
    >>> results.table.query("task == 'real' and split == 'test' and metric == 'accuracy'")
    ...     # doctest: +SKIP
    >>> results.ranking(acts.names[-1], "spam").top(10)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from jaxtyping import Float, Int
from tqdm.auto import tqdm

from synapse_lens.activations import ClsActivations
from synapse_lens.analysis.rankings import Ranking, probeless_ranking
from synapse_lens.data import TextDataset, stratified_split
from synapse_lens.schema import GLOBAL, PROBES_FILE, PROBES_SCHEMA

logger = logging.getLogger(__name__)

Penalty = Literal["l2", "l1", "elasticnet"]
PROBE_COLUMNS = ["hook_name", "layer", "task", "split", "metric", "value", "constant"]
SELECTIVITY_COLUMNS = ["hook_name", "layer", "metric", "real", "control", "selectivity"]


@dataclass(frozen=True)
class ProbeConfig:
    """How probes are built and evaluated.

    Attributes:
        penalty: ``"l2"``, ``"l1"`` or ``"elasticnet"``.
        C: inverse regularisation strength (> 0).
        l1_ratio: L1 share for ``"elasticnet"`` (0 < l1_ratio < 1).
        max_iter: solver iterations.
        test_size: held-out fraction for the stratified split.
        control: also train the control task (permuted labels).
        seed: seeds the split, the control permutation and the solver.
    """

    penalty: Penalty = "l2"
    C: float = 1.0
    l1_ratio: float = 0.5
    max_iter: int = 2000
    test_size: float = 0.25
    control: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.penalty not in ("l2", "l1", "elasticnet"):
            raise ValueError(f"penalty must be 'l2', 'l1' or 'elasticnet', got {self.penalty!r}")
        if not self.C > 0:
            raise ValueError(f"C must be > 0, got {self.C}")
        if not 0.0 < self.l1_ratio < 1.0:
            raise ValueError(f"l1_ratio must lie in (0, 1), got {self.l1_ratio}")
        if not 0.0 < self.test_size < 1.0:
            raise ValueError(f"test_size must lie in (0, 1), got {self.test_size}")


def _sklearn_version() -> tuple[int, int]:
    import sklearn

    major, minor = sklearn.__version__.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def make_probe(
    penalty: Penalty = "l2",
    C: float = 1.0,
    seed: int = 0,
    *,
    l1_ratio: float = 0.5,
    max_iter: int = 2000,
) -> Any:
    """A probe: ``Pipeline(StandardScaler(), LogisticRegression(...))``, seeded.

    scikit-learn >= 1.8 expresses the penalty with ``l1_ratio`` alone (``penalty=`` is
    deprecated); older versions need ``penalty=``. This helper speaks both. L2 uses the
    deterministic ``lbfgs`` solver, L1 / elastic-net ``saga`` (seeded through ``random_state``).

    Args:
        penalty: ``"l2"``, ``"l1"`` or ``"elasticnet"``.
        C: inverse regularisation strength.
        seed: ``random_state`` of the solver.
        l1_ratio: L1 share for elastic-net.
        max_iter: solver iterations.

    Returns:
        An unfitted scikit-learn ``Pipeline`` (steps ``standardscaler``, ``logisticregression``).

    Raises:
        ValueError: unknown penalty, ``C <= 0``, ``l1_ratio`` outside (0, 1).

    Example:
        >>> make_probe("l1", C=0.5, seed=0).fit(x, y)  # doctest: +SKIP
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ProbeConfig(penalty=penalty, C=C, l1_ratio=l1_ratio)  # validates
    ratio = {"l2": 0.0, "l1": 1.0, "elasticnet": l1_ratio}[penalty]
    solver = "lbfgs" if penalty == "l2" else "saga"
    kwargs: dict[str, Any] = dict(C=C, solver=solver, max_iter=max_iter, random_state=seed)
    if _sklearn_version() >= (1, 8):
        kwargs["l1_ratio"] = ratio
    else:
        kwargs["penalty"] = penalty
        if penalty == "elasticnet":
            kwargs["l1_ratio"] = ratio
    return make_pipeline(StandardScaler(), LogisticRegression(**kwargs))


def fit_probe(x: Float[np.ndarray, "n d"], y: Int[np.ndarray, " n"], config: ProbeConfig) -> Any:
    """Fit :func:`make_probe` per ``config`` on ``x, y`` (convergence warnings are logged)."""
    from sklearn.exceptions import ConvergenceWarning

    probe = make_probe(config.penalty, config.C, config.seed, l1_ratio=config.l1_ratio,
                       max_iter=config.max_iter)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        probe.fit(x, y)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        logger.warning("probe did not converge in %d iterations (d=%d)", config.max_iter,
                       x.shape[1])
    return probe


def standardised_coef(probe: Any) -> Float[np.ndarray, "rows d"]:
    """The logistic-regression coefficients of a fitted probe, on standardised features
    (``[1, d]`` for binary tasks, ``[n_classes, d]`` otherwise)."""
    return np.asarray(probe[-1].coef_, dtype=np.float64)


def coef_scores(coef: np.ndarray, classes: np.ndarray, target: int | None) -> np.ndarray:
    """Importance per unit from standardised coefficients: the L2 norm over classes (global,
    ``target=None``) or the class's own row (binary: ``+coef`` for ``classes[1]``, ``-coef``
    for ``classes[0]``)."""
    if target is None:
        return np.linalg.norm(coef, axis=0)
    hits = np.flatnonzero(classes == target)
    if hits.size == 0:
        raise ValueError(f"class id {target} was not in the probe's training labels")
    if coef.shape[0] == 1:  # binary: one row, positive evidence for classes[1]
        return coef[0] if hits[0] == 1 else -coef[0]
    return coef[hits[0]]


def _metrics(probe: Any, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    pred = probe.predict(x)
    return {"accuracy": float(accuracy_score(y, pred)),
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0))}


@dataclass(frozen=True, eq=False)
class ProbeResults:
    """Fitted per-hook probes and their scores.

    Attributes:
        probes: hook name -> fitted ``Pipeline`` (real task, trained on ``train_idx``).
        layers: hook name -> depth.
        label_names: class names, index = class id.
        labels: class ids ``[n]`` of every cached example.
        train_idx, test_idx: the split (positions into the activations).
        table: tidy scores, columns ``hook_name``, ``layer``, ``task`` (``"real"`` /
            ``"control"``), ``split`` (``"train"``/``"test"``), ``metric`` (``"accuracy"`` /
            ``"macro_f1"``), ``value``, ``constant`` (the hook's [CLS] vector is the same for
            every example, e.g. the embeddings output: nothing there can carry the label);
            in depth order.
        config: the probe configuration.
        model_fingerprint: the model the activations came from.
    """

    probes: dict[str, Any]
    layers: dict[str, int]
    label_names: tuple[str, ...]
    labels: Int[np.ndarray, " n"]
    train_idx: Int[np.ndarray, " n_train"]
    test_idx: Int[np.ndarray, " n_test"]
    table: pd.DataFrame
    config: ProbeConfig
    model_fingerprint: str

    def __repr__(self) -> str:
        real = self.table[(self.table["task"] == "real") & (self.table["split"] == "test")
                          & (self.table["metric"] == "accuracy")]
        best = (f", best test accuracy {real['value'].max():.3f} at "
                f"{real.loc[real['value'].idxmax(), 'hook_name']}" if not real.empty else "")
        return (f"ProbeResults(hooks={len(self.probes)}, classes={list(self.label_names)}, "
                f"n_train={len(self.train_idx)}, n_test={len(self.test_idx)}{best})")

    @property
    def names(self) -> list[str]:
        """Probed hook names, in depth order."""
        return list(self.probes)

    def _probe(self, hook_name: str) -> Any:
        if hook_name not in self.probes:
            raise ValueError(f"no probe for hook {hook_name!r}; probed hooks are {self.names}")
        return self.probes[hook_name]

    def coef(self, hook_name: str) -> Float[np.ndarray, "rows d"]:
        """Standardised coefficients of a hook's probe (see :func:`standardised_coef`)."""
        return standardised_coef(self._probe(hook_name))

    def class_id(self, target: str) -> int | None:
        """Class id of a class name, ``None`` for :data:`GLOBAL`; ValueError if unknown."""
        if target == GLOBAL:
            return None
        if target not in self.label_names:
            raise ValueError(f"unknown class {target!r}; classes are {list(self.label_names)} "
                             f"or {GLOBAL!r}")
        return self.label_names.index(target)

    def ranking(self, hook_name: str, target: str = GLOBAL) -> Ranking:
        """The probe ranking of a hook: global (``target=GLOBAL``) or for one class name.

        Raises:
            ValueError: unknown hook or class.
        """
        probe = self._probe(hook_name)
        scores = coef_scores(standardised_coef(probe), probe[-1].classes_,
                             self.class_id(target))
        return Ranking(hook_name, self.layers[hook_name], scores, target, "probe")

    def targets(self) -> list[str]:
        """:data:`GLOBAL` followed by the class names present in training."""
        present = np.unique(self.labels[self.train_idx])
        return [GLOBAL, *(self.label_names[i] for i in present)]

    def rankings(self, targets: Sequence[str] | None = None) -> list[Ranking]:
        """Probe rankings of every hook for ``targets`` (default :meth:`targets`)."""
        targets = self.targets() if targets is None else list(targets)
        return [self.ranking(name, t) for name in self.names for t in targets]

    def probeless_rankings(
        self, acts: ClsActivations, targets: Sequence[str] | None = None,
        standardize: bool = False,
    ) -> list[Ranking]:
        """Probeless rankings (class-mean differences) on the same training examples."""
        check_activations(self, acts)
        train = acts.subset(self.train_idx)
        targets = self.targets() if targets is None else list(targets)
        return [probeless_ranking(train, self.labels[self.train_idx], name, t,
                                  label_names=self.label_names, standardize=standardize)
                for name in self.names for t in targets]

    def contribution_rankings(
        self, acts: ClsActivations, targets: Sequence[str] | None = None,
    ) -> list[Ranking]:
        """Contribution-aware probe rankings (``method="probe_contribution"``).

        The standardised score (:meth:`ranking`) divides every unit by its standard deviation,
        so a unit that varies little but is large — an outlier dimension the model leans on —
        scores low. This score puts the scale back: the probe's *raw* coefficient (standardised
        coefficient / the scaler's std) times the unit's mean ``|x|`` on the training examples,
        i.e. the probe logit a zero-ablation of the unit would remove. Norm over classes
        (global) or the class's own row, as :meth:`ranking`.
        """
        check_activations(self, acts)
        targets = self.targets() if targets is None else list(targets)
        out = []
        for name in self.names:
            probe = self._probe(name)
            scale = np.asarray(probe[0].scale_, dtype=np.float64)
            size = acts.numpy(name)[self.train_idx].astype(np.float64)
            contribution = standardised_coef(probe) / scale * np.abs(size).mean(0)
            out += [Ranking(name, self.layers[name],
                            coef_scores(contribution, probe[-1].classes_, self.class_id(t)), t,
                            "probe_contribution") for t in targets]
        return out

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the probes to a directory, without pickle: the fitted arrays in
        ``probes.safetensors``, everything else in ``probes.json`` and ``table.csv``.

        Written atomically under the same output policy as a run directory: ``path`` must be
        new, empty, or an earlier saved ``ProbeResults`` (replaced only with ``overwrite``).
        Read back with :func:`load_probes`; the loaded probes predict and rank exactly as these.

        Raises:
            FileExistsError / ValueError / OSError: a ``path`` the output policy refuses.

        Example:
            >>> results.save("probes/sms")  # doctest: +SKIP
        """
        from safetensors.numpy import save_file

        from synapse_lens.atomic import atomic_directory, check_output_dir

        check_output_dir(path, marker=PROBES_FILE, schema=PROBES_SCHEMA, overwrite=overwrite)
        arrays = {"labels": self.labels, "train_idx": self.train_idx, "test_idx": self.test_idx}
        for i, name in enumerate(self.names):
            scaler, lr = self.probes[name][0], self.probes[name][-1]
            for key, value in (("mean", scaler.mean_), ("var", scaler.var_),
                               ("scale", scaler.scale_), ("coef", lr.coef_),
                               ("intercept", lr.intercept_), ("classes", lr.classes_),
                               ("n_iter", lr.n_iter_),
                               ("n_samples_seen", np.asarray(scaler.n_samples_seen_))):
                arrays[f"{i}.{key}"] = np.ascontiguousarray(value)
        # the memory order decides BLAS's summation order: keep it, and predictions stay equal
        fortran = [f"{i}.coef" for i, name in enumerate(self.names)
                   if not self.probes[name][-1].coef_.flags["C_CONTIGUOUS"]]
        meta = {"schema": PROBES_SCHEMA, "hooks": self.names, "fortran_order": fortran,
                "layers": [self.layers[n] for n in self.names],
                "label_names": list(self.label_names),
                "config": dataclasses.asdict(self.config),
                "model_fingerprint": self.model_fingerprint}
        with atomic_directory(path) as tmp:
            save_file(arrays, str(tmp / "probes.safetensors"))
            self.table.to_csv(tmp / "table.csv", index=False)
            (tmp / PROBES_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return Path(path)

    def selectivity(self) -> pd.DataFrame:
        """Control-task selectivity on the test split.

        Returns:
            Columns ``hook_name``, ``layer``, ``metric``, ``real``, ``control``,
            ``selectivity`` (= real - control); one row per hook and metric, depth order.

        Raises:
            ValueError: the probes were fitted without the control task.
        """
        test = self.table[self.table["split"] == "test"]
        if not (test["task"] == "control").any():
            raise ValueError("no control task was fitted (fit_probes(..., control=True))")
        wide = test.pivot_table(index=["hook_name", "layer", "metric"], columns="task",
                                values="value", sort=False).reset_index()
        wide["selectivity"] = wide["real"] - wide["control"]
        return wide[SELECTIVITY_COLUMNS].rename_axis(columns=None)


def load_probes(path: str | os.PathLike[str]) -> ProbeResults:
    """Read probes written by :meth:`ProbeResults.save` (no pickle: safetensors and JSON).

    Raises:
        FileNotFoundError: no saved probes at ``path``.
        ValueError: another format or schema, inconsistent files.

    Example:
        >>> results = load_probes("probes/sms")  # doctest: +SKIP
    """
    from safetensors.numpy import load_file

    path = Path(path)
    if not (path / PROBES_FILE).is_file():
        raise FileNotFoundError(f"no saved probes at {str(path)!r} (missing {PROBES_FILE})")
    try:
        meta = json.loads((path / PROBES_FILE).read_text(encoding="utf-8"))
        arrays = load_file(str(path / "probes.safetensors"))
        table = pd.read_csv(path / "table.csv")
    except (OSError, ValueError) as err:
        raise ValueError(f"unreadable saved probes at {str(path)!r}: {err}") from None
    if not isinstance(meta, dict) or meta.get("schema") != PROBES_SCHEMA:
        raise ValueError(f"{str(path / PROBES_FILE)!r} is not a {PROBES_SCHEMA} file")
    config = ProbeConfig(**meta["config"])
    probes = {}
    for i, name in enumerate(meta["hooks"]):
        try:
            probe = make_probe(config.penalty, config.C, config.seed, l1_ratio=config.l1_ratio,
                               max_iter=config.max_iter)
            scaler, lr = probe[0], probe[-1]
            scaler.mean_, scaler.var_ = arrays[f"{i}.mean"], arrays[f"{i}.var"]
            scaler.scale_ = arrays[f"{i}.scale"]
            seen = arrays[f"{i}.n_samples_seen"]
            scaler.n_samples_seen_ = seen if seen.ndim else seen.item()
            coef = arrays[f"{i}.coef"]
            lr.coef_ = (np.asfortranarray(coef) if f"{i}.coef" in meta.get("fortran_order", ())
                        else coef)
            lr.intercept_ = arrays[f"{i}.intercept"]
            lr.classes_, lr.n_iter_ = arrays[f"{i}.classes"], arrays[f"{i}.n_iter"]
        except KeyError as err:
            raise ValueError(f"saved probes at {str(path)!r} lack the array {err}") from None
        scaler.n_features_in_ = lr.n_features_in_ = int(lr.coef_.shape[1])
        probes[name] = probe
    return ProbeResults(
        probes=probes, layers=dict(zip(meta["hooks"], meta["layers"])),
        label_names=tuple(meta["label_names"]), labels=arrays["labels"],
        train_idx=arrays["train_idx"], test_idx=arrays["test_idx"],
        table=table[PROBE_COLUMNS], config=config, model_fingerprint=meta["model_fingerprint"])


def check_activations(results: ProbeResults, acts: ClsActivations) -> None:
    """Raise ValueError unless ``acts`` are the activations ``results`` were fitted on."""
    if acts.model_fingerprint != results.model_fingerprint:
        raise ValueError("these activations come from another model than the probes")
    if acts.n != results.labels.shape[0]:
        raise ValueError(f"{acts.n} cached examples but the probes saw {results.labels.shape[0]}")
    missing = [n for n in results.names if n not in acts]
    if missing:
        raise ValueError(f"hooks {missing} are not in the activations")


def _labels_of(acts: ClsActivations, labels: TextDataset | Sequence[int] | np.ndarray,
               label_names: Sequence[str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    if isinstance(labels, TextDataset):
        if acts.dataset_fingerprint not in (None, labels.fingerprint):
            raise ValueError(f"the activations were cached from another dataset than "
                             f"{labels.name!r} (fingerprints differ)")
        return labels.labels, labels.label_names
    y = np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be class ids (1-D ints) or a TextDataset, got {y.dtype}")
    if y.size and y.min() < 0:
        raise ValueError("class ids must be >= 0")
    names = (tuple(str(n) for n in label_names) if label_names is not None
             else tuple(str(i) for i in range(int(y.max()) + 1 if y.size else 0)))
    if y.size and y.max() >= len(names):
        raise ValueError(f"class id {y.max()} has no name in label_names {names}")
    return y.astype(np.int64), names


def resolve_split(
    y: np.ndarray, split: tuple[Sequence[int], Sequence[int]] | None, config: ProbeConfig,
    label_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Explicit ``(train_idx, test_idx)`` checked, or a stratified seeded split of ``y``
    (``label_names`` name the classes in error messages)."""
    if split is None:
        return stratified_split(y, test_size=config.test_size, seed=config.seed,
                                label_names=label_names, what="the cached examples")
    train, test = (np.asarray(s, dtype=np.int64).reshape(-1) for s in split)
    if train.size == 0 or test.size == 0:
        raise ValueError("train and test indices must both be non-empty")
    if min(train.min(), test.min()) < 0 or max(train.max(), test.max()) >= y.size:
        raise ValueError(f"split indices must lie in 0..{y.size - 1}")
    if np.intersect1d(train, test).size:
        raise ValueError("train and test indices overlap")
    return train, test


def fit_probes(
    acts: ClsActivations,
    labels: TextDataset | Sequence[int] | np.ndarray,
    *,
    label_names: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    split: tuple[Sequence[int], Sequence[int]] | None = None,
    config: ProbeConfig | None = None,
    progress: bool = False,
) -> ProbeResults:
    """Fit one probe per cached hook, plus the control task, and score them.

    Args:
        acts: cached [CLS] activations (:func:`~synapse_lens.activations.cache_cls`).
        labels: the :class:`~synapse_lens.data.TextDataset` the activations came from, or
            class ids ``[n]`` (then ``label_names`` names them).
        label_names: class names for integer labels.
        names: hooks to probe (default: every cached hook).
        split: explicit ``(train_idx, test_idx)``; default a stratified split with
            ``config.test_size`` and ``config.seed``.
        config: :class:`ProbeConfig` (default L2, C=1, seed 0, control task on).
        progress: show a tqdm progress bar.

    Returns:
        :class:`ProbeResults`; its ``table`` has columns ``hook_name``, ``layer``, ``task``,
        ``split``, ``metric``, ``value``, ``constant``.

    Raises:
        ValueError: label count mismatch, a single class in training, unknown hooks, a bad
            split, activations from another dataset.

    Example:
        >>> results = fit_probes(acts, ds, config=ProbeConfig(seed=1))  # doctest: +SKIP
    """
    config = ProbeConfig() if config is None else config
    y, label_names_t = _labels_of(acts, labels, label_names)
    if y.shape[0] != acts.n:
        raise ValueError(f"{y.shape[0]} labels for {acts.n} cached examples; they must match")
    if np.unique(y).size < 2:
        raise ValueError("a single class in labels: a probe needs at least two")
    names = acts.names if names is None else list(names)
    for name in names:
        acts.layer(name)  # ValueError for hooks that were not cached
    train, test = resolve_split(y, split, config, label_names_t)
    if np.unique(y[train]).size < 2:
        raise ValueError("the training split holds a single class")
    y_control = np.random.default_rng(config.seed).permutation(y)
    probes, rows = {}, []
    for name in tqdm(names, desc="probes", disable=not progress):
        x = acts.numpy(name)
        layer = acts.layer(name)
        constant = bool(np.all(x.std(axis=0) == 0))
        if np.all(x[train].std(axis=0) == 0):
            # expected at the embeddings (layer -1): the [CLS] token's embedding is one vector
            logger.log(logging.INFO if layer < 0 else logging.WARNING,
                       "%s is constant over the training examples: its probe predicts the "
                       "majority class and its rankings are all ties", name)
        tasks = [("real", y)] + ([("control", y_control)] if config.control else [])
        for task, target in tasks:
            probe = fit_probe(x[train], target[train], config)
            if task == "real":
                probes[name] = probe
            for split_name, idx in (("train", train), ("test", test)):
                for metric, value in _metrics(probe, x[idx], target[idx]).items():
                    rows.append((name, layer, task, split_name, metric, value, constant))
    table = pd.DataFrame(rows, columns=PROBE_COLUMNS)
    return ProbeResults(probes, {n: acts.layer(n) for n in names}, label_names_t, y, train,
                        test, table, config, acts.model_fingerprint)
