"""The settings of a SYNAPSE run (:class:`RunConfig`) and their defaults.

Kept free of heavy imports (torch, pandas): the command line reads its option defaults and help
texts from here without loading a model stack.

Example:
    >>> RunConfig(layers=(5,), ks=(4, 19)).grid(384)
    (4, 19)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from synapse_lens.experiments.grids import (
    DEFAULT_EPS,
    DEFAULT_K_FRACTIONS,
    DEFAULT_SIGMAS,
    EPS_CAP,
    SIGMA_CAP,
    fitted_ks,
)
from synapse_lens.names import Position
from synapse_lens.runtime.options import ExecOptions
from synapse_lens.schema import config_dict, config_from_dict

if TYPE_CHECKING:
    from synapse_lens.experiments.suite import StressConfig

#: Ranking methods a run can compare (``RunConfig.rankings``).
RANKING_METHODS = ("probe", "probeless", "attribution", "probe_contribution")

#: Where the residual-stream edits are made: [CLS] only, and every position.
POSITIONS: tuple[Position, ...] = ("cls", "all")


@dataclass(frozen=True)
class RunConfig:
    """Settings of one SYNAPSE run (JSON round-trip; unknown keys are ignored on load).

    Attributes:
        layers: encoder layers to probe and rank (``None``: all).
        embeddings: also probe and rank the embeddings output (``None``: when ``layers`` is
            ``None``, i.e. a run over everything includes it; a run over named layers analyses
            what it names).
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
        max_classes: cap on the classes given per-class work — per-class rankings, the class
            matrix and overlaps, the classifier-row, logit-bias and targeted-redirection
            targets — when more classes have an example: the most frequent in the analysed
            texts (ties in class order); the run records which, and the report says so.
            Metrics per class still cover every class present. ``None``: no cap.
        test_size: probe held-out fraction; interventions are evaluated on that held-out part.
        batch_size, max_length: forward-pass batching and truncation.
        seed: seeds every random choice of the run.
    """

    layers: tuple[int, ...] | None = None
    embeddings: bool | None = None
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
    max_classes: int | None = 10
    test_size: float = 0.5
    batch_size: int = 32
    max_length: int = 64
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
        if self.max_classes is not None and self.max_classes < 2:
            raise ValueError(f"max_classes must be >= 2 (or None), got {self.max_classes}")

    @property
    def with_embeddings(self) -> bool:
        """Whether the embeddings output is analysed (see ``embeddings``)."""
        return self.layers is None if self.embeddings is None else self.embeddings

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (tuples become lists)."""
        return config_dict(self)

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
        """The :class:`~synapse_lens.experiments.suite.StressConfig` of this run for layers of
        ``width`` units (``k = 0``, the clean reference, is always part of the ablation curve)."""
        from synapse_lens.experiments.suite import StressConfig

        k = min(self.set_size(width), width)
        return StressConfig(
            ks=(0, *self.grid(width, full=True)), n_seeds=self.n_seeds,
            class_k=k, class_ks=(k,) if self.class_k is not None else self.grid(width),
            noise_k=k, sigmas=self.sigmas or DEFAULT_SIGMAS,
            sigma_cap=None if self.sigmas else SIGMA_CAP, noise_seeds=self.noise_seeds,
            weight_k=k, eps_values=self.eps_values or DEFAULT_EPS,
            eps_cap=None if self.eps_values else EPS_CAP, weight_seeds=self.n_seeds,
            biases=self.biases, seed=self.seed, scope="last")

    def exec_options(self, *, progress: bool = True) -> ExecOptions:
        """How this run runs the model (``batch_size`` and ``max_length`` from the config)."""
        return ExecOptions(batch_size=self.batch_size, max_length=self.max_length,
                           progress=progress)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        return config_from_dict(cls, data)


def default_stress_layers(layers: Sequence[int]) -> tuple[int, ...]:
    """The middle and the last of the analysed ``layers`` (one layer when there is one): a
    middle layer, where edits of [CLS] may be repaired by the layers above, and the layer the
    head reads. Each sweep condition at a middle layer re-runs the layers above it, so two
    layers keep a default run within minutes on 2 CPU cores."""
    ordered = sorted(layers)
    return tuple(sorted({ordered[(len(ordered) - 1) // 2], ordered[-1]}))
