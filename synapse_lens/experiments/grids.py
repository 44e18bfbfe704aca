"""Intervention grids fitted to the model: sizes as fractions of a hook's width, strengths
extended until something happens (or a stated cap), logit biases spanning the measured
minimal biases.

A stress test that never leaves the regime where nothing happens says nothing; one whose only
effect is at k = the whole width says something true by construction. These helpers make the
default grids reach the regime of effects on any model, and record how far they went when
they did not.

Example:
    >>> fitted_ks(384)
    (4, 19, 96, 192, 384)
    >>> fitted_ks(32)
    (1, 2, 8, 16, 32)
    >>> geometric(0.5, 8.0)
    (0.5, 1.0, 2.0, 4.0, 8.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and pandas are imported where used: the CLI reads the defaults here
    import numpy as np
    import pandas as pd

from synapse_lens.schema import ALL

#: Default unit-set sizes, as fractions of each hook's width, log-spaced from 1 % (the full
#: width is added as the explicit extreme: there top = random = bottom by construction, so it
#: is never a headline). Four sizes: each size of a middle-layer curve costs about 10 forward
#: passes of the layers above it (3 rankings x top/bottom, 5 random draws, shared).
DEFAULT_K_FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.25, 0.50)
#: Noise levels (in units of each unit's [CLS] std) and relative weight-perturbation sizes
#: tried first, and the caps the run extends them to (doubling) until top-k units differ from
#: random ones. The one set of defaults: ``RunConfig``, ``StressConfig`` and ``redirection``.
DEFAULT_SIGMAS: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0)
SIGMA_CAP = 64.0
DEFAULT_EPS: tuple[float, ...] = (0.0, 0.1, 0.3, 1.0)
EPS_CAP = 8.0


def fitted_ks(width: int, fractions: Sequence[float] = DEFAULT_K_FRACTIONS, *,
              full: bool = True) -> tuple[int, ...]:
    """Unit-set sizes ``round(f * width)`` (at least 1), distinct and ascending, plus ``width``
    itself when ``full``.

    Raises:
        ValueError: a width < 1 or a fraction outside (0, 1].
    """
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ValueError(f"fractions must lie in (0, 1], got {list(fractions)}")
    ks = {max(1, min(width, math.floor(f * width + 0.5))) for f in fractions}
    return tuple(sorted(ks | ({width} if full else set())))


def geometric(start: float, cap: float, factor: float = 2.0) -> tuple[float, ...]:
    """``start, start * factor, ...`` up to and including ``cap`` (the last value is ``cap``)."""
    if not 0 < start <= cap or factor <= 1:
        raise ValueError(f"need 0 < start <= cap and factor > 1, got {start}, {cap}, {factor}")
    out = [float(start)]
    while out[-1] * factor < cap * (1 - 1e-9):
        out.append(out[-1] * factor)
    if out[-1] < cap:
        out.append(float(cap))
    return tuple(out)


def extend_until(
    run: Callable[[Sequence[float]], pd.DataFrame],
    first: Sequence[float],
    more: Sequence[float],
    found: Callable[[pd.DataFrame], bool],
) -> tuple[pd.DataFrame, bool]:
    """Run the grid ``first``; while ``found`` is False on everything run so far, run the next
    value of ``more`` (ascending strengths up to the cap). Deterministic: the same seeds give
    the same table.

    Returns:
        The concatenated table of every value run, and whether ``found`` became True.
    """
    import pandas as pd

    table = run(list(first))
    pending = [v for v in more if v not in set(first)]
    while not found(table) and pending:
        table = pd.concat([table, run([pending.pop(0)])], ignore_index=True)
    return table, found(table)


def outside_control(summary: pd.DataFrame, *, by: str, treated: str, control: str,
                    metric: str = "true_prob", keys: Sequence[str] = ()) -> pd.DataFrame:
    """Grid points where the treated set's mean lies outside the control set's 95 % interval.

    Args:
        summary: a :func:`~synapse_lens.experiments.engine.summarize` table (``mean``, ``ci_low``,
            ``ci_high``, ``metric``, ``class``).
        by: the column naming the set (``"order"`` in ablation tables, ``"units"`` in noise).
        treated, control: the values of ``by`` compared (e.g. ``"top"`` vs ``"random"``).
        metric: the metric compared (``"__all__"`` class rows only).
        keys: the grid columns matched between treated and control (e.g. ``hook_name, k``).

    Returns:
        The matched rows with ``mean`` (treated), ``ci_low_control``, ``ci_high_control``,
        ``outside`` (bool).
    """
    rows = summary[(summary["metric"] == metric) & (summary["class"] == ALL)]
    keys = list(keys)
    treat = rows[rows[by] == treated]
    ctrl = rows[rows[by] == control][[*keys, "mean", "ci_low", "ci_high"]]
    merged = treat.merge(ctrl, on=keys, suffixes=("", "_control"))
    merged["outside"] = ((merged["mean"] < merged["ci_low_control"])
                         | (merged["mean"] > merged["ci_high_control"]))
    return merged


def bias_grid(minimal: Sequence[float] | np.ndarray, *, n: int = 6,
              quantile: float = 0.95) -> tuple[float, ...]:
    """Logit-bias sizes spanning the measured minimal flipping biases: ``0`` and ``n`` evenly
    spaced values up to their ``quantile`` (rounded to 3 significant digits; ``(0.0, 1.0)``
    when nothing was measured)."""
    import numpy as np

    values = np.asarray(minimal, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (0.0, 1.0)
    top = float(np.quantile(values, quantile))
    if top <= 0:
        return (0.0, 1.0)
    scale = 10.0 ** (math.floor(math.log10(top)) - 2)  # 3 significant digits, rounded up at
    top = math.ceil(top / scale - 1e-9) * scale          # the end: the grid covers the quantile
    return tuple(sorted({0.0, *(float(f"{top * i / n:.3g}") for i in range(1, n)),
                         float(f"{top:.3g}") if float(f"{top:.3g}") >= top - 1e-12 else top}))
