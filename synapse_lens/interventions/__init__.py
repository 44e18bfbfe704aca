"""Changing a model at inference, always undone: hook-function factories on units
(:mod:`~synapse_lens.interventions.hooks`), weight- and logit-space edits
(:mod:`~synapse_lens.interventions.edits`, :mod:`~synapse_lens.interventions.targeted`) and the
step from a ranking to the hooks that act on its top / bottom / random units
(:mod:`~synapse_lens.interventions.selection`).

The hook factories are re-exported here::

    >>> from synapse_lens.interventions import zero_ablate  # doctest: +SKIP
"""

from synapse_lens.interventions.hooks import (
    HookFn,
    add_noise,
    mean_ablate,
    patch_from,
    scale,
    set_value,
    steer,
    zero_ablate,
)

__all__ = [
    "HookFn",
    "add_noise",
    "mean_ablate",
    "patch_from",
    "scale",
    "set_value",
    "steer",
    "zero_ablate",
]
